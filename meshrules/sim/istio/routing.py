"""Istio client-side routing as a pure evaluator: raw objects + one caller + one host:port -> a route.

This is what the caller's sidecar does with an outbound request before any server-side check: which
registry entry the dialed name is, which VirtualService (if any) applies, which HTTP/TCP/TLS route
matches, where the route sends the request (weighted destinations, subsets, ports, east-west
gateway hops) and with which policies (timeout, retries, fault, mirror, header changes, CORS). Its
neighbours: ``meshrules.sim.istio.mtls`` judges the connection each backend gets (it reads the
DestinationRule this module picks), ``meshrules.sim.istio.authz`` judges the request at the
destination. The `why` query composes the three.

Every answer is data that explains itself: the VirtualService and route that matched (or the first
field that excluded each earlier route), the VirtualServices that lost the host, the
DestinationRule that defined the subset, and which values are Istio's defaults.

Istio semantics modelled, each from Istio's documentation (the tests cite the sentences):

* Registry: Kubernetes Services (``<name>.<ns>.svc.<clusterDomain>``, visibility from the
  ``networking.istio.io/exportTo`` annotation) and ServiceEntry hosts (``exportTo``). A host that is
  neither is NO_ROUTE. A ServiceEntry endpoint at an east-west gateway address adds the
  ``eastwest-gateway`` hop.
* Port protocol: ``appProtocol``, else the port name prefix (``http-``, ``grpc``, ``tcp``...), else
  ServiceEntry ``protocol``; unnamed ports are sniffed, so an HTTP request is routed as HTTP.
* VirtualService selection for a sidecar: ``gateways`` empty or containing ``mesh``; ``exportTo``
  (default ``*``); hosts with short names resolved in the VirtualService's namespace; wildcards
  (``*.x``). Several VirtualServices for one host are not merged for sidecars: an exact host beats a
  wildcard, a longer wildcard a shorter one, and then the oldest wins (istiod's
  ``mostSpecificWildcardVsIndex`` and creation-time order). A VirtualService that produces no route
  for the port (every match bound to another port or other source labels) does not claim the host.
* HTTP routing: first matching route; match blocks are ORed, fields in a block ANDed; ``uri``,
  ``method``, ``authority``, ``scheme`` StringMatch (exact / prefix / RE2 regex, full match),
  ``ignoreUriCase``, ``headers`` (``{}`` = presence), ``withoutHeaders``, ``queryParams`` (exact /
  regex), ``port``, ``sourceLabels``, ``sourceNamespace``, match-level ``gateways``. No route matches
  -> HTTP 404 (NO_ROUTE). No VirtualService -> the default route to the host.
* Destinations: weight/(sum of weights), reported as integer percentages summing to 100; a zero
  weight gets no traffic; a destination port defaults to the service's only port, else the dialed
  port. A subset must be defined by the DestinationRule that applies (else 503: NO_HEALTHY_UPSTREAM);
  a subset (or service) without endpoints is NO_HEALTHY_UPSTREAM too, when endpoints are known.
* DestinationRule lookup: client namespace, then service namespace, then the root namespace; in a
  namespace the most specific host wins; several rules for that host merge (first subset
  definition and first top-level trafficPolicy win); ``exportTo``; ``workloadSelector`` applies
  only in the client's own namespace.
* Policies: ``timeout`` (default: none); ``retries`` (none: Istio's default policy of 2 attempts on
  ``connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes``, or MeshConfig
  ``defaultHttpRetryPolicy`` when set; ``attempts: 0`` disables); ``fault`` (a percentage left
  unspecified injects nothing); ``mirror`` / ``mirrorPercentage`` (absent = 100%) and ``mirrors``;
  ``headers``; ``corsPolicy``; ``rewrite``; ``redirect`` and ``directResponse`` (the sidecar
  answers); one level of ``delegate``.

Not modelled: Sidecar egress ``hosts`` and EnvoyFilters (when the caller's or the root namespace
has any, the answer carries SIDECAR_EGRESS_NOT_MODELLED / ENVOYFILTER_NOT_MODELLED in
``assumptions``), outbound traffic policy REGISTRY_ONLY, the ``ALLOW_ANY`` passthrough for unknown
IPs, locality load balancing, outlier detection ejections,
``destinationSubnets``, path normalisation on outbound.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, TypeAlias
from urllib.parse import parse_qsl

import re2  # type: ignore[import-untyped]

from meshrules.errors import Diagnostic, QueryError, Severity
from meshrules.sim.objects import (
    Hop,
    Obj,
    annotations_of,
    as_list,
    as_map,
    creation_key,
    dedupe,
    first_int,
    kind_of,
    name_of,
    namespace_of,
    object_key,
    sorted_pairs,
    spec,
    str_list,
    subset_of,
)
from meshrules.sim.request import Request

__all__ = [
    "DEFAULT_RETRY_ATTEMPTS",
    "DEFAULT_RETRY_ON",
    "ENVOYFILTER_NOT_MODELLED",
    "NO_DNS",
    "NO_HEALTHY_UPSTREAM",
    "NO_ROUTE",
    "ROUTED",
    "SIDECAR_EGRESS_NOT_MODELLED",
    "Backend",
    "Caller",
    "Cors",
    "DestinationRuleChoice",
    "EastWestGateway",
    "Fault",
    "HeaderOps",
    "Hop",
    "IstioRouting",
    "Mirror",
    "RegistryEntry",
    "Retries",
    "RouteDecision",
    "RouteMiss",
    "compile_routing",
    "host_matches",
    "resolve_short_name",
]

# Codes (API §6). ROUTED is the spec's ALLOWED: routing does not stop the request.
ROUTED = "ALLOWED"
NO_ROUTE = "NO_ROUTE"
NO_DNS = "NO_DNS"
# Not in API §6's list ("more may be added"): Envoy answers 503 because the route points at a
# cluster that does not exist (undefined subset, unknown host) or has no endpoint (UH).
NO_HEALTHY_UPSTREAM = "NO_HEALTHY_UPSTREAM"

# Assumption codes: objects that change sidecar routing but are not modelled here.
SIDECAR_EGRESS_NOT_MODELLED = "SIDECAR_EGRESS_NOT_MODELLED"
ENVOYFILTER_NOT_MODELLED = "ENVOYFILTER_NOT_MODELLED"

# istiod's retry.DefaultPolicy (pilot/pkg/networking/core/route/retry): the route retry policy when
# a VirtualService route sets none, and when there is no VirtualService at all.
DEFAULT_RETRY_ATTEMPTS = 2
DEFAULT_RETRY_ON = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"

_MESH = "mesh"
_DEFAULT_ROOT_NAMESPACE = "istio-system"
_EXPORT_ANNOTATION = "networking.istio.io/exportTo"
_HTTP_PROTOCOLS = frozenset({"http", "http2", "grpc", "grpc-web", "h2c", "kubernetes.io/h2c", "kubernetes.io/ws",
                             "kubernetes.io/wss"})
_TLS_PROTOCOLS = frozenset({"https", "tls"})
_TCP_PROTOCOLS = frozenset({"tcp", "mongo", "mysql", "redis", "udp", "thrift", "mqtt"})
# Envoy's default redirect status (HTTPRedirect.redirectCode "defaults to 301").
_DEFAULT_REDIRECT_CODE = 301

Protocol: TypeAlias = Literal["http", "tcp", "tls", "auto"]


# ================================================================================================
# Inputs
# ================================================================================================


@dataclass(frozen=True, slots=True)
class Caller:
    """The workload whose sidecar routes: its namespace, pod labels and cluster (for hops)."""

    namespace: str
    labels: tuple[tuple[str, str], ...] = ()
    cluster: str = ""
    workload: str = ""

    @classmethod
    def of(cls, namespace: str, labels: Mapping[str, str] | None = None, *, cluster: str = "",
           workload: str = "") -> Caller:
        """Build a caller from a label mapping."""
        return cls(namespace, sorted_pairs(dict(labels or {})), cluster, workload)

    @property
    def label_map(self) -> dict[str, str]:
        """The caller's labels as a dict."""
        return dict(self.labels)


@dataclass(frozen=True, slots=True)
class EastWestGateway:
    """An east-west gateway address that ServiceEntry endpoints may point at (``Mesh.gateways``)."""

    address: str
    port: int | None = None
    cluster: str = ""
    name: str = ""


# ================================================================================================
# The answer
# ================================================================================================


