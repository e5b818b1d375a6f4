"""Client-side HTTPRoutes (policy.linkerd.io/v1beta3) from the mesh-neutral route model.

`meshrules.emit.routes` gives, per destination D, an ordered route table: the first route a
request matches carries its merged configuration. Linkerd does not route by order: among all
rules of all HTTPRoutes attached to a parent, it takes the *most specific* match — path match
length (exact and regular-expression matches count the whole path, `PathPrefix /` counts 1),
then a method match, then the number of header matches, then of query-parameter matches
(linkerd2-proxy `http-route`, `RequestMatch` ordering) — and breaks ties by rule order inside one
HTTPRoute, then by route age and name across HTTPRoutes (Gateway API precedence).

So the table is rendered in order, and then made safe for Linkerd's precedence: wherever a
request can match an earlier route i and a later route j that configure it differently, and
Linkerd might prefer j, the intersection of the two matches is added to route i (it holds no
request route i did not already have, and ranks at least as high as j's match on every
component). Inside one HTTPRoute a remaining tie goes to i by rule order. Across HTTPRoutes — which
Linkerd needs because retries are annotations of a whole HTTPRoute — a tie would be decided by
creation time, so there the intersection must rank strictly higher; where it cannot, the later
accepted policy that makes the two differ is INVALID for D (`CODE_ORDER`) and the table is rebuilt
without it.

Rendering of one route (spec §3.2 fields Linkerd can express):
- matches: uri exact → `Exact`; uri prefix → `RegularExpression` `<prefix>.*` (Istio's prefix is a
  string prefix, Linkerd's `PathPrefix` matches whole segments; a regex keeps the meaning and
  ranks like an exact match — except that Linkerd matches the path without its query string,
  which only matters for a prefix containing `?`); uri regex → `RegularExpression` (both anchor
  the whole path);
  method; headers and query parameters (exact, `RegularExpression`, presence as `.*`);
- `requestTimeout` → `timeouts.request`;
- `retries` → annotations `retry.linkerd.io/http: 5xx`, `retry.linkerd.io/limit` (attempts: both
  count retries after the first try) and `retry.linkerd.io/timeout` (perTryTimeout) on the
  HTTPRoute (Linkerd "Retries" reference). Istio retries connect failures and 503 by default;
  Linkerd's `5xx` retries any 5xx response; `attempts: 0` writes nothing (Linkerd's default is
  not to retry);
- `trafficShift` → weighted `backendRefs` (the Service, or its mirror `<svc>-<cluster>` when the
  backend is in another cluster and federated into this one);
- `headerManipulation` → `RequestHeaderModifier` on the rule, `ResponseHeaderModifier` on each
  backend (the CRD allows the response filter on backends only).
The catch-all route of the table is rendered too: once an HTTPRoute attaches to a Service, a
request that matches no rule is not routed.

Where: in D's cluster the parent is D's Service; in each cluster C′ that D is federated into, the
parent is the mirror Service there (spec §4) and the table seen from C′ (`RouteTable.for_cluster`).
Routes live in the parent's namespace (producer routes: they apply to every client of the parent).
One parent per HTTP-capable Service port, so a backend without a port gets the parent's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from meshrules.emit.linkerd import codes
from meshrules.emit.linkerd.scope import LinkerdScope
from meshrules.emit.linkerd.servers import HTTP_PROTOCOLS, proxy_protocol
from meshrules.emit.routes import (
    Backend,
    HeaderCondition,
    Inexpressible,
    QueryCondition,
    Route,
    RouteConfig,
    RouteMatch,
    RouteTable,
    StringCondition,
)
from meshrules.model.common import duration_ms
from meshrules.model.discovery import Destination
from meshrules.model.policy import HeaderManipulation, Retries

ROUTE_API_VERSION = "policy.linkerd.io/v1beta3"
CODE_ORDER = codes.ROUTE_ORDER
# HTTPRoute CRD limits: 8 matches per rule, 16 rules per route.
MATCHES_PER_RULE = 8
RULES_PER_ROUTE = 16
# Intersections added for Linkerd's precedence stay few for hand-written policies; past this the
# destination's table is too entangled to render safely and the latest policy is set aside.
MAX_ADDED_MATCHES = 128
# Which responses Linkerd retries: any 5xx, as the Linkerd docs advise for idempotent routes.
RETRY_ON = "5xx"

_REGEX_META = re.compile(r"([\\.+*?()|\[\]{}^$])")


@dataclass(frozen=True, slots=True)
class Parent:
    """Where routes attach: a Service (or mirror Service) port in a cluster."""

    cluster: str
    namespace: str
    service: str
    port: int


@dataclass(frozen=True, slots=True)
class Blame:
    """Why a policy cannot be rendered at a destination: it becomes INVALID there."""

    policy: str
    code: str
    field: str
    message: str


@dataclass
class _Rule:
    """One table route as it is being rendered for a parent."""

    route: Route
    body: dict[str, Any]  # the rendered rule without `matches`
    retries: tuple[str, ...]  # rendered retry annotations, as a sortable key
    clauses: list[RouteMatch] = field(default_factory=list)


# --- parents -------------------------------------------------------------------------------------


def http_ports(destination: Destination) -> tuple[int, ...]:
    """The destination's TCP Service ports on which Linkerd parses HTTP (HTTPRoutes apply), sorted."""
    return tuple(
        sorted(p.port for p in destination.ports if p.protocol.upper() == "TCP" and proxy_protocol(p) in HTTP_PROTOCOLS)
    )


