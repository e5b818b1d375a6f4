"""The fleet as the simulator sees it: every cluster's resources, compiled once, with what was decided.

A `Fleet` joins the three things a `why` walks over: the objects each cluster holds (the user's,
as read — Services, Deployments and existing mesh config), the objects meshrules emits there, and
the rule set's `Intent` (federation, enforcement, access) with the discovery models it speaks of.
It compiles each cluster's evaluators (`meshrules.sim.istio`, `meshrules.sim.linkerd`) on first use
and caches them, so many queries cost only the matching.

It is pure data in, answers out: the pipeline (`meshrules.pipeline.query`) builds it from a
scenario, a decision and a translation; nothing here reads a file or imports an emitter.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from meshrules.discovery import Discovery
from meshrules.engine import Model
from meshrules.engine.intent import gc_paused
from meshrules.model.discovery import (
    DEFAULT_CLUSTER_DOMAIN,
    Destination,
    GatewayKind,
    Mesh,
    MeshType,
    Workload,
)
from meshrules.model.intent import (
    AccessRule,
    Derivation,
    FederationBlocked,
    FederationEdge,
    FederationGap,
    Intent,
    MeshMembership,
    TrafficApplication,
    TrafficPrecedence,
)
from meshrules.model.policy import Policy
from meshrules.model.scenario import Scenario
from meshrules.model.source import KubeObject
from meshrules.sim.assumptions import UnmodelledObjects
from meshrules.sim.istio.authz import CompiledAuthz, TrustDomainBundle, compile_policies
from meshrules.sim.istio.mtls import PeerAuthentications, compile_peer_authentications
from meshrules.sim.istio.routing import EastWestGateway, IstioRouting, compile_routing
from meshrules.sim.linkerd.policy import LinkerdConfig, LinkerdPolicy, compile_policy, pod_view
from meshrules.sim.linkerd.routing import LinkerdRouting
from meshrules.sim.linkerd.routing import compile_routing as compile_linkerd_routing
from meshrules.sim.memo import LinkerdIdentityClasses, PrincipalClasses, RouteKeys, memoise_destination_rules
from meshrules.sim.mirrors import mirror_objects
from meshrules.sim.objects import Obj

__all__ = ["OWNER_LABEL", "PARENTS_ANNOTATION", "Fleet", "MeshObject", "dialed", "parents_of"]

OWNER_LABEL = "meshrules.io/owner"
PARENTS_ANNOTATION = "meshrules.io/parents"
_ISTIO_ROOT = "istio-system"
_POLICY_KINDS = frozenset({"VirtualMesh", "TrafficPolicy", "AccessPolicy"})


@dataclass(frozen=True, slots=True)
class MeshObject:
    """One object of a cluster as answers cite it: where it came from and which policies made it."""

    cluster: str
    kind: str
    namespace: str
    name: str
    emitted: bool
    location: str  # `file:line` of a user object, "" for emitted ones
    # `Kind namespace/name` of what an emitted object was made from (policies, destinations, meshes).
    parents: tuple[str, ...] = ()

    @property
    def policies(self) -> tuple[str, ...]:
        """The meshrules policies among the parents (`VirtualMesh`, `TrafficPolicy`, `AccessPolicy`)."""
        return tuple(p for p in self.parents if p.split(" ", 1)[0] in _POLICY_KINDS)

    @property
    def ref(self) -> str:
        """``Kind namespace/name``."""
        return f"{self.kind} {self.namespace}/{self.name}"

    def cite(self) -> str:
        """How an explanation names it: ``VirtualService bookinfo/reviews (cluster-1, emitted)``."""
        where = f"{self.cluster}, emitted" if self.emitted else (self.location or self.cluster)
        return f"{self.ref} ({where})"


@dataclass
class _Caches:
    route_keys: dict[str, RouteKeys] = field(default_factory=dict)
    principals: dict[tuple[str, str], PrincipalClasses] = field(default_factory=dict)
    linkerd_identities: dict[str, LinkerdIdentityClasses] = field(default_factory=dict)
    pods: dict[str, Any] = field(default_factory=dict)
    istio_routing: dict[tuple[str, str], IstioRouting] = field(default_factory=dict)
    istio_authz: dict[tuple[str, str], CompiledAuthz] = field(default_factory=dict)
    peer_auth: dict[tuple[str, str], PeerAuthentications] = field(default_factory=dict)
    linkerd_routing: dict[str, LinkerdRouting] = field(default_factory=dict)
    linkerd_policy: dict[str, LinkerdPolicy] = field(default_factory=dict)
    derivations: dict[Derivation, tuple[str, tuple[str, ...]]] = field(default_factory=dict)


class Fleet:
    """Every cluster's resources (user + emitted + Linkerd mirrors), the discovery and the intent."""

    def __init__(
        self,
        scenario: Scenario,
        discovery: Discovery,
        intent: Intent,
        emitted: Mapping[str, Sequence[Mapping[str, Any]]],
        *,
        model: Model | None = None,
        memoise: bool = True,
    ) -> None:
        self.scenario = scenario
        self.discovery = discovery
        self.intent = intent
        self.model = model
        self.policies: tuple[Policy, ...] = tuple(scenario.policies)
        self.policy_by_ref: dict[str, Policy] = {p.ref: p for p in self.policies}
        self.meshes: dict[str, Mesh] = {m.name: m for m in discovery.meshes}
        self.workloads: dict[str, Workload] = {w.name: w for w in discovery.workloads}
        self.destinations: dict[str, Destination] = {d.name: d for d in discovery.destinations}
        self.cluster_domain: dict[str, str] = {c.name: c.cluster_domain for c in discovery.clusters}
        self._caches = _Caches()
        with gc_paused():
            self._build(emitted)
        # Answers' expensive stages, memoised under keys that keep what they read (`sim.memo`);
        # ``memoise=False`` recomputes everything (the tests compare both).
        self.memoise = memoise
        self.route_memo: dict[tuple[Any, ...], Any] = {} if memoise else _Forgetful()
        self.authz_memo: dict[tuple[Any, ...], Any] = {} if memoise else _Forgetful()

    def _build(self, emitted: Mapping[str, Sequence[Mapping[str, Any]]]) -> None:
        self._index_discovery()
        self._index_intent()
        self._index_objects(emitted)
        self.unmodelled = UnmodelledObjects(self.user_objects)

    # ------------------------------------------------------------------------------------------
    # Indexes
    # ------------------------------------------------------------------------------------------
    def _index_discovery(self) -> None:
        self.workload_by_ref: dict[str, Workload] = {}
        # A controller name is unique per kind; a Deployment wins over a StatefulSet of the same name.
        rank = {"Deployment": 0, "StatefulSet": 1, "DaemonSet": 2}
        for w in sorted(self.workloads.values(), key=lambda w: (rank.get(w.controller.kind, 3), w.name)):
            self.workload_by_ref.setdefault(f"{w.cluster}/{w.namespace}/{w.controller.name}", w)
        self.destination_by_ref: dict[str, Destination] = {
            f"{d.cluster}/{d.namespace}/{d.service}": d for d in self.destinations.values()
        }
        self.destinations_by_service: dict[tuple[str, str], list[Destination]] = defaultdict(list)
        for d in sorted(self.destinations.values(), key=lambda d: d.name):
            self.destinations_by_service[(d.namespace, d.service)].append(d)

    def _index_intent(self) -> None:
        intent = self.intent
        self.membership: dict[str, MeshMembership] = {m.mesh: m for m in intent.memberships}
        self.edge: dict[tuple[str, str], FederationEdge] = {(e.destination, e.mesh): e for e in intent.federation}
        self.edge_by_host: dict[tuple[str, str], FederationEdge] = {(e.mesh, e.host): e for e in intent.federation}
        self.edges_by_host: dict[str, list[FederationEdge]] = defaultdict(list)
        for e in intent.federation:
            self.edges_by_host[e.host].append(e)
        self.blocked: dict[tuple[str, str], FederationBlocked] = {(b.destination, b.mesh): b for b in intent.blocked}
        self.gaps: dict[tuple[str, str], FederationGap] = {(g.destination, g.mesh): g for g in intent.gaps}
        self.access: dict[str, list[AccessRule]] = defaultdict(list)
        for rule in intent.access:
            self.access[rule.destination].append(rule)
        self.traffic: dict[str, list[TrafficApplication]] = defaultdict(list)
        for app in intent.traffic:
            self.traffic[app.destination].append(app)
        self.precedence: dict[str, list[TrafficPrecedence]] = defaultdict(list)
        for pr in intent.precedence:
            self.precedence[pr.destination].append(pr)

    def _index_objects(self, emitted: Mapping[str, Sequence[Mapping[str, Any]]]) -> None:
        self.objects: dict[str, list[Obj]] = {}
        self.user_objects: dict[str, tuple[KubeObject, ...]] = {}
        # (cluster, kind, namespace, name) -> the user object, or an emitted object's metadata;
        # turned into a `MeshObject` only when an answer cites it (an L fleet emits ~350k objects).
        self._sources: dict[tuple[str, str, str, str], KubeObject | Mapping[str, Any]] = {}
        self._cited: dict[tuple[str, str, str, str], MeshObject] = {}
        self.controllers: dict[tuple[str, str, str, str], Obj] = {}
        for snapshot in self.scenario.clusters:
            self.user_objects[snapshot.name] = snapshot.objects
            bodies: list[Obj] = []
            for obj in snapshot.objects:
                bodies.append(obj.body)
                self._sources[(snapshot.name, obj.kind, obj.namespace, obj.name)] = obj
                if obj.kind in ("Deployment", "StatefulSet", "DaemonSet", "Pod"):
                    self.controllers[(snapshot.name, obj.kind, obj.namespace, obj.name)] = obj.body
            self.objects[snapshot.name] = bodies
        self.emitted: Mapping[str, Sequence[Mapping[str, Any]]] = emitted
        for cluster, objs in emitted.items():
            bucket = self.objects.setdefault(cluster, [])
            bucket.extend(objs)
            for body in objs:
                meta = body.get("metadata") or {}
                self._sources[
                    (cluster, str(body.get("kind")), str(meta.get("namespace") or ""), str(meta.get("name")))
                ] = meta
        mirrors = mirror_objects(
            self.intent.federation, self.meshes, self.destinations, self.membership, self.cluster_domain
        )
        for cluster, objs in mirrors.items():
            self.objects.setdefault(cluster, []).extend(objs)

    # ------------------------------------------------------------------------------------------
    # Reading
    # ------------------------------------------------------------------------------------------
    def domain(self, cluster: str) -> str:
        """The cluster's DNS domain (`cluster.local` by default)."""
        return self.cluster_domain.get(cluster, DEFAULT_CLUSTER_DOMAIN)

    def mesh_object(self, cluster: str, kind: str, key: str) -> MeshObject | None:
        """The object ``kind`` ``namespace/name`` (``key``) of ``cluster``, if meshrules knows it."""
        namespace, _, name = key.partition("/")
        return self._mesh_object((cluster, kind, namespace, name))

    def _mesh_object(self, key: tuple[str, str, str, str]) -> MeshObject | None:
        found = self._cited.get(key)
        if found is None:
            source = self._sources.get(key)
            if source is None:
                return None
            if isinstance(source, KubeObject):
                found = MeshObject(*key, False, str(source.location))
            else:
                found = MeshObject(*key, True, "", _parents(source))
            self._cited[key] = found
        return found

    def mesh_objects(self, cluster: str) -> Iterable[MeshObject]:
        """Every object of ``cluster`` (user and emitted) as answers cite them."""
        for key in [k for k in self._sources if k[0] == cluster]:
            found = self._mesh_object(key)
            if found is not None:
                yield found

    def locate(self, ref: str) -> str:
        """``file:line`` where the meshrules policy ``ref`` was written ("" when unknown)."""
        loc = self.scenario.location_of(ref)
        return str(loc) if loc is not None else ""

    def cite_policy(self, ref: str) -> str:
        """``AccessPolicy bookinfo/x (policies/access.yaml:1)``."""
        where = self.locate(ref)
        return f"{ref} ({where})" if where else ref

    def derivation(self, why: Derivation | None) -> tuple[str, tuple[str, ...]]:
        """The rule behind an intent decision and the sources of its derivation (provenance walk).

        Without an engine model (a hand-written intent) the rule is the one the intent names and
        there are no sources.
        """
        if why is None:
            return "", ()
        cached = self._caches.derivations.get(why)
        if cached is not None:
            return cached
        result: tuple[str, tuple[str, ...]] = (why.rule, ())
        if self.model is not None:
            try:
                tree = self.model.explain((why.relation, why.args))
            except Exception:  # the fact is not in this model (a stale handle): cite the rule alone
                tree = None
            if tree is not None:
                result = (tree.rule or why.rule, tuple(tree.sources()))
        # The policy an item names is cited with its location already; keep the other sources.
        shown = {self.locate(a) for a in why.args if isinstance(a, str) and " " in a}
        result = (result[0], tuple(s for s in result[1] if s not in shown))
        self._caches.derivations[why] = result
        return result

    def mesh_of_workload(self, workload: Workload) -> Mesh | None:
        """The workload's mesh."""
        return self.meshes.get(workload.mesh)

    def enforced(self, mesh: str | None) -> bool:
        """Whether ``mesh`` denies what no AccessPolicy allows (VirtualMesh ENFORCED)."""
        m = self.membership.get(mesh or "")
        return m is not None and m.enforced

    def destination_of(self, cluster: str, namespace: str, service: str) -> Destination | None:
        """The destination for Service ``namespace/service`` of ``cluster``."""
        return self.destination_by_ref.get(f"{cluster}/{namespace}/{service}")

    def gateway(self, mesh: Mesh) -> tuple[str, int | None, str] | None:
        """The address, port and name of the gateway carrying federated traffic into ``mesh``, or None.

        Istio: the first east-west gateway with an address; Linkerd: the multicluster gateway.
        """
        kind = GatewayKind.EASTWEST if mesh.type == MeshType.ISTIO else GatewayKind.LINKERD_GATEWAY
        found = sorted((g for g in mesh.gateways if g.kind == kind), key=lambda g: (g.namespace, g.service))
        for g in found:
            if g.address:
                return g.address, g.port, f"{g.namespace}/{g.service}"
        return None

    def gateway_gap(self, mesh_name: str | None) -> str:
        """Why no gateway carries federated traffic into a mesh, as the start of a sentence.

        A mesh with no federation gateway at all (a Linkerd cluster without the multicluster
        extension) is told apart from one whose gateway has no address.
        """
        mesh = self.meshes.get(mesh_name or "")
        if mesh is None:
            return f"the gateway of {mesh_name} has no address"
        kind = GatewayKind.EASTWEST if mesh.type == MeshType.ISTIO else GatewayKind.LINKERD_GATEWAY
        if any(g.kind == kind for g in mesh.gateways):
            return f"the gateway of {mesh.name} (cluster {mesh.cluster}) has no address"
        return f"{mesh.name} (cluster {mesh.cluster}) has no {kind.value}"

    def controller_body(self, workload: Workload) -> Obj | None:
        """The Deployment (or other controller) object of a workload, as the cluster holds it."""
        key = (workload.cluster, workload.controller.kind, workload.namespace, workload.controller.name)
        return self.controllers.get(key)

    # ------------------------------------------------------------------------------------------
    # Compiled evaluators (cached)
    # ------------------------------------------------------------------------------------------
    def istio_routing(self, cluster: str, mesh: Mesh | None) -> IstioRouting:
        """The Istio routing of ``cluster`` as seen by the sidecars of ``mesh``."""
        root = (mesh.root_namespace if mesh is not None else None) or _ISTIO_ROOT
        key = (cluster, root)
        routing = self._caches.istio_routing.get(key)
        if routing is None:
            with gc_paused():
                routing = compile_routing(
                    self.objects.get(cluster, ()),
                    cluster_domain=self.domain(cluster),
                    root_namespace=root,
                    eastwest_gateways=self._eastwest_gateways(),
                    endpoint_labels=self._endpoint_labels(cluster),
                )
            if self.memoise:
                memoise_destination_rules(routing, self.route_keys(cluster).destination_rule_keys)
            self._caches.istio_routing[key] = routing
        return routing

    def istio_authz(self, cluster: str, mesh: Mesh | None) -> CompiledAuthz:
        """The AuthorizationPolicies (emitted + existing) of ``cluster``, compiled for ``mesh``."""
        root = (mesh.root_namespace if mesh is not None else None) or _ISTIO_ROOT
        key = (cluster, root)
        authz = self._caches.istio_authz.get(key)
        if authz is None:
            bundle = None
            if mesh is not None:
                # `trustDomainAliases` only: `caCertificates[].trustDomains` are for mTLS.
                bundle = TrustDomainBundle(mesh.trust_domain, mesh.trust_domain_aliases)
            with gc_paused():
                authz = compile_policies(
                    (o for o in self.objects.get(cluster, ()) if o.get("kind") == "AuthorizationPolicy"),
                    root_namespace=root,
                    trust_domains=bundle,
                )
            self._caches.istio_authz[key] = authz
        return authz

    def peer_authentications(self, cluster: str, mesh: Mesh | None) -> PeerAuthentications:
        """The PeerAuthentications of ``cluster`` for ``mesh``."""
        root = (mesh.root_namespace if mesh is not None else None) or _ISTIO_ROOT
        key = (cluster, root)
        pas = self._caches.peer_auth.get(key)
        if pas is None:
            with gc_paused():
                pas = compile_peer_authentications(
                    (o for o in self.objects.get(cluster, ()) if o.get("kind") == "PeerAuthentication"),
                    root_namespace=root,
                )
            self._caches.peer_auth[key] = pas
        return pas

    def linkerd_routing(self, cluster: str) -> LinkerdRouting:
        """Linkerd's outbound routing of ``cluster`` (mirror Services included)."""
        routing = self._caches.linkerd_routing.get(cluster)
        if routing is None:
            objs = self.objects.get(cluster, ())
            with gc_paused():
                routing = compile_linkerd_routing(
                    objs, config=self.linkerd_config(cluster), cluster_domain=self.domain(cluster)
                )
            self._caches.linkerd_routing[cluster] = routing
        return routing

    def linkerd_policy(self, cluster: str) -> LinkerdPolicy:
        """Linkerd's inbound policy of ``cluster``."""
        policy = self._caches.linkerd_policy.get(cluster)
        if policy is None:
            with gc_paused():
                policy = compile_policy(self.objects.get(cluster, ()), config=self.linkerd_config(cluster))
            self._caches.linkerd_policy[cluster] = policy
        return policy

    def route_keys(self, cluster: str) -> RouteKeys:
        """What Istio routing in ``cluster`` reads of a caller's labels, per host."""
        keys = self._caches.route_keys.get(cluster)
        if keys is None:
            keys = RouteKeys(self.objects.get(cluster, ()), self.domain(cluster))
            self._caches.route_keys[cluster] = keys
        return keys

    def principal_classes(self, cluster: str, mesh: Mesh | None) -> PrincipalClasses:
        """What the AuthorizationPolicies of ``cluster`` can tell apart of a peer principal."""
        root = (mesh.root_namespace if mesh is not None else None) or _ISTIO_ROOT
        key = (cluster, root)
        found = self._caches.principals.get(key)
        if found is None:
            aliases = mesh is not None and bool(mesh.trust_domain_aliases)
            found = PrincipalClasses(self.objects.get(cluster, ()), aliases=aliases)
            self._caches.principals[key] = found
        return found

    def linkerd_identity_classes(self, cluster: str) -> LinkerdIdentityClasses:
        """What the Linkerd policies of ``cluster`` can tell apart of a client identity."""
        found = self._caches.linkerd_identities.get(cluster)
        if found is None:
            found = LinkerdIdentityClasses(self.objects.get(cluster, ()))
            self._caches.linkerd_identities[cluster] = found
        return found

    def pod(self, workload: Workload) -> Any:
        """The workload's pod as Linkerd's policy reads it (labels, annotations, ports, probes)."""
        view = self._caches.pods.get(workload.name)
        if view is None:
            body = self.controller_body(workload) or {
                "kind": "Pod",
                "metadata": {"namespace": workload.namespace, "labels": dict(workload.pod_labels)},
            }
            view = pod_view(body)
            self._caches.pods[workload.name] = view
        return view

    def precompile(self) -> None:
        """Compile every cluster's evaluators now (else on first use), e.g. before timing queries."""
        for mesh in self.meshes.values():
            if mesh.type == MeshType.ISTIO:
                self.istio_routing(mesh.cluster, mesh)
                self.istio_authz(mesh.cluster, mesh)
                self.peer_authentications(mesh.cluster, mesh)
                self.route_keys(mesh.cluster)
                self.principal_classes(mesh.cluster, mesh)
            else:
                self.linkerd_routing(mesh.cluster)
                self.linkerd_policy(mesh.cluster)
                self.linkerd_identity_classes(mesh.cluster)

    def linkerd_config(self, cluster: str) -> LinkerdConfig:
        """The Linkerd control plane settings of ``cluster`` (its `linkerd-config`)."""
        return LinkerdConfig.from_objects(o for o in self.objects.get(cluster, ()) if o.get("kind") == "ConfigMap")

    def _eastwest_gateways(self) -> tuple[EastWestGateway, ...]:
        out = []
        for mesh in sorted(self.meshes.values(), key=lambda m: m.name):
            for g in mesh.gateways:
                if g.kind == GatewayKind.EASTWEST and g.address:
                    out.append(EastWestGateway(g.address, g.port, mesh.cluster, f"{g.namespace}/{g.service}"))
        return tuple(out)

    def _endpoint_labels(self, cluster: str) -> dict[str, list[dict[str, str]]]:
        """Service FQDN -> pod labels of its meshed workloads (so empty subsets answer 503)."""
        out: dict[str, list[dict[str, str]]] = {}
        for d in self.destinations.values():
            if d.cluster == cluster:
                out[d.local_fqdn] = [self.workloads[w].pod_labels for w in d.workloads if w in self.workloads]
        return out


