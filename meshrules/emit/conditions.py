"""Conditions a route matches on, and their algebra: containment and intersection.

Place: the lower half of the route model (`meshrules.emit.routes` re-exports what is public). A
`RouteMatch` is one conjunction of source and request conditions that a mesh can state in one
match (an Istio ``HTTPMatchRequest``, a Linkerd HTTPRoute match); `intersect` builds the match
of two overlapping policies, or says that none exists (the result is provably empty) or that
none can be written (`Inexpressible`: a uri prefix AND a regex, two different regexes, …).

`within` and `intersect` are sound but not complete: when unsure, `within` answers False (a
route is kept that could have been dropped) and `intersect` raises `Inexpressible`.
Regular expressions follow Envoy (RE2, full match); Python's `re` stands in for RE2 here.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Literal
from urllib.parse import parse_qsl

from meshrules.model.common import WorkloadSelector
from meshrules.model.policy import HttpRequestMatcher, StringMatch, TrafficPolicy

MatchKind = Literal["exact", "prefix", "regex", "present"]


@lru_cache(maxsize=4096)
def _regex(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:
        return None


class Inexpressible(Exception):
    """An intersection no single match can state (and that cannot be proven empty)."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


@dataclass(frozen=True, slots=True, order=True)
class StringCondition:
    """A string test: `exact`, `prefix`, `regex` (RE2, full match) or `present` (any value)."""

    kind: MatchKind
    value: str = ""

    def matches(self, text: str | None) -> bool:
        """Whether ``text`` (None: absent) passes."""
        if text is None:
            return False
        if self.kind == "present":
            return True
        if self.kind == "exact":
            return text == self.value
        if self.kind == "prefix":
            return text.startswith(self.value)
        pattern = _regex(self.value)
        return pattern is not None and pattern.fullmatch(text) is not None

    def within(self, other: StringCondition) -> bool:
        """Whether every string passing ``self`` passes ``other`` (False when unsure)."""
        if other.kind == "present" or self == other:
            return True
        if self.kind == "exact":
            return other.matches(self.value)
        if self.kind == "prefix" and other.kind == "prefix":
            return self.value.startswith(other.value)
        return False

    def intersect(self, other: StringCondition, what: str) -> StringCondition | None:
        """The condition both pass, None when provably nothing does; raises when inexpressible."""
        if self.within(other):
            return self
        if other.within(self):
            return other
        for a, b in ((self, other), (other, self)):
            if a.kind == "exact":
                return None  # `a` is one string and `b` rejects it
            if a.kind == "prefix" and b.kind == "prefix":
                return None  # neither prefix extends the other
        raise Inexpressible(f"{what} `{self.describe()}` and `{other.describe()}`")

    def describe(self) -> str:
        """Human form, e.g. ``prefix /api``."""
        return "present" if self.kind == "present" else f"{self.kind} {self.value}"

    @staticmethod
    def of(match: StringMatch) -> StringCondition:
        """From a policy's `{exact|prefix|regex}`."""
        return StringCondition(match.kind, match.value)


@dataclass(frozen=True, slots=True, order=True)
class HeaderCondition:
    """A request header test; ``invert`` is Istio's `withoutHeaders` (Envoy ``invert_match``).

    An inverted value test (exact, prefix, regex) matches only a header that is *present* and fails
    the test: Envoy's header matcher fails on an absent header before inverting (istio/istio#50988).
    An inverted presence test matches exactly when the header is absent.
    """

    name: str  # lower case: HTTP header names are case-insensitive
    condition: StringCondition
    invert: bool = False

    def matches(self, headers: Mapping[str, str]) -> bool:
        """Whether the (lower-case keyed) ``headers`` pass."""
        value = headers.get(self.name)
        if not self.invert:
            return self.condition.matches(value)
        if self.condition.kind == "present":
            return value is None
        return value is not None and not self.condition.matches(value)


