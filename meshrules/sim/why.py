"""`why`: can workload A reach B, with what configuration, and why (not)? (API §6)

The walk, over a `Fleet` (each cluster's user and emitted resources, and the rule set's intent):

1. resolve ``--from`` (``cluster/namespace/controller``) to a discovered Workload, and ``--to``:
   with ``/`` a destination ``cluster/namespace/service`` — dialed by its local name in its own
   cluster, else by the federated name the rule set gave it in the caller's mesh (none:
   NOT_FEDERATED) — otherwise a hostname as the caller dials it, through the caller's DNS search
   path (``reviews`` → ``reviews.<ns>.svc.<clusterDomain>``). A host nobody knows is a
   `QueryError`; a target with several ports needs ``--port`` (`UsageError`);
2. route on the caller's proxy (`meshrules.sim.istio.routing` / `meshrules.sim.linkerd.routing`):
   NO_ROUTE, NO_DNS, or weighted backends with timeout, retries (each mesh's default where nothing
   sets them), fault, mirror and header changes;
3. judge each backend (`meshrules.sim.legs`): federation, trust, mTLS, authorization;
4. assemble the `Verdict`: allowed only when every backend allows, the first code along the path,
   the explanation (steps citing the rules and the user objects with file:line), assumptions, and
   for a denial the nearest miss (`meshrules.sim.nearest`; the pipeline re-runs it to verify).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from meshrules.errors import QueryError, UsageError
from meshrules.model.discovery import Destination, Mesh, MeshType, Workload
from meshrules.model.intent import TrafficApplication
from meshrules.sim.call import Call, Leg
from meshrules.sim.fleet import Fleet, dialed
from meshrules.sim.istio.routing import NO_ROUTE as ISTIO_NO_ROUTE
from meshrules.sim.istio.routing import ROUTED, Caller, RouteDecision
from meshrules.sim.istio.routing import Backend as IstioBackend
from meshrules.sim.legs import judge, not_federated_reason, own_hops, stopped
from meshrules.sim.linkerd.routing import LinkerdBackend, LinkerdCaller, LinkerdRouteDecision
from meshrules.sim.mirrors import mirror_service_name
from meshrules.sim.nearest import nearest_miss, trust_domain_miss
from meshrules.sim.objects import Hop
from meshrules.sim.request import Request
from meshrules.sim.traffic import contributing_policies
from meshrules.sim.verdict import (
    ALLOWED,
    GATEWAY_IDENTITY,
    MTLS_MISMATCH,
    NO_GATEWAY_ADDRESS,
    NO_HEALTHY_UPSTREAM,
    NO_ROUTE,
    NOT_FEDERATED,
    PATH_ORDER,
    TRUST_DOMAIN_REJECTED,
    Backend,
    Fault,
    HeaderChanges,
    Mirror,
    NearestMiss,
    RetryPolicy,
    Step,
    Verdict,
    first_code,
)

__all__ = ["Query", "answer", "resolve_destination", "resolve_source"]


@dataclass(frozen=True, slots=True)
class Query:
    """``meshrules why`` arguments: who calls what, on which port, with which request."""

    source: str  # cluster/namespace/workload-controller
    target: str  # cluster/namespace/service, or a hostname as the caller dials it
    port: int | None = None
    method: str = "GET"
    path: str = "/"
    headers: tuple[tuple[str, str], ...] = ()


@dataclass
class _Route:
    """What the caller's proxy decided, in mesh-neutral form."""

    code: str
    reason: str
    host: str
    port: int | None
    legs: list[Leg]
    steps: list[Step]
    cited: set[str]
    timeout: str | None = None
    retries: RetryPolicy | None = None
    fault: Fault | None = None
    mirror: Mirror | None = None
    headers: HeaderChanges = field(default_factory=HeaderChanges)


# ================================================================================================
# Resolution
# ================================================================================================


def resolve_source(fleet: Fleet, ref: str) -> Workload:
    """The workload ``cluster/namespace/controller-name`` names."""
    parts = ref.split("/")
    if len(parts) != 3 or not all(parts):
        raise UsageError(
            f"`--from {ref}` is not `cluster/namespace/workload`",
            hint="name the caller by its controller, e.g. `cluster-1/bookinfo/productpage-v1`",
        )
    found = fleet.workload_by_ref.get(ref)
    if found is None:
        cluster, ns, _ = parts
        near = sorted(k for k in fleet.workload_by_ref if k.startswith(f"{cluster}/{ns}/"))
        hint = f"workloads there: {', '.join(near[:8])}" if near else "`meshrules discover` lists the workloads"
        raise QueryError(f"no meshed workload `{ref}`", hint=hint)
    return found