@dataclass(frozen=True, slots=True)
class Retries:
    """The route's retry policy; ``attempts == 0`` means retries are disabled."""

    attempts: int
    retry_on: str
    per_try_timeout: str | None
    source: str  # "istio default" or "VirtualService ns/name http[i]"


@dataclass(frozen=True, slots=True)
class Fault:
    """Client-side fault injection; a percentage left unspecified injects nothing (0.0)."""

    delay: str | None
    delay_percentage: float
    abort_http_status: int | None
    abort_grpc_status: str | None
    abort_percentage: float


@dataclass(frozen=True, slots=True)
class Mirror:
    """A mirror destination and the percentage of traffic copied to it (absent = 100)."""

    host: str
    port: int | None
    subset: str | None
    percentage: float


@dataclass(frozen=True, slots=True)
class HeaderOps:
    """Header manipulation of a route or a destination."""

    request_set: tuple[tuple[str, str], ...] = ()
    request_add: tuple[tuple[str, str], ...] = ()
    request_remove: tuple[str, ...] = ()
    response_set: tuple[tuple[str, str], ...] = ()
    response_add: tuple[tuple[str, str], ...] = ()
    response_remove: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Cors:
    """A route's CORS policy, origins as ``(kind, value)`` StringMatch pairs."""

    allow_origins: tuple[tuple[str, str], ...]
    allow_methods: tuple[str, ...]
    allow_headers: tuple[str, ...]
    expose_headers: tuple[str, ...]
    max_age: str | None
    allow_credentials: bool | None


@dataclass(frozen=True, slots=True)
class DestinationRuleChoice:
    """The DestinationRule(s) that apply to one host for one client, merged as istiod merges them.

    ``traffic_policy`` and subset policies are the raw mappings of the user's objects; ``subsets``
    maps a subset name to ``(labels, trafficPolicy, rule that defined it)``.
    """

    host: str
    rules: tuple[str, ...]  # namespace/name, in merge order
    namespace: str
    lookup: str  # "client namespace" | "service namespace" | "root namespace"
    traffic_policy: Mapping[str, Any]
    traffic_policy_from: str | None
    subsets: Mapping[str, tuple[tuple[tuple[str, str], ...], Mapping[str, Any], str]]


@dataclass(frozen=True, slots=True)
class Backend:
    """One weighted destination of the matched route, with what the caller's sidecar knows of it.

    ``weight`` is this backend's share in percent (the shares of a route sum to 100); ``code`` is
    ROUTED, or NO_HEALTHY_UPSTREAM when Envoy has no healthy cluster for it.
    """

    host: str
    port: int | None
    subset: str | None
    subset_labels: tuple[tuple[str, str], ...] | None
    weight: int
    configured_weight: int | None
    service: str  # "Service ns/name", "ServiceEntry ns/name", or "" when not in the registry
    code: str
    reason: str
    destination_rule: DestinationRuleChoice | None
    hops: tuple[Hop, ...]
    headers: HeaderOps | None = None
    location: str = "MESH_INTERNAL"


@dataclass(frozen=True, slots=True)
class RouteMiss:
    """Why an earlier route did not take the request: the first field that excluded it."""

    virtual_service: str
    route: int
    name: str
    field: str
    detail: str


@dataclass(frozen=True, slots=True)
class RouteDecision:
    """Where the caller's sidecar sends a request, and why — data, not log lines.

    ``code`` is ROUTED (ALLOWED), NO_ROUTE (unknown host, or no route matched: HTTP 404), NO_DNS,
    or NO_HEALTHY_UPSTREAM (every backend is broken). ``status`` is set when the sidecar answers
    itself (404, redirect, direct response, 503). ``defaults`` lists the fields whose value is an
    Istio default rather than configured.
    """

    code: str
    reason: str
    host: str
    port: int | None
    protocol: str
    virtual_service: str | None = None
    route: int | None = None
    route_name: str = ""
    match: int | None = None
    backends: tuple[Backend, ...] = ()
    timeout: str | None = None
    retries: Retries | None = None
    fault: Fault | None = None
    mirrors: tuple[Mirror, ...] = ()
    headers: HeaderOps | None = None
    cors: Cors | None = None
    rewrite: tuple[tuple[str, str], ...] = ()
    status: int | None = None
    shadowed: tuple[str, ...] = ()
    misses: tuple[RouteMiss, ...] = ()
    defaults: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    registry: str = ""  # "Service ns/name" / "ServiceEntry ns/name" the dialed host resolved to
    assumptions: tuple[str, ...] = ()  # what was not modelled but exists (API §6 assumption codes)

    @property
    def routed(self) -> bool:
        """True when routing lets the request through to at least one backend."""
        return self.code == ROUTED


# ================================================================================================
# Hosts
# ================================================================================================


def resolve_short_name(host: str, namespace: str, cluster_domain: str = "cluster.local") -> str:
    """Istio's short-name rule: a host without dots means ``<host>.<namespace>.svc.<domain>``.

    Wildcards and names with dots are kept as written (istiod's ``ResolveShortnameToFQDN``).
    """
    if host == "*" or host.startswith("*") or "." in host or not host:
        return host
    return f"{host}.{namespace}.svc.{cluster_domain}"


def host_matches(pattern: str, host: str) -> bool:
    """Whether ``pattern`` (exact, ``*`` or ``*.suffix``) covers ``host`` (istiod ``host.Name.Matches``)."""
    if pattern == "*":
        return True
    if pattern.startswith("*"):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return pattern == host


def _specificity(pattern: str, host: str) -> tuple[int, int] | None:
    """Rank of a matching pattern: exact (1, len) beats wildcards, longer wildcards beat shorter."""
    if not host_matches(pattern, host):
        return None
    return (1, len(pattern)) if not pattern.startswith("*") else (0, len(pattern))


def _visible(export_to: frozenset[str], own_namespace: str, namespace: str) -> bool:
    """Istio ``exportTo``: empty/``*`` = all namespaces, ``.`` = own, ``~`` = none, else listed names."""
    if not export_to or "*" in export_to:
        return True
    if "~" in export_to:
        return False
    return namespace in export_to or ("." in export_to and namespace == own_namespace)


# ================================================================================================
# Compiled registry
# ================================================================================================


@dataclass(frozen=True, slots=True)
class _Port:
    number: int
    name: str
    protocol: Protocol
    target_port: int | str | None


@dataclass(frozen=True, slots=True)
class _Endpoint:
    address: str
    ports: tuple[tuple[str, int], ...]
    labels: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class RegistryEntry:
    """An entry of Istio's service registry: a Kubernetes Service or one host of a ServiceEntry."""

    host: str
    kind: str  # Service | ServiceEntry
    namespace: str
    name: str
    ports: tuple[_Port, ...]
    export_to: frozenset[str]
    addresses: tuple[str, ...]
    location: str
    endpoints: tuple[_Endpoint, ...] | None  # None: not listed (Service, or workloadSelector)
    order: tuple[float, str, str]

    @property
    def ref(self) -> str:
        """``Service ns/name`` or ``ServiceEntry ns/name``."""
        return f"{self.kind} {self.namespace}/{self.name}"

    def port(self, number: int) -> _Port | None:
        """The port ``number`` of the entry, or None."""
        for port in self.ports:
            if port.number == number:
                return port
        return None


def _protocol(*candidates: Any) -> Protocol:
    """Istio's protocol selection: explicit ``appProtocol`` / ``protocol``, else the name prefix."""
    for raw in candidates:
        if not isinstance(raw, str) or not raw:
            continue
        value = raw.lower()
        prefix = value.split("-", 1)[0] if "/" not in value else value
        for candidate in (value, prefix):
            if candidate in _HTTP_PROTOCOLS:
                return "http"
            if candidate in _TLS_PROTOCOLS:
                return "tls"
            if candidate in _TCP_PROTOCOLS:
                return "tcp"
    return "auto"