@dataclass(frozen=True, slots=True, order=True)
class QueryCondition:
    """A query parameter test (Envoy reads the parameter's first value)."""

    name: str
    condition: StringCondition

    def matches(self, query: Mapping[str, str]) -> bool:
        """Whether the parsed ``query`` passes."""
        return self.condition.matches(query.get(self.name))


@dataclass(frozen=True, slots=True)
class SourceCondition:
    """Which calling workloads: clusters, namespaces (None: any) and pod labels (all must match)."""

    clusters: tuple[str, ...] | None = None
    namespaces: tuple[str, ...] | None = None
    labels: tuple[tuple[str, str], ...] = ()

    def matches(self, cluster: str, namespace: str, labels: Mapping[str, str]) -> bool:
        """Whether a caller with these coordinates passes."""
        return (
            (self.clusters is None or cluster in self.clusters)
            and (self.namespaces is None or namespace in self.namespaces)
            and all(labels.get(k) == v for k, v in self.labels)
        )

    def within(self, other: SourceCondition) -> bool:
        """Whether every caller passing ``self`` passes ``other``."""
        return (
            _names_within(self.clusters, other.clusters)
            and _names_within(self.namespaces, other.namespaces)
            and set(other.labels) <= set(self.labels)
        )

    def intersect(self, other: SourceCondition) -> SourceCondition | None:
        """Callers passing both, None when there are none."""
        clusters = _names_intersect(self.clusters, other.clusters)
        namespaces = _names_intersect(self.namespaces, other.namespaces)
        merged = dict(self.labels)
        for key, value in other.labels:
            if merged.setdefault(key, value) != value:
                return None
        if clusters == () or namespaces == ():
            return None
        return SourceCondition(clusters, namespaces, tuple(sorted(merged.items())))

    @staticmethod
    def of(selector: WorkloadSelector) -> SourceCondition:
        """From a policy's WorkloadSelector (empty fields match anything)."""
        return SourceCondition(
            tuple(sorted(set(selector.clusters))) or None,
            tuple(sorted(set(selector.namespaces))) or None,
            tuple(sorted(selector.labels.items())),
        )


def _names_within(inner: tuple[str, ...] | None, outer: tuple[str, ...] | None) -> bool:
    return outer is None or (inner is not None and set(inner) <= set(outer))


def _names_intersect(a: tuple[str, ...] | None, b: tuple[str, ...] | None) -> tuple[str, ...] | None:
    if a is None:
        return b
    if b is None:
        return a
    return tuple(sorted(set(a) & set(b)))


@dataclass(frozen=True, slots=True)
class RouteMatch:
    """One conjunction of source and request conditions; a `Route` matches if any of its do.

    Per header name there is at most one positive and one inverted condition, per query
    parameter one condition: what Istio's `headers`/`withoutHeaders`/`queryParams` maps hold.
    """

    source: SourceCondition = SourceCondition()
    uri: StringCondition | None = None
    method: str | None = None
    headers: tuple[HeaderCondition, ...] = ()
    query: tuple[QueryCondition, ...] = ()

    @property
    def is_catch_all(self) -> bool:
        """Whether it matches every request."""
        return self == _ANY

    @property
    def constraint_count(self) -> int:
        """How many conditions it holds: more means more specific when ordering routes."""
        src = self.source
        return (
            (src.clusters is not None)
            + (src.namespaces is not None)
            + len(src.labels)
            + (self.uri is not None)
            + (self.method is not None)
            + len(self.headers)
            + len(self.query)
        )

    def matches(self, request: RouteRequest) -> bool:
        """Whether ``request`` passes every condition."""
        if not self.source.matches(request.source_cluster, request.source_namespace, request.source_labels_map):
            return False
        if self.method is not None and request.method != self.method:
            return False
        if self.uri is not None:
            # Envoy: `path` and `safe_regex` compare the path without its query; `prefix` the raw :path.
            subject = request.path if self.uri.kind == "prefix" else request.path_only
            if not self.uri.matches(subject):
                return False
        headers = request.headers_map
        if not all(h.matches(headers) for h in self.headers):
            return False
        query = request.query_map
        return all(q.matches(query) for q in self.query)

    def within(self, other: RouteMatch) -> bool:
        """Whether every request passing ``self`` passes ``other`` (False when unsure)."""
        if not self.source.within(other.source):
            return False
        if other.uri is not None and (self.uri is None or not self.uri.within(other.uri)):
            return False
        if other.method is not None and self.method != other.method:
            return False
        for cond in other.headers:
            if not any(_header_within(mine, cond) for mine in self.headers if mine.name == cond.name):
                return False
        for q in other.query:
            if not any(mine.condition.within(q.condition) for mine in self.query if mine.name == q.name):
                return False
        return True

    def intersect(self, other: RouteMatch) -> RouteMatch | None:
        """Requests passing both, None when provably none; raises `Inexpressible` otherwise."""
        source = self.source.intersect(other.source)
        if source is None:
            return None
        uri: StringCondition | None = self.uri or other.uri
        if self.uri is not None and other.uri is not None:
            uri = self.uri.intersect(other.uri, "uri")
            if uri is None:
                return None
        if self.method is not None and other.method is not None and self.method != other.method:
            return None
        headers = _merge_headers((*self.headers, *other.headers))
        query = _merge_query((*self.query, *other.query))
        if headers is None or query is None:
            return None
        return RouteMatch(source, uri, self.method or other.method, headers, query)