def resolve_destination(fleet: Fleet, ref: str) -> Destination:
    """The destination ``cluster/namespace/service`` names."""
    parts = ref.split("/")
    if len(parts) != 3 or not all(parts):
        raise UsageError(
            f"`--to {ref}` is not `cluster/namespace/service`",
            hint="give a destination as `cluster/namespace/service` or a hostname without `/`",
        )
    found = fleet.destination_by_ref.get(ref)
    if found is None:
        raise QueryError(f"no destination `{ref}`", hint="`meshrules discover` lists the destinations")
    return found


def _ports_of(dest: Destination) -> list[int]:
    return [p.port for p in dest.ports]


def _need_port(what: str, ports: Sequence[int], port: int | None) -> int | None:
    if port is not None:
        return port
    if len(ports) == 1:
        return ports[0]
    if not ports:
        return None
    raise UsageError(
        f"`{what}` has {len(ports)} ports, give one with `--port`",
        hint="its ports: " + ", ".join(str(p) for p in ports),
    )


# ================================================================================================
# The answer
# ================================================================================================


def answer(fleet: Fleet, query: Query, *, nearest: bool = True, explain: bool = True) -> Verdict:
    """Answer one `why` query over ``fleet`` (raises `UsageError`/`QueryError` for bad arguments).

    ``explain=False`` leaves out the explanation, citations and assumptions (bulk answers:
    `matrix`, `diff`); codes, backends and configuration are the same.
    """
    caller = resolve_source(fleet, query.source)
    mesh = fleet.meshes.get(caller.mesh)
    base = _Base(fleet, caller, mesh, query)
    if "/" in query.target:
        dest = resolve_destination(fleet, query.target)
        port = _need_port(query.target, _ports_of(dest), query.port)
        host = dialed(fleet, caller, dest)
        if host is None:
            return base.stop(
                _would_dial(fleet, caller, dest),
                port,
                NOT_FEDERATED,
                not_federated_reason(fleet, dest, caller.mesh),
                _blocked_steps(fleet, dest, caller),
            )
    else:
        host, port, early = _resolve_host(base, query)
        if early is not None:
            return early
    call = Call(fleet, caller, mesh, host, port, query.method, query.path, query.headers, explain)
    route = _route_linkerd(call) if mesh is not None and mesh.type == MeshType.LINKERD else _route_istio(call)
    return base.finish(call, route, nearest)


