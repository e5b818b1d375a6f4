"""Request operations (path x method) for inbound HTTPRoutes, with Linkerd's matching semantics.

An AccessPolicy restricted to paths or methods becomes inbound HTTPRoutes on the destination's
Server, each targeted by AuthorizationPolicies (spec §4). Linkerd sends a request to exactly one
route — the one with the most specific match (linkerd2-proxy `http-route`: longest path match
first, where an exact or regex match counts the whole path and a prefix its own length; then a
method match; then headers, query parameters) — and authorizes it with that route's policies
only (plus the Server's). So when the operations of several AccessPolicies overlap, the route a
request lands on must carry every policy that allows the request.

This module makes that true by construction: the operations of all policies on a Server are
closed under intersection (`close`); every closed operation becomes a match that carries exactly
the policies whose operations contain it (`contains`). For any request, the most specific
matching operation is then the intersection of all operations matching it, which every allowing
policy contains. Where Linkerd cannot intersect two operations (a suffix pattern against a
prefix) or ranks two of them equally, `conflicts` names the pair so the emitter can warn.

Paths use AccessPolicy's Istio semantics (`/x` exact, `/x*` prefix, `*x` suffix, `*` any):
- exact → `Exact`; suffix → `RegularExpression` (Linkerd anchors it at both ends);
- prefix → `PathPrefix`, which Linkerd matches per path segment after trimming trailing `/`:
  `/api/*` also matches `/api`, `/api*` does not match `/apix` (`approximations` reports both).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import combinations
from typing import Any, Literal

PathKind = Literal["any", "exact", "prefix", "regex"]

# The intersection closure of n operations can grow quickly; a Server needing more distinct
# operations than this is far beyond any hand-written policy set, and stops with a finding.
MAX_OPERATIONS = 256

_REGEX_META = re.compile(r"([\\.+*?()|\[\]{}^$])")


@dataclass(frozen=True, slots=True, order=True)
class PathMatch:
    """A path condition as Linkerd evaluates it; a prefix is stored trimmed of trailing `/`."""

    kind: PathKind
    value: str = ""

    def matches(self, path: str) -> bool:
        """Whether Linkerd's path match accepts ``path``."""
        if self.kind == "any":
            return True
        if self.kind == "exact":
            return path == self.value
        if self.kind == "regex":
            return re.fullmatch(self.value, path) is not None
        trimmed = path.rstrip("/")
        return trimmed == self.value or trimmed.startswith(self.value + "/")


@dataclass(frozen=True, slots=True)
class Operation:
    """Requests with a path condition and a method (`None`: any method)."""

    path: PathMatch
    method: str | None = None

    def __lt__(self, other: Operation) -> bool:
        return (self.path, self.method or "") < (other.path, other.method or "")


ANY_OPERATION = Operation(PathMatch("any"))


def path_match(pattern: str) -> PathMatch:
    """The Linkerd path match for an AccessPolicy path pattern (Istio semantics)."""
    if pattern in ("*", "/*"):
        return PathMatch("any")
    if pattern.endswith("*"):
        trimmed = pattern[:-1].rstrip("/")
        return PathMatch("prefix", trimmed) if trimmed else PathMatch("any")
    if pattern.startswith("*"):
        return PathMatch("regex", ".*" + _REGEX_META.sub(r"\\\1", pattern[1:]))
    return PathMatch("exact", pattern)


def approximations(pattern: str) -> str | None:
    """How Linkerd's match of a path pattern differs from the AccessPolicy's, or None when exact."""
    if pattern in ("*", "/*") or not pattern.endswith("*") or pattern.startswith("*"):
        return None
    head = pattern[:-1]
    trimmed = head.rstrip("/")
    if not trimmed:
        return None
    if head.endswith("/"):
        return f"Linkerd matches `{pattern}` per path segment, so it also allows `{trimmed}`"
    return f"Linkerd matches `{pattern}` per path segment: `{trimmed}` and `{trimmed}/…`, not `{trimmed}x…`"


def operations(paths: Iterable[str], methods: Iterable[str]) -> tuple[Operation, ...]:
    """The operations of an allow rule: every path with every method (empty lists mean any)."""
    path_matches = sorted({path_match(p) for p in paths}) or [PathMatch("any")]
    method_list: list[str | None] = [*sorted({m.upper() for m in methods})] or [None]
    return tuple(sorted({Operation(p, m) for p in path_matches for m in method_list}))