class _Forgetful(dict[tuple[Any, ...], Any]):
    """A memo that remembers nothing."""

    def __setitem__(self, key: tuple[Any, ...], value: Any) -> None:
        del key, value


def parents_of(obj: Mapping[str, Any]) -> tuple[str, ...]:
    """``Kind namespace/name`` of what an emitted object was made from (its `meshrules.io/parents`)."""
    meta = obj.get("metadata")
    return _parents(meta) if isinstance(meta, Mapping) else ()


def _parents(meta: Mapping[str, Any]) -> tuple[str, ...]:
    raw = (meta.get("annotations") or {}).get(PARENTS_ANNOTATION)
    if not isinstance(raw, str):
        return ()
    try:
        parents = json.loads(raw)
    except ValueError:
        return ()
    if not isinstance(parents, dict):
        return ()
    out: list[str] = []
    for kind, refs in parents.items():
        if isinstance(refs, list):
            out.extend(f"{kind} {r}" for r in refs if isinstance(r, str))
    return tuple(sorted(out))


def dialed(fleet: Fleet, caller: Workload, destination: Destination) -> str | None:
    """The name a caller dials to reach ``destination``: its own cluster's name, or the federated one."""
    if destination.cluster == caller.cluster:
        return destination.local_fqdn
    edge = fleet.edge.get((destination.name, caller.mesh))
    return edge.host if edge is not None else None
