"""Destinations: Services whose selector picks meshed workloads, with ports, subsets and local FQDN.

A Service is a destination when its selector matches the pod labels of at least one meshed
workload of its cluster and namespace, or when it carries `meshrules.io/discover: "true"` (spec §2).
Matching goes through an index of workloads by (namespace, label key, label value), so the cost
is the size of the smallest posting list per Service, not the number of workloads.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence

from meshrules.discovery.findings import DESTINATION_IN_SEVERAL_MESHES, DESTINATION_WITHOUT_MESH, Findings
from meshrules.discovery.index import ClusterIndex
from meshrules.discovery.istio import IstioMeshes
from meshrules.discovery.linkerd import LinkerdMeshes
from meshrules.discovery.services import ServiceInfo
from meshrules.discovery.shapes import selects
from meshrules.discovery.workloads import namespace_mesh
from meshrules.model.discovery import Destination, Workload

DISCOVER_ANNOTATION = "meshrules.io/discover"
# Labels Kubernetes itself stamps on Pods: they differ per rollout or per replica and never name a
# subset a user would route to.
GENERATED_POD_LABELS = frozenset(
    {
        "pod-template-hash",
        "controller-revision-hash",
        "pod-template-generation",
        "statefulset.kubernetes.io/pod-name",
        "apps.kubernetes.io/pod-index",
    }
)


def discover_destinations(
    cluster: str,
    cluster_domain: str,
    index: ClusterIndex,
    services: Mapping[str, Sequence[ServiceInfo]],
    workloads: Sequence[Workload],
    istio: IstioMeshes,
    linkerd: LinkerdMeshes,
    findings: Findings,
) -> list[Destination]:
    """Every destination of ``cluster``."""
    postings: dict[tuple[str, str, str], list[Workload]] = defaultdict(list)
    for workload in workloads:
        for key, value in workload.pod_labels.items():
            postings[(workload.namespace, key, value)].append(workload)
    single_mesh = [*istio.meshes, *linkerd.meshes]

    out: list[Destination] = []
    for namespace in sorted(services):
        for svc in services[namespace]:
            forced = svc.annotations.get(DISCOVER_ANNOTATION) == "true"
            matched = _matching(svc, postings)
            if not matched and not forced:
                continue
            mesh = _mesh_of(svc, matched, findings)
            if mesh is None and not matched:
                fallback = namespace_mesh(index, namespace, istio, linkerd)
                if fallback is None and len(single_mesh) == 1:
                    fallback = single_mesh[0]
                mesh = fallback.name if fallback is not None else None
                if mesh is None:
                    findings.add(
                        DESTINATION_WITHOUT_MESH,
                        svc.obj,
                        "metadata.annotations",
                        f"Service `{namespace}/{svc.name}` is forced in by `{DISCOVER_ANNOTATION}` "
                        "but no meshed workload backs it and no mesh can be told for it",
                        hint="label its namespace for injection, or mesh the workloads its selector picks",
                    )
            out.append(
                Destination(
                    name=f"{svc.name}-{namespace}-{cluster}",
                    cluster=cluster,
                    namespace=namespace,
                    service=svc.name,
                    labels=dict(svc.labels),
                    ports=svc.ports,
                    selector=dict(svc.selector),
                    workloads=tuple(sorted(w.name for w in matched)),
                    subsets=subsets(matched, svc.selector),
                    local_fqdn=f"{svc.name}.{namespace}.svc.{cluster_domain}",
                    mesh=mesh,
                )
            )
    return out


def _matching(svc: ServiceInfo, postings: Mapping[tuple[str, str, str], list[Workload]]) -> list[Workload]:
    if not svc.selector:
        return []
    lists = []
    for key, value in svc.selector.items():
        found = postings.get((svc.namespace, key, value))
        if not found:
            return []
        lists.append(found)
    shortest = min(lists, key=len)
    return [w for w in shortest if selects(svc.selector, w.pod_labels)]


def _mesh_of(svc: ServiceInfo, matched: Sequence[Workload], findings: Findings) -> str | None:
    counts = Counter(w.mesh for w in matched)
    if not counts:
        return None
    # Most workloads win; ties go to the first name, so the answer never depends on input order.
    mesh = min(counts, key=lambda m: (-counts[m], m))
    if len(counts) > 1:
        findings.add(
            DESTINATION_IN_SEVERAL_MESHES,
            svc.obj,
            "spec.selector",
            f"Service `{svc.namespace}/{svc.name}` selects workloads of several meshes "
            f"({', '.join(f'`{m}`' for m in sorted(counts))}); using `{mesh}`",
            hint="normal while moving workloads between Istio revisions; otherwise split the Service",
        )
    return mesh


def subsets(workloads: Sequence[Workload], selector: Mapping[str, str]) -> dict[str, tuple[str, ...]]:
    """Pod-label keys whose values differ across ``workloads`` (absence counts as a value) → sorted values.

    Keys of the selector are equal on every workload by definition; labels Kubernetes generates
    are left out.
    """
    if len(workloads) < 2:
        return {}
    values: dict[str, set[str]] = defaultdict(set)
    present: Counter[str] = Counter()
    for workload in workloads:
        for key, value in workload.pod_labels.items():
            if key in selector or key in GENERATED_POD_LABELS:
                continue
            values[key].add(value)
            present[key] += 1
    return {
        key: tuple(sorted(vals))
        for key, vals in sorted(values.items())
        if len(vals) > 1 or present[key] < len(workloads)
    }