def parents(scope: LinkerdScope, destination: Destination) -> tuple[Parent, ...]:
    """Every parent of the destination's client routes: its Service, and its mirrors (spec §4)."""
    ports = http_ports(destination)
    found = [Parent(destination.cluster, destination.namespace, destination.service, p) for p in ports]
    for edge in scope.federation:
        if edge.destination != destination.name:
            continue
        mirror, namespace = _mirror(edge.host)
        cluster = scope.meshes[edge.mesh].cluster
        found += [Parent(cluster, namespace, mirror, p) for p in ports]
    return tuple(sorted(set(found), key=lambda p: (p.cluster, p.namespace, p.service, p.port)))


def _mirror(host: str) -> tuple[str, str]:
    """(Service, namespace) of a mirror host `<svc>-<cluster>.<ns>.svc.<domain>`."""
    service, namespace = host.split(".")[:2]
    return service, namespace


# --- rendering -----------------------------------------------------------------------------------


def render(
    scope: LinkerdScope,
    destination: Destination,
    table: RouteTable,
    parent: Parent,
    acceptance: Callable[[str], Any],
) -> tuple[list[tuple[tuple[str, ...], list[dict[str, Any]]]], Blame | None]:
    """The HTTPRoutes for one parent: (retry annotations, rules) per object, in precedence order.

    Or the policy to set aside when the table cannot be rendered for Linkerd.
    """
    view = table.for_cluster(parent.cluster)
    rules: list[_Rule] = []
    for route in view.routes:
        body, blame = _rule_body(scope, destination, route.config, parent)
        if blame is not None:
            return [], blame
        rules.append(
            _Rule(
                route,
                body,
                _retry_key(route.config.retries.value if route.config.retries else None),
                list(route.matches),
            )
        )
    groups = _groups(rules)
    blame = _make_safe(rules, groups, acceptance)
    if blame is not None:
        return [], blame
    where = _object_of(rules, groups)
    objects: dict[int, tuple[tuple[str, ...], list[dict[str, Any]]]] = {}
    for i, rule in enumerate(rules):
        matches = [_match(c) for c in _ordered(rule.clauses)]
        if len(matches) > MATCHES_PER_RULE * RULES_PER_ROUTE:
            return [], _blame(rule, rule, acceptance)  # one route would not fit in one HTTPRoute
        _, rendered = objects.setdefault(where[i], (rule.retries, []))
        rendered += [
            {"matches": matches[k : k + MATCHES_PER_RULE], **rule.body}
            for k in range(0, len(matches), MATCHES_PER_RULE)
        ]
    return [objects[k] for k in sorted(objects)], None


def _groups(rules: Sequence[_Rule]) -> list[list[int]]:
    """Table routes per retry setting, in table order (`_object_of` splits them into HTTPRoutes)."""
    by_key: dict[tuple[str, ...], list[int]] = {}
    for i, rule in enumerate(rules):
        by_key.setdefault(rule.retries, []).append(i)
    return list(by_key.values())


