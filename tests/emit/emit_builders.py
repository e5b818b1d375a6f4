"""Small, readable fixtures for emitter tests: destinations, policies and hand-built intents.

The rule set that derives an `Intent` lives elsewhere; these tests state the intent directly,
so each one reads as "given these decisions, the emitter writes this".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from meshrules.emit.input import EmitInput
from meshrules.errors import Location
from meshrules.model.discovery import (
    ContainerPort,
    ControllerRef,
    Destination,
    Gateway,
    GatewayKind,
    KubernetesCluster,
    Mesh,
    MeshType,
    ServicePort,
    Workload,
)
from meshrules.model.intent import (
    AccessRule,
    Derivation,
    FederationEdge,
    Intent,
    MeshMembership,
    Specificity,
    TrafficApplication,
    TrafficPrecedence,
)
from meshrules.model.policy import AccessPolicy, TrafficPolicy
from meshrules.model.source import KubeObject

WHY = Derivation("test", "test", ())


def istio_mesh(
    cluster: str, *, gateway_address: str | None = "203.0.113.1", trust_domain: str = "cluster.local"
) -> Mesh:
    """An Istio mesh `istiod-istio-system-<cluster>` with one east-west gateway."""
    gateways = (
        Gateway(
            kind=GatewayKind.EASTWEST,
            service="istio-eastwestgateway",
            namespace="istio-system",
            address=gateway_address,
            port=15443,
            workload_labels={"istio": "eastwestgateway", "app": "istio-eastwestgateway"},
        ),
    )
    return Mesh(
        name=f"istiod-istio-system-{cluster}",
        type=MeshType.ISTIO,
        cluster=cluster,
        namespace="istio-system",
        control_plane="istiod",
        revision="default",
        root_namespace="istio-system",
        trust_domain=trust_domain,
        accepted_trust_domains=(trust_domain,),
        dns_capture=True,
        gateways=gateways,
    )


def workload(
    name: str,
    cluster: str,
    namespace: str = "shop",
    *,
    labels: Mapping[str, str] | None = None,
    sa: str | None = None,
    ports: Sequence[tuple[int, str | None]] = ((8080, "http"),),
) -> Workload:
    """A Deployment workload of the cluster's Istio mesh."""
    return Workload(
        name=f"{name}-{namespace}-{cluster}-deployment",
        cluster=cluster,
        namespace=namespace,
        controller=ControllerRef(kind="Deployment", name=name),
        pod_labels=dict(labels or {"app": name}),
        service_account=sa or name,
        mesh=f"istiod-istio-system-{cluster}",
        identity=f"spiffe://cluster.local/ns/{namespace}/sa/{sa or name}",
        ports=tuple(ContainerPort(container_port=p, name=n) for p, n in ports),
    )


def destination(
    service: str,
    cluster: str,
    namespace: str = "shop",
    *,
    workloads: Iterable[Workload] = (),
    ports: Sequence[ServicePort] | None = None,
    subsets: Mapping[str, Sequence[str]] | None = None,
    selector: Mapping[str, str] | None = None,
) -> Destination:
    """A destination `<svc>-<ns>-<cluster>` of the cluster's Istio mesh."""
    return Destination(
        name=f"{service}-{namespace}-{cluster}",
        cluster=cluster,
        namespace=namespace,
        service=service,
        labels={"app": service},
        ports=tuple(ports or (ServicePort(port=80, name="http", target_port=8080),)),
        selector=dict(selector or {"app": service}),
        workloads=tuple(sorted(w.name for w in workloads)),
        subsets={k: tuple(v) for k, v in (subsets or {}).items()},
        local_fqdn=f"{service}.{namespace}.svc.cluster.local",
        mesh=f"istiod-istio-system-{cluster}",
    )


def traffic_policy(
    name: str, spec: Mapping[str, Any], *, namespace: str = "shop", created: str | None = None
) -> TrafficPolicy:
    """A TrafficPolicy from its wire spec; ``created`` is an hour of 2026-01-01 (acceptance order)."""
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if created is not None:
        meta["creationTimestamp"] = f"2026-01-01T{created}:00Z"
    return TrafficPolicy.model_validate({"metadata": meta, "spec": dict(spec)})