_ANY = RouteMatch()


def _header_within(mine: HeaderCondition, other: HeaderCondition) -> bool:
    if mine.invert != other.invert:
        # "present and passes A" lies within "present and fails B" when A and B are disjoint.
        if mine.invert:
            return False
        try:
            return mine.condition.intersect(other.condition, "header") is None
        except Inexpressible:
            return False
    if mine.invert:
        if (mine.condition.kind == "present") != (other.condition.kind == "present"):
            return False  # "absent" and "present and fails B" are disjoint
        return other.condition.within(mine.condition)  # not-A within not-B iff B within A
    return mine.condition.within(other.condition)


def _merge_headers(conditions: Iterable[HeaderCondition]) -> tuple[HeaderCondition, ...] | None:
    """Normalise header conditions to one positive and one inverted per name; None when empty."""
    by_name: dict[str, list[HeaderCondition]] = defaultdict(list)
    for cond in conditions:
        by_name[cond.name].append(cond)
    out: list[HeaderCondition] = []
    for name, conds in sorted(by_name.items()):
        positive: StringCondition | None = None
        for cond in (c for c in conds if not c.invert):
            positive = cond.condition if positive is None else positive.intersect(cond.condition, f"header `{name}`")
            if positive is None:
                return None
        negative: StringCondition | None = None
        for cond in (c for c in conds if c.invert):
            if negative is not None and (negative.kind == "present") != (cond.condition.kind == "present"):
                return None  # "absent" and "present and fails a test" never hold together
            if negative is None or negative.within(cond.condition):
                negative = cond.condition
            elif not cond.condition.within(negative):
                raise Inexpressible(
                    f"header `{name}` must differ from both `{negative.describe()}` and `{cond.condition.describe()}`"
                )
        if positive is not None and negative is not None:
            if positive.within(negative):
                return None
            try:
                if positive.intersect(negative, f"header `{name}`") is None:
                    negative = None  # the positive test already excludes what the inverted one would
            except Inexpressible:
                pass  # both kept: Istio holds one `headers` and one `withoutHeaders` entry per name
        if positive is not None:
            out.append(HeaderCondition(name, positive))
        if negative is not None:
            out.append(HeaderCondition(name, negative, invert=True))
    return tuple(out)


def _merge_query(conditions: Iterable[QueryCondition]) -> tuple[QueryCondition, ...] | None:
    by_name: dict[str, StringCondition] = {}
    for cond in conditions:
        known = by_name.get(cond.name)
        merged = cond.condition if known is None else known.intersect(cond.condition, f"query parameter `{cond.name}`")
        if merged is None:
            return None
        by_name[cond.name] = merged
    return tuple(QueryCondition(name, c) for name, c in sorted(by_name.items()))


