"""Linkerd inbound authorization as a pure evaluator: raw policy objects + a pod port + a request.

This is the Linkerd half of the simulator's authorization step (``meshrules.sim.istio.authz`` is
the Istio half): what the destination pod's ``linkerd-proxy`` does with a request, the way Linkerd's
policy controller builds the pod's inbound server and the proxy enforces it. It reads the same
``meshrules.sim.request.Request``: ``source_principal`` is the client's Linkerd identity
(``web.emojivoto.serviceaccount.identity.linkerd.cluster.local``), None for a plaintext
(unmeshed) client and ``""`` for TLS without a client identity; ``source_ip`` is the client address.

How a decision is made (Linkerd's "Authorization Policy" feature and reference pages, and the
policy controller's index):

1. The port's server: the oldest ``Server`` in the pod's namespace whose ``podSelector`` selects the
   pod and whose ``port`` (number, or container-port name) is the port; later overlapping Servers
   are refused by Linkerd's admission controller, so they are ignored. No Server: the *default
   server* of the pod's default inbound policy (pod annotation, then workload, then namespace
   ``config.linkerd.io/default-inbound-policy``, then the cluster's ``proxy.defaultInboundPolicy``).
2. Server-level authorizations: ServerAuthorizations selecting the Server, AuthorizationPolicies
   targeting it or the namespace, plus the Server's ``accessPolicy`` (default ``deny``: nothing);
   for the default server, the default policy's own authorizations. Traffic from localhost is
   always authorized.
3. HTTP requests (ports not opaque): the route. A Server with HTTPRoutes attached accepts only
   requests matching one of them (else HTTP 404); a Server without routes (and the default server)
   has a catch-all ``default`` route plus a ``probe`` route for the pod's HTTP probe paths,
   authorized from the probe networks. Route precedence is the Gateway API's.
4. The request is authorized when any authorization of the route (AuthorizationPolicies targeting
   that HTTPRoute) or of the server matches: the client address is in its networks (minus
   ``except``), and its authentication holds (unauthenticated; TLS; or one of the identities —
   exact, ``*.suffix``, ``*``). An AuthorizationPolicy requires *all* its authentication refs.
   Unauthorized HTTP gets 403; other traffic is refused at the TCP level.

Mapping onto API §6 codes (Linkerd has no DENY action, so DENIED_EXPLICIT never appears):

* authorized by a policy or a default that allows -> ``ALLOWED``;
* allowed only by an ``audit`` policy (default or ``accessPolicy``) -> ``ALLOWED``, ``audit=True``;
* unauthorized (403 or refused), with a Server or under a restrictive default -> ``DENIED_DEFAULT``
  ("ALLOW policies exist for the destination, none matched");
* no HTTPRoute of the Server matches (404) -> ``DENIED_DEFAULT`` with ``outcome="no-route"``:
  routes on a Server are how Linkerd restricts methods and paths (API §4), so a request outside
  them is the analogue of Istio's unmatched ALLOW rule, not a missing host.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import yaml

from meshrules.errors import Diagnostic, Severity
from meshrules.sim.linkerd.httproute import (
    POLICY_GROUP,
    CompiledHttpRoute,
    MatchMiss,
    compile_http_route,
    is_http_route,
    select_route,
)
from meshrules.sim.objects import (
    Obj,
    annotations_of,
    as_list,
    as_map,
    creation_key,
    dedupe,
    first_int,
    group_of,
    kind_of,
    labels_of,
    name_of,
    namespace_of,
    selector_matches,
    spec,
    str_list,
)
from meshrules.sim.request import Request

__all__ = [
    "ALLOWED",
    "DEFAULT_CLUSTER_NETWORKS",
    "DEFAULT_INBOUND_POLICIES",
    "DENIED_DEFAULT",
    "AuthorizationMiss",
    "ClientAuthorization",
    "LinkerdConfig",
    "LinkerdPolicy",
    "PodView",
    "PolicyDecision",
    "ServerView",
    "compile_policy",
    "pod_view",
    "service_account_identity",
]

ALLOWED = "ALLOWED"
DENIED_DEFAULT = "DENIED_DEFAULT"

# Linkerd's install defaults (linkerd-config values `clusterNetworks`, `policyController.probeNetworks`).
DEFAULT_CLUSTER_NETWORKS = ("10.0.0.0/8", "100.64.0.0/10", "172.16.0.0/12", "192.168.0.0/16", "fd00::/8")
DEFAULT_PROBE_NETWORKS = ("0.0.0.0/0", "::/0")
DEFAULT_INBOUND_POLICIES = frozenset({"all-unauthenticated", "all-authenticated", "cluster-authenticated",
                                      "cluster-unauthenticated", "deny", "audit"})
_DEFAULT_POLICY_ANNOTATION = "config.linkerd.io/default-inbound-policy"
_OPAQUE_PORTS_ANNOTATION = "config.linkerd.io/opaque-ports"
_REQUIRE_ID_ANNOTATION = "config.linkerd.io/proxy-require-identity-inbound-ports"
_ALL_NETWORKS = ("0.0.0.0/0", "::/0")
_OPAQUE_PROTOCOLS = frozenset({"opaque", "TLS"})

Network: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network


# ================================================================================================
# Cluster configuration
# ================================================================================================


@dataclass(frozen=True, slots=True)
class LinkerdConfig:
    """The control-plane settings policy depends on (ConfigMap ``linkerd-config``, key ``values``)."""

    default_policy: str = "all-unauthenticated"
    cluster_networks: tuple[str, ...] = DEFAULT_CLUSTER_NETWORKS
    probe_networks: tuple[str, ...] = DEFAULT_PROBE_NETWORKS
    trust_domain: str = "cluster.local"
    control_plane_namespace: str = "linkerd"

    @classmethod
    def from_values(cls, values: Mapping[str, Any], *, control_plane_namespace: str = "linkerd") -> LinkerdConfig:
        """Read Helm-style values (``proxy.defaultInboundPolicy``, ``clusterNetworks``, ...)."""
        nets = values.get("clusterNetworks")
        networks = tuple(n.strip() for n in nets.split(",") if n.strip()) if isinstance(nets, str) else ()
        probe = as_map(values.get("policyController")).get("probeNetworks")
        policy = str(as_map(values.get("proxy")).get("defaultInboundPolicy") or "all-unauthenticated")
        return cls(
            default_policy=policy if policy in DEFAULT_INBOUND_POLICIES else "all-unauthenticated",
            cluster_networks=networks or DEFAULT_CLUSTER_NETWORKS,
            probe_networks=tuple(str_list(probe)) if isinstance(probe, list) else DEFAULT_PROBE_NETWORKS,
            trust_domain=str(values.get("identityTrustDomain") or "cluster.local"),
            control_plane_namespace=control_plane_namespace,
        )

    @classmethod
    def from_objects(cls, objects: Iterable[Obj]) -> LinkerdConfig:
        """Find ConfigMap ``linkerd-config`` among ``objects``; defaults when absent."""
        for obj in objects:
            if kind_of(obj) == "ConfigMap" and name_of(obj) == "linkerd-config":
                raw = as_map(obj.get("data")).get("values")
                try:
                    values = yaml.safe_load(raw) if isinstance(raw, str) else None
                except yaml.YAMLError:
                    values = None
                if isinstance(values, Mapping):
                    return cls.from_values(values, control_plane_namespace=namespace_of(obj, "linkerd"))
        return cls()


def service_account_identity(service_account: str, namespace: str, config: LinkerdConfig | None = None) -> str:
    """Linkerd's identity of a ServiceAccount: ``<sa>.<ns>.serviceaccount.identity.<cp-ns>.<trust-domain>``."""
    c = config or LinkerdConfig()
    return f"{service_account}.{namespace}.serviceaccount.identity.{c.control_plane_namespace}.{c.trust_domain}"