def _from_service_entry(obj: Obj) -> list[RegistryEntry]:
    s = spec(obj)
    ns = namespace_of(obj)
    ports = tuple(
        _Port(n, str(p.get("name") or ""), _protocol(p.get("protocol"), p.get("name")), first_int(p.get("targetPort")))
        for p in (as_map(x) for x in as_list(s.get("ports")))
        if (n := first_int(p.get("number"))) is not None
    )
    endpoints: tuple[_Endpoint, ...] | None = None
    if s.get("endpoints") is not None or s.get("workloadSelector") is None:
        endpoints = tuple(
            _Endpoint(
                str(e.get("address") or ""),
                tuple(sorted((str(k), v) for k, v in as_map(e.get("ports")).items() if isinstance(v, int))),
                sorted_pairs({str(k): str(v) for k, v in as_map(e.get("labels")).items()}),
            )
            for e in (as_map(x) for x in as_list(s.get("endpoints")))
        )
        # DNS resolution without endpoints resolves the host itself: one implicit endpoint.
        if not endpoints and str(s.get("resolution") or "NONE") in ("DNS", "DNS_ROUND_ROBIN"):
            endpoints = None
    location = str(s.get("location") or "MESH_EXTERNAL")
    out = []
    for host in str_list(s.get("hosts")):
        out.append(RegistryEntry(
            host=host, kind="ServiceEntry", namespace=ns, name=name_of(obj), ports=ports,
            export_to=frozenset(str_list(s.get("exportTo"))), addresses=tuple(str_list(s.get("addresses"))),
            location=location, endpoints=endpoints, order=creation_key(obj, name_first=True),
        ))
    return out


def _from_service(obj: Obj, cluster_domain: str) -> RegistryEntry:
    s = spec(obj)
    ns = namespace_of(obj)
    ports = tuple(
        _Port(n, str(p.get("name") or ""), _protocol(p.get("appProtocol"), p.get("name")), p.get("targetPort"))
        for p in (as_map(x) for x in as_list(s.get("ports")))
        if (n := first_int(p.get("port"))) is not None
    )
    export = annotations_of(obj).get(_EXPORT_ANNOTATION, "")
    addresses = tuple(a for a in [str(s.get("clusterIP") or ""), *str_list(s.get("clusterIPs"))] if a and a != "None")
    return RegistryEntry(
        host=f"{name_of(obj)}.{ns}.svc.{cluster_domain}", kind="Service", namespace=ns, name=name_of(obj),
        ports=ports, export_to=frozenset(x.strip() for x in export.split(",") if x.strip()),
        addresses=tuple(dict.fromkeys(addresses)), location="MESH_INTERNAL", endpoints=None,
        order=creation_key(obj, name_first=True),
    )


# ================================================================================================
# Compiled VirtualService
# ================================================================================================


@dataclass(frozen=True, slots=True)
class _Ctx:
    """The request attributes route matching reads, computed once per query."""

    path: str  # without the query string
    full_path: str
    query: Mapping[str, str]
    method: str
    headers: Mapping[str, str]
    authority: str
    scheme: str
    port: int
    sni: str
    caller_namespace: str
    caller_labels: Mapping[str, str]


Test: TypeAlias = Callable[[_Ctx], bool]


@dataclass(frozen=True, slots=True)
class _Check:
    field: str
    test: Test


@dataclass(frozen=True, slots=True)
class _Match:
    """One match block: its checks are ANDed. ``static`` checks depend only on caller and port."""

    index: int
    name: str
    static: tuple[_Check, ...]  # port, sourceLabels, sourceNamespace, gateways
    dynamic: tuple[_Check, ...]  # request attributes

    def applies(self, ctx: _Ctx) -> bool:
        """Whether istiod keeps this block for this proxy and port (the static part)."""
        return all(c.test(ctx) for c in self.static)

    def failing(self, ctx: _Ctx) -> list[str]:
        return [c.field for c in (*self.static, *self.dynamic) if not c.test(ctx)]


@dataclass(frozen=True, slots=True)
class _Destination:
    host: str
    subset: str | None
    port: int | None
    weight: int | None
    headers: HeaderOps | None


@dataclass(frozen=True, slots=True)
class _Route:
    """One route of a VirtualService (http, tcp or tls), compiled."""

    index: int
    name: str
    matches: tuple[_Match, ...] | None  # None: no match field, matches everything
    destinations: tuple[_Destination, ...]
    raw: Mapping[str, Any]
    delegate: tuple[str, str] | None = None

    def field_prefix(self, kind: str) -> str:
        return f"{kind}[{self.index}]"


@dataclass(frozen=True, slots=True)
class _VirtualService:
    namespace: str
    name: str
    hosts: tuple[str, ...]
    for_mesh: bool
    export_to: frozenset[str]
    http: tuple[_Route, ...]
    tcp: tuple[_Route, ...]
    tls: tuple[_Route, ...]
    order: tuple[float, str, str]

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class _DestinationRule:
    namespace: str
    name: str
    host: str
    export_to: frozenset[str]
    selector: tuple[tuple[str, str], ...] | None
    traffic_policy: Mapping[str, Any] | None
    subsets: tuple[tuple[str, tuple[tuple[str, str], ...], Mapping[str, Any]], ...]
    order: tuple[float, str, str]

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


def _string_test(spec_: Any, read: Callable[[_Ctx], str | None], *, ignore_case: bool = False,
                 diagnostics: list[Diagnostic] | None = None, where: str = "") -> Test:
    """A StringMatch (exact / prefix / RE2 regex, full match) on the value ``read`` returns.

    An absent value never matches a value check; an empty StringMatch (``{}``) checks presence.
    """
    m = as_map(spec_)
    if "exact" in m:
        want = str(m["exact"])
        if ignore_case:
            low = want.lower()
            return lambda ctx: (v := read(ctx)) is not None and v.lower() == low
        return lambda ctx: read(ctx) == want
    if "prefix" in m:
        pre = str(m["prefix"])
        if ignore_case:
            lpre = pre.lower()
            return lambda ctx: (v := read(ctx)) is not None and v.lower().startswith(lpre)
        return lambda ctx: (v := read(ctx)) is not None and v.startswith(pre)
    if "regex" in m:
        try:
            pattern = re2.compile(str(m["regex"]))
        except Exception:  # re2.error is not exported under a stable name
            if diagnostics is not None:
                diagnostics.append(Diagnostic(
                    "MR0911", f"regex `{m['regex']}` is not valid RE2; the match can never succeed",
                    Severity.WARNING, field=where))
            return lambda ctx: False
        return lambda ctx: (v := read(ctx)) is not None and pattern.fullmatch(v) is not None
    return lambda ctx: read(ctx) is not None


def _header_reader(name: str) -> Callable[[_Ctx], str | None]:
    return lambda ctx: ctx.headers.get(name)


def _query_reader(name: str) -> Callable[[_Ctx], str | None]:
    return lambda ctx: ctx.query.get(name)


def _read_method(ctx: _Ctx) -> str | None:
    return ctx.method


def _read_authority(ctx: _Ctx) -> str | None:
    return ctx.authority


def _read_scheme(ctx: _Ctx) -> str | None:
    return ctx.scheme


def _read_path(ctx: _Ctx) -> str | None:
    return ctx.path


def _read_full_path(ctx: _Ctx) -> str | None:
    return ctx.full_path


def _without(spec_: Any, inner: Test, read: Callable[[_Ctx], str | None]) -> Test:
    """A `withoutHeaders` entry as Envoy runs it: ``invert_match`` on the translated header matcher.

    Envoy fails a value matcher (exact, prefix, regex) on an absent header *before* inverting, so
    an inverted value test needs the header present (istio/istio#50988, #49537). Only an inverted
    presence test (`{}`, or Istio's catch-all regex `*`) matches an absent header.
    """
    m = as_map(spec_)
    value_test = any(k in m for k in ("exact", "prefix", "regex")) and m.get("regex") != "*"
    if value_test:
        return lambda ctx: read(ctx) is not None and not inner(ctx)
    return lambda ctx: read(ctx) is None


def _port_is(port: int) -> Test:
    return lambda ctx: ctx.port == port


def _source_labels(wanted: Mapping[str, str]) -> Test:
    return lambda ctx: subset_of(wanted, ctx.caller_labels)


def _source_namespace(wanted: str) -> Test:
    return lambda ctx: ctx.caller_namespace == wanted


def _constant(value: bool) -> Test:
    return lambda ctx: value


def _sni_in(hosts: tuple[str, ...]) -> Test:
    return lambda ctx: any(host_matches(h, ctx.sni) for h in hosts)


def _static_checks(m: Mapping[str, Any], where: str) -> list[_Check]:
    """Checks istiod evaluates when it builds the proxy's config: port, source, match gateways."""
    static: list[_Check] = []
    port = first_int(m.get("port"))
    if port is not None:
        static.append(_Check(f"{where}.port", _port_is(port)))
    src_labels = {str(k): str(v) for k, v in as_map(m.get("sourceLabels")).items()}
    if src_labels:
        static.append(_Check(f"{where}.sourceLabels", _source_labels(src_labels)))
    if m.get("sourceNamespace"):
        static.append(_Check(f"{where}.sourceNamespace", _source_namespace(str(m.get("sourceNamespace")))))
    gateways = str_list(m.get("gateways"))
    if gateways:
        # A match-level gateway list without `mesh` keeps this block off every sidecar.
        static.append(_Check(f"{where}.gateways", _constant(_MESH in gateways)))
    return static


