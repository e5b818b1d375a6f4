"""Where Istio config goes: meshes, destinations, federated hosts and data paths, indexed once.

Place: the first thing `emit_istio` builds from an `EmitInput`; every renderer in this package
reads it. It answers "which name does a caller in cluster X dial for destination D" (D's local
FQDN in D's own cluster, the federated host where the rule set federated D into X's mesh and a
data path exists, else nothing) and "which east-west gateway carries D's federated traffic".

A federation edge has a data path only when D's mesh has an east-west gateway with an address:
without one, callers elsewhere could resolve the name but never connect (NO_GATEWAY_ADDRESS), so
meshrules emits nothing for that edge and reports it.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from meshrules.emit.input import EmitInput
from meshrules.errors import Diagnostic, Location, Severity
from meshrules.model.discovery import Destination, Gateway, GatewayKind, Mesh, MeshType
from meshrules.model.intent import FederationEdge, MeshMembership

CODE_NO_GATEWAY_ADDRESS = "MR0340"

API_NETWORKING = "networking.istio.io/v1"
API_SECURITY = "security.istio.io/v1"


@dataclass(frozen=True, slots=True)
class FederatedHost:
    """Destination `destination` (cluster `source_cluster`) reachable from `cluster` as `host`.

    ``mesh`` is the calling mesh there, ``gateway`` D's east-west gateway that carries the traffic
    and ``gateway_host`` the host pattern its AUTO_PASSTHROUGH server accepts (`*.<suffix>`).
    """

    destination: str
    host: str
    mesh: str
    cluster: str
    source_cluster: str
    gateway: Gateway
    gateway_host: str
    edges: tuple[FederationEdge, ...]


@lru_cache(maxsize=1024)
def is_ip(address: str) -> bool:
    """Whether ``address`` is an IP literal (else a DNS name, e.g. a cloud load balancer's).

    Cached: a few gateway addresses are asked about once per federation edge.
    """
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    return True


def federation_gateway(mesh: Mesh) -> Gateway | None:
    """The east-west gateway that carries federated traffic into ``mesh``: the first with an address."""
    eastwest = sorted(
        (g for g in mesh.gateways if g.kind == GatewayKind.EASTWEST), key=lambda g: (g.namespace, g.service)
    )
    return next((g for g in eastwest if g.address), None)


class IstioTopology:
    """Indexes over an `EmitInput`, limited to Istio meshes."""

    def __init__(self, inp: EmitInput) -> None:
        self.inp = inp
        self.owner = inp.owner
        self.meshes: dict[str, Mesh] = {m.name: m for m in inp.meshes if m.type == MeshType.ISTIO}
        self.destinations: dict[str, Destination] = {
            d.name: d for d in inp.destinations if d.mesh is not None and d.mesh in self.meshes
        }
        self.memberships: dict[str, MeshMembership] = {m.mesh: m for m in inp.intent.memberships}
        self.findings: list[Diagnostic] = []
        self.federated: dict[tuple[str, str], FederatedHost] = {}  # (destination, calling cluster)
        self._federate(inp.intent.federation)
        self._callers: dict[str, list[str]] = defaultdict(list)
        for dest_name, cluster in sorted(self.federated):
            self._callers[dest_name].append(cluster)
        self._cluster_mesh: dict[str, Mesh] = {}
        for _, mesh in sorted(self.meshes.items(), reverse=True):
            self._cluster_mesh[mesh.cluster] = mesh  # the first by name wins

    # --- federation --------------------------------------------------------------------------
    def _federate(self, edges: Iterable[FederationEdge]) -> None:
        grouped: dict[tuple[str, str], list[FederationEdge]] = defaultdict(list)
        for edge in edges:
            dest = self.destinations.get(edge.destination)
            target = self.meshes.get(edge.mesh)
            if dest is None or target is None or target.cluster == dest.cluster:
                continue  # not Istio on both ends, or not across clusters: nothing to build
            grouped[(dest.name, target.cluster)].append(edge)
        gateways: dict[str, Gateway | None] = {}  # per home mesh
        for (dest_name, cluster), group in sorted(grouped.items()):
            dest = self.destinations[dest_name]
            home = self.meshes[dest.mesh or ""]
            if home.name not in gateways:
                gateways[home.name] = federation_gateway(home)
            gateway = gateways[home.name]
            ordered = sorted(group, key=lambda e: (e.mesh, e.host))
            if gateway is None or gateway.port is None:
                self.findings.append(_no_gateway(dest, home, ordered[0]))
                continue
            first = ordered[0]
            membership = self.memberships.get(first.mesh) or self.memberships.get(home.name)
            suffix = membership.hostname_suffix if membership is not None else "global"
            # The spec's hosts end in `.<suffix>`; a rule set naming hosts otherwise gets them exactly.
            gateway_host = f"*.{suffix}" if first.host.endswith(f".{suffix}") else first.host
            self.federated[(dest_name, cluster)] = FederatedHost(
                destination=dest_name,
                host=first.host,
                mesh=first.mesh,
                cluster=cluster,
                source_cluster=dest.cluster,
                gateway=gateway,
                gateway_host=gateway_host,
                edges=tuple(ordered),
            )

    # --- lookups -----------------------------------------------------------------------------
    def host_of(self, destination: str, cluster: str) -> str | None:
        """The name a caller in ``cluster`` dials to reach ``destination``, or None (unreachable)."""
        dest = self.destinations.get(destination)
        if dest is None:
            return None
        if dest.cluster == cluster:
            return dest.local_fqdn
        fed = self.federated.get((destination, cluster))
        return fed.host if fed is not None else None

    def caller_clusters(self, destination: str) -> tuple[str, ...]:
        """Clusters whose callers can reach ``destination`` (its own first, then federated ones, sorted)."""
        return (self.destinations[destination].cluster, *self._callers.get(destination, ()))

    def root_namespace(self, mesh: Mesh) -> str:
        """Where mesh-wide config lives (Istio `rootNamespace`, by default the istiod namespace)."""
        return mesh.root_namespace or mesh.namespace

    def mesh_of_cluster(self, cluster: str, preferred: str | None = None) -> Mesh | None:
        """The Istio mesh named ``preferred``, else the first Istio mesh of ``cluster``."""
        if preferred is not None and preferred in self.meshes:
            return self.meshes[preferred]
        return self._cluster_mesh.get(cluster)

    def parent(self, kind: str, name: str) -> tuple[str, str]:
        """A discovered object as a `meshrules.io/parents` entry (it lives in the management namespace)."""
        return (kind, f"{self.owner}/{name}")

    @property
    def clusters(self) -> tuple[str, ...]:
        """Clusters with an Istio mesh, sorted."""
        return tuple(sorted({m.cluster for m in self.meshes.values()}))


def policy_parent(ref: str) -> tuple[str, str]:
    """`Kind namespace/name` as a `meshrules.io/parents` entry."""
    kind, _, name = ref.partition(" ")
    return (kind, name)


def _no_gateway(dest: Destination, mesh: Mesh, edge: FederationEdge) -> Diagnostic:
    return Diagnostic(
        code=CODE_NO_GATEWAY_ADDRESS,
        severity=Severity.ERROR,
        message=(
            f"`{dest.name}` is federated as `{edge.host}` but the east-west gateway of `{mesh.name}` "
            "has no address (NO_GATEWAY_ADDRESS): meshrules emits no data path for it"
        ),
        hint=(
            "give the east-west gateway Service a load-balancer address or `spec.externalIPs`, "
            "or leave the destination out of the VirtualMesh's federation selectors"
        ),
        location=Location(cluster=mesh.cluster, kind="Mesh", name=mesh.name),
        object=f"Destination {dest.name}",
        related=(edge.virtual_mesh,),
    )