# ================================================================================================
# Authorizations
# ================================================================================================


@dataclass(frozen=True, slots=True)
class ClientAuthorization:
    """One authorization the proxy checks: networks, then authentication.

    ``authentication`` is ``unauthenticated`` (any client), ``tls`` (any TLS client, identity or
    not) or ``identity`` (one of ``identities``: exact names, ``*.suffix`` or ``*``).
    """

    ref: str
    networks: tuple[tuple[str, tuple[str, ...]], ...]  # (cidr, except cidrs)
    authentication: str
    identities: tuple[str, ...] = ()
    audit: bool = False


@dataclass(frozen=True, slots=True)
class AuthorizationMiss:
    """Why one authorization did not admit the request."""

    authorization: str
    field: str  # "networks" | "authentication" | "identities"
    detail: str


@dataclass(frozen=True, slots=True)
class PolicyDecision:
    """What the destination proxy does with a request, and why.

    ``outcome`` is Linkerd's own: ``authorized``, ``audit`` (allowed by an audit policy only),
    ``unauthorized`` (403, or a refused connection when ``status`` is None) or ``no-route`` (404).
    ``code`` maps it onto API §6 (module docstring). ``server`` is ``Server ns/name`` or
    ``default:<policy>``; ``route`` the inbound route (``HTTPRoute ns/name``, ``default``, ``probe``).
    """

    allowed: bool
    code: str
    outcome: str
    status: int | None
    server: str
    default_policy: str
    default_policy_source: str
    route: str | None
    authorization: str | None
    reason: str
    protocol: str
    considered: tuple[str, ...] = ()
    misses: tuple[AuthorizationMiss, ...] = ()
    route_misses: tuple[MatchMiss, ...] = ()
    assumptions: tuple[str, ...] = ()
    ignored: tuple[str, ...] = ()

    @property
    def audit(self) -> bool:
        """True when only an audit policy let the request through."""
        return self.outcome == "audit"


