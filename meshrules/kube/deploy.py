"""The manifests in `deploy/`, generated from code so they cannot drift from it.

`deploy/management/` installs the controller in the management cluster: namespace, CRDs,
service account, least-privilege RBAC (`rbac`), the controller Deployment. `deploy/agent/`
installs the agent in a registered cluster. A test checks the files equal `manifests()`;
regenerate them with `python -m meshrules.kube.deploy deploy`.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from meshrules import __version__
from meshrules.emit.naming import OWNER_LABEL
from meshrules.kube import rbac
from meshrules.kube.registration import EXCHANGE_ROLE, exchange_objects
from meshrules.model.common import MANAGEMENT_NAMESPACE
from meshrules.model.crds import discovery_crds, policy_crds

IMAGE = f"ghcr.io/meshrules/meshrules:{__version__}"
CONTROLLER = "meshrules-controller"
AGENT = "meshrules-agent"
CONTROLLER_TRUST = "meshrules-controller-trust"
REMOTE_EXCHANGE = EXCHANGE_ROLE
HEALTH_PORT = 8080
PART_OF = {"app.kubernetes.io/part-of": "meshrules"}
# The mesh namespaces the agent writes CA objects in (spec §4 Trust); one Role each.
AGENT_NAMESPACES = rbac.MESH_NAMESPACES

Object = dict[str, Any]


def _meta(name: str, namespace: str | None = None, **labels: str) -> Object:
    meta: Object = {"name": name, "labels": {**PART_OF, **labels}}
    if namespace:
        meta["namespace"] = namespace
    return meta


def _binding(kind: str, name: str, namespace: str | None, account: str, account_ns: str) -> Object:
    role_kind = "ClusterRole" if kind == "ClusterRoleBinding" else "Role"
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": _meta(name, namespace),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": account_ns}],
    }


def _deployment(name: str, namespace: str, args: Sequence[str], replicas: int, account: str) -> Object:
    labels = {"app.kubernetes.io/name": name}
    container: Object = {
        "name": name.removeprefix("meshrules-"),
        "image": IMAGE,
        "args": list(args),
        "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
        "ports": [{"name": "http-metrics", "containerPort": HEALTH_PORT}],
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http-metrics"}, "periodSeconds": 10},
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http-metrics"}, "periodSeconds": 5},
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(name, namespace, **labels),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {
                    "labels": {**PART_OF, **labels},
                    "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": str(HEALTH_PORT)},
                },
                "spec": {
                    "serviceAccountName": account,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 65532,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                    # The kubernetes client writes CA and client certificates to temporary files.
                    "volumes": [{"name": "tmp", "emptyDir": {}}],
                },
            },
        },
    }


def _with_tmp(deployment: Object) -> Object:
    deployment["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] = [{"name": "tmp", "mountPath": "/tmp"}]
    return deployment


def manifests(namespace: str = MANAGEMENT_NAMESPACE) -> dict[str, list[Object]]:
    """File path (relative to `deploy/`) → its objects."""
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(namespace)}
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(CONTROLLER, namespace)}
    controller_rbac: list[Object] = [
        account,
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": _meta(CONTROLLER),
            "rules": rbac.controller_cluster_rules(),
        },
        _binding("ClusterRoleBinding", CONTROLLER, None, CONTROLLER, namespace),
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": _meta(CONTROLLER, namespace),
            "rules": rbac.controller_namespace_rules(),
        },
        _binding("RoleBinding", CONTROLLER, namespace, CONTROLLER, namespace),
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": _meta(CONTROLLER_TRUST, namespace),
            "rules": rbac.controller_trust_rules(),
        },
        _binding("RoleBinding", CONTROLLER_TRUST, namespace, CONTROLLER, namespace),
    ]
    controller = _with_tmp(
        _deployment(
            CONTROLLER,
            namespace,
            [
                "controller",
                "--namespace",
                namespace,
                "--identity",
                "$(POD_NAME)",
                "--health-address",
                f"0.0.0.0:{HEALTH_PORT}",
            ],
            replicas=2,
            account=CONTROLLER,
        )
    )
    agent_account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(AGENT, namespace)}
    agent_rbac: list[Object] = [agent_account]
    for mesh_ns in AGENT_NAMESPACES:
        agent_rbac.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": _meta(AGENT, mesh_ns),
                "rules": rbac.agent_namespace_rules(),
            }
        )
        agent_rbac.append(_binding("RoleBinding", AGENT, mesh_ns, AGENT, namespace))
        # The management side answers CSRs in this namespace through the identity `cluster
        # register` creates; its ClusterRole cannot write ConfigMaps, this Role lets it write here only.
        # Registration creates the same objects: the owner label lets it adopt these (and
        # deregistration remove them) rather than refuse them as a user's.
        agent_rbac.extend(exchange_objects(mesh_ns, {**PART_OF, OWNER_LABEL: namespace}, namespace))
    agent = _with_tmp(
        _deployment(
            AGENT,
            namespace,
            ["agent", "--identity", "$(POD_NAME)", "--health-address", f"0.0.0.0:{HEALTH_PORT}"],
            replicas=1,
            account=AGENT,
        )
    )
    out: dict[str, list[Object]] = {
        "management/namespace.yaml": [ns],
        "management/crds.yaml": policy_crds(),
        "management/discovery-crds.yaml": discovery_crds(),
        "management/rbac.yaml": controller_rbac,
        "management/controller.yaml": [controller],
        "agent/namespace.yaml": [ns],
        "agent/rbac.yaml": agent_rbac,
        "agent/agent.yaml": [agent],
    }
    return out


HEADER = "# Generated by `python -m meshrules.kube.deploy deploy` from meshrules.kube.deploy; do not edit.\n"


def render(objects: Sequence[Mapping[str, Any]]) -> str:
    """The YAML text of one manifest file."""
    return HEADER + yaml.safe_dump_all([dict(o) for o in objects], sort_keys=True, default_flow_style=False)


def kustomization(files: Sequence[str]) -> str:
    """A kustomization listing ``files``."""
    return HEADER + yaml.safe_dump(
        {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": list(files)},
        sort_keys=True,
    )


def files() -> dict[str, str]:
    """Every file of `deploy/` (except the README) → its text."""
    out: dict[str, str] = {}
    folders: dict[str, list[str]] = {}
    for path, objects in manifests().items():
        out[path] = render(objects)
        folder, _, name = path.partition("/")
        folders.setdefault(folder, []).append(name)
    for folder, names in folders.items():
        out[f"{folder}/kustomization.yaml"] = kustomization(names)
    return out


def write(root: Path) -> None:
    """Write every file under ``root``."""
    for path, text in files().items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")


if __name__ == "__main__":  # pragma: no cover - the regeneration command
    write(Path(sys.argv[1] if len(sys.argv) > 1 else "deploy"))