class _Base:
    """The parts every answer shares, and the two ways to end one."""

    def __init__(self, fleet: Fleet, caller: Workload, mesh: Mesh | None, query: Query) -> None:
        self.fleet, self.caller, self.mesh, self.query = fleet, caller, mesh, query

    def _verdict(self, host: str, port: int | None, **fields: object) -> Verdict:
        q = self.query
        return Verdict(
            source_workload=q.source,
            source_identity=self.caller.identity,
            host=host,
            port=port,
            method=q.method,
            path=q.path,
            headers=tuple(sorted((k.lower(), v) for k, v in q.headers)),
            **fields,  # type: ignore[arg-type]
        )

    def stop(
        self, host: str, port: int | None, code: str, reason: str, steps: Sequence[Step] = (), cited: Sequence[str] = ()
    ) -> Verdict:
        """An answer for a request that never leaves the caller (unresolvable, not federated)."""
        hop = Hop("sidecar", self.caller.controller.name, cluster=self.caller.cluster)
        assumptions = self._assumptions(())
        return self._verdict(
            host,
            port,
            allowed=False,
            code=code,
            causes=(),
            hops=(hop,),
            reason=reason,
            explanation=tuple(steps),
            cited=tuple(sorted(set(cited))),
            assumptions=assumptions,
        )

    def _assumptions(self, legs: Sequence[Leg]) -> tuple[str, ...]:
        fleet, caller = self.fleet, self.caller
        root = (self.mesh.root_namespace if self.mesh is not None else None) or "istio-system"
        found = [code for code, _ in fleet.unmodelled.on_path("caller", caller.cluster, (caller.namespace, root))]
        for leg in legs:
            found += leg.assumptions
            dest = fleet.destination_by_ref.get(leg.backend.destination)
            if dest is not None:
                dmesh = fleet.meshes.get(dest.mesh or "")
                droot = (dmesh.root_namespace if dmesh is not None else None) or "istio-system"
                found += [c for c, _ in fleet.unmodelled.on_path("destination", dest.cluster, (dest.namespace, droot))]
        return tuple(sorted(set(found)))

    def finish(self, call: Call, route: _Route, nearest: bool) -> Verdict:
        """Assemble the verdict from the route and its judged legs."""
        legs = route.legs
        codes = [route.code] if route.code != ALLOWED else []
        codes += [leg.backend.code for leg in legs]
        # Each backend's own causes rank after its code, so adding them changes only `others`.
        codes += [c for leg in legs for c in leg.backend.causes if c in PATH_ORDER]
        code, others = first_code(codes)
        allowed = code == ALLOWED and (bool(legs) or route.code == ALLOWED)
        causes = list(others)
        # A backend that admits the call only as the gateway says so even when another backend
        # denies the whole answer: that share of the traffic gets in on the gateway's identity.
        causes += [
            c for leg in legs if leg.backend.code == ALLOWED for c in leg.backend.causes if c == GATEWAY_IDENTITY
        ]
        hops: list[Hop] = []
        for leg in legs:
            for h in leg.backend.hops:
                if h not in hops:
                    hops.append(h)
        if not hops:
            hops.append(Hop("sidecar", call.caller.controller.name, cluster=call.caller.cluster))
        steps = [_tidy(s) for s in route.steps]
        for leg in legs:
            for s in leg.steps:
                tidy = _tidy(s)
                if tidy not in steps:
                    steps.append(tidy)
        cited = set(route.cited)
        for leg in legs:
            cited |= leg.cited
        reached = [
            leg for leg in legs if leg.backend.code not in (NO_HEALTHY_UPSTREAM, NO_GATEWAY_ADDRESS, NOT_FEDERATED)
        ]
        reason = (
            route.reason
            if allowed
            else next((leg.backend.reason for leg in legs if leg.backend.code == code), route.reason)
        )
        miss = None
        if nearest and not allowed:
            miss = _nearest(call, code, legs)
        return self._verdict(
            route.host,
            route.port,
            allowed=allowed,
            code=code,
            causes=tuple(dict.fromkeys(causes)),
            backends=tuple(leg.backend for leg in legs),
            timeout=route.timeout,
            retries=route.retries,
            fault=route.fault,
            mirror=route.mirror,
            header_changes=route.headers,
            mtls=bool(reached) and all(leg.backend.mtls for leg in reached),
            hops=tuple(_dedupe(hops)),
            assumptions=self._assumptions(legs) if call.explain else (),
            explanation=tuple(steps),
            nearest_miss=miss,
            reason=reason,
            cited=tuple(sorted(cited)),
        )


def _nearest(call: Call, code: str, legs: Sequence[Leg]) -> NearestMiss | None:
    """The nearest miss for the verdict's ``code``: an edit that removes that obstacle, or None.

    An AccessPolicy edit cannot fix a request stopped before authorization: a rejected trust
    domain needs the mesh-config change; a mismatched mTLS has no single edit to offer.
    """
    if code == TRUST_DOMAIN_REJECTED:
        leg = next((leg for leg in legs if leg.backend.code == code), None)
        return trust_domain_miss(call, leg) if leg is not None else None
    if code == MTLS_MISMATCH:
        return None
    denial = next((leg.denial for leg in legs if leg.denial is not None and leg.backend.code == code), None)
    return nearest_miss(call, denial) if denial is not None else None


def _tidy(step: Step) -> Step:
    """Drop a derivation source that only repeats where a cited object was written."""
    shown = [o for o in step.objects if o.endswith(")")]
    kept = tuple(o for o in dict.fromkeys(step.objects) if not any(c.endswith(f"({o})") for c in shown))
    return replace(step, objects=kept)


def _dedupe(hops: Sequence[Hop]) -> list[Hop]:
    out: list[Hop] = []
    for h in hops:
        if h not in out:
            out.append(h)
    return out


# ================================================================================================
# Hostnames
# ================================================================================================