def _compile_match(index: int, m: Mapping[str, Any], where: str, diagnostics: list[Diagnostic]) -> _Match:
    dynamic: list[_Check] = []
    ignore_case = bool(m.get("ignoreUriCase"))
    if m.get("uri") is not None:
        uri = as_map(m.get("uri"))
        # Envoy: exact and regex path matches ignore the query string; prefix reads the raw :path.
        reader = _read_full_path if "prefix" in uri else _read_path
        # "The case will be ignored only in the case of exact and prefix URI matches."
        dynamic.append(_Check(f"{where}.uri", _string_test(uri, reader, ignore_case=ignore_case and "regex" not in uri,
                                                           diagnostics=diagnostics, where=f"{where}.uri")))
    readers: tuple[tuple[str, Callable[[_Ctx], str | None]], ...] = (
        ("method", _read_method), ("authority", _read_authority), ("scheme", _read_scheme))
    for key, read in readers:
        if m.get(key) is not None:
            dynamic.append(_Check(f"{where}.{key}", _string_test(m.get(key), read, diagnostics=diagnostics,
                                                                 where=f"{where}.{key}")))
    for hname, hspec in sorted(as_map(m.get("headers")).items()):
        name = str(hname).lower()
        if name in ("uri", "scheme", "method", "authority"):
            continue  # "The keys uri, scheme, method, and authority will be ignored."
        dynamic.append(_Check(f"{where}.headers.{name}", _string_test(hspec, _header_reader(name),
                                                                      diagnostics=diagnostics,
                                                                      where=f"{where}.headers.{name}")))
    for hname, hspec in sorted(as_map(m.get("withoutHeaders")).items()):
        name = str(hname).lower()
        inner = _string_test(hspec, _header_reader(name), diagnostics=diagnostics,
                             where=f"{where}.withoutHeaders.{name}")
        dynamic.append(_Check(f"{where}.withoutHeaders.{name}", _without(hspec, inner, _header_reader(name))))
    for qname, qspec in sorted(as_map(m.get("queryParams")).items()):
        qs = as_map(qspec)
        if "prefix" in qs and "exact" not in qs and "regex" not in qs:
            diagnostics.append(Diagnostic(
                "MR0912", f"query parameter `{qname}` uses prefix matching, which Istio does not support",
                Severity.WARNING, field=f"{where}.queryParams.{qname}",
                hint="use exact or regex; meshrules treats it as a presence check"))
            qs = {}
        dynamic.append(_Check(f"{where}.queryParams.{qname}", _string_test(qs, _query_reader(str(qname)),
                                                                           diagnostics=diagnostics)))
    return _Match(index, str(m.get("name") or ""), tuple(_static_checks(m, where)), tuple(dynamic))


def _compile_l4_match(index: int, m: Mapping[str, Any], where: str, tls: bool) -> _Match:
    dynamic: list[_Check] = []
    if tls:
        dynamic.append(_Check(f"{where}.sniHosts", _sni_in(tuple(str_list(m.get("sniHosts"))))))
    return _Match(index, "", tuple(_static_checks(m, where)), tuple(dynamic))


def _header_ops(raw: Any) -> HeaderOps | None:
    h = as_map(raw)
    if not h:
        return None
    req, resp = as_map(h.get("request")), as_map(h.get("response"))

    def pairs(m: Any) -> tuple[tuple[str, str], ...]:
        return tuple(sorted((str(k), str(v)) for k, v in as_map(m).items()))

    return HeaderOps(pairs(req.get("set")), pairs(req.get("add")), tuple(str_list(req.get("remove"))),
                     pairs(resp.get("set")), pairs(resp.get("add")), tuple(str_list(resp.get("remove"))))


def _destinations(route: Mapping[str, Any], ns: str, cluster_domain: str) -> tuple[_Destination, ...]:
    out = []
    for rd in (as_map(x) for x in as_list(route.get("route"))):
        d = as_map(rd.get("destination"))
        host = str(d.get("host") or "")
        if not host:
            continue
        out.append(_Destination(
            resolve_short_name(host, ns, cluster_domain), str(d["subset"]) if d.get("subset") else None,
            first_int(as_map(d.get("port")).get("number")), first_int(rd.get("weight")), _header_ops(rd.get("headers")),
        ))
    return tuple(out)


def _compile_vs(obj: Obj, cluster_domain: str, diagnostics: list[Diagnostic]) -> _VirtualService:
    s = spec(obj)
    ns = namespace_of(obj)
    gateways = str_list(s.get("gateways"))
    http: list[_Route] = []
    for i, r in enumerate(as_map(x) for x in as_list(s.get("http"))):
        where = f"spec.http[{i}]"
        matches = None
        if as_list(r.get("match")):
            matches = tuple(_compile_match(j, as_map(m), f"{where}.match[{j}]", diagnostics)
                            for j, m in enumerate(as_list(r.get("match"))))
        delegate = None
        if isinstance(r.get("delegate"), Mapping):
            d = as_map(r.get("delegate"))
            delegate = (str(d.get("namespace") or ns), str(d.get("name") or ""))
        http.append(_Route(i, str(r.get("name") or ""), matches, _destinations(r, ns, cluster_domain), r, delegate))
    l4: dict[str, list[_Route]] = {"tcp": [], "tls": []}
    for kind in ("tcp", "tls"):
        for i, r in enumerate(as_map(x) for x in as_list(s.get(kind))):
            where = f"spec.{kind}[{i}]"
            matches = None
            if as_list(r.get("match")):
                matches = tuple(_compile_l4_match(j, as_map(m), f"{where}.match[{j}]", kind == "tls")
                                for j, m in enumerate(as_list(r.get("match"))))
            l4[kind].append(_Route(i, "", matches, _destinations(r, ns, cluster_domain), r))
    return _VirtualService(
        namespace=ns, name=name_of(obj),
        hosts=tuple(resolve_short_name(h, ns, cluster_domain) for h in str_list(s.get("hosts"))),
        for_mesh=not gateways or _MESH in gateways,
        export_to=frozenset(str_list(s.get("exportTo"))),
        http=tuple(http), tcp=tuple(l4["tcp"]), tls=tuple(l4["tls"]),
        order=creation_key(obj, name_first=True),
    )


def _compile_dr(obj: Obj, cluster_domain: str) -> _DestinationRule:
    s = spec(obj)
    ns = namespace_of(obj)
    sel = as_map(as_map(s.get("workloadSelector")).get("matchLabels"))
    return _DestinationRule(
        namespace=ns, name=name_of(obj),
        host=resolve_short_name(str(s.get("host") or ""), ns, cluster_domain),
        export_to=frozenset(str_list(s.get("exportTo"))),
        selector=sorted_pairs({str(k): str(v) for k, v in sel.items()}) if sel else None,
        traffic_policy=as_map(s.get("trafficPolicy")) if isinstance(s.get("trafficPolicy"), Mapping) else None,
        subsets=tuple(
            (str(sub.get("name") or ""), sorted_pairs({str(k): str(v) for k, v in as_map(sub.get("labels")).items()}),
             as_map(sub.get("trafficPolicy")))
            for sub in (as_map(x) for x in as_list(s.get("subsets")))
        ),
        order=creation_key(obj, name_first=True),
    )


# ================================================================================================
# The evaluator
# ================================================================================================


def _percent(value: Any, default: float) -> float:
    v = as_map(value).get("value")
    if isinstance(v, int | float) and not isinstance(v, bool):
        return float(v)
    return default


def _shares(weights: Sequence[int]) -> list[int]:
    """Integer percentages proportional to ``weights`` that sum to 100 (largest remainder, stable)."""
    total = sum(weights)
    if total <= 0:
        return [0 for _ in weights]
    exact = [w * 100 / total for w in weights]
    floors = [int(x) for x in exact]
    left = 100 - sum(floors)
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - floors[i]), i))
    for i in order[:left]:
        floors[i] += 1
    return floors


def _split_path(path: str) -> tuple[str, dict[str, str]]:
    base, _, query = path.partition("?")
    params: dict[str, str] = {}
    for k, v in parse_qsl(query, keep_blank_values=True):
        params.setdefault(k, v)  # Envoy's query matchers read the first occurrence
    return base, params


