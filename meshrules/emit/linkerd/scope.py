"""What the Linkerd emitter works on: the Linkerd meshes of an `EmitInput` and lookups over them.

Every other module of `meshrules.emit.linkerd` reads the input through a `LinkerdScope`, so the
questions "is this destination on Linkerd", "which VirtualMesh governs it", "what is this cluster's
domain" are answered in one place, the same way for servers, authorization, routes and federation.
Everything here is sorted, so the emitter's output never depends on input order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property

from meshrules.emit.input import EmitInput
from meshrules.emit.naming import is_owned
from meshrules.model.discovery import DEFAULT_CLUSTER_DOMAIN, Destination, Mesh, MeshType, Workload
from meshrules.model.intent import AccessRule, FederationEdge, MeshMembership
from meshrules.model.policy import LinkerdFederationMode
from meshrules.model.source import KubeObject


def ref(kind: str, namespace: str, name: str) -> str:
    """`Kind namespace/name`, the form parents and policies are named in."""
    return f"{kind} {namespace}/{name}"


@dataclass(frozen=True)
class LinkerdScope:
    """The Linkerd part of an `EmitInput`, indexed."""

    inp: EmitInput
    meshes: Mapping[str, Mesh] = field(init=False)

    def __post_init__(self) -> None:
        linkerd = {m.name: m for m in sorted(self.inp.meshes, key=lambda m: m.name) if m.type == MeshType.LINKERD}
        object.__setattr__(self, "meshes", linkerd)

    # -- destinations and workloads --------------------------------------------------------------

    @cached_property
    def destinations(self) -> tuple[Destination, ...]:
        """Destinations whose mesh is a Linkerd mesh, by name."""
        return tuple(
            d
            for d in sorted(self.inp.destinations, key=lambda d: d.name)
            if d.mesh is not None and d.mesh in self.meshes
        )

    @cached_property
    def destination_by_name(self) -> Mapping[str, Destination]:
        """Linkerd destinations by name."""
        return {d.name: d for d in self.destinations}

    def mesh_of(self, destination: Destination) -> Mesh:
        """The Linkerd mesh of a Linkerd destination."""
        assert destination.mesh is not None  # INVARIANT: `destinations` holds only meshed ones
        return self.meshes[destination.mesh]

    def workloads_of(self, destination: Destination) -> tuple[Workload, ...]:
        """The destination's workloads that discovery knows, by name."""
        known = self.inp.workload_by_name
        return tuple(known[w] for w in sorted(destination.workloads) if w in known)

    def destination_for(self, cluster: str, namespace: str, service: str) -> Destination | None:
        """The Linkerd destination of a Service, if any."""
        return self._by_service.get((cluster, namespace, service))

    @cached_property
    def _by_service(self) -> Mapping[tuple[str, str, str], Destination]:
        return {(d.cluster, d.namespace, d.service): d for d in self.destinations}

    # -- governance -------------------------------------------------------------------------------

    @cached_property
    def memberships(self) -> Mapping[str, MeshMembership]:
        """Memberships of Linkerd meshes, by mesh name."""
        found = sorted(self.inp.intent.memberships, key=lambda m: (m.mesh, m.virtual_mesh or ""))
        return {m.mesh: m for m in found if m.mesh in self.meshes}

    def enforced(self, mesh: str) -> bool:
        """Whether the mesh's VirtualMesh enforces access (deny unless an AccessPolicy allows)."""
        membership = self.memberships.get(mesh)
        return membership is not None and membership.enforced

    def remote_discovery(self, mesh: str) -> bool:
        """Whether the mesh federates pod-to-pod (`federation.linkerd.mode: remote-discovery`)."""
        membership = self.memberships.get(mesh)
        return membership is not None and membership.linkerd_mode == LinkerdFederationMode.REMOTE_DISCOVERY.value

    def fellow_members(self, mesh: str) -> tuple[Mesh, ...]:
        """The Linkerd meshes of the same VirtualMesh as ``mesh`` (itself included), by name."""
        membership = self.memberships.get(mesh)
        if membership is None or membership.virtual_mesh is None:
            return (self.meshes[mesh],)
        return tuple(
            self.meshes[m.mesh] for m in self.memberships.values() if m.virtual_mesh == membership.virtual_mesh
        )

    # -- intent, restricted to Linkerd --------------------------------------------------------------

    @cached_property
    def access(self) -> Mapping[str, tuple[AccessRule, ...]]:
        """Access rules at Linkerd destinations: destination name → rules by policy."""
        rules: dict[str, list[AccessRule]] = defaultdict(list)
        for rule in self.inp.intent.access:
            if rule.destination in self.destination_by_name:
                rules[rule.destination].append(rule)
        return {d: tuple(sorted(r, key=_rule_key)) for d, r in sorted(rules.items())}

    @cached_property
    def federation(self) -> tuple[FederationEdge, ...]:
        """Federation edges of Linkerd destinations into Linkerd meshes, sorted."""
        edges = [
            e for e in self.inp.intent.federation if e.destination in self.destination_by_name and e.mesh in self.meshes
        ]
        return tuple(sorted(set(edges), key=lambda e: (e.destination, e.mesh, e.host)))

    def edge_into(self, destination: str, cluster: str) -> FederationEdge | None:
        """The edge that makes ``destination`` visible in a Linkerd mesh of ``cluster``, if any."""
        for edge in self.federation:
            if edge.destination == destination and self.meshes[edge.mesh].cluster == cluster:
                return edge
        return None

    # -- clusters and existing objects ---------------------------------------------------------------

    def cluster_domain(self, cluster: str) -> str:
        """The cluster's DNS domain (`cluster.local` unless its KubernetesCluster says otherwise)."""
        found = self.inp.cluster_by_name.get(cluster)
        return found.cluster_domain if found is not None else DEFAULT_CLUSTER_DOMAIN

    def existing(self, cluster: str, kinds: Iterable[str] = ()) -> tuple[KubeObject, ...]:
        """Objects already in ``cluster`` (of ``kinds``, when given), in a stable order."""
        by_kind = self._existing.get(cluster, {})
        wanted = sorted(set(kinds)) or sorted(by_kind)
        found = [o for kind in wanted for o in by_kind.get(kind, ())]
        return tuple(sorted(found, key=lambda o: (o.api_version, o.kind, o.namespace, o.name)))

    @cached_property
    def _existing(self) -> Mapping[str, Mapping[str, tuple[KubeObject, ...]]]:
        grouped: dict[str, dict[str, list[KubeObject]]] = defaultdict(lambda: defaultdict(list))
        for cluster, objs in self.inp.existing.items():
            for obj in objs:
                grouped[cluster][obj.kind].append(obj)
        return {c: {k: tuple(v) for k, v in kinds.items()} for c, kinds in grouped.items()}

    def user_owned(self, obj: KubeObject) -> bool:
        """Whether an existing object belongs to the user (meshrules of this owner did not write it)."""
        return not is_owned(obj.body, self.inp.owner)

    def discovered(self, kind: str, name: str) -> str:
        """The parent reference of a discovered object (they live in the management namespace)."""
        return ref(kind, self.inp.owner, name)


def _rule_key(rule: AccessRule) -> tuple[str, tuple[str, ...], tuple[str, ...], tuple[int, ...]]:
    return (rule.policy, rule.paths, rule.methods, rule.ports)
