"""Meshed workloads: which controllers (and controller-less Pods) run in which mesh (spec §2).

A workload belongs to the mesh its injection points to. Evidence, strongest first:
1. a proxy already in the pod template (`istio-proxy` / `linkerd-proxy`, as a container or a native
   sidecar init container), or in the Pods the controller owns when the snapshot has them;
2. injection settings, as the mesh's own webhooks read them:
   - Istio: namespace `istio-injection: disabled` and pod `sidecar.istio.io/inject: "false"` (label,
     else annotation) opt out; namespace `istio-injection: enabled` → the default revision;
     namespace `istio.io/rev` → that revision; pod label `istio.io/rev` → that revision; pod
     `sidecar.istio.io/inject: "true"` → the default revision.
   - Linkerd: annotation `linkerd.io/inject` on the pod template (`disabled` opts out), else on the
     namespace; `enabled` and `ingress` both inject.
Control-plane and gateway controllers, and everything in Linkerd's system namespaces, are never
workloads. A workload pointed at both Istio and Linkerd is left out with a finding: both webhooks
would inject it, and no policy could be right for it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from meshrules.discovery.findings import AMBIGUOUS_INJECTION, NO_MESH_FOR_INJECTION, UNKNOWN_REVISION, Findings
from meshrules.discovery.identity import istio_identity, linkerd_identity
from meshrules.discovery.index import ClusterIndex
from meshrules.discovery.istio import DEFAULT_REVISION, REV_LABEL, IstioMeshes
from meshrules.discovery.linkerd import CONTROL_PLANE_NS_LABEL, EXTENSION_LABEL, LinkerdMeshes
from meshrules.discovery.pods import ISTIO_PROXY, LINKERD_PROXY, PodSource
from meshrules.model.discovery import ControllerRef, Mesh, MeshType, Workload

ISTIO_INJECTION = "istio-injection"
ISTIO_INJECT = "sidecar.istio.io/inject"
LINKERD_INJECT = "linkerd.io/inject"
LINKERD_INJECT_ON = frozenset({"enabled", "ingress"})
# Linkerd labels its own control-plane pods with this; they are never workloads.
LINKERD_COMPONENT_LABEL = "linkerd.io/control-plane-component"


@dataclass(frozen=True, slots=True)
class Injection:
    """Where a pod's injection points: a mesh type and, for Istio, a revision (Linkerd: control-plane ns)."""

    type: MeshType
    # Istio revision, or Linkerd control-plane namespace; None = the cluster's default.
    target: str | None
    # Why, in words, for findings ("namespace label `istio.io/rev: canary`").
    reason: str


def discover_workloads(
    cluster: str,
    index: ClusterIndex,
    controllers: Sequence[PodSource],
    pods: Sequence[PodSource],
    istio: IstioMeshes,
    linkerd: LinkerdMeshes,
    findings: Findings,
) -> list[Workload]:
    """Every meshed workload of ``cluster``: controllers' templates and controller-less Pods."""
    owned: dict[tuple[str, str, str], list[PodSource]] = defaultdict(list)
    bare: list[PodSource] = []
    for pod in pods:
        if pod.owner is None:
            bare.append(pod)
        else:
            owned[(pod.namespace, *pod.owner)].append(pod)

    excluded = istio.excluded | linkerd.excluded
    workloads: list[Workload] = []
    for source in (*controllers, *bare):
        if (
            source.key in excluded
            or source.namespace in linkerd.system_namespaces
            or LINKERD_COMPONENT_LABEL in source.labels
            or EXTENSION_LABEL in source.labels
        ):
            continue
        injection = _injection(source, owned.get(source.key, ()), index, findings)
        if injection is None:
            continue
        mesh = _mesh(cluster, source, injection, istio, linkerd, findings)
        if mesh is not None:
            workloads.append(_workload(cluster, source, mesh))
    return workloads


def _injection(
    source: PodSource, pods: Sequence[PodSource], index: ClusterIndex, findings: Findings
) -> Injection | None:
    # A proxy that is already there decides; a controller's Pods speak for its template.
    evidence = source if source.sidecars else next((p for p in pods if p.sidecars), None)
    if evidence is not None:
        found = []
        if ISTIO_PROXY in evidence.sidecars:
            found.append(Injection(MeshType.ISTIO, _present_revision(evidence, index), "an `istio-proxy` container"))
        if LINKERD_PROXY in evidence.sidecars:
            found.append(
                Injection(MeshType.LINKERD, evidence.labels.get(CONTROL_PLANE_NS_LABEL), "a `linkerd-proxy` container")
            )
        return _one(source, found, findings)
    ns_labels = index.namespace_labels(source.namespace)
    ns_annotations = index.namespace_annotations(source.namespace)
    found = [i for i in (_istio(source, ns_labels), _linkerd(source, ns_annotations)) if i is not None]
    return _one(source, found, findings)


def _one(source: PodSource, found: list[Injection], findings: Findings) -> Injection | None:
    if len(found) <= 1:
        return found[0] if found else None
    findings.add(
        AMBIGUOUS_INJECTION,
        source.obj,
        _meta_path(source),
        f"{source.kind.lower()} `{source.name}` is injected by both Istio ({found[0].reason}) "
        f"and Linkerd ({found[1].reason})",
        hint=f'opt it out of one mesh (`{ISTIO_INJECT}: "false"` or `{LINKERD_INJECT}: disabled`); '
        "it is left out of both meshes until then",
    )
    return None