def _resolve_host(base: _Base, query: Query) -> tuple[str, int | None, Verdict | None]:
    """The FQDN and port for a dialed hostname, or an early answer when the caller cannot resolve it."""
    fleet, caller, mesh = base.fleet, base.caller, base.mesh
    host = query.target.rstrip(".").lower()
    ports: list[int] | None = None
    fqdn = host
    if mesh is not None and mesh.type == MeshType.LINKERD:
        svc = fleet.linkerd_routing(caller.cluster).resolve(host, caller.namespace)
        if svc is not None:
            ports = [p for p, _ in svc.ports]
            fqdn = f"{svc.name}.{svc.namespace}.svc.{fleet.domain(caller.cluster)}"
    else:
        fqdn, entry = fleet.istio_routing(caller.cluster, mesh).resolve(host, caller.namespace)
        if entry is not None:
            ports = [p.number for p in entry.ports]
    if ports is None:
        early = _known_elsewhere(base, host, query.port)
        if early is None:
            raise QueryError(
                f"unknown host `{query.target}`: no Service or ServiceEntry of any cluster has that name",
                hint="dial a Service as the caller would (`reviews`, `reviews.bookinfo`, or a federated name), "
                "or give a destination as `cluster/namespace/service`",
            )
        return host, query.port, early
    return fqdn, _need_port(fqdn, ports, query.port), None


def _split_local(host: str, namespace: str, domain: str) -> tuple[str, str] | None:
    """(service, namespace) of a Kubernetes Service name as the search path expands it."""
    h = host.removesuffix("." + domain).removesuffix(".svc")
    parts = h.split(".")
    if len(parts) == 1:
        return parts[0], namespace
    if len(parts) == 2:
        return parts[0], parts[1]
    return None


def _known_elsewhere(base: _Base, host: str, port: int | None) -> Verdict | None:
    """An answer for a name the caller cannot resolve but meshrules knows (else None: unknown host)."""
    fleet, caller = base.fleet, base.caller
    # A federated name of a destination (Istio `.global`, Linkerd mirror) not federated into this mesh.
    for edge in fleet.edges_by_host.get(host, ()):
        dest = fleet.destinations[edge.destination]
        own = fleet.edge_by_host.get((caller.mesh, host))
        if own is not None:
            dmesh = fleet.meshes.get(dest.mesh or "")
            if dmesh is not None and fleet.gateway(dmesh) is None:
                rule, sources = fleet.derivation(own.why)
                step = Step(
                    "federation",
                    rule,
                    (fleet.cite_policy(own.virtual_mesh), *sources),
                    f"`{host}` is federated, but {fleet.gateway_gap(dest.mesh)}",
                )
                return base.stop(
                    host,
                    port,
                    NO_GATEWAY_ADDRESS,
                    f"{fleet.gateway_gap(dest.mesh)}: nothing carries `{host}` there",
                    (step,),
                    (own.virtual_mesh,),
                )
            return base.stop(
                host,
                port,
                NO_ROUTE,
                f"`{host}` is federated into {caller.mesh} but no object declares it in the caller's cluster",
            )
        return base.stop(
            host,
            port,
            NOT_FEDERATED,
            not_federated_reason(fleet, dest, caller.mesh),
            _blocked_steps(fleet, dest, caller),
        )
    # A Linkerd mirror is a Service of the caller's cluster, dialed by any name the search path
    # expands (`api-east`, `api-east.shop`, ...), like a local Service.
    local = _split_local(host, caller.namespace, fleet.domain(caller.cluster))
    expanded = f"{local[0]}.{local[1]}.svc.{fleet.domain(caller.cluster)}" if local is not None else host
    for dest in fleet.destinations.values():
        dials = {
            _would_dial(fleet, caller, dest),
            _istio_global(fleet, caller, dest),
            _linkerd_mirror(fleet, caller, dest),
        }
        if dest.cluster != caller.cluster and (host in dials or expanded in dials):
            return base.stop(
                host if host in dials else expanded,
                port,
                NOT_FEDERATED,
                not_federated_reason(fleet, dest, caller.mesh),
                _blocked_steps(fleet, dest, caller),
            )
    if local is not None:
        svc, ns = local
        elsewhere = [d for d in fleet.destinations_by_service.get((ns, svc), ()) if d.cluster != caller.cluster]
        if elsewhere:
            d = elsewhere[0]
            fed = dialed(fleet, caller, d)
            hint = f"dial `{fed}`" if fed else "it is not federated into the caller's mesh"
            fqdn = f"{svc}.{ns}.svc.{fleet.domain(caller.cluster)}"
            return base.stop(
                fqdn,
                port,
                NO_ROUTE,
                f"`{fqdn}` does not exist in {caller.cluster}: {svc} runs in "
                f"{', '.join(sorted({e.cluster for e in elsewhere}))} ({hint})",
            )
    return None