def _identity_matches(pattern: str, identity: str) -> bool:
    if pattern == "*":
        return True
    if pattern.startswith("*."):
        return identity.endswith(pattern[1:])
    return pattern == identity


def _parse_networks(cidrs: Iterable[str]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple((c, ()) for c in cidrs)


def _network(cidr: str) -> Network | None:
    try:
        return ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return None


# ================================================================================================
# The pod
# ================================================================================================


@dataclass(frozen=True, slots=True)
class PodView:
    """A destination pod as inbound policy sees it: namespace, labels, annotations, named ports, probes."""

    namespace: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]  # pod first, then workload (pod wins)
    ports: Mapping[str, tuple[int, ...]]  # container port name -> numbers
    probes: Mapping[int, tuple[str, ...]]  # port -> HTTP probe paths


def pod_view(pod: Obj) -> PodView:
    """Read a Pod, or a workload with a pod template (Deployment, StatefulSet, ...), as the policy sees it."""
    s = spec(pod)
    template = as_map(s.get("template"))
    if template:
        pod_meta: Obj = template
        pod_spec = as_map(template.get("spec"))
    else:
        pod_meta, pod_spec = pod, s
    annotations = {**annotations_of(pod), **annotations_of(pod_meta)} if template else annotations_of(pod)
    names: dict[str, list[int]] = {}
    containers = [as_map(c) for c in as_list(pod_spec.get("containers")) + as_list(pod_spec.get("initContainers"))]
    for c in containers:
        for p in (as_map(x) for x in as_list(c.get("ports"))):
            number = first_int(p.get("containerPort"))
            if number is not None and p.get("name"):
                names.setdefault(str(p["name"]), []).append(number)
    probes: dict[int, list[str]] = {}
    for c in containers:
        for probe_kind in ("livenessProbe", "readinessProbe", "startupProbe"):
            http_get = as_map(as_map(c.get(probe_kind)).get("httpGet"))
            if not http_get:
                continue
            raw_port = http_get.get("port")
            port = first_int(raw_port)
            if port is None and isinstance(raw_port, str):
                port = next(iter(names.get(raw_port, [])), None)
            if port is not None:
                probes.setdefault(port, []).append(str(http_get.get("path") or "/"))
    return PodView(namespace_of(pod), labels_of(pod_meta), annotations,
                {k: tuple(v) for k, v in names.items()}, {k: tuple(sorted(set(v))) for k, v in probes.items()})


def _ports_annotation(value: str | None) -> set[int]:
    ports: set[int] = set()
    for part in (value or "").split(","):
        part = part.strip()
        if "-" in part:
            lo, _, hi = part.partition("-")
            if lo.isdigit() and hi.isdigit():
                ports.update(range(int(lo), int(hi) + 1))
        elif part.isdigit():
            ports.add(int(part))
    return ports


# ================================================================================================
# Compiled objects
# ================================================================================================


@dataclass(frozen=True, slots=True)
class ServerView:
    """A ``Server`` as the policy controller indexes it."""

    namespace: str
    name: str
    labels: Mapping[str, str]
    selector: Mapping[str, Any]
    port: int | str | None
    protocol: str
    access_policy: str
    order: tuple[float, str, str]

    @property
    def ref(self) -> str:
        """``Server ns/name``."""
        return f"Server {self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class _Target:
    kind: str  # Server | Namespace | HTTPRoute
    name: str
    group: str


