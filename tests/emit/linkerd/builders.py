"""Small Linkerd topologies and hand-built intents for the Linkerd emitter's tests.

The rule set that derives an `Intent` is tested elsewhere; these tests state the decisions
directly, so each reads as "given these decisions, the emitter writes this".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import yaml

# The two builders the Istio and Linkerd emitter tests share; re-exported for the Linkerd tests.
from emit.emit_builders import emit_input as emit_input
from emit.emit_builders import user_object as user_object
from meshrules.emit.output import EmitResult
from meshrules.model.discovery import (
    ContainerPort,
    ControllerRef,
    Destination,
    Gateway,
    GatewayKind,
    HttpProbe,
    Mesh,
    MeshType,
    ServicePort,
    Workload,
)
from meshrules.model.intent import (
    AccessRule,
    Derivation,
    FederationEdge,
    IdentityPattern,
    MeshMembership,
    TrafficApplication,
)
from meshrules.model.policy import AccessPolicy, TrafficPolicy

WHY = Derivation("test", "test", ())
VM = "VirtualMesh meshrules-system/vm"


def mesh_name(cluster: str) -> str:
    """The discovery name of the Linkerd mesh of a cluster."""
    return f"linkerd-destination-linkerd-{cluster}"


def linkerd_mesh(cluster: str, *, trust_domain: str = "cluster.local", namespace: str = "linkerd") -> Mesh:
    """A Linkerd control plane in ``namespace`` with its multicluster gateway."""
    return Mesh(
        name=f"linkerd-destination-{namespace}-{cluster}",
        type=MeshType.LINKERD,
        cluster=cluster,
        namespace=namespace,
        control_plane="linkerd-destination",
        trust_domain=trust_domain,
        accepted_trust_domains=(trust_domain,),
        issuer_scheme="linkerd.io/tls",
        gateways=(
            Gateway(
                kind=GatewayKind.LINKERD_GATEWAY,
                service="linkerd-gateway",
                namespace="linkerd-multicluster",
                address="203.0.113.3",
                port=4143,
                workload_labels={"app": "linkerd-gateway"},
            ),
        ),
    )


def workload(
    name: str,
    cluster: str,
    namespace: str = "shop",
    *,
    labels: Mapping[str, str] | None = None,
    sa: str | None = None,
    ports: Sequence[tuple[int, str | None]] = ((8080, "http"),),
    mesh: Mesh | None = None,
    probes: Sequence[tuple[int, str]] | None = None,
) -> Workload:
    """A Deployment in the cluster's Linkerd mesh (``probes``: HTTP probes as (port, path); None = unknown)."""
    m = mesh or linkerd_mesh(cluster)
    account = sa or name
    return Workload(
        name=f"{name}-{namespace}-{cluster}-deployment",
        cluster=cluster,
        namespace=namespace,
        controller=ControllerRef(kind="Deployment", name=name),
        pod_labels=dict(labels or {"app": name}),
        service_account=account,
        mesh=m.name,
        identity=f"{account}.{namespace}.serviceaccount.identity.{m.namespace}.{m.trust_domain}",
        ports=tuple(ContainerPort(container_port=p, name=n) for p, n in ports),
        probes=None if probes is None else tuple(HttpProbe(port=p, path=path) for p, path in probes),
    )


def port(number: int, name: str | None = "http", target: int | str = 8080, **extra: Any) -> ServicePort:
    """A Service port."""
    return ServicePort(port=number, name=name, target_port=target, **extra)


def destination(
    service: str,
    cluster: str,
    namespace: str = "shop",
    *,
    workloads: Iterable[Workload] = (),
    ports: Sequence[ServicePort] | None = None,
    selector: Mapping[str, str] | None = None,
    mesh: Mesh | None = None,
) -> Destination:
    """A destination `<svc>-<ns>-<cluster>` of the cluster's Linkerd mesh."""
    return Destination(
        name=f"{service}-{namespace}-{cluster}",
        cluster=cluster,
        namespace=namespace,
        service=service,
        labels={"app": service},
        ports=tuple(ports or (port(80),)),
        selector=dict(selector or {"app": service}),
        workloads=tuple(sorted(w.name for w in workloads)),
        local_fqdn=f"{service}.{namespace}.svc.cluster.local",
        mesh=(mesh or linkerd_mesh(cluster)).name,
    )