class IstioRouting:
    """All routing objects of one cluster, compiled; :meth:`route` answers one query.

    Build it with :func:`compile_routing`. Registry lookups are dictionaries and VirtualService
    candidates are indexed by host, so a query costs a few dictionary lookups plus the matching of
    one VirtualService's routes.
    """

    def __init__(
        self,
        entries: Sequence[RegistryEntry],
        virtual_services: Sequence[_VirtualService],
        destination_rules: Sequence[_DestinationRule],
        diagnostics: Sequence[Diagnostic],
        *,
        cluster_domain: str,
        root_namespace: str,
        gateways: Sequence[EastWestGateway],
        endpoint_labels: Mapping[str, Sequence[Mapping[str, str]]] | None,
        unmodelled: Sequence[tuple[str, str]] = (),
        default_retry_policy: Mapping[str, Any] | None = None,
    ) -> None:
        self.cluster_domain = cluster_domain
        self.default_retry_policy = default_retry_policy
        self._unmodelled: dict[str, set[str]] = {}
        for ns, code in unmodelled:
            self._unmodelled.setdefault(ns, set()).add(code)
        self.root_namespace = root_namespace
        self.diagnostics = tuple(diagnostics)
        self.gateways = {g.address: g for g in gateways}
        self.endpoint_labels = (
            None if endpoint_labels is None
            else {h: tuple(dict(ls) for ls in v) for h, v in endpoint_labels.items()})
        self._exact: dict[str, list[RegistryEntry]] = {}
        self._wild: list[RegistryEntry] = []
        self._by_address: dict[str, list[RegistryEntry]] = {}
        for e in sorted(entries, key=lambda e: (e.kind != "Service", e.order)):
            if e.host.startswith("*"):
                self._wild.append(e)
            else:
                self._exact.setdefault(e.host, []).append(e)
            for a in e.addresses:
                self._by_address.setdefault(a, []).append(e)
        self.virtual_services = tuple(sorted(virtual_services, key=lambda v: v.order))
        self._vs_by_key = {v.key: v for v in self.virtual_services}
        self._vs_exact: dict[str, list[_VirtualService]] = {}
        self._vs_wild: list[_VirtualService] = []
        for vs in self.virtual_services:
            if not vs.for_mesh:
                continue
            for h in vs.hosts:
                if h.startswith("*"):
                    if vs not in self._vs_wild:
                        self._vs_wild.append(vs)
                else:
                    self._vs_exact.setdefault(h, []).append(vs)
        self._drs: dict[str, list[_DestinationRule]] = {}
        # Per namespace: rules by exact host, and the wildcard ones (lookups touch only candidates).
        self._drs_exact: dict[str, dict[str, list[_DestinationRule]]] = {}
        self._drs_wild: dict[str, list[_DestinationRule]] = {}
        for dr in sorted(destination_rules, key=lambda d: d.order):
            self._drs.setdefault(dr.namespace, []).append(dr)
            if dr.host.startswith("*"):
                self._drs_wild.setdefault(dr.namespace, []).append(dr)
            else:
                self._drs_exact.setdefault(dr.namespace, {}).setdefault(dr.host, []).append(dr)
        self._dr_cache: dict[tuple[str, tuple[tuple[str, str], ...], str, str], DestinationRuleChoice | None] = {}

    # ------------------------------------------------------------------------------------------
    # Registry
    # ------------------------------------------------------------------------------------------
    def lookup(self, host: str, namespace: str) -> RegistryEntry | None:
        """The registry entry for an FQDN ``host`` visible from ``namespace`` (Service before SE)."""
        for e in self._exact.get(host, ()):
            if _visible(e.export_to, e.namespace, namespace):
                return e
        best: tuple[int, RegistryEntry] | None = None
        for e in self._wild:
            if (host_matches(e.host, host) and _visible(e.export_to, e.namespace, namespace)
                    and (best is None or len(e.host) > best[0])):
                best = (len(e.host), e)
        return best[1] if best else None

    def resolve(self, host: str, namespace: str) -> tuple[str, RegistryEntry | None]:
        """The FQDN a caller in ``namespace`` reaches by dialing ``host`` (DNS search path), and its entry."""
        host = host.rstrip(".").lower()
        try:
            ipaddress.ip_address(host)
        except ValueError:
            pass
        else:
            for e in self._by_address.get(host, ()):
                if _visible(e.export_to, e.namespace, namespace):
                    return e.host, e
            return host, None
        candidates = [host]
        suffix = f"svc.{self.cluster_domain}"
        if not host.endswith(self.cluster_domain):
            candidates += [f"{host}.{namespace}.{suffix}", f"{host}.{suffix}", f"{host}.{self.cluster_domain}"]
        for c in candidates:
            entry = self.lookup(c, namespace)
            if entry is not None:
                return c, entry
        return host, None

    # ------------------------------------------------------------------------------------------
    # DestinationRules
    # ------------------------------------------------------------------------------------------
    def destination_rule(self, client_namespace: str, client_labels: Mapping[str, str] | Sequence[tuple[str, str]],
                         host: str, service_namespace: str | None = None) -> DestinationRuleChoice | None:
        """The DestinationRule(s) that apply to ``host`` for a client, merged; None when none applies.

        Lookup path: client namespace, then the service's namespace, then the root namespace; the
        first namespace with a matching rule decides. In it, the most specific host wins and rules
        for that host merge in order (workload-selector rules first, then oldest).
        """
        pairs = tuple(sorted(client_labels.items())) if isinstance(client_labels, Mapping) else tuple(client_labels)
        if service_namespace is None:
            entry = self.lookup(host, client_namespace)
            service_namespace = entry.namespace if entry else ""
        key = (client_namespace, pairs, host, service_namespace)
        if key in self._dr_cache:
            return self._dr_cache[key]
        label_map = dict(pairs)
        result: DestinationRuleChoice | None = None
        steps = [(client_namespace, "client namespace"), (service_namespace, "service namespace"),
                 (self.root_namespace, "root namespace")]
        seen: set[str] = set()
        for ns, lookup in steps:
            if not ns or ns in seen:
                continue
            seen.add(ns)
            ranked: list[tuple[tuple[int, int], _DestinationRule]] = []
            for dr in (*self._drs_exact.get(ns, {}).get(host, ()), *self._drs_wild.get(ns, ())):
                if not _visible(dr.export_to, dr.namespace, client_namespace):
                    continue
                if dr.selector is not None and (ns != client_namespace or not subset_of(dict(dr.selector), label_map)):
                    continue
                rank = _specificity(dr.host, host)
                if rank is not None:
                    ranked.append((rank, dr))
            if not ranked:
                continue
            best = max(r for r, _ in ranked)
            chosen = sorted((dr for r, dr in ranked if r == best), key=lambda d: (d.selector is None, d.order))
            result = _merge_rules(chosen, host, ns, lookup)
            break
        self._dr_cache[key] = result
        return result

    # ------------------------------------------------------------------------------------------
    # Routing
    # ------------------------------------------------------------------------------------------
    def route(self, caller: Caller, host: str, port: int | None = None, request: Request | None = None, *,
              dns_capture: bool | None = None) -> RouteDecision:
        """Route one request (or TCP connection) from ``caller`` to ``host:port``, as its sidecar would.

        ``host`` is the name as dialed (short names go through the caller's DNS search path);
        ``port`` may be omitted only for a single-port service (else :class:`QueryError`).
        ``request`` carries the HTTP attributes (default: ``GET /``); a ``tcp`` request on a port of
        unknown protocol is routed as TCP. ``dns_capture=False`` makes names that only a
        MESH_INTERNAL ServiceEntry declares unresolvable (NO_DNS); None skips that check.
        Sidecar egress rules and EnvoyFilters in the caller's or the root namespace are reported in
        ``assumptions``: they may change the answer and are not modelled.
        """
        decision = self._route(caller, host, port, request, dns_capture)
        codes = self._unmodelled.get(caller.namespace, set()) | self._unmodelled.get(self.root_namespace, set())
        return replace(decision, assumptions=tuple(sorted(codes))) if codes else decision

    def _route(self, caller: Caller, host: str, port: int | None, request: Request | None,
               dns_capture: bool | None) -> RouteDecision:
        fqdn, entry = self.resolve(host, caller.namespace)
        if entry is None:
            return RouteDecision(
                NO_ROUTE, f"host `{host}` is neither a Kubernetes Service nor a ServiceEntry host visible from "
                f"namespace `{caller.namespace}`", fqdn, port, "unknown")
        if port is None:
            if len(entry.ports) != 1:
                raise QueryError(f"`{fqdn}` has {len(entry.ports)} ports, give one",
                                 hint="pass --port with one of " + ", ".join(str(p.number) for p in entry.ports))
            port = entry.ports[0].number
        svc_port = entry.port(port)
        if svc_port is None:
            return RouteDecision(NO_ROUTE, f"{entry.ref} has no port {port}", fqdn, port, "unknown",
                                 registry=entry.ref)
        if (dns_capture is False and entry.kind == "ServiceEntry" and entry.location == "MESH_INTERNAL"
                and self._exact_service(fqdn) is None):
            return RouteDecision(NO_DNS, f"`{fqdn}` is declared only by {entry.ref}; the caller resolves it only "
                                 "with Istio DNS proxying (ISTIO_META_DNS_CAPTURE), which is off", fqdn, port,
                                 svc_port.protocol, registry=entry.ref)
        protocol: str = svc_port.protocol
        if protocol == "auto":
            protocol = "tcp" if request is not None and request.protocol == "tcp" else "http"
        req = request if request is not None else Request.http(destination_port=port)
        ctx = self._context(caller, host, port, req)
        notes: list[str] = []
        if svc_port.protocol == "auto":
            notes.append(f"port {port} declares no protocol; Istio sniffs it and routes this request as {protocol}")
        kind = protocol  # http, tcp or tls: which route list of a VirtualService applies
        candidates, hidden = self._virtual_services(fqdn, caller.namespace)
        skipped: list[str] = []
        for i, vs in enumerate(candidates):
            routes = self._routes(vs, kind)
            applicable = [r for r in routes if r.matches is None or any(m.applies(ctx) for m in r.matches)]
            if not applicable:
                # istiod builds no route from it for this port and proxy, so it does not claim the host.
                skipped.append(f"{vs.key} (no {kind} route for port {port} and this caller)")
                continue
            losers = [f"{v.key} ({vs.key} has a more specific host or is older; sidecars do not merge "
                      "VirtualServices)" for v in candidates[i + 1:]]
            return self._route_vs(caller, vs, applicable, kind, ctx, fqdn, entry, port, tuple(notes),
                                  tuple(sorted(hidden + skipped + losers)))
        return self._default_route(caller, fqdn, entry, port, protocol, tuple(notes), tuple(sorted(hidden + skipped)))

    # ------------------------------------------------------------------------------------------
    def _exact_service(self, host: str) -> RegistryEntry | None:
        for e in self._exact.get(host, ()):
            if e.kind == "Service":
                return e
        return None

    def _context(self, caller: Caller, host: str, port: int, req: Request) -> _Ctx:
        path, query = _split_path(req.path)
        return _Ctx(path=path, full_path=req.path, query=query, method=req.method, headers=dict(req.headers),
                    authority=req.host or host, scheme="http", port=port, sni=req.sni or host,
                    caller_namespace=caller.namespace, caller_labels=caller.label_map)

    def _virtual_services(self, fqdn: str, namespace: str) -> tuple[list[_VirtualService], list[str]]:
        """VirtualServices for ``fqdn`` visible from ``namespace``, best first, and those not visible."""
        ranked: list[tuple[tuple[int, int], tuple[float, str, str], _VirtualService]] = []
        hidden: list[str] = []
        pool = list(self._vs_exact.get(fqdn, ())) + self._vs_wild
        for vs in pool:
            best = max((r for h in vs.hosts if (r := _specificity(h, fqdn)) is not None), default=None)
            if best is None:
                continue
            if not _visible(vs.export_to, vs.namespace, namespace):
                hidden.append(f"{vs.key} (not exported to namespace `{namespace}`)")
                continue
            ranked.append((best, vs.order, vs))
        ranked.sort(key=lambda t: ((-t[0][0], -t[0][1]), t[1]))
        return [vs for _, _, vs in ranked], hidden

    @staticmethod
    def _routes(vs: _VirtualService, kind: str) -> tuple[_Route, ...]:
        return vs.http if kind == "http" else vs.tcp if kind == "tcp" else vs.tls

    def _default_route(self, caller: Caller, fqdn: str, entry: RegistryEntry, port: int, protocol: str,
                       notes: tuple[str, ...], shadowed: tuple[str, ...]) -> RouteDecision:
        dest = _Destination(fqdn, None, port, None, None)
        backends = self._backends(caller, [dest], entry.namespace, port)
        retries = self._retries(None, "") if protocol == "http" else None
        code, reason = _overall(backends, f"no VirtualService applies to `{fqdn}`: the default route sends all "
                                          f"traffic to the host")
        return RouteDecision(
            code, reason, fqdn, port, protocol, backends=backends, retries=retries,
            defaults=("route", "timeout", "retries") if protocol == "http" else ("route",),
            notes=notes, shadowed=shadowed, registry=entry.ref,
            status=503 if code == NO_HEALTHY_UPSTREAM else None)

    def _route_vs(self, caller: Caller, vs: _VirtualService, routes: Sequence[_Route], kind: str, ctx: _Ctx,
                  fqdn: str, entry: RegistryEntry, port: int, notes: tuple[str, ...],
                  shadowed: tuple[str, ...]) -> RouteDecision:
        misses: list[RouteMiss] = []
        for route in routes:
            matched = _first_match(route, ctx)
            if matched is None:
                misses.append(_miss(vs, route, kind, ctx))
                continue
            if route.delegate is not None and kind == "http":
                return self._delegate(caller, vs, route, matched, ctx, fqdn, entry, port, notes, shadowed, misses)
            return self._apply(caller, vs, route, matched, kind, fqdn, entry, port, notes, shadowed, misses)
        return RouteDecision(
            NO_ROUTE, f"VirtualService {vs.key} applies to `{fqdn}` but none of its {kind} routes matches the "
            f"request" + (" (HTTP 404)" if kind == "http" else ""), fqdn, port, kind, virtual_service=vs.key,
            misses=tuple(misses), status=404 if kind == "http" else None, notes=notes, shadowed=shadowed,
            registry=entry.ref)

    def _delegate(self, caller: Caller, vs: _VirtualService, route: _Route, matched: int | None, ctx: _Ctx,
                  fqdn: str, entry: RegistryEntry, port: int, notes: tuple[str, ...], shadowed: tuple[str, ...],
                  misses: list[RouteMiss]) -> RouteDecision:
        assert route.delegate is not None  # INVARIANT: only called for delegating routes
        ns, name = route.delegate
        child = self._vs_by_key.get(f"{ns}/{name}")
        if child is None:
            return RouteDecision(NO_ROUTE, f"route http[{route.index}] of {vs.key} delegates to VirtualService "
                                 f"{ns}/{name}, which does not exist (HTTP 404)", fqdn, port, "http",
                                 virtual_service=vs.key, route=route.index, status=404, misses=tuple(misses),
                                 notes=notes, shadowed=shadowed, registry=entry.ref)
        for child_route in child.http:
            if child_route.matches is not None and not any(m.applies(ctx) for m in child_route.matches):
                continue
            child_match = _first_match(child_route, ctx)
            if child_match is None:
                misses.append(_miss(child, child_route, "http", ctx))
                continue
            decision = self._apply(caller, child, child_route, child_match, "http", fqdn, entry, port,
                                   (*notes, f"delegated by {vs.key} http[{route.index}]"), shadowed, misses)
            return decision
        return RouteDecision(NO_ROUTE, f"no route of delegate VirtualService {child.key} matches (HTTP 404)", fqdn,
                             port, "http", virtual_service=child.key, status=404, misses=tuple(misses), notes=notes,
                             shadowed=shadowed, registry=entry.ref)

    def _apply(self, caller: Caller, vs: _VirtualService, route: _Route, matched: int | None, kind: str,
               fqdn: str, entry: RegistryEntry, port: int, notes: tuple[str, ...], shadowed: tuple[str, ...],
               misses: list[RouteMiss]) -> RouteDecision:
        raw = route.raw
        where = f"{kind}[{route.index}]"
        base = RouteDecision(ROUTED, "", fqdn, port, kind, virtual_service=vs.key, route=route.index,
                             route_name=route.name, match=matched if matched is not None and matched >= 0 else None,
                             misses=tuple(misses), shadowed=shadowed,
                             registry=entry.ref, notes=notes)
        if kind != "http":
            backends = self._backends(caller, route.destinations, vs.namespace, port)
            code, reason = _overall(backends, f"VirtualService {vs.key} {where} matched")
            return replace(base, code=code, reason=reason, backends=backends)
        extra: list[str] = list(notes)
        defaults: list[str] = []
        timeout = raw.get("timeout")
        # "Timeout for HTTP requests, default is disabled"; an explicit 0s disables it too.
        timeout_s = str(timeout) if isinstance(timeout, str) and timeout not in ("0s", "0") else None
        if timeout is None:
            defaults.append("timeout")
        retries = self._retries(raw.get("retries"), f"VirtualService {vs.key} {where}")
        if raw.get("retries") is None:
            defaults.append("retries")
        fault = _fault(raw.get("fault"))
        if fault is not None:
            extra.append("timeouts and retries do not apply to injected faults (Istio: \"timeouts or retries will "
                         "not be enabled when faults are enabled on the client side\")")
        base = replace(base, timeout=timeout_s, retries=retries, fault=fault, mirrors=self._mirrors(raw, vs.namespace),
                       headers=_header_ops(raw.get("headers")), cors=_cors(raw.get("corsPolicy")),
                       rewrite=tuple(sorted((str(k), str(v)) for k, v in as_map(raw.get("rewrite")).items()
                                            if isinstance(v, str | int))),
                       defaults=tuple(defaults))
        if isinstance(raw.get("redirect"), Mapping):
            status = first_int(as_map(raw["redirect"]).get("redirectCode")) or _DEFAULT_REDIRECT_CODE
            return replace(base, reason=f"VirtualService {vs.key} {where} matched and redirects (HTTP {status}); "
                           "the sidecar answers without contacting a backend", status=status, notes=tuple(extra))
        if isinstance(raw.get("directResponse"), Mapping):
            status = first_int(as_map(raw["directResponse"]).get("status")) or 200
            return replace(base, reason=f"VirtualService {vs.key} {where} matched and answers directly (HTTP "
                           f"{status})", status=status, notes=tuple(extra))
        backends = self._backends(caller, route.destinations, vs.namespace, port)
        code, reason = _overall(backends, f"VirtualService {vs.key} {where}"
                                + (f" match[{matched}]" if matched is not None and matched >= 0 else " (catch-all)")
                                + " matched")
        if fault is not None and fault.abort_http_status is not None and fault.abort_percentage >= 100.0:
            extra.append(f"every request is aborted with HTTP {fault.abort_http_status} by fault injection")
        return replace(base, code=code, reason=reason, backends=backends, notes=tuple(extra),
                       status=503 if code == NO_HEALTHY_UPSTREAM else None)

    def _retries(self, raw: Any, source: str) -> Retries:
        """istiod's ``retry.ConvertPolicy``: none -> default; attempts <= 0 -> disabled; else overrides.

        The default is MeshConfig ``defaultHttpRetryPolicy`` when set, else Istio's built-in policy.
        """
        if raw is None:
            if self.default_retry_policy is not None:
                # "All settings in the retry policy except `perTryTimeout` can currently be configured
                # globally" (MeshConfig reference).
                mesh = {k: v for k, v in self.default_retry_policy.items() if k != "perTryTimeout"}
                return self._retries(mesh, "MeshConfig defaultHttpRetryPolicy")
            return Retries(DEFAULT_RETRY_ATTEMPTS, DEFAULT_RETRY_ON, None, "istio default")
        r = as_map(raw)
        attempts = first_int(r.get("attempts")) or 0
        if attempts <= 0:
            return Retries(0, "", None, source)
        retry_on = DEFAULT_RETRY_ON
        if isinstance(r.get("retryOn"), str) and r["retryOn"].strip():
            parts = [p.strip() for p in r["retryOn"].split(",") if p.strip()]
            codes = [p for p in parts if p.isdigit()]
            words = [p for p in parts if not p.isdigit()]
            if codes and "retriable-status-codes" not in words:
                words.append("retriable-status-codes")
            retry_on = ",".join(words + codes)
        per_try = r.get("perTryTimeout")
        return Retries(attempts, retry_on, str(per_try) if isinstance(per_try, str) else None, source)

    def _mirrors(self, raw: Mapping[str, Any], ns: str) -> tuple[Mirror, ...]:
        out = []
        if isinstance(raw.get("mirror"), Mapping):
            m = as_map(raw["mirror"])
            pct = _percent(raw.get("mirrorPercentage"), -1.0)
            if pct < 0:
                legacy = first_int(raw.get("mirrorPercent"))
                pct = float(legacy) if legacy is not None else 100.0
            out.append(Mirror(resolve_short_name(str(m.get("host") or ""), ns, self.cluster_domain),
                              first_int(as_map(m.get("port")).get("number")),
                              str(m["subset"]) if m.get("subset") else None, pct))
        for mp in (as_map(x) for x in as_list(raw.get("mirrors"))):
            d = as_map(mp.get("destination"))
            out.append(Mirror(resolve_short_name(str(d.get("host") or ""), ns, self.cluster_domain),
                              first_int(as_map(d.get("port")).get("number")),
                              str(d["subset"]) if d.get("subset") else None, _percent(mp.get("percentage"), 100.0)))
        return tuple(out)

    def _backends(self, caller: Caller, dests: Sequence[_Destination], vs_namespace: str,
                  listen_port: int) -> tuple[Backend, ...]:
        if not dests:
            return ()
        shares = [100] if len(dests) == 1 else _shares([max(d.weight or 0, 0) for d in dests])
        out: list[Backend] = []
        for dest, share in zip(dests, shares, strict=True):
            if len(dests) > 1 and share == 0:
                continue  # "if weight is 0, the destination will not receive any traffic"
            out.append(self._backend(caller, dest, share, listen_port))
        return tuple(out)

    def _backend(self, caller: Caller, dest: _Destination, share: int, listen_port: int) -> Backend:
        entry = self.lookup(dest.host, caller.namespace)
        sidecar = Hop("sidecar", caller.workload or caller.namespace, cluster=caller.cluster)
        if entry is None:
            return Backend(dest.host, dest.port, dest.subset, None, share, dest.weight, "", NO_HEALTHY_UPSTREAM,
                           f"destination host `{dest.host}` is not in the service registry visible from namespace "
                           f"`{caller.namespace}`: Envoy has no cluster for it (HTTP 503)", None, (sidecar,),
                           dest.headers)
        port = dest.port
        if port is None:
            port = entry.ports[0].number if len(entry.ports) == 1 else listen_port
        dr = self.destination_rule(caller.namespace, caller.labels, entry.host if not entry.host.startswith("*")
                                   else dest.host, entry.namespace)
        subset_labels: tuple[tuple[str, str], ...] | None = None
        if dest.subset is not None:
            if dr is None or dest.subset not in dr.subsets:
                where = (f"DestinationRule {', '.join(dr.rules)}" if dr is not None
                         else "no DestinationRule that applies to this client")
                return Backend(dest.host, port, dest.subset, None, share, dest.weight, entry.ref, NO_HEALTHY_UPSTREAM,
                               f"subset `{dest.subset}` is not defined ({where}): the route points at a cluster that "
                               "does not exist (HTTP 503)", dr, (sidecar,), dest.headers, entry.location)
            subset_labels = dr.subsets[dest.subset][0]
        hops, problem = self._hops(sidecar, entry, dest.host, port, subset_labels, caller)
        if problem:
            return Backend(dest.host, port, dest.subset, subset_labels, share, dest.weight, entry.ref,
                           NO_HEALTHY_UPSTREAM, problem, dr, hops, dest.headers, entry.location)
        return Backend(dest.host, port, dest.subset, subset_labels, share, dest.weight, entry.ref, ROUTED,
                       f"routed to {entry.ref} port {port}" + (f" subset `{dest.subset}`" if dest.subset else ""),
                       dr, hops, dest.headers, entry.location)

    def _hops(self, sidecar: Hop, entry: RegistryEntry, host: str, port: int,
              subset_labels: tuple[tuple[str, str], ...] | None, caller: Caller) -> tuple[tuple[Hop, ...], str]:
        wanted = dict(subset_labels or ())
        if entry.kind == "Service":
            known = self.endpoint_labels.get(entry.host) if self.endpoint_labels is not None else None
            if known is not None and not any(subset_of(wanted, ls) for ls in known):
                what = f"subset labels {dict(wanted)}" if wanted else "the service"
                return (sidecar,), f"no endpoint of {entry.ref} matches {what}: no healthy upstream (HTTP 503)"
            svc_port = entry.port(port)
            target = svc_port.target_port if svc_port else None
            return (sidecar, Hop("destination", f"{entry.namespace}/{entry.name}",
                                 port=target if isinstance(target, int) else port, cluster=caller.cluster)), ""
        if entry.location == "MESH_EXTERNAL":
            return (sidecar, Hop("external", host, port=port)), ""
        if entry.endpoints is None:
            return (sidecar, Hop("destination", host, port=port)), ""
        eps = [e for e in entry.endpoints if subset_of(wanted, dict(e.labels))]
        if not eps:
            what = f"subset labels {dict(wanted)}" if wanted else "any endpoint"
            return (sidecar,), f"{entry.ref} lists no endpoint for {what}: no healthy upstream (HTTP 503)"
        svc_port = entry.port(port)
        hops: list[Hop] = [sidecar]
        gateways = sorted({e.address for e in eps if e.address in self.gateways})
        if gateways:
            gw = self.gateways[gateways[0]]
            ep = next(e for e in eps if e.address == gw.address)
            ep_port = dict(ep.ports).get(svc_port.name if svc_port else "", None) or gw.port
            hops.append(Hop("eastwest-gateway", gw.name or "eastwest-gateway", gw.address, ep_port, gw.cluster))
            hops.append(Hop("destination", host, port=port, cluster=gw.cluster))
        else:
            ep = eps[0]
            ep_port = dict(ep.ports).get(svc_port.name if svc_port else "", None)
            if ep_port is None and svc_port is not None and isinstance(svc_port.target_port, int):
                ep_port = svc_port.target_port
            hops.append(Hop("destination", host, ep.address or None, ep_port or port))
        return tuple(hops), ""