@dataclass(frozen=True, slots=True)
class _Policy:
    """An AuthorizationPolicy or ServerAuthorization turned into a target and an authorization."""

    namespace: str
    name: str
    kind: str
    target: _Target | None  # AuthorizationPolicy
    server_name: str | None  # ServerAuthorization by name
    server_selector: Mapping[str, Any] | None  # ServerAuthorization by selector
    authorization: ClientAuthorization | None  # None: invalid (ignored, see diagnostics)


class LinkerdPolicy:
    """All Linkerd policy objects of a cluster, compiled; :meth:`evaluate` answers one request."""

    def __init__(self, servers: Sequence[ServerView], policies: Sequence[_Policy], routes: Sequence[CompiledHttpRoute],
                 namespaces: Mapping[str, Mapping[str, str]], config: LinkerdConfig,
                 diagnostics: Sequence[Diagnostic]) -> None:
        self.config = config
        self.diagnostics = tuple(diagnostics)
        self._servers: dict[str, list[ServerView]] = {}
        for s in sorted(servers, key=lambda s: s.order):
            self._servers.setdefault(s.namespace, []).append(s)
        self._policies: dict[str, list[_Policy]] = {}
        for p in sorted(policies, key=lambda p: (p.namespace, p.kind, p.name)):
            self._policies.setdefault(p.namespace, []).append(p)
        self._routes: dict[tuple[str, str], list[CompiledHttpRoute]] = {}
        for r in sorted(routes, key=lambda r: r.order):
            for parent in r.parents:
                if parent.group == POLICY_GROUP and parent.kind == "Server":
                    bucket = self._routes.setdefault((parent.namespace, parent.name), [])
                    if r not in bucket:
                        bucket.append(r)
        self._namespaces = {k: dict(v) for k, v in namespaces.items()}
        self._cluster_nets = [n for n in (_network(c) for c in config.cluster_networks) if n is not None]

    # ------------------------------------------------------------------------------------------
    def server_for(self, pod: PodView, port: int) -> tuple[ServerView | None, tuple[str, ...]]:
        """The Server that selects ``pod``:``port`` (the oldest), and the overlapping ones ignored."""
        found = []
        for s in self._servers.get(pod.namespace, ()):
            if not selector_matches(s.selector, pod.labels):
                continue
            if isinstance(s.port, int):
                selected = s.port == port
            else:
                selected = s.port is not None and port in pod.ports.get(s.port, ())
            if selected:
                found.append(s)
        ignored = tuple(f"{s.ref} (overlaps {found[0].ref} on port {port}; Linkerd's admission controller "
                        "refuses the later one)" for s in found[1:])
        return (found[0] if found else None), ignored

    def default_policy(self, pod: PodView) -> tuple[str, str]:
        """The pod's default inbound policy and where it came from."""
        value = pod.annotations.get(_DEFAULT_POLICY_ANNOTATION)
        if value in DEFAULT_INBOUND_POLICIES:
            return str(value), f"annotation {_DEFAULT_POLICY_ANNOTATION} on the pod"
        ns_value = self._namespaces.get(pod.namespace, {}).get(_DEFAULT_POLICY_ANNOTATION)
        if ns_value in DEFAULT_INBOUND_POLICIES:
            return str(ns_value), f"annotation {_DEFAULT_POLICY_ANNOTATION} on namespace {pod.namespace}"
        return self.config.default_policy, "the cluster default (proxy.defaultInboundPolicy)"

    def _default_authorizations(self, policy: str, authenticated_only: bool, ref: str) -> list[ClientAuthorization]:
        """Linkerd's ``DefaultPolicy::default_authzs``."""
        if policy == "deny":
            return []
        if policy == "audit":
            return [ClientAuthorization(ref, _parse_networks(_ALL_NETWORKS), "unauthenticated", audit=True)]
        cluster_only = policy.startswith("cluster-")
        authenticated = policy.endswith("-authenticated") or authenticated_only
        nets = self.config.cluster_networks if cluster_only else _ALL_NETWORKS
        if authenticated:
            return [ClientAuthorization(ref, _parse_networks(nets), "identity", ("*",))]
        return [ClientAuthorization(ref, _parse_networks(nets), "unauthenticated")]

    def _server_authorizations(self, server: ServerView) -> tuple[list[ClientAuthorization], list[str]]:
        out: list[ClientAuthorization] = []
        ignored: list[str] = []
        for p in self._policies.get(server.namespace, ()):
            applies = False
            if p.kind == "ServerAuthorization":
                applies = (p.server_name == server.name if p.server_name is not None
                           else selector_matches(p.server_selector, server.labels))
            elif p.target is not None:
                applies = ((p.target.kind == "Server" and p.target.name == server.name)
                           or (p.target.kind == "Namespace" and p.target.name == server.namespace))
            if not applies:
                continue
            if p.authorization is None:
                ignored.append(f"{p.kind} {p.namespace}/{p.name} (invalid; the policy controller ignores it)")
                continue
            out.append(p.authorization)
        if server.access_policy != "deny":
            out.extend(self._default_authorizations(server.access_policy, False,
                                                    f"{server.ref} accessPolicy {server.access_policy}"))
        return out, ignored

    def _route_authorizations(self, route: CompiledHttpRoute) -> tuple[list[ClientAuthorization], list[str]]:
        out: list[ClientAuthorization] = []
        ignored: list[str] = []
        for p in self._policies.get(route.namespace, ()):
            t = p.target
            if (p.kind == "AuthorizationPolicy" and t is not None and t.kind == "HTTPRoute" and t.name == route.name
                    and (t.group or POLICY_GROUP) == route.group):
                if p.authorization is None:
                    ignored.append(f"AuthorizationPolicy {p.namespace}/{p.name} (invalid; ignored)")
                else:
                    out.append(p.authorization)
        return out, ignored

    # ------------------------------------------------------------------------------------------
    def _admits(self, authz: ClientAuthorization, request: Request) -> AuthorizationMiss | None:
        """None when ``authz`` admits ``request``, else why not (networks first, then authentication)."""
        ok, detail = self._in_networks(authz.networks, request.source_ip)
        if not ok:
            return AuthorizationMiss(authz.ref, "networks", detail)
        principal = request.source_principal
        if authz.authentication == "unauthenticated":
            return None
        if principal is None:
            return AuthorizationMiss(authz.ref, "authentication", "the client is not meshed (no mTLS)")
        if authz.authentication == "tls":
            return None
        if not principal:
            return AuthorizationMiss(authz.ref, "identities", "the client presented no identity")
        if any(_identity_matches(i, principal) for i in authz.identities):
            return None
        return AuthorizationMiss(authz.ref, "identities",
                                 f"identity `{principal}` is not among {', '.join(authz.identities)}")

    def _in_networks(self, networks: Sequence[tuple[str, Sequence[str]]], source_ip: str | None) -> tuple[bool, str]:
        nets = [(n, [e for e in (_network(x) for x in excepts) if e is not None])
                for n, excepts in ((_network(c), ex) for c, ex in networks) if n is not None]
        if source_ip is None:
            # Unknown client address: assume it is inside the cluster networks, so only an
            # authorization covering all of them can be relied on.
            covered = all(any(c.version == n.version and c.subnet_of(n)  # type: ignore[arg-type]
                              and not any(e.overlaps(c) for e in ex) for n, ex in nets)
                          for c in self._cluster_nets)
            return covered, "" if covered else "the client address is unknown and these networks do not cover " \
                                               "all cluster networks"
        try:
            ip = ipaddress.ip_address(source_ip)
        except ValueError:
            return False, f"client address `{source_ip}` is not an IP address"
        for n, ex in nets:
            if ip.version == n.version and ip in n and not any(ip.version == e.version and ip in e for e in ex):
                return True, ""
        return False, f"client address {source_ip} is outside {', '.join(c for c, _ in networks) or 'no network'}"

    def _decide(self, authzs: Sequence[ClientAuthorization], request: Request
                ) -> tuple[ClientAuthorization | None, list[AuthorizationMiss]]:
        misses: list[AuthorizationMiss] = []
        audit_hit: ClientAuthorization | None = None
        for a in authzs:
            miss = self._admits(a, request)
            if miss is not None:
                misses.append(miss)
            elif a.audit:
                audit_hit = audit_hit or a
            else:
                return a, misses  # a real authorization is reported before an audit one
        return audit_hit, misses

    # ------------------------------------------------------------------------------------------
    def evaluate(self, pod: Obj | PodView, request: Request) -> PolicyDecision:
        """Decide ``request`` at the destination pod's port ``request.destination_port``."""
        view = pod if isinstance(pod, PodView) else pod_view(pod)
        port = request.destination_port
        server, ignored = self.server_for(view, port)
        default, default_src = self.default_policy(view)
        assumptions = ["SOURCE_IP_UNKNOWN"] if request.source_ip is None else []
        localhost = ClientAuthorization("default:localhost", _parse_networks(("127.0.0.1/32", "::1/128")),
                                        "unauthenticated")
        ns_ann = self._namespaces.get(view.namespace, {})
        opaque_ports = _ports_annotation(view.annotations.get(_OPAQUE_PORTS_ANNOTATION)
                                         or ns_ann.get(_OPAQUE_PORTS_ANNOTATION))
        if server is None:
            require_id = port in _ports_annotation(view.annotations.get(_REQUIRE_ID_ANNOTATION)
                                                   or ns_ann.get(_REQUIRE_ID_ANNOTATION))
            server_ref = f"default:{default}"
            server_authz = self._default_authorizations(default, require_id, server_ref)
            opaque = port in opaque_ports
            routes: list[CompiledHttpRoute] = []
        else:
            server_ref = server.ref
            server_authz, more = self._server_authorizations(server)
            ignored += tuple(more)
            opaque = server.protocol in _OPAQUE_PROTOCOLS
            routes = list(self._routes.get((server.namespace, server.name), ()))
            if server.protocol == "gRPC":
                # gRPC servers take GRPCRoutes (not modelled) and have no probe route: default route only.
                routes = []
                assumptions.append("GRPCROUTE_NOT_MODELLED")
        server_authz = [*server_authz, localhost]
        base = (server_ref, default, default_src)
        http = request.protocol == "http" and not opaque
        if not http:
            chosen, misses = self._decide(server_authz, request)
            return self._answer(chosen, misses, request, None, server_authz, "tcp", base, (), assumptions, ignored,
                                server)
        # HTTP: routes of the Server, or the default routes.
        if routes:
            selection = select_route(routes, request)
            if selection.winner is None:
                return PolicyDecision(
                    False, DENIED_DEFAULT, "no-route", 404, server_ref, default, default_src, None, None,
                    f"{server_ref} has HTTPRoutes and none matches the request (HTTP 404)", "http",
                    route_misses=selection.misses, assumptions=tuple(assumptions), ignored=ignored)
            route = selection.winner.route
            route_authz, more = self._route_authorizations(route)
            ignored += tuple(more)
            authzs = [*route_authz, *server_authz]
            chosen, misses = self._decide(authzs, request)
            return self._answer(chosen, misses, request, route.ref, authzs, "http", base, selection.misses,
                                assumptions, ignored, server)
        probe_paths = view.probes.get(port, ()) if server is None or server.protocol != "gRPC" else ()
        if request.method.upper() == "GET" and request.path.partition("?")[0] in probe_paths:
            probe = ClientAuthorization("default:probe", _parse_networks(self.config.probe_networks),
                                        "unauthenticated")
            authzs = [probe, *server_authz]
            chosen, misses = self._decide(authzs, request)
            return self._answer(chosen, misses, request, "probe", authzs, "http", base, (), assumptions, ignored,
                                server)
        chosen, misses = self._decide(server_authz, request)
        return self._answer(chosen, misses, request, "default", server_authz, "http", base, (), assumptions,
                            ignored, server)

    @staticmethod
    def _answer(chosen: ClientAuthorization | None, misses: Sequence[AuthorizationMiss], request: Request,
                route: str | None, considered: Sequence[ClientAuthorization], protocol: str,
                base: tuple[str, str, str],
                route_misses: Sequence[MatchMiss], assumptions: Sequence[str], ignored: Sequence[str],
                server: ServerView | None) -> PolicyDecision:
        refs = tuple(a.ref for a in considered)
        server_ref, default, default_src = base
        where = server_ref + (f" route {route}" if route else "")
        if chosen is not None:
            outcome = "audit" if chosen.audit else "authorized"
            reason = (f"{chosen.ref} admits the request on {where}" + (" (audit: allowed and flagged)"
                                                                       if chosen.audit else ""))
            return PolicyDecision(True, ALLOWED, outcome, None, server_ref, default, default_src, route, chosen.ref,
                                  reason, protocol, refs, tuple(misses), tuple(route_misses), tuple(assumptions),
                                  tuple(ignored))
        status = 403 if protocol == "http" else None
        if server is not None:
            why = f"{server.ref} selects the port and no authorization admits the request"
        else:
            why = f"the default policy `{default}` ({default_src}) does not admit the request"
        reason = why + (" (HTTP 403)" if status else " (connection refused)")
        return PolicyDecision(False, DENIED_DEFAULT, "unauthorized", status, server_ref, default, default_src, route,
                              None, reason, protocol, refs, tuple(misses), tuple(route_misses), tuple(assumptions),
                              tuple(ignored))


