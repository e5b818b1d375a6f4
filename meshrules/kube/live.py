"""Reading live clusters into what the pure pipeline reads: `KubeObject`s, `ClusterInput`s, a `Scenario`.

The same discovery code runs on live objects and on snapshot files (spec §1.2): a live object
becomes a `KubeObject` whose location is `cluster: Kind namespace/name` instead of a file and
line. Policies read from the management cluster go through the same strict parsing as policy
files, so a bad live policy is a diagnostic with its coordinates, not a crash.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from meshrules.emit.naming import OWNER_LABEL
from meshrules.errors import Location
from meshrules.kube import resources as R
from meshrules.kube.cluster import Cluster, Object
from meshrules.kube.resources import ApiResource
from meshrules.model.common import MANAGEMENT_NAMESPACE
from meshrules.model.discovery import DISCOVERY_API_VERSION
from meshrules.model.documents import Document
from meshrules.model.scenario import CLUSTER_SCOPED_KINDS, ClusterSnapshot, Scenario, read_policy_documents
from meshrules.model.source import KubeObject

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
_OUTPUT_KINDS = frozenset((r.group, r.kind) for r in R.EMITTED)


def clean(obj: Mapping[str, Any]) -> Object:
    """``obj`` as `kubectl get -o yaml` shows it, without managedFields and kubectl's last-applied copy."""
    out = copy.deepcopy(dict(obj))
    meta = out.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
        annotations = meta.get("annotations")
        if isinstance(annotations, dict):
            annotations.pop(LAST_APPLIED, None)
            if not annotations:
                meta.pop("annotations")
    return out


def served_resources(cluster: Cluster, wanted: Iterable[ApiResource]) -> list[ApiResource]:
    """The kinds of ``wanted`` that ``cluster`` serves, at the version it serves them."""
    served = cluster.served()
    out = []
    for res in wanted:
        version = served.get((res.group, res.kind))
        if version is not None:
            out.append(res if version == res.version else res.with_version(version))
    return out


def read_objects(cluster: Cluster, kinds: Iterable[ApiResource] = R.CLUSTER_INPUTS) -> list[Object]:
    """Every object of ``kinds`` the cluster serves (kinds it does not serve are skipped), cleaned."""
    objects: list[Object] = []
    for res in served_resources(cluster, kinds):
        objects.extend(clean(o) for o in cluster.list(res).items)
    return objects


def to_kube_object(cluster: str, body: Mapping[str, Any]) -> KubeObject:
    """A live object as discovery reads it; its location names the cluster and the object."""
    meta = body.get("metadata") or {}
    kind = str(body.get("kind", ""))
    namespace = "" if kind in CLUSTER_SCOPED_KINDS else str(meta.get("namespace") or "default")
    name = str(meta.get("name", ""))
    return KubeObject(
        cluster=cluster,
        api_version=str(body.get("apiVersion", "")),
        kind=kind,
        namespace=namespace,
        name=name,
        body=body,
        location=Location(cluster=cluster, kind=kind, namespace=namespace, name=name),
    )


@dataclass(frozen=True, slots=True)
class LiveCluster:
    """What was read of one registered cluster: its objects and its KubernetesCluster settings."""

    name: str
    objects: Sequence[Object]
    cluster_domain: str | None = None
    region: str | None = None
    secret_name: str | None = None


def cluster_config(name: str, cluster_domain: str | None, region: str | None) -> Object:
    """The `cluster.yaml` body for a registered cluster's settings (strictly parsed like a file)."""
    spec: Object = {}
    if cluster_domain:
        spec["clusterDomain"] = cluster_domain
    if region:
        spec["region"] = region
    return {"apiVersion": DISCOVERY_API_VERSION, "kind": "KubernetesCluster", "metadata": {"name": name}, "spec": spec}


def live_snapshots(clusters: Iterable[LiveCluster]) -> tuple[ClusterSnapshot, ...]:
    """Scenario cluster entries for live clusters (their settings as each one's `cluster.yaml`)."""
    snapshots = []
    for live in sorted(clusters, key=lambda c: c.name):
        config = cluster_config(live.name, live.cluster_domain, live.region)
        where = Location(cluster=live.name, kind="KubernetesCluster", name=live.name)
        objects = tuple(
            sorted(
                (to_kube_object(live.name, o) for o in live.objects),
                key=lambda o: (o.api_version, o.kind, o.namespace, o.name),
            )
        )
        snapshots.append(ClusterSnapshot(name=live.name, objects=objects, config=Document(config, where, {})))
    return tuple(snapshots)


def live_scenario(
    clusters: Iterable[LiveCluster], policies: Iterable[Mapping[str, Any]], root: str = "live"
) -> Scenario:
    """A `Scenario` from live clusters and live policy objects, for the pure pipeline."""
    docs = []
    for obj in policies:
        body = clean(obj)
        meta = body.get("metadata") or {}
        where = Location(
            kind=str(body.get("kind", "")), namespace=str(meta.get("namespace", "")), name=str(meta.get("name", ""))
        )
        docs.append(Document(body=body, location=where, lines={}))
    read = read_policy_documents(docs)
    return Scenario(
        root=root,
        clusters=live_snapshots(clusters),
        policies=tuple(sorted(read.policies, key=lambda p: (p.kind, *p.acceptance_key()))),
        tests=tuple(sorted(read.tests, key=lambda t: t.metadata.name)),
        sources=dict(read.sources),
        diagnostics=tuple(sorted(read.diagnostics, key=lambda d: d.sort_key())),
        skipped=dict(sorted(read.skipped.items())),
    )


def with_live_clusters(scenario: Scenario, clusters: Iterable[LiveCluster]) -> Scenario:
    """``scenario`` (policies, rules, tests from files) with its clusters replaced by live ones."""
    return dataclasses.replace(scenario, clusters=live_snapshots(clusters))


def is_output(obj: Mapping[str, Any], owner: str = MANAGEMENT_NAMESPACE) -> bool:
    """Whether ``obj`` is one of meshrules' own outputs (never an input to translation)."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    group = R.group_of(str(obj.get("apiVersion", "")))
    return labels.get(OWNER_LABEL) == owner and (group, obj.get("kind")) in _OUTPUT_KINDS


def read_policies(management: Cluster) -> list[Object]:
    """Every networking.meshrules.io policy of the management cluster (all namespaces)."""
    objects: list[Object] = []
    for res in served_resources(management, R.POLICIES):
        objects.extend(management.list(res).items)
    return objects