def _path_within(inner: PathMatch, outer: PathMatch) -> bool:
    """Whether every path `inner` accepts is accepted by `outer` (False when it cannot tell)."""
    if outer.kind == "any" or inner == outer:
        return True
    if inner.kind == "exact":
        return outer.matches(inner.value)
    if inner.kind == "prefix" and outer.kind == "prefix":
        return inner.value.startswith(outer.value + "/")
    return False


def contains(outer: Operation, inner: Operation) -> bool:
    """Whether every request of `inner` is a request of `outer` (False when it cannot tell)."""
    if outer.method is not None and outer.method != inner.method:
        return False
    return _path_within(inner.path, outer.path)


def _intersect_paths(a: PathMatch, b: PathMatch) -> tuple[bool, PathMatch | None]:
    """(known, intersection): the paths both accept, `None` when none; `known` False if Linkerd cannot say."""
    if _path_within(a, b):
        return True, a
    if _path_within(b, a):
        return True, b
    if a.kind == "exact" or b.kind == "exact":
        return True, None  # an exact path outside the other condition
    if a.kind == "prefix" and b.kind == "prefix":
        return True, None  # neither prefix within the other: disjoint segments
    return False, None


def intersect(a: Operation, b: Operation) -> tuple[bool, Operation | None]:
    """(known, intersection) of two operations."""
    if a.method is not None and b.method is not None and a.method != b.method:
        return True, None
    known, path = _intersect_paths(a.path, b.path)
    if path is None:
        return known, None
    return True, Operation(path, a.method or b.method)


def close(ops: Iterable[Operation]) -> tuple[tuple[Operation, ...], bool]:
    """The closure of `ops` under intersection, sorted, and whether it stayed under `MAX_OPERATIONS`."""
    closed = set(ops)
    frontier = sorted(closed)
    while frontier:
        added: set[Operation] = set()
        for a in frontier:
            for b in sorted(closed):
                _, c = intersect(a, b)
                if c is not None and c not in closed and c not in added:
                    added.add(c)
        if len(closed) + len(added) > MAX_OPERATIONS:
            return tuple(sorted(closed)), False
        closed |= added
        frontier = sorted(added)
    return tuple(sorted(closed)), True


def conflicts(covers: Mapping[Operation, frozenset[str]]) -> list[tuple[Operation, Operation]]:
    """Pairs of operations with different grants that Linkerd may not order correctly.

    Either their intersection is unknown (a suffix against a prefix), or one contains the other
    and a request may match both with the same rank (an exact path equal to a prefix, or inside a
    suffix pattern), so Linkerd breaks the tie by route age and name instead of by grants. (Two
    operations of the same rank that overlap always nest: their intersection is one of them.)
    """
    found: list[tuple[Operation, Operation]] = []
    for a, b in combinations(sorted(covers), 2):
        if covers[a] == covers[b]:
            continue
        known, both = intersect(a, b)
        nested_tie = both in (a, b) and (a.method is None) == (b.method is None) and _ties_on_path(a.path, b.path)
        if not known or nested_tie:
            found.append((a, b))
    return found


def _ties_on_path(a: PathMatch, b: PathMatch) -> bool:
    """Whether a request matching both nested paths gets the same match length from each.

    Linkerd counts the whole path for exact and regex matches, the (trimmed) prefix for a prefix,
    and 1 for `/` (any path).
    """
    kinds = {a.kind, b.kind}
    if kinds <= {"exact", "regex"}:
        return True
    if kinds == {"exact", "prefix"}:
        exact, prefix = (a, b) if a.kind == "exact" else (b, a)
        return exact.value == prefix.value
    if "any" in kinds and kinds & {"exact", "regex"}:
        other = a if a.kind != "any" else b
        return other.matches("/")
    return False


def specificity(op: Operation) -> tuple[int, int, str, str]:
    """A sort key putting more specific operations first (for readable routes)."""
    rank = {"exact": 0, "regex": 1, "prefix": 2, "any": 3}[op.path.kind]
    return (rank, -len(op.path.value), op.path.value, op.method or "~")


def match_of(op: Operation) -> dict[str, Any]:
    """The HTTPRoute `matches[]` entry of an operation."""
    path: dict[str, str]
    if op.path.kind == "exact":
        path = {"type": "Exact", "value": op.path.value}
    elif op.path.kind == "regex":
        path = {"type": "RegularExpression", "value": op.path.value}
    elif op.path.kind == "prefix":
        path = {"type": "PathPrefix", "value": op.path.value}
    else:
        path = {"type": "PathPrefix", "value": "/"}
    match: dict[str, Any] = {"path": path}
    if op.method is not None:
        match["method"] = op.method
    return match
