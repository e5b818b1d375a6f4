"""A small model of how Linkerd evaluates the objects meshrules emits, to check them request by request.

It follows the sources cited in the emitter: linkerd2-proxy `http-route` (a request goes to the
most specific match: path match length — exact and regex count the whole path, a prefix its trimmed
length, `/` counts 1 —, then method, then header count, then query count; ties by rule order in
one route, by age and name across routes), the policy controller (a Server with routes serves
only them; Server-level authorizations apply to every route), MeshTLSAuthentication identity
matching (`*`, `*.suffix`, exact).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Request:
    method: str = "GET"
    path: str = "/"
    headers: tuple[tuple[str, str], ...] = ()
    query: tuple[tuple[str, str], ...] = ()


def _path_length(match: Mapping[str, Any], path: str) -> int | None:
    p = match.get("path") or {"type": "PathPrefix", "value": "/"}
    kind, value = p["type"], p["value"]
    if kind == "Exact":
        return len(path) if path == value else None
    if kind == "RegularExpression":
        return len(path) if re.fullmatch(value, path) else None
    if value == "/":
        return 1
    prefix = value.rstrip("/")
    rest = path.rstrip("/")
    if rest == prefix or rest.startswith(prefix + "/"):
        return len(prefix)
    return None


def _value_ok(cond: Mapping[str, Any], value: str | None) -> bool:
    if value is None:
        return False
    if cond.get("type", "Exact") == "Exact":
        return value == cond["value"]
    return re.fullmatch(cond["value"], value) is not None


def rank(match: Mapping[str, Any], request: Request) -> tuple[int, int, int, int] | None:
    """Linkerd's rank of a match for a request, None when it does not match."""
    length = _path_length(match, request.path)
    if length is None:
        return None
    if "method" in match and match["method"] != request.method:
        return None
    headers = dict(request.headers)
    if not all(_value_ok(h, headers.get(h["name"])) for h in match.get("headers", ())):
        return None
    query = dict(request.query)
    if not all(_value_ok(q, query.get(q["name"])) for q in match.get("queryParams", ())):
        return None
    return (length, int("method" in match), len(match.get("headers", ())), len(match.get("queryParams", ())))


def select(routes: Sequence[Mapping[str, Any]], request: Request) -> list[tuple[str, int]]:
    """The (route name, rule index) Linkerd may pick: one, or several when only age/name decide."""
    best: tuple[int, int, int, int] | None = None
    picks: dict[str, tuple[tuple[int, int, int, int], int]] = {}
    for route in routes:
        name = route["metadata"]["name"]
        for i, rule in enumerate(route["spec"].get("rules", ())):
            for match in rule.get("matches") or [{}]:
                r = rank(match, request)
                if r is None:
                    continue
                if name not in picks or r > picks[name][0]:
                    picks[name] = (r, i)  # within one route the first rule wins ties
                if best is None or r > best:
                    best = r
    return sorted((name, i) for name, (r, i) in picks.items() if r == best)


def identity_matches(pattern: str, identity: str | None) -> bool:
    if identity is None:
        return False
    if pattern == "*":
        return True
    if pattern.startswith("*."):
        return identity.endswith(pattern[1:])
    return pattern == identity


def _authorized(
    policies: Iterable[Mapping[str, Any]], authns: Mapping[tuple[str, str], Mapping[str, Any]], identity: str | None
) -> bool:
    for policy in policies:
        ok = True
        for ref in policy["spec"]["requiredAuthenticationRefs"]:
            authn = authns[(ref["kind"], ref["name"])]
            if ref["kind"] == "MeshTLSAuthentication":
                ok &= any(identity_matches(p, identity) for p in authn["spec"]["identities"])
            else:
                ok &= identity is None  # the kubelet: unauthenticated, from the probe networks
        if ok:
            return True
    return False


def inbound_allows(
    objects: Sequence[Mapping[str, Any]], server: str, identity: str | None, request: Request
) -> set[bool]:
    """The possible decisions of Linkerd for a request to a Server (several when ties decide)."""
    authns = {
        (o["kind"], o["metadata"]["name"]): o
        for o in objects
        if o["kind"] in ("MeshTLSAuthentication", "NetworkAuthentication")
    }
    policies = [o for o in objects if o["kind"] == "AuthorizationPolicy"]
    on_server = [
        p for p in policies if p["spec"]["targetRef"]["kind"] == "Server" and p["spec"]["targetRef"]["name"] == server
    ]
    routes = [
        o
        for o in objects
        if o["kind"] == "HTTPRoute"
        and any(r.get("kind") == "Server" and r["name"] == server for r in o["spec"]["parentRefs"])
    ]
    if not routes:
        return {_authorized(on_server, authns, identity)}
    decisions = set()
    for name, _ in select(routes, request) or [("", -1)]:
        if not name:
            decisions.add(False)  # no route: refused
            continue
        on_route = [
            p
            for p in policies
            if p["spec"]["targetRef"]["kind"] == "HTTPRoute" and p["spec"]["targetRef"]["name"] == name
        ]
        decisions.add(_authorized([*on_server, *on_route], authns, identity))
    return decisions


def outbound_rule(
    objects: Sequence[Mapping[str, Any]], service: str, port: int, request: Request
) -> list[tuple[dict[str, str], dict[str, Any]]]:
    """The possible (retry annotations, rule without matches) Linkerd applies to a request to a Service port."""
    routes = [
        o
        for o in objects
        if o["kind"] == "HTTPRoute"
        and any(
            r.get("kind") == "Service" and r["name"] == service and r.get("port") == port
            for r in o["spec"]["parentRefs"]
        )
    ]
    out = []
    for name, i in select(routes, request):
        route = next(r for r in routes if r["metadata"]["name"] == name)
        retries = {k: v for k, v in route["metadata"].get("annotations", {}).items() if k.startswith("retry.")}
        rule = {k: v for k, v in route["spec"]["rules"][i].items() if k != "matches"}
        out.append((retries, rule))
    return out
