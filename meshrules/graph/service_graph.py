"""One typed graph of clusters, meshes, gateways, workloads, identities, destinations and policies.

Nodes are ids of the form `<type>:<name>`; every node has a `type` attribute and carries its model
object as `obj`; edges carry a `rel`. Policy selectors are resolved once, through `LabelIndex`es,
into edges (`selects-source`, `selects-destination`, `allows-identity`, `member`), so later
stages (facts for the rule engine, `describe`) read selections instead of recomputing them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import networkx as nx

from meshrules.discovery import Discovery
from meshrules.graph.index import Indexed, LabelIndex
from meshrules.model.common import DestinationSelector, IdentitySelector, WorkloadSelector
from meshrules.model.discovery import Destination, Mesh, Workload
from meshrules.model.policy import AccessPolicy, Policy, TrafficPolicy, VirtualMesh

EMPTY: frozenset[str] = frozenset()


def node_id(kind: str, name: str) -> str:
    """The graph id of a node: `<kind>:<name>`."""
    return f"{kind}:{name}"


@dataclass(frozen=True, slots=True)
class Selection:
    """What one policy selects, resolved: names of workloads, destinations, identities, meshes."""

    sources: frozenset[str] = EMPTY
    destinations: frozenset[str] = EMPTY
    identities: frozenset[str] = EMPTY
    meshes: frozenset[str] = EMPTY
    # The clusters where the selected identities' workloads run *and* the selector allows: an
    # identity string shared by clusters (one trust domain) does not bring in a cluster the
    # selector excludes.
    identity_clusters: frozenset[str] = EMPTY


class ServiceGraph:
    """The discovered fleet and the policies over it, with selectors resolved through indexes."""

    def __init__(self, discovery: Discovery, policies: Sequence[Policy]) -> None:
        self.discovery = discovery
        self.policies = tuple(policies)
        # One edge per (from, to): no pair of node types is joined by two relations.
        self.graph: nx.DiGraph[str] = nx.DiGraph()
        self.workloads: dict[str, Workload] = {w.name: w for w in discovery.workloads}
        self.destinations: dict[str, Destination] = {d.name: d for d in discovery.destinations}
        self.meshes: dict[str, Mesh] = {m.name: m for m in discovery.meshes}
        self.workload_index = LabelIndex(
            Indexed(w.name, w.cluster, w.namespace, w.pod_labels, w.controller.name) for w in discovery.workloads
        )
        self.destination_index = LabelIndex(
            Indexed(d.name, d.cluster, d.namespace, d.labels, d.service) for d in discovery.destinations
        )
        # Identities are selected by where their workloads run and by service account; an identity
        # shared by several clusters (same trust domain) is one id posted under each of them.
        accounts = {(w.identity, w.cluster, w.namespace, w.service_account) for w in discovery.workloads if w.identity}
        self.account_index = LabelIndex(Indexed(i, c, ns, {}, sa) for i, c, ns, sa in sorted(accounts))
        # The same entries named by their cluster: which clusters a selector's identities run in.
        self.account_cluster_index = LabelIndex(Indexed(c, c, ns, {}, sa) for _, c, ns, sa in sorted(accounts))
        self.selections: dict[str, Selection] = {}
        self._build()

    # --- selection -------------------------------------------------------------------------------

    def select_workloads(self, selectors: Sequence[WorkloadSelector]) -> frozenset[str]:
        """Workload names any selector matches (an empty list matches every workload)."""
        if not selectors:
            return self.workload_index.all
        return _union(self.workload_index.select(s.clusters, s.namespaces, s.labels) for s in selectors)

    def select_destinations(self, selectors: Sequence[DestinationSelector]) -> frozenset[str]:
        """Destination names any selector matches (an empty list matches every destination)."""
        if not selectors:
            return self.destination_index.all
        out: list[frozenset[str]] = []
        for s in selectors:
            if s.services:
                for ref in s.services:
                    out.append(
                        self.destination_index.select(
                            clusters=[ref.cluster] if ref.cluster else (),
                            namespaces=[ref.namespace] if ref.namespace else (),
                            names=[ref.name],
                        )
                    )
            else:
                out.append(self.destination_index.select(s.clusters, s.namespaces, s.labels))
        return _union(out)

    def select_identities(self, selectors: Sequence[IdentitySelector]) -> frozenset[str]:
        """Identities any selector picks (an empty list picks every identity)."""
        return self._select_accounts(self.account_index, selectors)

    def select_identity_clusters(self, selectors: Sequence[IdentitySelector]) -> frozenset[str]:
        """Clusters where a workload runs as an identity that a selector picks *there*."""
        return self._select_accounts(self.account_cluster_index, selectors)

    @staticmethod
    def _select_accounts(index: LabelIndex, selectors: Sequence[IdentitySelector]) -> frozenset[str]:
        if not selectors:
            return index.all
        out: list[frozenset[str]] = []
        for s in selectors:
            if s.service_accounts:
                for ref in s.service_accounts:
                    out.append(
                        index.select(
                            clusters=[ref.cluster] if ref.cluster else (),
                            namespaces=[ref.namespace] if ref.namespace else (),
                            names=[ref.name],
                        )
                    )
            else:
                out.append(index.select(s.clusters, s.namespaces))
        return _union(out)

    def selection(self, policy: Policy) -> Selection:
        """What ``policy`` selects."""
        return self.selections[policy.ref]

    # --- construction ----------------------------------------------------------------------------

    def _add(self, kind: str, name: str, obj: Any, **attrs: Any) -> str:
        nid = node_id(kind, name)
        self.graph.add_node(nid, type=kind, name=name, obj=obj, **attrs)
        return nid

    def _build(self) -> None:
        g = self.graph
        for cluster in self.discovery.clusters:
            self._add("cluster", cluster.name, cluster)
        for mesh in self.discovery.meshes:
            m = self._add("mesh", mesh.name, mesh)
            g.add_edge(m, node_id("cluster", mesh.cluster), rel="runs-in")
            for gw in mesh.gateways:
                gid = self._add("gateway", f"{mesh.name}/{gw.service}", gw)
                g.add_edge(gid, m, rel="gateway-of")
        for w in self.discovery.workloads:
            wid = self._add("workload", w.name, w)
            g.add_edge(wid, node_id("cluster", w.cluster), rel="runs-in")
            if w.mesh:
                g.add_edge(wid, node_id("mesh", w.mesh), rel="member-of")
            if w.identity:
                iid = node_id("identity", w.identity)
                if iid not in g:
                    self._add("identity", w.identity, w.identity)
                g.add_edge(wid, iid, rel="runs-as")
        for d in self.discovery.destinations:
            did = self._add("destination", d.name, d)
            g.add_edge(did, node_id("cluster", d.cluster), rel="runs-in")
            if d.mesh:
                g.add_edge(did, node_id("mesh", d.mesh), rel="member-of")
            for wname in d.workloads:
                g.add_edge(node_id("workload", wname), did, rel="backs")
        for policy in self.policies:
            self._add_policy(policy)

    def _add_policy(self, policy: Policy) -> None:
        pid = self._add("policy", policy.ref, policy, policy_kind=policy.kind)
        g = self.graph
        if isinstance(policy, VirtualMesh):
            meshes = frozenset(
                name for ref in policy.spec.meshes for name in self._meshes_by_ref(ref.name, ref.namespace)
            )
            self.selections[policy.ref] = Selection(meshes=meshes)
            for m in sorted(meshes):
                g.add_edge(pid, node_id("mesh", m), rel="member")
            return
        dests = self.select_destinations(policy.spec.destination_selector)
        if isinstance(policy, TrafficPolicy):
            sources = self.select_workloads(policy.spec.source_selector)
            self.selections[policy.ref] = Selection(sources=sources, destinations=dests)
            # INVARIANT: source edges are not materialised for "all sources" (an empty selector):
            # the rule set reads the selector itself, so the graph stays linear in the fleet.
            if policy.spec.source_selector:
                g.add_edges_from(((pid, node_id("workload", w)) for w in sorted(sources)), rel="selects-source")
        elif isinstance(policy, AccessPolicy):
            identities = self.select_identities(policy.spec.source_selector)
            clusters = self.select_identity_clusters(policy.spec.source_selector)
            self.selections[policy.ref] = Selection(
                destinations=dests, identities=identities, identity_clusters=clusters
            )
            if policy.spec.source_selector:
                g.add_edges_from(((pid, node_id("identity", i)) for i in sorted(identities)), rel="allows-identity")
        g.add_edges_from(((pid, node_id("destination", d)) for d in sorted(dests)), rel="selects-destination")

    def _meshes_by_ref(self, name: str, namespace: str | None) -> Iterable[str]:
        # Mesh objects are discovered into the management namespace, so a ref's namespace (usually
        # `meshrules-system`) does not narrow the match; the name is the mesh's discovery name.
        del namespace
        if name in self.meshes:
            yield name

    # --- reading ---------------------------------------------------------------------------------

    def nodes_of(self, kind: str) -> list[str]:
        """Names of every node of one type, sorted."""
        return sorted(data["name"] for _, data in self.graph.nodes(data=True) if data["type"] == kind)

    def neighbours(self, kind: str, name: str, rel: str) -> list[str]:
        """Names of the nodes an edge of type ``rel`` leads to from node ``kind:name``, sorted."""
        nid = node_id(kind, name)
        if nid not in self.graph:
            return []
        return sorted(
            {self.graph.nodes[v]["name"] for _, v, data in self.graph.out_edges(nid, data=True) if data["rel"] == rel}
        )

    def summary(self) -> Mapping[str, int]:
        """Count of nodes per type, for `discover` and benchmarks."""
        counts: dict[str, int] = {}
        for _, data in self.graph.nodes(data=True):
            counts[data["type"]] = counts.get(data["type"], 0) + 1
        return dict(sorted(counts.items()))


def _union(sets: Iterable[frozenset[str]]) -> frozenset[str]:
    out: set[str] = set()
    for s in sets:
        out |= s
    return frozenset(out)


def build_graph(discovery: Discovery, policies: Sequence[Policy]) -> ServiceGraph:
    """Load discovered state and policies into one typed graph."""
    return ServiceGraph(discovery, policies)