def _istio_global(fleet: Fleet, caller: Workload, dest: Destination) -> str:
    member = fleet.membership.get(caller.mesh)
    suffix = member.hostname_suffix if member is not None else "global"
    return f"{dest.service}.{dest.namespace}.svc.{dest.cluster}.{suffix}"


def _linkerd_mirror(fleet: Fleet, caller: Workload, dest: Destination) -> str:
    """The mirror Service of ``dest`` in the caller's cluster (its cluster domain, spec §4)."""
    return f"{mirror_service_name(dest.service, dest.cluster)}.{dest.namespace}.svc.{fleet.domain(caller.cluster)}"


def _would_dial(fleet: Fleet, caller: Workload, dest: Destination) -> str:
    """The name a federated ``dest`` would have in the caller's mesh."""
    mesh = fleet.meshes.get(caller.mesh)
    if mesh is not None and mesh.type == MeshType.LINKERD:
        return _linkerd_mirror(fleet, caller, dest)
    return _istio_global(fleet, caller, dest)


def _blocked_steps(fleet: Fleet, dest: Destination, caller: Workload) -> tuple[Step, ...]:
    blocked = fleet.blocked.get((dest.name, caller.mesh))
    rule, sources = fleet.derivation(blocked.why if blocked is not None else None)
    objects: list[str] = list(sources)
    for mesh in (caller.mesh, dest.mesh or ""):
        member = fleet.membership.get(mesh)
        if member is not None and member.virtual_mesh is not None:
            objects.insert(0, fleet.cite_policy(member.virtual_mesh))
    return (
        Step(
            "federation",
            rule or "federation",
            tuple(dict.fromkeys(objects)),
            not_federated_reason(fleet, dest, caller.mesh),
        ),
    )


# ================================================================================================
# Istio callers
# ================================================================================================


def _istio_decision(call: Call) -> RouteDecision:
    """The caller sidecar's routing, memoised on what routing reads of the caller (`sim.memo`)."""
    fleet, caller, mesh = call.fleet, call.caller, call.mesh
    labels = fleet.route_keys(caller.cluster).labels_for(call.host, caller.pod_labels)
    root = mesh.root_namespace if mesh is not None else None
    dns = mesh.dns_capture if mesh is not None else None
    key = (
        "istio",
        caller.cluster,
        root,
        caller.namespace,
        labels,
        call.host,
        call.port,
        call.method,
        call.path,
        call.headers,
        dns,
    )
    decision: RouteDecision | None = fleet.route_memo.get(key)
    if decision is None:
        routing = fleet.istio_routing(caller.cluster, mesh)
        request = Request.http(method=call.method, path=call.path, headers=call.header_map)
        decision = routing.route(
            Caller(caller.namespace, labels, caller.cluster, caller.controller.name),
            call.host,
            call.port,
            request,
            dns_capture=dns,
        )
        fleet.route_memo[key] = decision
    return decision


def _unaddressed(call: Call, route: _Route) -> None:
    """A federated host with no route because its gateway has no address is NO_GATEWAY_ADDRESS."""
    fleet, caller = call.fleet, call.caller
    edge = fleet.edge_by_host.get((caller.mesh, call.host))
    if edge is None:
        return
    dest = fleet.destinations[edge.destination]
    dmesh = fleet.meshes.get(dest.mesh or "")
    if dmesh is None or fleet.gateway(dmesh) is not None:
        return
    route.code = NO_GATEWAY_ADDRESS
    route.reason = f"{fleet.gateway_gap(dest.mesh)}: meshrules emits no data path for `{call.host}`"
    route.cited.add(edge.virtual_mesh)
    if call.explain:
        gap = fleet.gaps.get((dest.name, caller.mesh))
        rule, sources = fleet.derivation(gap.why if gap is not None else edge.why)
        route.steps.append(
            Step(
                "federation",
                rule,
                (fleet.cite_policy(edge.virtual_mesh), *sources),
                gap.message if gap is not None else route.reason,
            )
        )