def _object_of(rules: Sequence[_Rule], groups: Sequence[Sequence[int]]) -> dict[int, int]:
    """Which HTTPRoute object each table route lands in: per retry setting, a new object whenever
    the next route's rules would push the current one past `RULES_PER_ROUTE`."""
    where: dict[int, int] = {}
    obj = 0
    for members in groups:
        used = 0
        for i in members:
            needed = max(1, -(-len(rules[i].clauses) // MATCHES_PER_RULE))
            if used and used + needed > RULES_PER_ROUTE:
                obj += 1
                used = 0
            where[i] = obj
            used += needed
        obj += 1
    return where


def _rank(c: RouteMatch) -> tuple[int, int, int, int]:
    """Linkerd's rank components of a rendered match: (path counts whole path, method, headers, query)."""
    return (
        int(c.uri is not None),
        int(c.method is not None),
        sum(1 for h in c.headers if not h.invert),
        len(c.query),
    )


def _may_match_root(c: RouteMatch) -> bool:
    """Whether the match may accept the path `/`, where a whole-path match counts 1 like `PathPrefix /`."""
    return c.uri is None or c.uri.matches("/")


def _beats(a: RouteMatch, b: RouteMatch, *, strictly: bool) -> bool:
    """Whether Linkerd ranks `a` above `b` (or equal, unless `strictly`) for every request both match."""
    ra, rb = _rank(a), _rank(b)
    if ra[0] < rb[0]:
        return False
    if ra[0] > rb[0] and not _may_match_root(a):
        return True
    return ra[1:] > rb[1:] if strictly else ra[1:] >= rb[1:]


def _make_safe(rules: list[_Rule], groups: Sequence[Sequence[int]], acceptance: Callable[[str], Any]) -> Blame | None:
    """Add intersections until Linkerd picks, for every request, the route the table picks."""
    added = 0
    changed = True
    while changed:
        changed = False
        where = _object_of(rules, groups)
        pairs = [(a, b) for a in range(len(rules)) for b in range(a + 1, len(rules))]
        for i, j in pairs:
            if rules[i].body == rules[j].body and rules[i].retries == rules[j].retries:
                continue  # same configuration: whichever Linkerd picks, the request gets the same
            same_object = where[i] == where[j]
            for ci in list(rules[i].clauses):
                for cj in rules[j].clauses:
                    if _beats(ci, cj, strictly=not same_object):
                        continue
                    try:
                        both = ci.intersect(cj)
                    except Inexpressible:  # the overlap cannot be stated as one match
                        return _blame(rules[i], rules[j], acceptance)
                    if both is None or any(both == c for c in rules[i].clauses):
                        if both is not None and not _beats(both, cj, strictly=not same_object):
                            return _blame(rules[i], rules[j], acceptance)
                        continue
                    if not _beats(both, cj, strictly=not same_object):
                        return _blame(rules[i], rules[j], acceptance)
                    rules[i].clauses.append(both)
                    added += 1
                    changed = True
                    if added > MAX_ADDED_MATCHES:
                        return _blame(rules[i], rules[j], acceptance)
    return None


def _blame(first: _Rule, second: _Rule, acceptance: Callable[[str], Any]) -> Blame:
    """The later accepted policy among those that make two overlapping routes differ."""
    a, b = first.route.config.providers(), second.route.config.providers()
    differing = {p for f in set(a) | set(b) if a.get(f) != b.get(f) for p in (a.get(f), b.get(f)) if p}
    culprits = sorted(differing or {*first.route.policies, *second.route.policies}, key=acceptance)
    policy = culprits[-1]
    others = sorted(p for p in {*first.route.policies, *second.route.policies} if p != policy)
    return Blame(
        policy=policy,
        code=CODE_ORDER,
        field="spec.httpRequestMatchers",
        message="Linkerd ranks HTTPRoute matches by specificity, not order, and cannot tell its requests apart "
        f"from those of `{'`, `'.join(others) or 'the default route'}` with different retries or settings",
    )


def _ordered(clauses: Sequence[RouteMatch]) -> list[RouteMatch]:
    """Clauses without duplicates, in a stable order (added intersections after the originals)."""
    seen: list[RouteMatch] = []
    for c in clauses:
        if c not in seen:
            seen.append(c)
    return seen


def _rule_body(
    scope: LinkerdScope, destination: Destination, config: RouteConfig, parent: Parent
) -> tuple[dict[str, Any], Blame | None]:
    body: dict[str, Any] = {}
    if config.request_timeout is not None:
        body["timeouts"] = {"request": gateway_duration(config.request_timeout.value)}
    backends: list[dict[str, Any]] = []
    if config.traffic_shift is not None:
        for b in config.traffic_shift.value:
            ref, blame = _backend_ref(scope, destination, b, parent, config.traffic_shift.policy)
            if blame is not None:
                return {}, blame
            assert ref is not None
            backends.append(ref)
    if config.header_manipulation is not None:
        request, response = _header_filters(config.header_manipulation.value)
        if request:
            body["filters"] = [{"type": "RequestHeaderModifier", "requestHeaderModifier": request}]
        if response:
            if not backends:
                # Response filters live on backends only: name the parent itself as the backend.
                backends = [{"name": parent.service, "port": parent.port}]
            for ref in backends:
                ref["filters"] = [{"type": "ResponseHeaderModifier", "responseHeaderModifier": response}]
    if backends:
        body["backendRefs"] = backends
    return body, None


def _backend_ref(
    scope: LinkerdScope, destination: Destination, backend: Backend, parent: Parent, policy: str
) -> tuple[dict[str, Any] | None, Blame | None]:
    target = scope.inp.destination_by_name.get(backend.destination)
    if target is None:
        return None, Blame(
            policy, codes.BACKEND_NOT_VISIBLE, "spec.policy.trafficShift", f"backend `{backend.destination}` is unknown"
        )
    if target.namespace != destination.namespace:
        return None, Blame(
            policy,
            codes.CROSS_NAMESPACE_BACKEND,
            "spec.policy.trafficShift",
            f"a traffic shift from `{destination.namespace}` to a Service in `{target.namespace}` is not "
            f"supported by Linkerd (mesh `{scope.mesh_of(destination).name}`)",
        )
    if target.cluster == parent.cluster:
        name = target.service
    else:
        edge = scope.edge_into(target.name, parent.cluster)
        if edge is None:
            return None, Blame(
                policy,
                codes.BACKEND_NOT_VISIBLE,
                "spec.policy.trafficShift",
                f"a traffic shift to `{target.name}`, which is not federated into `{parent.cluster}`, is not "
                f"supported by Linkerd (mesh `{scope.mesh_of(destination).name}`)",
            )
        name = _mirror(edge.host)[0]
    return {"name": name, "port": backend.port or parent.port, "weight": backend.weight}, None


def _header_filters(h: HeaderManipulation) -> tuple[dict[str, Any], dict[str, Any]]:
    """(request, response) header modifier bodies; Istio's append is Gateway API's `add`."""

    def body(append: Mapping[str, str], remove: Sequence[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if append:
            out["add"] = [{"name": k, "value": v} for k, v in sorted(append.items())]
        if remove:
            out["remove"] = sorted(set(remove))
        return out

    return (
        body(h.append_request_headers, h.remove_request_headers),
        body(h.append_response_headers, h.remove_response_headers),
    )


def _retry_key(retries: Retries | None) -> tuple[str, ...]:
    """The retry annotations as sorted `key=value` strings (empty: Linkerd's default, no retries)."""
    if retries is None or retries.attempts == 0:
        return ()
    found = {"retry.linkerd.io/http": RETRY_ON, "retry.linkerd.io/limit": str(retries.attempts)}
    if retries.per_try_timeout is not None:
        found["retry.linkerd.io/timeout"] = gateway_duration(retries.per_try_timeout)
    return tuple(f"{k}={v}" for k, v in sorted(found.items()))


def retry_annotations(key: tuple[str, ...]) -> dict[str, str]:
    """The annotations of a retry key."""
    return dict(item.split("=", 1) for item in key)


def gateway_duration(text: str) -> str:
    """A duration as Gateway API and Linkerd accept it: whole seconds or whole milliseconds."""
    ms = duration_ms(text)
    whole = max(1, round(ms))
    return f"{whole // 1000}s" if whole % 1000 == 0 else f"{whole}ms"


# --- matches -------------------------------------------------------------------------------------


def _regex_quote(text: str) -> str:
    return _REGEX_META.sub(r"\\\1", text)


def _path(uri: StringCondition | None) -> dict[str, str]:
    if uri is None:
        return {"type": "PathPrefix", "value": "/"}
    if uri.kind == "exact":
        return {"type": "Exact", "value": uri.value}
    if uri.kind == "prefix":
        return {"type": "RegularExpression", "value": _regex_quote(uri.value) + ".*"}
    if uri.kind == "present":
        return {"type": "PathPrefix", "value": "/"}
    return {"type": "RegularExpression", "value": uri.value}


def _value(cond: StringCondition) -> dict[str, str]:
    if cond.kind == "exact" and cond.value:
        return {"type": "Exact", "value": cond.value}
    if cond.kind == "exact":
        return {"type": "RegularExpression", "value": "^$"}
    if cond.kind == "prefix":
        return {"type": "RegularExpression", "value": _regex_quote(cond.value) + ".*"}
    if cond.kind == "present":
        return {"type": "RegularExpression", "value": ".*"}
    return {"type": "RegularExpression", "value": cond.value}


def _header(h: HeaderCondition) -> dict[str, str]:
    return {"name": h.name, **_value(h.condition)}


def _query(q: QueryCondition) -> dict[str, str]:
    return {"name": q.name, **_value(q.condition)}


def _match(c: RouteMatch) -> dict[str, Any]:
    """The HTTPRoute match of a clause (source conditions are handled by where the route lives)."""
    out: dict[str, Any] = {"path": _path(c.uri)}
    if c.method is not None:
        out["method"] = c.method.upper()
    headers = [_header(h) for h in c.headers if not h.invert]
    if headers:
        out["headers"] = headers
    if c.query:
        out["queryParams"] = [_query(q) for q in c.query]
    return out