# ================================================================================================
# Compilation
# ================================================================================================


def _networks_of(obj: Obj | None) -> tuple[tuple[str, tuple[str, ...]], ...] | None:
    if obj is None:
        return None
    out = []
    for n in (as_map(x) for x in as_list(spec(obj).get("networks"))):
        if n.get("cidr"):
            out.append((str(n["cidr"]), tuple(str_list(n.get("except")))))
    return tuple(out)


def _mesh_identities(obj: Obj, config: LinkerdConfig) -> tuple[str, ...]:
    s = spec(obj)
    ns = namespace_of(obj)
    ids = list(str_list(s.get("identities")))
    for ref in (as_map(x) for x in as_list(s.get("identityRefs"))):
        kind = str(ref.get("kind") or "")
        ref_ns = str(ref.get("namespace") or ns)
        name = ref.get("name")
        if kind == "ServiceAccount":
            if name and name != "*":
                ids.append(service_account_identity(str(name), ref_ns, config))
            else:
                # "When unspecified, this refers to all resources of the specified Group and Kind".
                ids.append("*." + service_account_identity("x", ref_ns, config).split(".", 1)[1])
        elif kind == "Namespace" and name:
            ids.append("*." + service_account_identity("x", str(name), config).split(".", 1)[1])
    return tuple(ids)