def _route_istio(call: Call) -> _Route:
    decision = _istio_decision(call)
    route = _Route(decision.code, decision.reason, decision.host, decision.port, [], [], set())
    if call.explain:
        route.steps.append(_istio_route_step(call, decision, route.cited))
    if decision.code == ISTIO_NO_ROUTE:
        _unaddressed(call, route)
    if decision.code == ISTIO_NO_ROUTE or not decision.backends:
        if decision.code == ROUTED:
            route.code = ALLOWED  # the sidecar answers itself (redirect, direct response)
        return route
    protocol = "http" if decision.protocol == "http" else "tcp"
    for b in decision.backends:
        route.legs.append(_istio_leg(call, b, protocol, route.cited))
    route.code = ALLOWED
    if protocol == "http":
        r = decision.retries
        route.retries = (
            RetryPolicy(r.attempts, r.per_try_timeout, r.source)
            if r is not None
            else RetryPolicy(0, None, "no retries")
        )
        route.timeout = decision.timeout
        f = decision.fault
        if f is not None:
            route.fault = Fault(f.delay, f.delay_percentage, f.abort_http_status, f.abort_percentage)
        if decision.mirrors:
            m = decision.mirrors[0]
            route.mirror = Mirror(_host_ref(call, m.host), m.port, m.percentage)
        route.headers = _header_changes(decision)
    return route


def _istio_route_step(call: Call, decision: RouteDecision, cited: set[str]) -> Step:
    fleet = call.fleet
    objects: list[str] = []
    rules: list[str] = []
    detail = decision.reason + "".join(f"; {n}" for n in decision.notes)
    if decision.registry:
        kind, _, key = decision.registry.partition(" ")
        entry = fleet.mesh_object(call.caller.cluster, kind, key)
        if entry is not None:
            cited.update(entry.policies)
    if decision.virtual_service is None:
        return Step("route", "istio/default-route", (), detail)
    vs = fleet.mesh_object(call.caller.cluster, "VirtualService", decision.virtual_service)
    if vs is None:
        return Step("route", "istio/virtual-service-first-match", (), detail)
    cited.update(vs.policies)
    if vs.emitted:
        dests = [d.name for d in _dialed_destinations(call, decision.host)]
        for app in _contributing(call, dests):
            if app.policy in vs.parents:
                rules += _traffic_rules(call, app, objects)
    objects.append(vs.cite())
    rule = ", ".join(dict.fromkeys(r for r in rules if r)) or "istio/virtual-service-first-match"
    return Step("route", rule, tuple(dict.fromkeys(objects)), detail)


def _traffic_rules(call: Call, app: TrafficApplication, objects: list[str]) -> list[str]:
    """The rules behind one contributing policy (its application, and precedence it won); cites it."""
    fleet = call.fleet
    rule, sources = fleet.derivation(app.why)
    rules = [rule]
    objects += [fleet.cite_policy(app.policy), *sources]
    for pr in fleet.precedence.get(app.destination, ()):
        if pr.winner == app.policy:
            won, more = fleet.derivation(pr.why)
            rules.append(won)
            objects += list(more)
    return rules


def _contributing(call: Call, destinations: Sequence[str]) -> list[TrafficApplication]:
    fleet = call.fleet
    apps = [a for d in destinations for a in fleet.traffic.get(d, ())]
    precedence = [p for d in destinations for p in fleet.precedence.get(d, ())]
    return contributing_policies(
        apps, precedence, fleet.policy_by_ref, call.caller, call.method, call.path, call.header_map
    )


def _dialed_destinations(call: Call, fqdn: str) -> list[Destination]:
    """The destinations a dialed FQDN stands for in the caller's cluster (local Service, federated host)."""
    fleet, caller = call.fleet, call.caller
    out = []
    local = _split_local(fqdn, caller.namespace, fleet.domain(caller.cluster))
    if local is not None:
        d = fleet.destination_of(caller.cluster, local[1], local[0])
        if d is not None:
            out.append(d)
    edge = fleet.edge_by_host.get((caller.mesh, fqdn))
    if edge is not None:
        out.append(fleet.destinations[edge.destination])
    return out


def _host_ref(call: Call, host: str) -> str:
    found = _dialed_destinations(call, host)
    return f"{found[0].cluster}/{found[0].namespace}/{found[0].service}" if found else host