def _value_condition(value: str, regex: bool) -> StringCondition:
    # An empty, non-regex value tests presence only (Gloo Mesh and Istio read it that way).
    if regex:
        return StringCondition("regex", value)
    return StringCondition("exact", value) if value else StringCondition("present")


def _request_conditions(matcher: HttpRequestMatcher) -> RouteMatch | None:
    """A matcher as a `RouteMatch` (no source); None when it can match nothing."""
    headers = _merge_headers(
        HeaderCondition(
            h.name.lower(),
            _value_condition(h.value, h.regex),
            h.invert_match,
        )
        for h in matcher.headers
    )
    query = _merge_query(QueryCondition(q.name, _value_condition(q.value, q.regex)) for q in matcher.query_parameters)
    if headers is None or query is None:
        return None
    uri = StringCondition.of(matcher.uri) if matcher.uri is not None else None
    return RouteMatch(uri=uri, method=matcher.method, headers=headers, query=query)


def policy_clauses(policy: TrafficPolicy) -> tuple[RouteMatch, ...]:
    """A TrafficPolicy's request space as clauses (OR): sources x matchers; raises when inexpressible."""
    sources = [SourceCondition.of(s) for s in policy.spec.source_selector] or [SourceCondition()]
    requests: list[RouteMatch] = []
    for matcher in policy.spec.http_request_matchers or [HttpRequestMatcher()]:
        cond = _request_conditions(matcher)
        if cond is not None:
            requests.append(cond)
    return minimal_clauses(replace(req, source=src) for src in sources for req in requests)


def minimal_clauses(clauses: Iterable[RouteMatch]) -> tuple[RouteMatch, ...]:
    """``clauses`` sorted, without duplicates and without clauses another clause contains."""
    # repr is a total, stable order here: the fields are strings, tuples and None.
    unique = sorted(set(clauses), key=repr)
    kept: list[RouteMatch] = []
    for i, clause in enumerate(unique):
        # Of two clauses that contain each other (equal request sets), the first one stays.
        if not any(clause.within(o) and (j < i or not o.within(clause)) for j, o in enumerate(unique) if j != i):
            kept.append(clause)
    return tuple(kept)


@dataclass(frozen=True, slots=True)
class RouteRequest:
    """What a route can match about a request: the caller's workload and the HTTP request."""

    source_cluster: str = ""
    source_namespace: str = ""
    source_labels: tuple[tuple[str, str], ...] = ()
    method: str = "GET"
    path: str = "/"  # as sent, query string included
    headers: tuple[tuple[str, str], ...] = ()  # lower-case names

    @staticmethod
    def of(
        *,
        cluster: str = "",
        namespace: str = "",
        labels: Mapping[str, str] | None = None,
        method: str = "GET",
        path: str = "/",
        headers: Mapping[str, str] | None = None,
    ) -> RouteRequest:
        """Build one from plain mappings (header names are lower-cased)."""
        return RouteRequest(
            cluster,
            namespace,
            tuple(sorted((labels or {}).items())),
            method,
            path,
            tuple(sorted((k.lower(), v) for k, v in (headers or {}).items())),
        )

    @property
    def source_labels_map(self) -> dict[str, str]:
        """The caller's pod labels."""
        return dict(self.source_labels)

    @property
    def headers_map(self) -> dict[str, str]:
        """Headers by lower-case name."""
        return dict(self.headers)

    @property
    def path_only(self) -> str:
        """The path without its query string."""
        return self.path.partition("?")[0]

    @property
    def query_map(self) -> dict[str, str]:
        """Query parameters (first value of each)."""
        out: dict[str, str] = {}
        for key, value in parse_qsl(self.path.partition("?")[2], keep_blank_values=True):
            out.setdefault(key, value)
        return out