def _first_match(route: _Route, ctx: _Ctx) -> int | None:
    """Index of the first match block of ``route`` that matches, -1 for a route without matches, else None."""
    if route.matches is None:
        return -1
    for m in route.matches:
        if m.applies(ctx) and all(c.test(ctx) for c in m.dynamic):
            return m.index
    return None


def _miss(vs: _VirtualService, route: _Route, kind: str, ctx: _Ctx) -> RouteMiss:
    """The first failing field of the closest match block of a route that did not match."""
    assert route.matches is not None  # INVARIANT: a route without matches always matches
    best: list[str] | None = None
    for m in route.matches:
        failed = m.failing(ctx)
        if failed and (best is None or len(failed) < len(best)):
            best = failed
    first = best[0] if best else f"{kind}[{route.index}]"
    return RouteMiss(vs.key, route.index, route.name, f"spec.{first}" if not first.startswith("spec.") else first,
                     "no match block matched")


def _overall(backends: Sequence[Backend], matched: str) -> tuple[str, str]:
    if not backends:
        return NO_HEALTHY_UPSTREAM, f"{matched}, but the route has no destination that receives traffic (HTTP 503)"
    broken = [b for b in backends if b.code != ROUTED]
    if len(broken) == len(backends):
        return broken[0].code, f"{matched}; {broken[0].reason}"
    summary = ", ".join(f"{b.host}{'/' + b.subset if b.subset else ''} {b.weight}%" for b in backends)
    if broken:
        return ROUTED, f"{matched}: {summary} ({len(broken)} of them cannot serve)"
    return ROUTED, f"{matched}: {summary}"


