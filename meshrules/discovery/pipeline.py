"""The discovery pipeline: a cluster's objects in, its discovery kinds and findings out (spec §2).

Per cluster, in order: index the objects; read pod templates, Pods and Services once; find the
Istio and Linkerd control planes with their gateways; decide which workloads are meshed; match
Services to them. Clusters are independent of each other, so the live controller can rediscover
one cluster (`discover_cluster`) and `discover` is their sorted union.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from meshrules.discovery.destinations import discover_destinations
from meshrules.discovery.findings import CLUSTER_CONFIG_NAME_MISMATCH, DUPLICATE_DISCOVERED_NAME, Findings
from meshrules.discovery.index import ClusterIndex
from meshrules.discovery.istio import discover_istio
from meshrules.discovery.linkerd import discover_linkerd
from meshrules.discovery.pods import controller_sources, pod_sources
from meshrules.discovery.services import read_services
from meshrules.discovery.workloads import discover_workloads
from meshrules.errors import Diagnostic, Location, Severity
from meshrules.model.common import MANAGEMENT_NAMESPACE
from meshrules.model.discovery import (
    DEFAULT_CLUSTER_DOMAIN,
    Destination,
    DiscoveredObject,
    KubernetesCluster,
    KubernetesClusterConfig,
    Mesh,
    Workload,
)
from meshrules.model.source import KubeObject

REGION_LABEL = "topology.kubernetes.io/region"

_Item = TypeVar("_Item", bound=DiscoveredObject)


@dataclass(frozen=True, slots=True)
class ClusterInput:
    """What discovery reads of one cluster: its objects, and its optional `cluster.yaml`."""

    name: str
    objects: Sequence[KubeObject]
    config: KubernetesClusterConfig | None = None
    # Where `cluster.yaml` names its cluster (its `metadata.name` line), for findings about it.
    config_location: Location | None = None
    # Live only: the Secret holding the cluster's kubeconfig (§8).
    secret_name: str | None = None


@dataclass(frozen=True, slots=True)
class Discovery:
    """Everything discovered, each kind sorted by name, and every finding sorted by location."""

    clusters: tuple[KubernetesCluster, ...] = ()
    meshes: tuple[Mesh, ...] = ()
    workloads: tuple[Workload, ...] = ()
    destinations: tuple[Destination, ...] = ()
    diagnostics: tuple[Diagnostic, ...] = ()

    def objects(self) -> list[dict[str, Any]]:
        """The `discovery.meshrules.io/v1alpha1` objects, kind by kind, as `discover -o yaml` prints them."""
        items: Iterable[DiscoveredObject] = (*self.clusters, *self.meshes, *self.workloads, *self.destinations)
        return [item.to_object() for item in items]


def discover(clusters: Mapping[str, ClusterInput]) -> Discovery:
    """Discover every cluster; keys of ``clusters`` are cluster names and must equal each input's name."""
    parts = []
    for name, cluster in clusters.items():
        if name != cluster.name:
            raise ValueError(f"cluster input `{cluster.name}` is filed under `{name}`")
        parts.append(discover_cluster(cluster))
    findings: list[Diagnostic] = [d for p in parts for d in p.diagnostics]
    # Names embed the cluster, so only a cluster-name collision of the joined parts repeats here.
    clusters_ = _unique([c for p in parts for c in p.clusters], findings)
    meshes = _unique([m for p in parts for m in p.meshes], findings)
    workloads = _unique([w for p in parts for w in p.workloads], findings)
    destinations = _unique([d for p in parts for d in p.destinations], findings)
    return Discovery(
        clusters=clusters_,
        meshes=meshes,
        workloads=workloads,
        destinations=destinations,
        diagnostics=tuple(sorted(findings, key=Diagnostic.sort_key)),
    )


def discover_cluster(cluster: ClusterInput) -> Discovery:
    """Discover one cluster: its KubernetesCluster, meshes, workloads and destinations."""
    findings = Findings()
    name = cluster.name
    index = ClusterIndex.build(name, cluster.objects)
    kube_cluster = _kubernetes_cluster(cluster, index, findings)
    controllers = controller_sources(index, findings)
    pods = pod_sources(index, findings)
    services = read_services(index, findings)
    istio = discover_istio(name, index, controllers, services, findings)
    linkerd = discover_linkerd(name, index, controllers, services, findings)
    workloads = discover_workloads(name, index, controllers, pods, istio, linkerd, findings)
    destinations = discover_destinations(
        name, kube_cluster.cluster_domain, index, services, workloads, istio, linkerd, findings
    )
    diagnostics = findings.items
    meshes = _unique([*istio.meshes, *linkerd.meshes], diagnostics)
    unique_workloads = _unique(workloads, diagnostics)
    unique_destinations = _unique(destinations, diagnostics)
    return Discovery(
        clusters=(kube_cluster,),
        meshes=meshes,
        workloads=unique_workloads,
        destinations=unique_destinations,
        diagnostics=tuple(sorted(diagnostics, key=Diagnostic.sort_key)),
    )


def _kubernetes_cluster(cluster: ClusterInput, index: ClusterIndex, findings: Findings) -> KubernetesCluster:
    config = cluster.config
    if config is not None and config.metadata.name != cluster.name:
        findings.items.append(
            Diagnostic(
                code=CLUSTER_CONFIG_NAME_MISMATCH,
                message=f"`cluster.yaml` names cluster `{config.metadata.name}` in directory `{cluster.name}`",
                severity=Severity.ERROR,
                location=cluster.config_location or Location(cluster=cluster.name, kind="KubernetesCluster"),
                field="metadata.name",
                hint="the directory name is the cluster name; make `metadata.name` match it",
                object=f"KubernetesCluster {config.metadata.name}",
            )
        )
    region = config.spec.region if config is not None else None
    return KubernetesCluster(
        name=cluster.name,
        cluster_domain=config.spec.cluster_domain if config is not None else DEFAULT_CLUSTER_DOMAIN,
        region=region or _node_region(index),
        secret_name=cluster.secret_name,
    )


def _node_region(index: ClusterIndex) -> str | None:
    """The region every Node of the snapshot agrees on (`topology.kubernetes.io/region`), if any."""
    regions = set()
    for node in index.all("Node"):
        region = node.labels.get(REGION_LABEL)
        regions.add(region if isinstance(region, str) else None)
    if len(regions) == 1:
        return regions.pop() or None
    return None


def _unique(items: list[_Item], findings: list[Diagnostic]) -> tuple[_Item, ...]:
    """Items sorted by name; a second object with a name already taken is dropped with an error."""
    items.sort(key=lambda item: item.name)
    out: list[_Item] = []
    for item in items:
        if out and out[-1].name == item.name:
            findings.append(
                Diagnostic(
                    code=DUPLICATE_DISCOVERED_NAME,
                    message=f"two discovered {item.kind} objects are both named `{item.name}`; the second is left out",
                    severity=Severity.ERROR,
                    location=Location(
                        cluster=item.cluster_name, kind=item.kind, namespace=MANAGEMENT_NAMESPACE, name=item.name
                    ),
                    hint="names join object, namespace and cluster with `-`; rename one of the objects",
                    object=f"{item.kind} {MANAGEMENT_NAMESPACE}/{item.name}",
                )
            )
            continue
        out.append(item)
    return tuple(out)