def _authorization_policy(obj: Obj, authns: Mapping[tuple[str, str, str], Obj], config: LinkerdConfig,
                          diagnostics: list[Diagnostic]) -> _Policy:
    s = spec(obj)
    ns = namespace_of(obj)
    t = as_map(s.get("targetRef"))
    target = _Target(str(t.get("kind") or ""), str(t.get("name") or ""), str(t.get("group") or ""))
    ref = f"AuthorizationPolicy {ns}/{name_of(obj)}"
    identities: tuple[str, ...] | None = None
    networks: tuple[tuple[str, tuple[str, ...]], ...] | None = None
    problem = ""
    if target.kind not in ("Server", "Namespace", "HTTPRoute"):
        problem = f"unsupported target kind `{target.kind}`"
    if target.kind == "Namespace" and target.name != ns:
        problem = "a Namespace target must be the policy's own namespace"
    for r in (as_map(x) for x in as_list(s.get("requiredAuthenticationRefs"))):
        kind = str(r.get("kind") or "")
        rns = str(r.get("namespace") or ns)
        rname = str(r.get("name") or "")
        if kind == "MeshTLSAuthentication":
            found = authns.get(("MeshTLSAuthentication", rns, rname))
            if found is None:
                problem = problem or f"MeshTLSAuthentication {rns}/{rname} does not exist"
            elif identities is not None:
                problem = problem or "a policy must not include several MeshTLSAuthentications"
            else:
                identities = _mesh_identities(found, config)
        elif kind == "ServiceAccount":
            if identities is not None:
                problem = problem or "a policy must not include several ServiceAccounts"
            identities = (service_account_identity(rname, rns, config),)
        elif kind == "NetworkAuthentication":
            found = authns.get(("NetworkAuthentication", rns, rname))
            if found is None:
                problem = problem or f"NetworkAuthentication {rns}/{rname} does not exist"
            elif networks is not None:
                problem = problem or "a policy must not include several NetworkAuthentications"
            else:
                networks = _networks_of(found)
        else:
            problem = problem or f"unsupported authentication kind `{kind}`"
    authz = None
    if problem:
        diagnostics.append(Diagnostic("MR0921", f"authorization policy is ignored: {problem}", Severity.WARNING,
                                      object=ref))
    else:
        # No identities: unauthenticated; no networks: all networks (policy controller defaults).
        authz = ClientAuthorization(ref, networks if networks is not None else _parse_networks(_ALL_NETWORKS),
                                    "identity" if identities is not None else "unauthenticated",
                                    identities or ())
    return _Policy(ns, name_of(obj), "AuthorizationPolicy", target, None, None, authz)