def traffic_policy(
    name: str, spec: Mapping[str, Any], *, namespace: str = "shop", created: str = "00:00"
) -> TrafficPolicy:
    """A TrafficPolicy from its wire spec; ``created`` is a time of 2026-01-01 (acceptance order)."""
    meta = {"name": name, "namespace": namespace, "creationTimestamp": f"2026-01-01T{created}:00Z"}
    return TrafficPolicy.model_validate({"metadata": meta, "spec": dict(spec)})


def access_policy(name: str, spec: Mapping[str, Any] | None = None, *, namespace: str = "shop") -> AccessPolicy:
    """An AccessPolicy from its wire spec."""
    meta = {"name": name, "namespace": namespace, "creationTimestamp": "2026-01-01T00:00:00Z"}
    return AccessPolicy.model_validate({"metadata": meta, "spec": dict(spec or {})})


def applies(policy: TrafficPolicy, dest: Destination, fields: Iterable[str] | None = None) -> TrafficApplication:
    """The rule set's decision that ``policy`` applies at ``dest`` (default: with every field it sets)."""
    return TrafficApplication(policy.ref, dest.name, tuple(fields or policy.spec.policy.set_fields()), WHY)


def allow(policy: AccessPolicy, dest: Destination, *sources: IdentityPattern, **ops: Any) -> AccessRule:
    """The rule set's decision that ``policy`` allows ``sources`` to call ``dest``."""
    return AccessRule(policy.ref, dest.name, tuple(sources), why=WHY, **ops)


def sa(name: str, namespace: str = "shop", cluster: str | None = None) -> IdentityPattern:
    """A service account as a source pattern."""
    return IdentityPattern(namespace=namespace, service_account=name, cluster=cluster)


def member(mesh: Mesh, *, enforced: bool = False, mode: str = "gateway", vm: str = VM) -> MeshMembership:
    """`mesh` in VirtualMesh `vm` with shared trust."""
    return MeshMembership(mesh.name, vm, enforced, True, linkerd_mode=mode)


def mirror_edge(dest: Destination, into: Mesh) -> FederationEdge:
    """`dest` made visible in `into` as Linkerd's mirror `<svc>-<cluster>`."""
    host = f"{dest.service}-{dest.cluster}.{dest.namespace}.svc.cluster.local"
    return FederationEdge(dest.name, into.name, VM, host, WHY)


def objects(result: EmitResult, cluster: str, kind: str | None = None) -> list[dict[str, Any]]:
    """The emitted objects of a cluster (of one kind), as plain dicts."""
    return [dict(o) for o in result.objects.get(cluster, ()) if kind is None or o["kind"] == kind]


def named(result: EmitResult, cluster: str, kind: str, name: str) -> dict[str, Any]:
    """The one emitted object of that kind and name."""
    found = [o for o in objects(result, cluster, kind) if o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind} {name}: found {[o['metadata']['name'] for o in objects(result, cluster, kind)]}"
    return found[0]


def without_metadata(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The object with only `name`/`namespace` left in its metadata (for expected YAML)."""
    meta = obj["metadata"]
    slim = {k: meta[k] for k in ("name", "namespace") if k in meta}
    extra = {k: v for k, v in meta.get("annotations", {}).items() if k != "meshrules.io/parents"}
    if extra:
        slim["annotations"] = extra
    return {**obj, "metadata": slim}


def load(text: str) -> Any:
    """YAML to data (expected outputs are written as YAML in the tests)."""
    return yaml.safe_load(text)
