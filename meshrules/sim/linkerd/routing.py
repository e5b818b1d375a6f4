"""Linkerd client-side routing as a pure evaluator: raw objects + one caller + one Service:port.

What the caller's ``linkerd-proxy`` does with an outbound request (Linkerd's "HTTPRoutes",
"Timeouts" and "Retries" reference pages and the policy controller's outbound index): the
HTTPRoutes whose parent is the Service (and port) pick the rule by Gateway API precedence, the rule
splits traffic over weighted ``backendRefs``, and timeouts and retries come from the route's or
the Service's annotations and the rule's ``timeouts``. Its neighbour ``meshrules.sim.linkerd.policy``
judges the request where it lands; for a Linkerd multicluster mirror Service (``<svc>-<cluster>``)
this module reports the ``linkerd-gateway`` hop and, in gateway mode, the gateway identity the
destination will see instead of the caller's.

Rules modelled:

* Routes apply to a Service when a ``parentRefs`` entry names it (kind ``Service``, group core) and
  either names no port or the dialed port. Producer routes (in the Service's namespace) apply to
  every client; consumer routes (in the client's namespace) only to clients there; both compete by
  precedence. No route: every request goes to the Service. Routes but no match: HTTP 404.
* Backends: ``backendRefs`` of kind Service need a ``port``; ``weight`` defaults to 1 and shares are
  weight/sum (reported as integer percentages summing to 100), weight 0 gets nothing; a rule
  without backends sends to the parent Service; an unknown or invalid backend answers HTTP 500 for
  its share (NO_HEALTHY_UPSTREAM).
* Timeouts: ``timeout.linkerd.io/{request,response,idle}`` on the route replace all of the
  Service's; the rule's ``timeouts.request`` counts as the request timeout unless the annotation
  sets one; ``0s`` means none.
* Retries: ``retry.linkerd.io/{http,limit,timeout}`` on the route replace the Service's; limit
  defaults to 1 when any is set; none set anywhere: Linkerd does not retry.
* A ServiceProfile for the Service (client namespace first, then the Service's) takes over: the
  HTTPRoutes and the annotations are ignored; its routes give timeouts and retryability and its
  ``dstOverrides`` the split.
* Opaque ports (``config.linkerd.io/opaque-ports`` on the Service) carry TCP: no HTTP routing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import re2  # type: ignore[import-untyped]

from meshrules.errors import QueryError
from meshrules.sim.linkerd.httproute import (
    CompiledHttpRoute,
    MatchMiss,
    compile_http_route,
    is_http_route,
    select_route,
)
from meshrules.sim.linkerd.policy import LinkerdConfig, service_account_identity
from meshrules.sim.objects import (
    Hop,
    Obj,
    annotations_of,
    as_list,
    as_map,
    dedupe,
    first_int,
    group_of,
    kind_of,
    labels_of,
    name_of,
    namespace_of,
    parse_duration_ms,
    spec,
)
from meshrules.sim.request import Request

__all__ = [
    "GATEWAY_IDENTITY",
    "NO_HEALTHY_UPSTREAM",
    "NO_ROUTE",
    "ROUTED",
    "LinkerdBackend",
    "LinkerdCaller",
    "LinkerdRetries",
    "LinkerdRouteDecision",
    "LinkerdRouting",
    "LinkerdTimeouts",
    "ServiceView",
    "compile_routing",
]

ROUTED = "ALLOWED"
NO_ROUTE = "NO_ROUTE"
NO_HEALTHY_UPSTREAM = "NO_HEALTHY_UPSTREAM"
# Cause (API §4): in gateway mode the destination sees the remote gateway's identity.
GATEWAY_IDENTITY = "GATEWAY_IDENTITY"

_MIRRORED = "mirror.linkerd.io/mirrored-service"
_CLUSTER_NAME = "mirror.linkerd.io/cluster-name"
_REMOTE_DISCOVERY = "mirror.linkerd.io/remote-discovery"
_GATEWAY_IDENTITY = "mirror.linkerd.io/remote-gateway-identity"
_REMOTE_FQDN = "mirror.linkerd.io/remote-svc-fq-name"
_OPAQUE_PORTS = "config.linkerd.io/opaque-ports"
_TIMEOUT_KEYS = ("timeout.linkerd.io/request", "timeout.linkerd.io/response", "timeout.linkerd.io/idle")
_RETRY_KEYS = ("retry.linkerd.io/http", "retry.linkerd.io/limit", "retry.linkerd.io/timeout")
# The multicluster gateway's inbound port (linkerd multicluster install: `mc-gateway`).
_GATEWAY_PORT = 4143


@dataclass(frozen=True, slots=True)
class LinkerdCaller:
    """The meshed workload whose proxy routes: namespace, identity, cluster and workload name."""

    namespace: str
    identity: str | None = None
    cluster: str = ""
    workload: str = ""


@dataclass(frozen=True, slots=True)
class LinkerdTimeouts:
    """Request, response (per backend request) and idle timeouts, as duration strings."""

    request: str | None = None
    response: str | None = None
    idle: str | None = None
    source: str = "none"


@dataclass(frozen=True, slots=True)
class LinkerdRetries:
    """The retry policy: up to ``limit`` retries of responses matching ``conditions``."""

    limit: int
    conditions: str
    timeout: str | None
    source: str


@dataclass(frozen=True, slots=True)
class LinkerdBackend:
    """One weighted backend: the Service, its share in percent and the path to it.

    ``identity_seen`` is the client identity the destination's proxy sees: the caller's, or the
    remote gateway's in multicluster gateway mode (then ``causes`` holds GATEWAY_IDENTITY).
    """

    service: str  # namespace/name
    port: int | None
    weight: int
    configured_weight: int | None
    code: str
    reason: str
    hops: tuple[Hop, ...]
    identity_seen: str | None
    remote_cluster: str = ""
    remote_service: str = ""
    causes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LinkerdRouteDecision:
    """Where the caller's proxy sends the request, with what policy, and why."""

    code: str
    reason: str
    service: str
    port: int | None
    protocol: str
    route: str | None = None  # "HTTPRoute ns/name (group)" | "ServiceProfile ns/name" | None (default)
    rule: int | None = None
    match: int | None = None
    backends: tuple[LinkerdBackend, ...] = ()
    timeouts: LinkerdTimeouts = LinkerdTimeouts()
    retries: LinkerdRetries | None = None
    status: int | None = None
    misses: tuple[MatchMiss, ...] = ()
    defaults: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    filters: tuple[str, ...] = ()

    @property
    def routed(self) -> bool:
        """True when the request reaches at least one backend."""
        return self.code == ROUTED