def _server_authorization(obj: Obj, config: LinkerdConfig, diagnostics: list[Diagnostic]) -> _Policy:
    s = spec(obj)
    ns = namespace_of(obj)
    ref = f"ServerAuthorization {ns}/{name_of(obj)}"
    server = as_map(s.get("server"))
    client = as_map(s.get("client"))
    nets = tuple((str(n.get("cidr")), tuple(str_list(n.get("except"))))
                 for n in (as_map(x) for x in as_list(client.get("networks"))) if n.get("cidr"))
    # An empty networks list means the cluster networks (what the policy controller sends the proxy).
    networks = nets or _parse_networks(config.cluster_networks)
    authz: ClientAuthorization | None
    if client.get("unauthenticated") is True:
        authz = ClientAuthorization(ref, networks, "unauthenticated")
    elif isinstance(client.get("meshTLS"), Mapping):
        mtls = as_map(client.get("meshTLS"))
        if mtls.get("unauthenticatedTLS") is True:
            authz = ClientAuthorization(ref, networks, "tls")
        else:
            ids = list(str_list(mtls.get("identities")))
            for sa in (as_map(x) for x in as_list(mtls.get("serviceAccounts"))):
                ids.append(service_account_identity(str(sa.get("name") or ""), str(sa.get("namespace") or ns), config))
            authz = ClientAuthorization(ref, networks, "identity", tuple(ids)) if ids else None
    else:
        authz = None
    if authz is None:
        diagnostics.append(Diagnostic("MR0922", "server authorization authorizes no client and is ignored",
                                      Severity.WARNING, object=ref))
    name = str(server["name"]) if server.get("name") else None
    selector = as_map(server.get("selector")) if name is None else None
    return _Policy(ns, name_of(obj), "ServerAuthorization", None, name, selector, authz)