def _istio_leg(call: Call, b: IstioBackend, protocol: str, cited: set[str]) -> Leg:
    fleet, caller = call.fleet, call.caller
    dest = _istio_backend_destination(call, b)
    subset = b.subset_labels
    if b.destination_rule is not None and call.explain:
        for key in b.destination_rule.rules:
            obj = fleet.mesh_object(caller.cluster, "DestinationRule", key)
            if obj is not None:
                cited.update(obj.policies)
    if dest is None:
        if b.code != ROUTED:
            return stopped(b.host, subset, b.weight, b.code, b.reason, own_hops(call, b.hops))
        return Leg(_external(b, own_hops(call, b.hops)))
    if b.code != ROUTED:
        return _broken(call, dest, subset, b.weight, b.code, b.reason, b.hops)
    return judge(
        call,
        dest,
        subset,
        b.weight,
        b.port or call.port or 0,
        b.hops,
        destination_rule=b.destination_rule,
        subset_name=b.subset,
        protocol=protocol,
    )


def _broken(
    call: Call,
    dest: Destination,
    subset: tuple[tuple[str, str], ...] | None,
    weight: int,
    code: str,
    reason: str,
    hops: Sequence[Hop],
) -> Leg:
    """A backend the caller's proxy cannot send to; in another cluster without a gateway address,
    that is NO_GATEWAY_ADDRESS (the rule set federated it, but nothing carries the traffic)."""
    fleet, caller = call.fleet, call.caller
    ref = f"{dest.cluster}/{dest.namespace}/{dest.service}"
    dmesh = fleet.meshes.get(dest.mesh or "")
    edge = fleet.edge.get((dest.name, caller.mesh))
    if dest.cluster == caller.cluster or dmesh is None or edge is None or fleet.gateway(dmesh) is not None:
        return stopped(ref, subset, weight, code, reason, own_hops(call, hops))
    leg = stopped(
        ref,
        subset,
        weight,
        NO_GATEWAY_ADDRESS,
        f"{fleet.gateway_gap(dest.mesh)}: nothing carries `{edge.host}` there",
        own_hops(call, hops),
    )
    leg.cited.add(edge.virtual_mesh)
    if call.explain:
        gap = fleet.gaps.get((dest.name, caller.mesh))
        rule, sources = fleet.derivation(gap.why if gap is not None else edge.why)
        leg.steps.append(
            Step(
                "federation",
                rule,
                (fleet.cite_policy(edge.virtual_mesh), *sources),
                gap.message if gap is not None else leg.backend.reason,
            )
        )
    return leg


def _external(b: IstioBackend, hops: Sequence[Hop]) -> Backend:
    return Backend(
        b.host,
        b.subset_labels,
        b.weight,
        True,
        ALLOWED,
        f"{b.reason} (not a meshrules destination: no authorization is simulated)",
        tuple(hops),
    )


def _istio_backend_destination(call: Call, b: IstioBackend) -> Destination | None:
    fleet, caller = call.fleet, call.caller
    kind, _, key = b.service.partition(" ")
    if kind == "Service":
        ns, _, name = key.partition("/")
        return fleet.destination_of(caller.cluster, ns, name)
    edge = fleet.edge_by_host.get((caller.mesh, b.host))
    if edge is None:
        edges = fleet.edges_by_host.get(b.host)
        edge = edges[0] if edges else None
    return fleet.destinations.get(edge.destination) if edge is not None else None


def _header_changes(decision: RouteDecision) -> HeaderChanges:
    add: dict[str, str] = {}
    remove: list[str] = []
    radd: dict[str, str] = {}
    rremove: list[str] = []
    ops = [decision.headers] + [b.headers for b in decision.backends]
    for h in ops:
        if h is None:
            continue
        add.update(dict(h.request_set))
        add.update(dict(h.request_add))
        remove += h.request_remove
        radd.update(dict(h.response_set))
        radd.update(dict(h.response_add))
        rremove += h.response_remove
    return HeaderChanges(
        tuple(sorted(add.items())), tuple(sorted(set(remove))), tuple(sorted(radd.items())), tuple(sorted(set(rremove)))
    )


# ================================================================================================
# Linkerd callers
# ================================================================================================