@dataclass(frozen=True, slots=True)
class ServiceView:
    """A Kubernetes Service as the outbound index reads it (ports, labels, annotations)."""

    namespace: str
    name: str
    ports: tuple[tuple[int, str], ...]
    labels: Mapping[str, str]
    annotations: Mapping[str, str]

    @property
    def key(self) -> str:
        """``namespace/name``."""
        return f"{self.namespace}/{self.name}"


def _shares(weights: Sequence[int]) -> list[int]:
    total = sum(weights)
    if total <= 0:
        return [0 for _ in weights]
    exact = [w * 100 / total for w in weights]
    floors = [int(x) for x in exact]
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - floors[i]), i))
    for i in order[: 100 - sum(floors)]:
        floors[i] += 1
    return floors


def _duration(value: Any) -> str | None:
    """A duration string unless it is zero ("zero means no timeout")."""
    if value is None:
        return None
    ms = parse_duration_ms(value)
    if ms is None or ms == 0:
        return None
    return str(value)


class LinkerdRouting:
    """Services, HTTPRoutes, ServiceProfiles and mirror Endpoints of one cluster, compiled."""

    def __init__(self, services: Sequence[ServiceView], routes: Sequence[CompiledHttpRoute],
                 profiles: Mapping[tuple[str, str], Obj], endpoints: Mapping[tuple[str, str], Obj],
                 config: LinkerdConfig, cluster_domain: str) -> None:
        self.config = config
        self.cluster_domain = cluster_domain
        self._services = {(s.namespace, s.name): s for s in services}
        self._routes: dict[tuple[str, str], list[CompiledHttpRoute]] = {}
        for r in sorted(routes, key=lambda r: r.order):
            for p in r.parents:
                if p.kind == "Service" and p.group in ("", "core"):
                    bucket = self._routes.setdefault((p.namespace, p.name), [])
                    if r not in bucket:
                        bucket.append(r)
        self._profiles = dict(profiles)
        self._endpoints = dict(endpoints)

    # ------------------------------------------------------------------------------------------
    def resolve(self, host: str, namespace: str) -> ServiceView | None:
        """The Service a caller in ``namespace`` reaches by dialing ``host`` (DNS search path)."""
        h = host.rstrip(".").lower()
        suffix = f".svc.{self.cluster_domain}"
        if h.endswith(suffix):
            h = h[: -len(suffix)]
        elif h.endswith(".svc"):
            h = h[:-4]
        parts = h.split(".")
        if len(parts) == 1:
            return self._services.get((namespace, parts[0]))
        if len(parts) == 2:
            return self._services.get((parts[1], parts[0]))
        return None

    def route(self, caller: LinkerdCaller, host: str, port: int | None = None,
              request: Request | None = None) -> LinkerdRouteDecision:
        """Route one request from ``caller`` to ``host:port`` as its Linkerd proxy would."""
        svc = self.resolve(host, caller.namespace)
        if svc is None:
            return LinkerdRouteDecision(NO_ROUTE, f"host `{host}` is not a Service the caller can resolve", host,
                                        port, "unknown")
        if port is None:
            if len(svc.ports) != 1:
                raise QueryError(f"Service `{svc.key}` has {len(svc.ports)} ports, give one",
                                 hint="pass --port with one of " + ", ".join(str(p) for p, _ in svc.ports))
            port = svc.ports[0][0]
        if port not in {p for p, _ in svc.ports}:
            return LinkerdRouteDecision(NO_ROUTE, f"Service {svc.key} has no port {port}", svc.key, port, "unknown")
        req = request if request is not None else Request.http(destination_port=port)
        opaque = port in _ports(svc.annotations.get(_OPAQUE_PORTS))
        if opaque or req.protocol == "tcp":
            tcp_backends = (self._backend(caller, svc.key, port, 100, None),)
            note = f"port {port} is opaque (config.linkerd.io/opaque-ports)" if opaque else "TCP connection"
            return LinkerdRouteDecision(_overall(tcp_backends), f"{note}: no HTTP routing, all traffic to {svc.key}",
                                        svc.key, port, "tcp", backends=tcp_backends, notes=(note,))
        profile = self._profile(svc, caller.namespace)
        if profile is not None:
            return self._with_profile(caller, svc, port, req, profile)
        routes = [r for r in self._routes.get((svc.namespace, svc.name), ())
                  if r.namespace in (svc.namespace, caller.namespace)
                  and any(p.kind == "Service" and p.namespace == svc.namespace and p.name == svc.name
                          and p.port in (None, port) for p in r.parents)]
        backends: tuple[LinkerdBackend, ...]
        if not routes:
            backends = (self._backend(caller, svc.key, port, 100, None),)
            timeouts = self._timeouts(None, None, svc)
            retries = self._retries(None, svc)
            defaults = ["route"] + (["retries"] if retries is None else []) + (
                ["timeouts"] if timeouts.source == "none" else [])
            return LinkerdRouteDecision(
                _overall(backends), f"no HTTPRoute has Service {svc.key} port {port} as parent: all requests go to "
                "the Service", svc.key, port, "http", backends=backends, timeouts=timeouts, retries=retries,
                defaults=tuple(defaults))
        selection = select_route(routes, req)
        if selection.winner is None:
            return LinkerdRouteDecision(
                NO_ROUTE, f"HTTPRoutes attach to Service {svc.key} and none matches the request (HTTP 404)",
                svc.key, port, "http", status=404, misses=selection.misses)
        win = selection.winner
        route, rule = win.route, win.rule
        backends = self._rule_backends(caller, svc, port, route, rule.backend_refs)
        timeouts = self._timeouts(route, rule.timeouts, svc)
        retries = self._retries(route, svc)
        filters, status = _filters(rule.filters)
        defaults = (["retries"] if retries is None else []) + (["timeouts"] if timeouts.source == "none" else [])
        where = f"{route.ref} rule[{rule.index}]" + (f" match[{win.match}]" if win.match is not None else "")
        if status is not None:
            return LinkerdRouteDecision(ROUTED, f"{where} matched and redirects (HTTP {status})", svc.key, port,
                                        "http", route.ref, rule.index, win.match, (), timeouts, retries, status,
                                        selection.misses, tuple(defaults), (), filters)
        code = _overall(backends)
        summary = ", ".join(f"{b.service}:{b.port} {b.weight}%" for b in backends)
        return LinkerdRouteDecision(code, f"{where} matched: {summary}", svc.key, port, "http", route.ref, rule.index,
                                    win.match, backends, timeouts, retries,
                                    500 if code == NO_HEALTHY_UPSTREAM else None, selection.misses, tuple(defaults),
                                    (), filters)

    # ------------------------------------------------------------------------------------------
    def _profile(self, svc: ServiceView, client_ns: str) -> Obj | None:
        fqdn = f"{svc.name}.{svc.namespace}.svc.{self.cluster_domain}"
        return self._profiles.get((client_ns, fqdn)) or self._profiles.get((svc.namespace, fqdn))

    def _with_profile(self, caller: LinkerdCaller, svc: ServiceView, port: int, req: Request,
                      profile: Obj) -> LinkerdRouteDecision:
        s = spec(profile)
        ref = f"ServiceProfile {namespace_of(profile)}/{name_of(profile)}"
        timeout: str | None = None
        retries: LinkerdRetries | None = None
        matched = None
        for i, r in enumerate(as_map(x) for x in as_list(s.get("routes"))):
            if _sp_condition(as_map(r.get("condition")), req):
                matched = i
                timeout = _duration(r.get("timeout"))
                if r.get("isRetryable") is True:
                    budget = as_map(s.get("retryBudget"))
                    ratio = budget.get("retryRatio", 0.2)
                    retries = LinkerdRetries(-1, "5xx", None, f"{ref} routes[{i}] isRetryable (retry budget ratio "
                                                             f"{ratio})")
                break
        overrides = [as_map(x) for x in as_list(s.get("dstOverrides"))]
        if overrides:
            names = [str(o.get("authority") or "") for o in overrides]
            weights = [_weight_units(o.get("weight")) for o in overrides]
            backends = []
            for authority, share, w in zip(names, _shares(weights), weights, strict=True):
                if share == 0:
                    continue
                host, _, p = authority.partition(":")
                target = self.resolve(host, svc.namespace)
                key = target.key if target else host
                backends.append(self._backend(caller, key, first_int(p) or port, share, w))
            backend_t = tuple(backends)
        else:
            backend_t = (self._backend(caller, svc.key, port, 100, None),)
        notes = (f"{ref} exists: Linkerd uses it and ignores HTTPRoutes and timeout/retry annotations",)
        what = f" routes[{matched}] matched" if matched is not None else " (no route matched: default)"
        return LinkerdRouteDecision(_overall(backend_t), ref + what,
                                    svc.key, port, "http", ref, matched, None, backend_t,
                                    LinkerdTimeouts(timeout, None, None, ref if timeout else "none"), retries,
                                    notes=notes)

    def _rule_backends(self, caller: LinkerdCaller, svc: ServiceView, port: int, route: CompiledHttpRoute,
                       refs: Sequence[Any]) -> tuple[LinkerdBackend, ...]:
        if not refs:
            # Linkerd sends a rule without backends to the parent Service.
            return (self._backend(caller, svc.key, port, 100, None),)
        parsed: list[tuple[str, int | None, int, str]] = []
        for raw in refs:
            b = as_map(raw)
            weight = first_int(b.get("weight"))
            w = 1 if weight is None else weight
            kind = str(b.get("kind") or "Service")
            group = str(b.get("group") or "")
            ns = str(b.get("namespace") or route.namespace)
            problem = ""
            if kind != "Service" or group not in ("", "core"):
                problem = f"unsupported backend type {group or 'core'} {kind}"
            elif first_int(b.get("port")) is None:
                problem = f"missing port for backend Service {b.get('name')}"
            elif (ns, str(b.get("name") or "")) not in self._services:
                problem = f"backend Service {ns}/{b.get('name')} does not exist"
            parsed.append((f"{ns}/{b.get('name')}", first_int(b.get("port")), w, problem))
        out = []
        for (key, p, w, problem), share in zip(parsed, _shares([max(w, 0) for _, _, w, _ in parsed]), strict=True):
            if share == 0 and len(parsed) > 1:
                continue
            if problem:
                out.append(LinkerdBackend(key, p, share, w, NO_HEALTHY_UPSTREAM,
                                          f"{problem}: its share of requests fails with HTTP 500", (), None))
            else:
                out.append(self._backend(caller, key, p, share, w))
        return tuple(out)

    def _backend(self, caller: LinkerdCaller, key: str, port: int | None, share: int,
                 weight: int | None) -> LinkerdBackend:
        ns, _, name = key.partition("/")
        svc = self._services.get((ns, name))
        proxy = Hop("linkerd-proxy", caller.workload or caller.namespace, cluster=caller.cluster,
                    identity=caller.identity)
        if svc is None:
            return LinkerdBackend(key, port, share, weight, NO_HEALTHY_UPSTREAM, f"Service {key} does not exist",
                                  (proxy,), None)
        if svc.labels.get(_MIRRORED) == "true" or _REMOTE_DISCOVERY in svc.labels:
            return self._mirror_backend(caller, svc, port, share, weight, proxy)
        return LinkerdBackend(key, port, share, weight, ROUTED, f"routed to Service {key} port {port}",
                              (proxy, Hop("destination", key, port=port, cluster=caller.cluster)), caller.identity)

    def _mirror_backend(self, caller: LinkerdCaller, svc: ServiceView, port: int | None, share: int,
                        weight: int | None, proxy: Hop) -> LinkerdBackend:
        cluster = svc.labels.get(_CLUSTER_NAME) or svc.labels.get(_REMOTE_DISCOVERY, "")
        remote_name = svc.name[: -len(cluster) - 1] if cluster and svc.name.endswith(f"-{cluster}") else svc.name
        remote_fqdn = svc.annotations.get(_REMOTE_FQDN) or f"{remote_name}.{svc.namespace}.svc.{self.cluster_domain}"
        dest = Hop("destination", f"{svc.namespace}/{remote_name}", port=port, cluster=cluster,
                   identity=caller.identity)
        if _REMOTE_DISCOVERY in svc.labels:
            return LinkerdBackend(svc.key, port, share, weight, ROUTED,
                                  f"mirror Service {svc.key} of {remote_fqdn} in cluster `{cluster}`: pod-to-pod "
                                  "(remote discovery), the caller's identity is preserved", (proxy, dest),
                                  caller.identity, cluster, remote_fqdn)
        endpoints = self._endpoints.get((svc.namespace, svc.name))
        ep_ann = annotations_of(endpoints) if endpoints is not None else {}
        gateway_id = (svc.annotations.get(_GATEWAY_IDENTITY) or ep_ann.get(_GATEWAY_IDENTITY)
                      or service_account_identity("linkerd-gateway", "linkerd-multicluster", self.config))
        address, gw_port = _endpoint_address(endpoints)
        if endpoints is not None and address is None:
            return LinkerdBackend(svc.key, port, share, weight, NO_HEALTHY_UPSTREAM,
                                  f"mirror Service {svc.key} has no gateway endpoint: no healthy upstream",
                                  (proxy,), None, cluster, remote_fqdn)
        gateway = Hop("linkerd-gateway", f"linkerd-multicluster/linkerd-gateway@{cluster}", address,
                      gw_port or _GATEWAY_PORT, cluster, gateway_id)
        dest = Hop("destination", f"{svc.namespace}/{remote_name}", port=port, cluster=cluster, identity=gateway_id)
        return LinkerdBackend(svc.key, port, share, weight, ROUTED,
                              f"mirror Service {svc.key} of {remote_fqdn} in cluster `{cluster}`: through the "
                              f"remote linkerd-gateway, so the destination sees the gateway's identity "
                              f"`{gateway_id}`", (proxy, gateway, dest), gateway_id, cluster, remote_fqdn,
                              (GATEWAY_IDENTITY,))

    # ------------------------------------------------------------------------------------------
    @staticmethod
    def _timeouts(route: CompiledHttpRoute | None, rule_timeouts: Any, svc: ServiceView) -> LinkerdTimeouts:
        route_ann = {k: v for k, v in (route.annotations if route else ()) if k in _TIMEOUT_KEYS}
        field = as_map(rule_timeouts)
        if route is not None and (route_ann or field):
            request = _duration(route_ann.get("timeout.linkerd.io/request"))
            if "timeout.linkerd.io/request" not in route_ann:
                request = _duration(field.get("request"))
            response = _duration(route_ann.get("timeout.linkerd.io/response")) or _duration(field.get("backendRequest"))
            return LinkerdTimeouts(request, response, _duration(route_ann.get("timeout.linkerd.io/idle")), route.ref)
        svc_ann = {k: v for k, v in svc.annotations.items() if k in _TIMEOUT_KEYS}
        if svc_ann:
            return LinkerdTimeouts(_duration(svc_ann.get("timeout.linkerd.io/request")),
                                   _duration(svc_ann.get("timeout.linkerd.io/response")),
                                   _duration(svc_ann.get("timeout.linkerd.io/idle")), f"Service {svc.key}")
        return LinkerdTimeouts()

    @staticmethod
    def _retries(route: CompiledHttpRoute | None, svc: ServiceView) -> LinkerdRetries | None:
        route_ann = {k: v for k, v in (route.annotations if route else ()) if k in _RETRY_KEYS}
        ann, source = (route_ann, route.ref) if route is not None and route_ann else (
            {k: v for k, v in svc.annotations.items() if k in _RETRY_KEYS}, f"Service {svc.key}")
        if not ann:
            return None  # Linkerd does not retry unless configured
        limit = first_int(ann.get("retry.linkerd.io/limit"))
        if limit == 0 and "retry.linkerd.io/http" not in ann and "retry.linkerd.io/timeout" not in ann:
            return None
        return LinkerdRetries(limit if limit else 1, ann.get("retry.linkerd.io/http", ""),
                              _duration(ann.get("retry.linkerd.io/timeout")), source)