def _server(obj: Obj) -> ServerView:
    s = spec(obj)
    raw_port = s.get("port")
    port: int | str | None = first_int(raw_port) if not isinstance(raw_port, str) or raw_port.isdigit() else raw_port
    access = str(s.get("accessPolicy") or "deny")
    return ServerView(namespace_of(obj), name_of(obj), labels_of(obj), as_map(s.get("podSelector")), port,
                   str(s.get("proxyProtocol") or "unknown"), access if access in DEFAULT_INBOUND_POLICIES else "deny",
                   creation_key(obj))


def compile_policy(objects: Iterable[Obj], *, config: LinkerdConfig | None = None) -> LinkerdPolicy:
    """Compile the Linkerd policy objects among ``objects``.

    Reads Server, ServerAuthorization, AuthorizationPolicy, MeshTLSAuthentication,
    NetworkAuthentication, HTTPRoute (both groups) and Namespace annotations; ``config`` defaults
    to ConfigMap ``linkerd-config`` among ``objects``, else Linkerd's install defaults.
    """
    objs = dedupe(objects)
    cfg = config or LinkerdConfig.from_objects(objs)
    diagnostics: list[Diagnostic] = []
    authns = {(kind_of(o), namespace_of(o), name_of(o)): o for o in objs
              if kind_of(o) in ("MeshTLSAuthentication", "NetworkAuthentication") and group_of(o) == POLICY_GROUP}
    servers: list[ServerView] = []
    policies: list[_Policy] = []
    routes: list[CompiledHttpRoute] = []
    namespaces: dict[str, Mapping[str, str]] = {}
    for o in objs:
        kind = kind_of(o)
        if kind == "Namespace" and group_of(o) == "":
            namespaces[name_of(o)] = annotations_of(o)
        elif group_of(o) == POLICY_GROUP and kind == "Server":
            servers.append(_server(o))
        elif group_of(o) == POLICY_GROUP and kind == "AuthorizationPolicy":
            policies.append(_authorization_policy(o, authns, cfg, diagnostics))
        elif group_of(o) == POLICY_GROUP and kind == "ServerAuthorization":
            policies.append(_server_authorization(o, cfg, diagnostics))
        elif is_http_route(o):
            routes.append(compile_http_route(o))
    return LinkerdPolicy(servers, policies, routes, namespaces, cfg, diagnostics)