def _linkerd_decision(call: Call) -> LinkerdRouteDecision:
    """The caller proxy's routing, memoised (Linkerd routing reads the caller's namespace and identity)."""
    fleet, caller = call.fleet, call.caller
    key = (
        "linkerd",
        caller.cluster,
        caller.namespace,
        caller.identity,
        call.host,
        call.port,
        call.method,
        call.path,
        call.headers,
    )
    decision: LinkerdRouteDecision | None = fleet.route_memo.get(key)
    if decision is None:
        request = Request.http(method=call.method, path=call.path, headers=call.header_map)
        decision = fleet.linkerd_routing(caller.cluster).route(
            LinkerdCaller(caller.namespace, caller.identity, caller.cluster, caller.controller.name),
            call.host,
            call.port,
            request,
        )
        fleet.route_memo[key] = decision
    return decision


def _route_linkerd(call: Call) -> _Route:
    decision = _linkerd_decision(call)
    route = _Route(decision.code, decision.reason, call.host, decision.port, [], [], set())
    if call.explain:
        route.steps.append(_linkerd_route_step(call, decision, route.cited))
    if decision.code == NO_ROUTE:
        _unaddressed(call, route)
    if decision.code == NO_ROUTE or not decision.backends:
        if decision.code == ROUTED:
            route.code = ALLOWED
        return route
    protocol = "http" if decision.protocol == "http" else "tcp"
    for b in decision.backends:
        route.legs.append(_linkerd_leg(call, b, protocol))
    route.code = ALLOWED
    if protocol == "http":
        t = decision.timeouts
        route.timeout = t.request or t.response
        r = decision.retries
        route.retries = (
            RetryPolicy(max(r.limit, 1), r.timeout, r.source)
            if r is not None
            else RetryPolicy(0, None, "linkerd default: no retries")
        )
    return route


def _linkerd_route_step(call: Call, decision: LinkerdRouteDecision, cited: set[str]) -> Step:
    fleet = call.fleet
    detail = decision.reason + "".join(f"; {n}" for n in decision.notes)
    if decision.route is None:
        return Step("route", "linkerd/default-route", (), detail)
    kind, _, rest = decision.route.partition(" ")
    key = rest.split(" ")[0]
    obj = fleet.mesh_object(call.caller.cluster, kind, key)
    if obj is None:
        return Step("route", "linkerd/http-route-precedence", (), detail)
    cited.update(obj.policies)
    objects: list[str] = []
    rules: list[str] = []
    if obj.emitted:
        dests = [d.name for d in _linkerd_dialed(call, decision.service)]
        for app in _contributing(call, dests):
            if app.policy in obj.parents:
                rules += _traffic_rules(call, app, objects)
    objects.append(obj.cite())
    rule = ", ".join(dict.fromkeys(r for r in rules if r)) or "linkerd/http-route-precedence"
    return Step("route", rule, tuple(dict.fromkeys(objects)), detail)


def _linkerd_dialed(call: Call, service: str) -> list[Destination]:
    fleet, caller = call.fleet, call.caller
    ns, _, name = service.partition("/")
    local = fleet.destination_of(caller.cluster, ns, name)
    if local is not None:
        return [local]
    host = f"{name}.{ns}.svc.{fleet.domain(caller.cluster)}"
    edge = fleet.edge_by_host.get((caller.mesh, host))
    return [fleet.destinations[edge.destination]] if edge is not None else []


def _linkerd_leg(call: Call, b: LinkerdBackend, protocol: str) -> Leg:
    fleet, caller = call.fleet, call.caller
    ns, _, name = b.service.partition("/")
    if b.remote_cluster:
        remote_name = b.remote_service.split(".")[0] if b.remote_service else name
        dest = fleet.destination_of(b.remote_cluster, ns, remote_name)
    else:
        dest = fleet.destination_of(caller.cluster, ns, name)
    if dest is None:
        return stopped(
            b.service,
            None,
            b.weight,
            b.code if b.code != ROUTED else NO_HEALTHY_UPSTREAM,
            b.reason,
            own_hops(call, b.hops),
        )
    if b.code != ROUTED:
        return _broken(call, dest, None, b.weight, b.code, b.reason, b.hops)
    return judge(
        call,
        dest,
        None,
        b.weight,
        b.port or call.port or 0,
        b.hops,
        identity_seen=b.identity_seen,
        protocol=protocol,
        leg_causes=b.causes,
    )