def _fault(raw: Any) -> Fault | None:
    f = as_map(raw)
    if not f:
        return None
    delay, abort = as_map(f.get("delay")), as_map(f.get("abort"))
    delay_pct = _percent(delay.get("percentage"), -1.0)
    if delay_pct < 0:
        legacy = first_int(delay.get("percent"))
        delay_pct = float(legacy) if legacy is not None else 0.0
    fixed = delay.get("fixedDelay") or delay.get("exponentialDelay")
    return Fault(
        delay=str(fixed) if fixed else None, delay_percentage=delay_pct if delay else 0.0,
        abort_http_status=first_int(abort.get("httpStatus")),
        abort_grpc_status=str(abort["grpcStatus"]) if abort.get("grpcStatus") else None,
        abort_percentage=_percent(abort.get("percentage"), 0.0) if abort else 0.0,
    )


def _cors(raw: Any) -> Cors | None:
    c = as_map(raw)
    if not c:
        return None
    origins: list[tuple[str, str]] = []
    for o in as_list(c.get("allowOrigins")):
        om = as_map(o)
        for kind in ("exact", "prefix", "regex"):
            if kind in om:
                origins.append((kind, str(om[kind])))
    for o in str_list(c.get("allowOrigin")):  # deprecated list of exact origins
        origins.append(("exact", o))
    creds = c.get("allowCredentials")
    max_age = c.get("maxAge")
    return Cors(tuple(origins), tuple(str_list(c.get("allowMethods"))), tuple(str_list(c.get("allowHeaders"))),
                tuple(str_list(c.get("exposeHeaders"))), str(max_age) if isinstance(max_age, str) else None,
                creds if isinstance(creds, bool) else None)