def access_policy(
    name: str, spec: Mapping[str, Any], *, namespace: str = "shop", created: str = "00:00"
) -> AccessPolicy:
    """An AccessPolicy from its wire spec."""
    meta = {"name": name, "namespace": namespace, "creationTimestamp": f"2026-01-01T{created}:00Z"}
    return AccessPolicy.model_validate({"metadata": meta, "spec": dict(spec)})


def applies(policy: TrafficPolicy, dest: Destination, fields: Iterable[str] | None = None) -> TrafficApplication:
    """The rule set's decision that ``policy`` applies at ``dest`` with ``fields`` (default: all it sets)."""
    return TrafficApplication(policy.ref, dest.name, tuple(fields or policy.spec.policy.set_fields()), WHY)


def beats(
    dest: Destination,
    field: str,
    winner: TrafficPolicy,
    loser: TrafficPolicy,
    relation: Specificity = Specificity.OVERLAP,
) -> TrafficPrecedence:
    """The rule set's decision that ``winner`` provides ``field`` where both apply."""
    return TrafficPrecedence(dest.name, field, winner.ref, loser.ref, relation, WHY)


def federate(dest: Destination, mesh: Mesh, suffix: str = "global") -> FederationEdge:
    """`dest` made visible in `mesh` under its Istio federated host."""
    host = f"{dest.service}.{dest.namespace}.svc.{dest.cluster}.{suffix}"
    return FederationEdge(dest.name, mesh.name, "VirtualMesh meshrules-system/vm", host, WHY)


def member(mesh: Mesh, *, enforced: bool = False) -> MeshMembership:
    """`mesh` in VirtualMesh `vm` with shared trust."""
    return MeshMembership(mesh.name, "VirtualMesh meshrules-system/vm", enforced, True)


def allow(policy: AccessPolicy, dest: Destination, sources: Iterable[Any] = (), **ops: Any) -> AccessRule:
    """The rule set's decision that ``policy`` allows ``sources`` to call ``dest``."""
    return AccessRule(policy.ref, dest.name, tuple(sources), why=WHY, **ops)


def user_object(cluster: str, body: Mapping[str, Any]) -> KubeObject:
    """An object already in ``cluster`` (user config unless labelled `meshrules.io/owner`)."""
    meta = body["metadata"]
    return KubeObject(
        cluster=cluster,
        api_version=body["apiVersion"],
        kind=body["kind"],
        namespace=meta.get("namespace", ""),
        name=meta["name"],
        body=body,
        location=Location(file=f"clusters/{cluster}/user.yaml", line=1),
    )


def emit_input(
    *,
    meshes: Iterable[Mesh] = (),
    workloads: Iterable[Workload] = (),
    destinations: Iterable[Destination] = (),
    policies: Iterable[Any] = (),
    intent: Intent | None = None,
    existing: Mapping[str, tuple[KubeObject, ...]] | None = None,
) -> EmitInput:
    """An `EmitInput` whose clusters are those the meshes name."""
    meshes = tuple(meshes)
    clusters = tuple(KubernetesCluster(name=c) for c in sorted({m.cluster for m in meshes}))
    return EmitInput(
        clusters=clusters,
        meshes=meshes,
        workloads=tuple(workloads),
        destinations=tuple(destinations),
        policies=tuple(policies),
        intent=intent or Intent(),
        existing=dict(existing or {}),
    )


def find(
    objects: Mapping[str, Sequence[Mapping[str, Any]]],
    cluster: str,
    kind: str,
    name: str | None = None,
    namespace: str | None = None,
) -> list[Mapping[str, Any]]:
    """Emitted objects of ``kind`` in ``cluster`` (optionally by name and namespace)."""
    return [
        o
        for o in objects.get(cluster, ())
        if o["kind"] == kind
        and (name is None or o["metadata"]["name"] == name)
        and (namespace is None or o["metadata"].get("namespace") == namespace)
    ]


def spec_of(objects: Mapping[str, Sequence[Mapping[str, Any]]], cluster: str, kind: str, name: str) -> Any:
    """The spec of the one emitted object of ``kind`` named ``name`` in ``cluster``."""
    found = find(objects, cluster, kind, name)
    assert len(found) == 1, (
        f"{len(found)} {kind} named {name} in {cluster}: {[o['metadata'] for o in objects.get(cluster, ())]}"
    )
    return found[0]["spec"]


def yaml_spec(text: str) -> Any:
    """Expected YAML written in a test."""
    import yaml

    return yaml.safe_load(text)
