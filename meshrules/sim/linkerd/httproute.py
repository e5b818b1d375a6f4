"""Gateway API HTTPRoute matching and precedence, as Linkerd's proxies apply them.

Shared by ``meshrules.sim.linkerd.policy`` (inbound routes whose parent is a ``Server``) and
``meshrules.sim.linkerd.routing`` (outbound routes whose parent is a ``Service``). Both
``policy.linkerd.io`` and ``gateway.networking.k8s.io`` HTTPRoutes are read; they share the match
grammar.

Matching (Gateway API ``HTTPRouteMatch``): a match without ``path`` is ``PathPrefix /``; a rule
without matches matches everything; ``PathPrefix`` matches whole path elements (``/abc`` matches
``/abc``, ``/abc/`` and ``/abc/def`` but not ``/abcd``; a trailing ``/`` in the value is ignored);
header names are case-insensitive and only the first entry per name counts; header and query
matches are ``Exact`` (default) or ``RegularExpression`` (RE2, full match); all fields of a match
are ANDed, the matches of a rule ORed.

Precedence (Gateway API ``HTTPRouteRule.matches``): across all rules of all applicable routes, an
``Exact`` path beats a ``PathPrefix`` and a longer prefix a shorter one, then a ``method`` match,
then more header matches, then more query matches; remaining ties go to the oldest route, then
``namespace/name`` in alphabetical order, then the first rule and match in list order.
``RegularExpression`` paths are implementation-specific; Linkerd ranks them between ``Exact`` and
``PathPrefix`` (longer patterns first), and so does this module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import re2  # type: ignore[import-untyped]

from meshrules.sim.objects import (
    Obj,
    annotations_of,
    as_list,
    as_map,
    creation_key,
    first_int,
    group_of,
    kind_of,
    name_of,
    namespace_of,
    str_list,
)
from meshrules.sim.request import Request

__all__ = [
    "GATEWAY_GROUP",
    "POLICY_GROUP",
    "CompiledHttpRoute",
    "HttpRouteRule",
    "MatchMiss",
    "ParentRef",
    "RouteMatch",
    "RouteSelection",
    "compile_http_route",
    "is_http_route",
    "select_route",
]

POLICY_GROUP = "policy.linkerd.io"
GATEWAY_GROUP = "gateway.networking.k8s.io"

# Path kinds in precedence order (higher wins).
_EXACT, _REGEX, _PREFIX = 3, 2, 1


def is_http_route(obj: Obj) -> bool:
    """Whether ``obj`` is an HTTPRoute of either API group Linkerd reads."""
    return kind_of(obj) == "HTTPRoute" and group_of(obj) in (POLICY_GROUP, GATEWAY_GROUP)


@dataclass(frozen=True, slots=True)
class ParentRef:
    """One ``parentRefs`` entry, with the Gateway API defaults filled in."""

    group: str
    kind: str
    namespace: str
    name: str
    port: int | None


@dataclass(frozen=True, slots=True)
class _Match:
    rule: int
    index: int
    path_kind: int
    path_value: str
    rank: tuple[int, int, int, int, int]
    checks: tuple[tuple[str, Callable[[Request, str, dict[str, str]], bool]], ...]

    def failing(self, request: Request, path: str, query: dict[str, str]) -> list[str]:
        return [f for f, t in self.checks if not t(request, path, query)]


@dataclass(frozen=True, slots=True)
class HttpRouteRule:
    """One rule of an HTTPRoute: its matches and the raw fields the evaluators read."""

    index: int
    matches: tuple[_Match, ...]
    backend_refs: tuple[Any, ...]
    filters: tuple[Any, ...]
    timeouts: Any


@dataclass(frozen=True, slots=True)
class CompiledHttpRoute:
    """An HTTPRoute compiled once: parents, hostnames, rules with ranked matches."""

    group: str
    namespace: str
    name: str
    parents: tuple[ParentRef, ...]
    hostnames: tuple[str, ...]
    rules: tuple[HttpRouteRule, ...]
    annotations: tuple[tuple[str, str], ...]
    order: tuple[float, str, str]

    @property
    def key(self) -> str:
        """``namespace/name``."""
        return f"{self.namespace}/{self.name}"

    @property
    def ref(self) -> str:
        """``HTTPRoute namespace/name (group)``, how answers name it."""
        return f"HTTPRoute {self.key} ({self.group})"

    def annotation(self, name: str) -> str | None:
        """The value of annotation ``name``, or None."""
        for k, v in self.annotations:
            if k == name:
                return v
        return None


@dataclass(frozen=True, slots=True)
class RouteMatch:
    """The route, rule and match that won for a request."""

    route: CompiledHttpRoute
    rule: HttpRouteRule
    match: int | None  # None: the rule has no matches (matches everything)


@dataclass(frozen=True, slots=True)
class MatchMiss:
    """Why a route did not take the request: the first failing field of its closest match."""

    route: str
    rule: int
    field: str


@dataclass(frozen=True, slots=True)
class RouteSelection:
    """The winning match (None when no route matches) and the misses of the other routes."""

    winner: RouteMatch | None
    misses: tuple[MatchMiss, ...]
    candidates: int


def _string_check(kind: str, value: str, read: Callable[[Request, str, dict[str, str]], str | None]
                  ) -> Callable[[Request, str, dict[str, str]], bool]:
    """An Exact (default) or RegularExpression (RE2, full match) check on the value ``read`` returns."""
    if kind == "RegularExpression":
        try:
            pattern = re2.compile(value)
        except Exception:  # re2.error is not exported under a stable name; an invalid regex never matches
            return lambda r, p, q: False
        return lambda r, p, q: (v := read(r, p, q)) is not None and pattern.fullmatch(v) is not None
    return lambda r, p, q: read(r, p, q) == value


_Check = Callable[[Request, str, dict[str, str]], bool]
_Read = Callable[[Request, str, dict[str, str]], str | None]


def _path_exact(value: str) -> _Check:
    return lambda r, p, q: p == value


def _path_prefix(value: str) -> _Check:
    return lambda r, p, q: _prefix_matches(value, p)


def _read_path(r: Request, p: str, q: dict[str, str]) -> str | None:
    return p


def _method_is(method: str) -> _Check:
    wanted = method.upper()
    return lambda r, p, q: r.method.upper() == wanted


def _read_header(name: str) -> _Read:
    return lambda r, p, q: r.header(name)


def _read_query(name: str) -> _Read:
    return lambda r, p, q: q.get(name)


def _prefix_matches(prefix: str, path: str) -> bool:
    """Gateway API PathPrefix: element-wise, trailing slash of the prefix ignored."""
    base = prefix.rstrip("/")
    if not base:
        return True
    return path == base or path.startswith(base + "/")


def _compile_match(rule: int, index: int, m: Any, where: str) -> _Match:
    mm = as_map(m)
    path = as_map(mm.get("path")) if mm.get("path") is not None else {"type": "PathPrefix", "value": "/"}
    path_type = str(path.get("type") or "PathPrefix")
    path_value = str(path.get("value") if path.get("value") is not None else "/")
    checks: list[tuple[str, _Check]] = []
    if path_type == "Exact":
        kind = _EXACT
        checks.append((f"{where}.path", _path_exact(path_value)))
    elif path_type == "RegularExpression":
        kind = _REGEX
        checks.append((f"{where}.path", _string_check("RegularExpression", path_value, _read_path)))
    else:
        kind = _PREFIX
        if path_value.rstrip("/"):
            checks.append((f"{where}.path", _path_prefix(path_value)))
    method = mm.get("method")
    if isinstance(method, str) and method:
        checks.append((f"{where}.method", _method_is(method)))
    seen: set[str] = set()
    header_count = 0
    for h in as_list(mm.get("headers")):
        hm = as_map(h)
        name = str(hm.get("name") or "").lower()
        if not name or name in seen:
            continue  # "only the first entry with an equivalent name MUST be considered"
        seen.add(name)
        header_count += 1
        checks.append((f"{where}.headers[{name}]", _string_check(
            str(hm.get("type") or "Exact"), str(hm.get("value") or ""), _read_header(name))))
    query_count = 0
    for qp in as_list(mm.get("queryParams")):
        qm = as_map(qp)
        name = str(qm.get("name") or "")
        if not name:
            continue
        query_count += 1
        checks.append((f"{where}.queryParams[{name}]", _string_check(
            str(qm.get("type") or "Exact"), str(qm.get("value") or ""), _read_query(name))))
    length = len(path_value.rstrip("/")) if kind == _PREFIX else len(path_value)
    rank = (kind, length, 1 if method else 0, header_count, query_count)
    return _Match(rule, index, kind, path_value, rank, tuple(checks))


def _parent(ref: Any, namespace: str) -> ParentRef:
    r = as_map(ref)
    group = str(r.get("group") if r.get("group") is not None else GATEWAY_GROUP)
    return ParentRef(group, str(r.get("kind") or "Gateway"), str(r.get("namespace") or namespace),
                     str(r.get("name") or ""), first_int(r.get("port")))


def compile_http_route(obj: Obj) -> CompiledHttpRoute:
    """Compile one HTTPRoute (either API group)."""
    s = as_map(obj.get("spec"))
    ns = namespace_of(obj)
    rules = []
    for i, rule in enumerate(as_map(x) for x in as_list(s.get("rules"))):
        raw_matches = as_list(rule.get("matches"))
        # "If no matches are specified, the default is a prefix path match on "/"".
        matches = tuple(_compile_match(i, j, m, f"spec.rules[{i}].matches[{j}]")
                        for j, m in enumerate(raw_matches or [{}]))
        rules.append(HttpRouteRule(i, matches, tuple(as_list(rule.get("backendRefs"))),
                                   tuple(as_list(rule.get("filters"))), rule.get("timeouts")))
    return CompiledHttpRoute(
        group=group_of(obj), namespace=ns, name=name_of(obj),
        parents=tuple(_parent(p, ns) for p in as_list(s.get("parentRefs"))),
        hostnames=tuple(h.lower() for h in str_list(s.get("hostnames"))),
        rules=tuple(rules), annotations=tuple(sorted(annotations_of(obj).items())),
        order=creation_key(obj),
    )


def _host_ok(route: CompiledHttpRoute, host: str | None) -> bool:
    if not route.hostnames or host is None:
        return True
    h = host.rsplit(":", 1)[0].lower() if ":" in host and not host.endswith("]") else host.lower()
    for pattern in route.hostnames:
        if pattern.startswith("*."):
            if h.endswith(pattern[1:]):
                return True
        elif pattern == h:
            return True
    return False


def select_route(routes: Iterable[CompiledHttpRoute], request: Request) -> RouteSelection:
    """The match that takes ``request`` among ``routes``, by Gateway API precedence, and the misses."""
    path, _, query_text = request.path.partition("?")
    query: dict[str, str] = {}
    for k, v in parse_qsl(query_text, keep_blank_values=True):
        query.setdefault(k, v)
    best: tuple[tuple[Any, ...], RouteMatch] | None = None
    misses: list[MatchMiss] = []
    count = 0
    for route in routes:
        count += 1
        if not _host_ok(route, request.host):
            misses.append(MatchMiss(route.ref, -1, "spec.hostnames"))
            continue
        closest: tuple[int, int, str] | None = None
        for rule in route.rules:
            for m in rule.matches:
                failed = m.failing(request, path, query)
                if failed:
                    if closest is None or len(failed) < closest[0]:
                        closest = (len(failed), rule.index, failed[0])
                    continue
                # Higher rank first, then older route, then namespace/name, then list order.
                key = (tuple(-x for x in m.rank), route.order, rule.index, m.index)
                if best is None or key < best[0]:
                    best = (key, RouteMatch(route, rule, m.index))
        if closest is not None and (best is None or best[1].route is not route):
            misses.append(MatchMiss(route.ref, closest[1], closest[2]))
    return RouteSelection(best[1] if best else None, tuple(misses), count)


def parents_of(routes: Sequence[CompiledHttpRoute], group: str, kind: str) -> list[tuple[CompiledHttpRoute, ParentRef]]:
    """Every (route, parent) pair whose parent has the given group and kind."""
    return [(r, p) for r in routes for p in r.parents if p.group == group and p.kind == kind]