def _merge_rules(rules: Sequence[_DestinationRule], host: str, namespace: str, lookup: str) -> DestinationRuleChoice:
    """istiod's DestinationRule merge: the first subset definition and the first top-level policy win."""
    subsets: dict[str, tuple[tuple[tuple[str, str], ...], Mapping[str, Any], str]] = {}
    policy: Mapping[str, Any] = {}
    policy_from: str | None = None
    for dr in rules:
        if dr.traffic_policy is not None and policy_from is None:
            policy, policy_from = dr.traffic_policy, dr.key
        for name, sub_labels, sub_policy in dr.subsets:
            subsets.setdefault(name, (sub_labels, sub_policy, dr.key))
    return DestinationRuleChoice(host, tuple(dr.key for dr in rules), namespace, lookup, policy, policy_from, subsets)


def compile_routing(
    objects: Iterable[Obj],
    *,
    cluster_domain: str = "cluster.local",
    root_namespace: str = _DEFAULT_ROOT_NAMESPACE,
    eastwest_gateways: Iterable[EastWestGateway] = (),
    endpoint_labels: Mapping[str, Sequence[Mapping[str, str]]] | None = None,
    mesh_config: Mapping[str, Any] | None = None,
) -> IstioRouting:
    """Compile the Services, ServiceEntries, VirtualServices and DestinationRules among ``objects``.

    Other kinds are ignored, duplicates collapse (input order never matters). ``endpoint_labels``
    maps a Service FQDN to the pod labels of its endpoints; when given, a subset (or service)
    without endpoints answers NO_HEALTHY_UPSTREAM. ``eastwest_gateways`` are the addresses that
    make a ServiceEntry endpoint an east-west gateway hop. ``mesh_config`` (the parsed ``mesh`` key
    of ConfigMap ``istio``) supplies ``defaultHttpRetryPolicy``.
    """
    entries: list[RegistryEntry] = []
    vss: list[_VirtualService] = []
    drs: list[_DestinationRule] = []
    diagnostics: list[Diagnostic] = []
    unmodelled: list[tuple[str, str]] = []  # (namespace, assumption code)
    for obj in dedupe(objects):
        kind = kind_of(obj)
        group = str(obj.get("apiVersion") or "")
        if kind == "Sidecar" and group.startswith("networking.istio.io/") and spec(obj).get("egress"):
            unmodelled.append((namespace_of(obj), SIDECAR_EGRESS_NOT_MODELLED))
        elif kind == "EnvoyFilter" and group.startswith("networking.istio.io/"):
            unmodelled.append((namespace_of(obj), ENVOYFILTER_NOT_MODELLED))
        elif kind == "Service" and group == "v1":
            entries.append(_from_service(obj, cluster_domain))
        elif kind == "ServiceEntry" and group.startswith("networking.istio.io/"):
            entries.extend(_from_service_entry(obj))
        elif kind == "VirtualService" and group.startswith("networking.istio.io/"):
            local: list[Diagnostic] = []
            vss.append(_compile_vs(obj, cluster_domain, local))
            owner = f"VirtualService {object_key(obj)}"
            diagnostics.extend(Diagnostic(d.code, d.message, d.severity, d.location, d.field, d.hint, owner)
                               for d in local)
        elif kind == "DestinationRule" and group.startswith("networking.istio.io/"):
            drs.append(_compile_dr(obj, cluster_domain))
    return IstioRouting(entries, vss, drs, diagnostics, cluster_domain=cluster_domain, root_namespace=root_namespace,
                        gateways=tuple(eastwest_gateways), endpoint_labels=endpoint_labels, unmodelled=unmodelled,
                        default_retry_policy=(as_map((mesh_config or {}).get("defaultHttpRetryPolicy"))
                                              if (mesh_config or {}).get("defaultHttpRetryPolicy") is not None
                                              else None))