def _present_revision(pod: PodSource, index: ClusterIndex) -> str | None:
    """The revision of a pod Istio already injected: its `istio.io/rev` label, else its namespace's."""
    rev = pod.labels.get(REV_LABEL)
    if rev:
        return rev
    ns_labels = index.namespace_labels(pod.namespace)
    if ns_labels.get(ISTIO_INJECTION) == "enabled":
        return None
    return ns_labels.get(REV_LABEL)


def _istio(source: PodSource, ns_labels: Mapping[str, str]) -> Injection | None:
    ns_injection = ns_labels.get(ISTIO_INJECTION)
    # Istio reads the pod label first and falls back to the (deprecated) annotation.
    pod_inject = source.labels.get(ISTIO_INJECT) or source.annotations.get(ISTIO_INJECT)
    if ns_injection == "disabled" or pod_inject == "false":
        return None
    if ns_injection == "enabled":
        return Injection(MeshType.ISTIO, None, f"namespace label `{ISTIO_INJECTION}: enabled`")
    ns_rev = ns_labels.get(REV_LABEL)
    if ns_rev:
        return Injection(MeshType.ISTIO, ns_rev, f"namespace label `{REV_LABEL}: {ns_rev}`")
    pod_rev = source.labels.get(REV_LABEL)
    if pod_rev:
        return Injection(MeshType.ISTIO, pod_rev, f"pod label `{REV_LABEL}: {pod_rev}`")
    if pod_inject == "true":
        return Injection(MeshType.ISTIO, None, f'pod `{ISTIO_INJECT}: "true"`')
    return None


def _linkerd(source: PodSource, ns_annotations: Mapping[str, str]) -> Injection | None:
    pod = source.annotations.get(LINKERD_INJECT)
    if pod == "disabled":
        return None
    if pod in LINKERD_INJECT_ON:
        return Injection(MeshType.LINKERD, None, f"pod annotation `{LINKERD_INJECT}: {pod}`")
    ns = ns_annotations.get(LINKERD_INJECT)
    if ns in LINKERD_INJECT_ON:
        return Injection(MeshType.LINKERD, None, f"namespace annotation `{LINKERD_INJECT}: {ns}`")
    return None


def _mesh(
    cluster: str,
    source: PodSource,
    injection: Injection,
    istio: IstioMeshes,
    linkerd: LinkerdMeshes,
    findings: Findings,
) -> Mesh | None:
    if injection.type is MeshType.ISTIO:
        mesh = istio.mesh_for(injection.target)
        present = bool(istio.meshes)
    else:
        mesh = linkerd.mesh_for(injection.target)
        present = bool(linkerd.meshes)
    if mesh is not None:
        return mesh
    what = f"{source.kind.lower()} `{source.name}`"
    if injection.type is MeshType.ISTIO and present:
        findings.add(
            UNKNOWN_REVISION,
            source.obj,
            _meta_path(source),
            f"{what} is injected for Istio revision `{injection.target or DEFAULT_REVISION}` "
            f"({injection.reason}), which has no control plane in cluster `{cluster}`",
            hint="point it at a revision istiod runs in this cluster; it is left out of every mesh",
        )
    else:
        where = f" `{injection.target}`" if injection.type is MeshType.LINKERD and injection.target else ""
        findings.add(
            NO_MESH_FOR_INJECTION,
            source.obj,
            _meta_path(source),
            f"{what} is injected for {injection.type.value.capitalize()}{where} ({injection.reason}), "
            f"but cluster `{cluster}` runs no such control plane",
            hint="install the control plane, include it in the snapshot, or remove the injection setting",
        )
    return None


def _workload(cluster: str, source: PodSource, mesh: Mesh) -> Workload:
    ns, sa = source.namespace, source.service_account
    if mesh.type is MeshType.ISTIO:
        identity = istio_identity(mesh.trust_domain, ns, sa)
    else:
        identity = linkerd_identity(mesh.trust_domain, mesh.namespace, ns, sa)
    return Workload(
        name=f"{source.name}-{ns}-{cluster}-{source.kind.lower()}",
        cluster=cluster,
        namespace=ns,
        controller=ControllerRef(kind=source.kind, name=source.name),
        pod_labels=dict(source.labels),
        service_account=sa,
        mesh=mesh.name,
        identity=identity,
        ports=source.app_ports(),
        probes=source.app_probes(),
    )


def _meta_path(source: PodSource) -> str:
    return f"{source.path}.metadata" if source.path else "metadata"


def namespace_mesh(index: ClusterIndex, namespace: str, istio: IstioMeshes, linkerd: LinkerdMeshes) -> Mesh | None:
    """The mesh a namespace's own injection setting points to, if exactly one (for forced-in destinations)."""
    ns_labels = index.namespace_labels(namespace)
    ns_annotations = index.namespace_annotations(namespace)
    candidates: list[Mesh | None] = []
    if ns_labels.get(ISTIO_INJECTION) == "enabled":
        candidates.append(istio.mesh_for(None))
    elif ns_labels.get(REV_LABEL) and ns_labels.get(ISTIO_INJECTION) != "disabled":
        candidates.append(istio.mesh_for(ns_labels.get(REV_LABEL)))
    if ns_annotations.get(LINKERD_INJECT) in LINKERD_INJECT_ON:
        candidates.append(linkerd.mesh_for(None))
    found = [m for m in candidates if m is not None]
    return found[0] if len(found) == 1 else None