def _ports(value: str | None) -> set[int]:
    out: set[int] = set()
    for part in (value or "").split(","):
        part = part.strip()
        lo, _, hi = part.partition("-")
        if hi and lo.isdigit() and hi.isdigit():
            out.update(range(int(lo), int(hi) + 1))
        elif part.isdigit():
            out.add(int(part))
    return out


def _weight_units(value: Any) -> int:
    """A ServiceProfile/TrafficSplit weight (``500m``, ``1``, ``100``) in thousandths."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value * 1000
    text = str(value or "0")
    if text.endswith("m") and text[:-1].isdigit():
        return int(text[:-1])
    return int(text) * 1000 if text.isdigit() else 0


def _sp_condition(cond: Mapping[str, Any], req: Request) -> bool:
    if not cond:
        return False
    if cond.get("method") and str(cond["method"]).upper() != req.method.upper():
        return False
    if cond.get("pathRegex") is not None:
        try:
            pattern = re2.compile(str(cond["pathRegex"]))
        except Exception:  # an invalid regex matches nothing
            return False
        if pattern.fullmatch(req.path.partition("?")[0]) is None:
            return False
    if as_list(cond.get("all")) and not all(_sp_condition(as_map(c), req) for c in as_list(cond.get("all"))):
        return False
    if as_list(cond.get("any")) and not any(_sp_condition(as_map(c), req) for c in as_list(cond.get("any"))):
        return False
    return not (isinstance(cond.get("not"), Mapping) and _sp_condition(as_map(cond.get("not")), req))


def _filters(filters: Sequence[Any]) -> tuple[tuple[str, ...], int | None]:
    names: list[str] = []
    status = None
    for f in (as_map(x) for x in filters):
        kind = str(f.get("type") or "")
        names.append(kind)
        if kind == "RequestRedirect":
            status = first_int(as_map(f.get("requestRedirect")).get("statusCode")) or 302
    return tuple(names), status


def _endpoint_address(endpoints: Obj | None) -> tuple[str | None, int | None]:
    if endpoints is None:
        return None, None
    for subset in (as_map(x) for x in as_list(endpoints.get("subsets"))):
        addresses = [as_map(a) for a in as_list(subset.get("addresses"))]
        ports = [as_map(p) for p in as_list(subset.get("ports"))]
        if addresses:
            return str(addresses[0].get("ip") or addresses[0].get("hostname") or ""), (
                first_int(ports[0].get("port")) if ports else None)
    return None, None


def _overall(backends: Sequence[LinkerdBackend]) -> str:
    if not backends:
        return NO_HEALTHY_UPSTREAM
    return ROUTED if any(b.code == ROUTED for b in backends) else backends[0].code


def compile_routing(objects: Iterable[Obj], *, config: LinkerdConfig | None = None,
                    cluster_domain: str = "cluster.local") -> LinkerdRouting:
    """Compile Services, HTTPRoutes, ServiceProfiles and mirror Endpoints among ``objects``."""
    objs = dedupe(objects)
    cfg = config or LinkerdConfig.from_objects(objs)
    services: list[ServiceView] = []
    routes: list[CompiledHttpRoute] = []
    profiles: dict[tuple[str, str], Obj] = {}
    endpoints: dict[tuple[str, str], Obj] = {}
    for o in objs:
        kind = kind_of(o)
        if kind == "Service" and group_of(o) == "":
            ports = tuple((n, str(p.get("name") or "")) for p in (as_map(x) for x in as_list(spec(o).get("ports")))
                          if (n := first_int(p.get("port"))) is not None)
            services.append(ServiceView(namespace_of(o), name_of(o), ports, labels_of(o), annotations_of(o)))
        elif is_http_route(o):
            routes.append(compile_http_route(o))
        elif kind == "ServiceProfile" and group_of(o) == "linkerd.io":
            profiles[(namespace_of(o), name_of(o))] = o
        elif kind == "Endpoints" and group_of(o) == "":
            endpoints[(namespace_of(o), name_of(o))] = o
    return LinkerdRouting(services, routes, profiles, endpoints, cfg, cluster_domain)
