"""Builders for discovery tests: the upstream fixture paths, and the objects a test changes.

Imported by module name from the tests beside it (a unique name, so it never shadows another
test directory's helpers).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import yaml

from meshrules.discovery import Discovery
from meshrules.model.discovery import KubernetesClusterConfig
from meshrules.model.source import KubeObject

UPSTREAM = Path(__file__).resolve().parents[1] / "fixtures" / "upstream"
SAMPLES = UPSTREAM / "samples"
ISTIO_CP = UPSTREAM / "istio-control-plane" / "istiod-pilot_default.golden.yaml"
LINKERD_CP = UPSTREAM / "linkerd-control-plane" / "install_default.golden.yaml"
LINKERD_MC = UPSTREAM / "linkerd-control-plane" / "multicluster_install_default.golden.yaml"
SCENARIO = Path(__file__).resolve().parents[2] / "simulator" / "scenarios" / "bookinfo-multicluster"

# `kube(path_or_text, cluster="c1", namespace="default")` and `live(dicts, cluster="c1")` fixtures.
Kube = Callable[..., list[KubeObject]]


class Discover(Protocol):
    """The `run` fixture: discover clusters given as ``name=objects`` (and optional `cluster.yaml` configs)."""

    def __call__(
        self, configs: Mapping[str, KubernetesClusterConfig] | None = None, **clusters: list[KubeObject]
    ) -> Discovery: ...


def codes(discovery: Discovery) -> list[str]:
    """The finding codes of a discovery, in report order."""
    return [d.code for d in discovery.diagnostics]


def dump(*objects: Mapping[str, Any]) -> str:
    """A multi-document YAML stream of ``objects``."""
    return yaml.safe_dump_all([dict(o) for o in objects], sort_keys=False)


def deployment(
    name: str,
    namespace: str,
    labels: Mapping[str, str],
    *,
    annotations: Mapping[str, str] | None = None,
    containers: Sequence[str] = ("app",),
    init_containers: Sequence[str] = (),
    service_account: str | None = None,
    kind: str = "Deployment",
    image: str = "example/app:1",
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A Deployment (or StatefulSet/DaemonSet) with the given pod template."""
    template_meta: dict[str, Any] = {"labels": dict(labels)}
    if annotations:
        template_meta["annotations"] = dict(annotations)
    spec: dict[str, Any] = {
        "containers": [
            {
                "name": c,
                "image": image,
                **({"env": [{"name": k, "value": v} for k, v in env.items()]} if env else {}),
            }
            for c in containers
        ]
    }
    if init_containers:
        spec["initContainers"] = [{"name": c, "image": image, "restartPolicy": "Always"} for c in init_containers]
    if service_account:
        spec["serviceAccountName"] = service_account
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"selector": {"matchLabels": dict(labels)}, "template": {"metadata": template_meta, "spec": spec}},
    }


def service(
    name: str,
    namespace: str,
    selector: Mapping[str, str] | None,
    *,
    ports: Sequence[Mapping[str, Any]] = ({"name": "http", "port": 80},),
    annotations: Mapping[str, str] | None = None,
    status: Mapping[str, Any] | None = None,
    external_ips: Sequence[str] = (),
) -> dict[str, Any]:
    """A Service."""
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if annotations:
        meta["annotations"] = dict(annotations)
    spec: dict[str, Any] = {"ports": [dict(p) for p in ports]}
    if selector is not None:
        spec["selector"] = dict(selector)
    if external_ips:
        spec["externalIPs"] = list(external_ips)
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": spec}
    if status is not None:
        obj["status"] = dict(status)
    return obj


def configmap(name: str, namespace: str, data: Mapping[str, str]) -> dict[str, Any]:
    """A ConfigMap."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": dict(data),
    }


def ns(
    name: str, labels: Mapping[str, str] | None = None, annotations: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """A Namespace."""
    meta: dict[str, Any] = {"name": name}
    if labels:
        meta["labels"] = dict(labels)
    if annotations:
        meta["annotations"] = dict(annotations)
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


def istiod(
    revision: str | None = None,
    namespace: str = "istio-system",
    *,
    tag: str = "1.24.2",
    env: Mapping[str, str] | None = None,
    mesh: str = "trustDomain: cluster.local\n",
) -> list[dict[str, Any]]:
    """An istiod Deployment (of ``revision``) and its mesh-config ConfigMap."""
    name = f"istiod-{revision}" if revision else "istiod"
    cm_name = f"istio-{revision}" if revision else "istio"
    labels = {"app": "istiod", "istio.io/rev": revision or "default"}
    return [
        deployment(name, namespace, labels, containers=("discovery",), image=f"docker.io/istio/pilot:{tag}", env=env),
        configmap(cm_name, namespace, {"mesh": mesh}),
    ]


def eastwest_gateway(
    namespace: str = "istio-system",
    *,
    revision: str | None = None,
    ip: str | None = "203.0.113.1",
    ports: Sequence[Mapping[str, Any]] = ({"name": "status-port", "port": 15021}, {"name": "tls", "port": 15443}),
    name: str = "istio-eastwestgateway",
    role: str = "eastwestgateway",
) -> list[dict[str, Any]]:
    """An east-west (or ingress, with ``role``) gateway Deployment and its LoadBalancer Service."""
    labels = {"app": name, "istio": role}
    if revision:
        labels["istio.io/rev"] = revision
    status = {"loadBalancer": {"ingress": [{"ip": ip}]}} if ip else {"loadBalancer": {}}
    return [
        deployment(
            name,
            namespace,
            labels,
            annotations={"inject.istio.io/templates": "gateway"},
            containers=("istio-proxy",),
            image="auto",
        ),
        service(name, namespace, {"app": name, "istio": role}, ports=ports, status=status),
    ]
