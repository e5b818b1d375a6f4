"""The mesh-neutral route model: what every request to one destination gets (spec §3.2).

Place: under ``meshrules.emit``, between the rule set's `Intent` and the mesh renderers. The Istio
emitter renders a `RouteTable` as VirtualService ``http`` routes, the Linkerd emitter as HTTPRoute
rules, and the simulator checks it request by request with `match_request` / `effective_config`.
It decides nothing the rules decided: which policies apply at a destination and which fields they
contribute come from ``intent.traffic``, who wins a field where two overlap from
``intent.precedence``. What it adds is the *realisation* with first-match routing:

* A policy's request space is the union of its clauses, one per (source selector, request
  matcher) pair; a clause is a conjunction (`RouteMatch`) a mesh can match in one go.
* For every set T of policies whose spaces intersect, one `Route` matches the intersection and
  carries, field by field, the value of the policy that wins among T. Routes are ordered by the
  size of T, largest first, so the first route a request matches is the one for exactly the set
  of policies that apply to it. (A request matching a route for T is in every policy of T, so
  a route for a larger set it matches would contain T's policies and come earlier.)
* Equal sizes are ordered by specificity (more constrained first), then acceptance order. Routes
  that earlier routes entirely shadow are dropped. The table always ends with a catch-all route;
  with no catch-all policy it carries no configuration (the mesh's default behaviour).
* Policies are added in acceptance order. A policy whose intersection with an earlier one cannot
  be written as one match (a uri prefix AND a regex, two different regexes, …) is INVALID for
  the destination (`MR0311`) and contributes nothing there; so is a policy that would push the
  table past `ROUTE_CAP` routes (`MR0312`) or names a backend that does not exist (`MR0313`).

The conditions and their algebra live in `meshrules.emit.conditions`; this module re-exports them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Generic, TypeVar

from meshrules.emit.conditions import (
    HeaderCondition,
    Inexpressible,
    MatchKind,
    QueryCondition,
    RouteMatch,
    RouteRequest,
    SourceCondition,
    StringCondition,
    minimal_clauses,
    policy_clauses,
)
from meshrules.emit.input import EmitInput
from meshrules.model.common import ClusterObjectRef
from meshrules.model.discovery import Destination
from meshrules.model.intent import PolicyStatusEntry, TrafficApplication
from meshrules.model.policy import (
    CorsPolicy,
    FaultInjection,
    HeaderManipulation,
    MtlsSettings,
    OutlierDetection,
    Policy,
    Retries,
    TrafficPolicy,
)

__all__ = [
    "CODE_INEXPRESSIBLE_OVERLAP",
    "CODE_ROUTE_CAP",
    "CODE_UNKNOWN_BACKEND",
    "DESTINATION_FIELDS",
    "ROUTE_CAP",
    "ROUTE_FIELDS",
    "Backend",
    "DestinationConfig",
    "HeaderCondition",
    "Inexpressible",
    "MatchKind",
    "MirrorTarget",
    "Provided",
    "QueryCondition",
    "Route",
    "RouteConfig",
    "RouteMatch",
    "RouteRequest",
    "RouteTable",
    "SourceCondition",
    "StringCondition",
    "build_route_table",
    "destination_config",
    "destination_configs",
    "effective_config",
    "match_request",
    "policy_clauses",
    "resolve_service",
    "route_tables",
]

# Istio holds every route of a host in one RDS virtual host and Linkerd one HTTPRoute's rules in
# memory per proxy; 256 keeps both small while leaving room for realistic overlaps (spec §3.2).
ROUTE_CAP = 256
# `spec.policy` fields realised per route; the others are destination-wide (DestinationRule).
ROUTE_FIELDS: tuple[str, ...] = (
    "requestTimeout",
    "retries",
    "trafficShift",
    "faultInjection",
    "corsPolicy",
    "headerManipulation",
    "mirror",
)
DESTINATION_FIELDS: tuple[str, ...] = ("outlierDetection", "mtls")

CODE_INEXPRESSIBLE_OVERLAP = "MR0311"
CODE_ROUTE_CAP = "MR0312"
CODE_UNKNOWN_BACKEND = "MR0313"

T = TypeVar("T")
# RouteConfig's attributes, in the order of ROUTE_FIELDS.
_ROUTE_ATTRS = (
    "request_timeout",
    "retries",
    "traffic_shift",
    "fault_injection",
    "cors_policy",
    "header_manipulation",
    "mirror",
)


# --- configuration -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Provided(Generic[T]):
    """A field's value and the policy (`Kind namespace/name`) that provided it."""

    value: T
    policy: str


@dataclass(frozen=True, slots=True)
class Backend:
    """One weighted backend of a traffic shift: a discovery `Destination` name and subset labels."""

    destination: str
    subset: tuple[tuple[str, str], ...] = ()
    port: int | None = None
    weight: int = 100

    @property
    def subset_labels(self) -> dict[str, str]:
        """The subset as a label map (empty: the whole destination)."""
        return dict(self.subset)


@dataclass(frozen=True, slots=True)
class MirrorTarget:
    """Where a share of requests is copied."""

    destination: str
    port: int | None
    percentage: float


@dataclass(frozen=True, slots=True)
class RouteConfig:
    """The merged per-route settings; each field names the policy that won it."""

    request_timeout: Provided[str] | None = None
    retries: Provided[Retries] | None = None
    traffic_shift: Provided[tuple[Backend, ...]] | None = None
    fault_injection: Provided[FaultInjection] | None = None
    cors_policy: Provided[CorsPolicy] | None = None
    header_manipulation: Provided[HeaderManipulation] | None = None
    mirror: Provided[MirrorTarget] | None = None

    def providers(self) -> dict[str, str]:
        """Wire field name → the policy that provided it, for the fields set."""
        out: dict[str, str] = {}
        for wire, attr in zip(ROUTE_FIELDS, _ROUTE_ATTRS, strict=True):
            value = getattr(self, attr)
            if value is not None:
                out[wire] = value.policy
        return out

    @property
    def is_empty(self) -> bool:
        """Whether no field is set (the mesh's defaults apply)."""
        return not self.providers()


@dataclass(frozen=True, slots=True)
class Route:
    """Requests matching any of ``matches`` get ``config``.

    ``policies`` are the policies whose request spaces this route is the intersection of, in
    acceptance order; empty for the trailing default route.
    """

    matches: tuple[RouteMatch, ...]
    config: RouteConfig
    policies: tuple[str, ...]

    @property
    def is_catch_all(self) -> bool:
        """Whether it matches every request."""
        return any(m.is_catch_all for m in self.matches)

    def matches_request(self, request: RouteRequest) -> bool:
        """Whether ``request`` matches this route."""
        return any(m.matches(request) for m in self.matches)


@dataclass(frozen=True)
class RouteTable:
    """The ordered routes of one destination (first match wins; the last route is a catch-all).

    ``statuses`` are the INVALID entries building it produced (`MR0311`-`MR0313`).
    """

    destination: str
    routes: tuple[Route, ...]
    statuses: tuple[PolicyStatusEntry, ...] = ()

    @property
    def has_policy_routes(self) -> bool:
        """Whether any route carries configuration (otherwise a mesh needs no route object)."""
        return any(not r.config.is_empty for r in self.routes)

    @property
    def policies(self) -> tuple[str, ...]:
        """Every policy contributing to some route, sorted."""
        return tuple(sorted({p for r in self.routes if not r.config.is_empty for p in r.config.providers().values()}))

    def for_cluster(self, cluster: str) -> RouteTable:
        """The routes as callers in ``cluster`` see them, for route objects that live per cluster.

        Matches limited to other clusters are dropped and the condition "caller in ``cluster``"
        is removed from the others (it always holds there), so a route may become a catch-all;
        routes after the first catch-all are unreachable and dropped. Istio renders this view in
        every cluster whose callers reach the destination.
        """
        routes: list[Route] = []
        for route in self.routes:
            kept = minimal_clauses(
                replace(m, source=replace(m.source, clusters=None))
                for m in route.matches
                if m.source.clusters is None or cluster in m.source.clusters
            )
            if kept:
                routes.append(replace(route, matches=kept))
                if routes[-1].is_catch_all:
                    break
        return replace(self, routes=tuple(routes))

    def match(self, request: RouteRequest) -> Route:
        """The first route ``request`` matches (the catch-all at the latest)."""
        route = match_request(self, request)
        assert route is not None  # INVARIANT: the last route is a catch-all
        return route


def match_request(table: RouteTable, request: RouteRequest) -> Route | None:
    """The first route of ``table`` that ``request`` matches, as the mesh's router picks it."""
    return next((r for r in table.routes if r.matches_request(request)), None)


def effective_config(table: RouteTable, request: RouteRequest) -> RouteConfig:
    """The merged configuration ``request`` gets at the table's destination (empty: defaults)."""
    route = match_request(table, request)
    return route.config if route is not None else RouteConfig()


# --- destination-wide settings -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DestinationConfig:
    """Settings that apply to every request to a destination (a DestinationRule's)."""

    outlier_detection: Provided[OutlierDetection] | None = None
    mtls: Provided[MtlsSettings] | None = None


# --- building ------------------------------------------------------------------------------------


def resolve_service(
    ref: ClusterObjectRef, home: Destination, by_coords: Mapping[tuple[str, str, str], str]
) -> str | None:
    """The destination a backend ref names; omitted cluster/namespace default to ``home``'s."""
    return by_coords.get((ref.cluster or home.cluster, ref.namespace or home.namespace, ref.name))


class _Index:
    """What building route tables reads from an `EmitInput`, indexed once."""

    def __init__(self, inp: EmitInput) -> None:
        self.inp = inp
        self.by_coords = {(d.cluster, d.namespace, d.service): d.name for d in inp.destinations}
        self.apps: dict[str, list[TrafficApplication]] = defaultdict(list)
        for app in inp.intent.traffic:
            self.apps[app.destination].append(app)
        self.beats: dict[tuple[str, str], set[tuple[str, str]]] = defaultdict(set)
        for prec in inp.intent.precedence:
            self.beats[(prec.destination, prec.field)].add((prec.winner, prec.loser))

    def rank(self, ref: str) -> tuple[int, datetime, str, str]:
        policy = self.inp.policy_by_ref.get(ref)
        if isinstance(policy, TrafficPolicy):
            return policy.acceptance_key()
        return (2, datetime.max, "", ref)  # unknown to the input: after every known policy

    def traffic_policy(self, ref: str) -> TrafficPolicy | None:
        policy: Policy | None = self.inp.policy_by_ref.get(ref)
        return policy if isinstance(policy, TrafficPolicy) else None

    def winner(self, destination: str, wire_field: str, candidates: list[str]) -> str:
        """Who provides ``wire_field`` among ``candidates`` (acceptance order) per the precedence."""
        beats = self.beats.get((destination, wire_field), set())
        beaten = {loser for winner, loser in beats if winner in candidates and loser in candidates}
        unbeaten = [c for c in candidates if c not in beaten]
        # Without a precedence between two candidates (or with a cycle) the earlier accepted wins,
        # as §3.2 says for overlaps.
        return unbeaten[0] if unbeaten else candidates[0]


@dataclass
class _Contribution:
    """One policy at one destination: its clauses and its resolved values."""

    policy: str
    rank: tuple[int, datetime, str, str]
    fields: frozenset[str]
    clauses: tuple[RouteMatch, ...]
    values: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class _Region:
    policies: tuple[str, ...]  # acceptance order
    clauses: tuple[RouteMatch, ...]
    ranks: tuple[tuple[int, datetime, str, str], ...]

    def key(self) -> tuple[int, int, tuple[tuple[int, datetime, str, str], ...]]:
        specificity = min(c.constraint_count for c in self.clauses)
        return (-len(self.policies), -specificity, self.ranks)


def route_tables(
    inp: EmitInput,
    exclude: Mapping[str, Collection[str]] | None = None,
    destinations: Iterable[str] | None = None,
) -> dict[str, RouteTable]:
    """The route table of every destination (or of ``destinations``), by destination name.

    ``exclude`` maps a destination to policies an emitter already found INVALID there (e.g. a
    user-owned VirtualService for the same host): they contribute nothing to its table.
    """
    index = _Index(inp)
    excluded = exclude or {}
    names = sorted(inp.destination_by_name if destinations is None else set(destinations))
    return {name: _build(index, inp.destination_by_name[name], excluded.get(name, ())) for name in names}


def build_route_table(inp: EmitInput, destination: str, exclude: Collection[str] = ()) -> RouteTable:
    """The route table of one destination (see `route_tables`)."""
    return _build(_Index(inp), inp.destination_by_name[destination], exclude)


def destination_config(inp: EmitInput, destination: str, exclude: Collection[str] = ()) -> DestinationConfig:
    """The destination-wide settings (`outlierDetection`, `mtls`) and who provided them."""
    return _destination_config(_Index(inp), destination, exclude)


def destination_configs(
    inp: EmitInput,
    exclude: Mapping[str, Collection[str]] | None = None,
    destinations: Iterable[str] | None = None,
) -> dict[str, DestinationConfig]:
    """`destination_config` of every destination (or of ``destinations``), by name."""
    index = _Index(inp)
    excluded = exclude or {}
    names = sorted(inp.destination_by_name if destinations is None else set(destinations))
    return {name: _destination_config(index, name, excluded.get(name, ())) for name in names}


def _destination_config(index: _Index, destination: str, exclude: Collection[str]) -> DestinationConfig:
    apps = sorted(
        (a for a in index.apps.get(destination, ()) if a.policy not in exclude and index.traffic_policy(a.policy)),
        key=lambda a: index.rank(a.policy),
    )

    def provider(wire: str) -> TrafficPolicy | None:
        candidates = [a.policy for a in apps if wire in a.fields]
        return index.traffic_policy(index.winner(destination, wire, candidates)) if candidates else None

    outlier, mtls = provider("outlierDetection"), provider("mtls")
    return DestinationConfig(
        outlier_detection=(
            Provided(outlier.spec.policy.outlier_detection, outlier.ref)
            if outlier is not None and outlier.spec.policy.outlier_detection is not None
            else None
        ),
        mtls=(
            Provided(mtls.spec.policy.mtls, mtls.ref)
            if mtls is not None and mtls.spec.policy.mtls is not None
            else None
        ),
    )


def _build(index: _Index, dest: Destination, exclude: Collection[str]) -> RouteTable:
    statuses: list[PolicyStatusEntry] = []
    regions: list[_Region] = []
    contributions: dict[str, _Contribution] = {}
    apps = sorted(
        (a for a in index.apps.get(dest.name, ()) if a.policy not in exclude and set(a.fields) & set(ROUTE_FIELDS)),
        key=lambda a: index.rank(a.policy),
    )
    for app in apps:
        policy = index.traffic_policy(app.policy)
        if policy is None:
            continue  # the intent names a policy the input does not hold: nothing to read values from
        contribution, error = _contribution(index, dest, app, policy)
        if error is not None:
            statuses.append(error)
            continue
        assert contribution is not None
        if not contribution.clauses:
            continue  # its matchers contradict themselves: it matches no request
        try:
            candidate = _add(regions, contribution)
        except _Overlap as exc:
            statuses.append(
                PolicyStatusEntry(
                    policy=app.policy,
                    code=CODE_INEXPRESSIBLE_OVERLAP,
                    field="spec.httpRequestMatchers",
                    destination=dest.name,
                    message=(
                        f"its requests overlap `{'`, `'.join(exc.others)}` at `{dest.name}` where the overlap "
                        f"needs both {exc.what}; one route match cannot say that"
                    ),
                )
            )
            continue
        if len(candidate) + (0 if _ends_with_catch_all(candidate) else 1) > ROUTE_CAP:
            statuses.append(
                PolicyStatusEntry(
                    policy=app.policy,
                    code=CODE_ROUTE_CAP,
                    field="spec",
                    destination=dest.name,
                    message=f"with it `{dest.name}` would need more than {ROUTE_CAP} routes",
                )
            )
            continue
        regions = candidate
        contributions[app.policy] = contribution
    routes = [_route(index, dest.name, r, contributions) for r in regions]
    if not routes or not routes[-1].is_catch_all:
        routes.append(Route((RouteMatch(),), RouteConfig(), ()))
    return RouteTable(dest.name, tuple(routes), tuple(statuses))


def _ends_with_catch_all(regions: list[_Region]) -> bool:
    return bool(regions) and any(c.is_catch_all for c in regions[-1].clauses)


class _Overlap(Exception):
    def __init__(self, others: tuple[str, ...], what: str) -> None:
        super().__init__(what)
        self.others = others
        self.what = what


def _add(regions: list[_Region], new: _Contribution) -> list[_Region]:
    """Regions with ``new`` added: its own and its intersections, ordered, shadowed ones dropped."""
    added: list[_Region] = []
    # Smaller sets first, so an inexpressible overlap names the one policy it comes from.
    for region in sorted(regions, key=lambda r: (len(r.policies), r.ranks)):
        clauses: list[RouteMatch] = []
        for mine in region.clauses:
            for theirs in new.clauses:
                try:
                    both = mine.intersect(theirs)
                except Inexpressible as exc:
                    raise _Overlap(region.policies, exc.what) from exc
                if both is not None:
                    clauses.append(both)
        if clauses:
            added.append(_Region((*region.policies, new.policy), minimal_clauses(clauses), (*region.ranks, new.rank)))
    added.append(_Region((new.policy,), new.clauses, (new.rank,)))
    return _prune(sorted([*regions, *added], key=_Region.key))


def _prune(ordered: list[_Region]) -> list[_Region]:
    """Drop clauses (and regions) that earlier regions shadow: no request could reach them."""
    kept: list[_Region] = []
    seen: list[RouteMatch] = []
    for region in ordered:
        live = tuple(c for c in region.clauses if not any(c.within(s) for s in seen))
        if live:
            kept.append(replace(region, clauses=live))
            seen.extend(live)
    return kept


def _route(index: _Index, destination: str, region: _Region, contributions: Mapping[str, _Contribution]) -> Route:
    values: dict[str, Provided[object]] = {}
    for wire, attr in zip(ROUTE_FIELDS, _ROUTE_ATTRS, strict=True):
        candidates = [p for p in region.policies if wire in contributions[p].fields]
        if candidates:
            winner = index.winner(destination, wire, candidates)
            values[attr] = Provided(contributions[winner].values[wire], winner)
    return Route(region.clauses, RouteConfig(**values), region.policies)  # type: ignore[arg-type]


def _contribution(
    index: _Index, dest: Destination, app: TrafficApplication, policy: TrafficPolicy
) -> tuple[_Contribution | None, PolicyStatusEntry | None]:
    """Clauses and resolved values of one application, or the status why it cannot contribute."""
    settings = policy.spec.policy
    fields = frozenset(f for f in app.fields if f in ROUTE_FIELDS)
    values: dict[str, object] = {}
    for wire in sorted(fields):
        if wire == "requestTimeout" and settings.request_timeout is not None:
            values[wire] = settings.request_timeout
        elif wire == "retries" and settings.retries is not None:
            values[wire] = settings.retries
        elif wire == "faultInjection" and settings.fault_injection is not None:
            values[wire] = settings.fault_injection
        elif wire == "corsPolicy" and settings.cors_policy is not None:
            values[wire] = settings.cors_policy
        elif wire == "headerManipulation" and settings.header_manipulation is not None:
            values[wire] = settings.header_manipulation
        elif wire == "trafficShift" and settings.traffic_shift is not None:
            shift = settings.traffic_shift.destinations
            backends: list[Backend] = []
            for i, target in enumerate(shift):
                name = resolve_service(target.service, dest, index.by_coords)
                if name is None:
                    path = f"spec.policy.trafficShift.destinations[{i}].service"
                    return None, _unknown_backend(app, dest, path, target.service)
                # One backend takes all traffic whatever its weight says (spec §3.2).
                weight = 100 if len(shift) == 1 else target.weight
                backends.append(Backend(name, tuple(sorted(target.subset.items())), target.port, weight))
            values[wire] = tuple(backends)
        elif wire == "mirror" and settings.mirror is not None:
            name = resolve_service(settings.mirror.service, dest, index.by_coords)
            if name is None:
                return None, _unknown_backend(app, dest, "spec.policy.mirror.service", settings.mirror.service)
            values[wire] = MirrorTarget(name, settings.mirror.port, settings.mirror.percentage)
    try:
        clauses = policy_clauses(policy)
    except Inexpressible as exc:
        return None, PolicyStatusEntry(
            policy=app.policy,
            code=CODE_INEXPRESSIBLE_OVERLAP,
            field="spec.httpRequestMatchers",
            destination=dest.name,
            message=f"a matcher needs both {exc.what}; one route match cannot say that",
        )
    return _Contribution(app.policy, index.rank(app.policy), frozenset(values), clauses, values), None


def _unknown_backend(app: TrafficApplication, dest: Destination, path: str, ref: ClusterObjectRef) -> PolicyStatusEntry:
    cluster = ref.cluster or dest.cluster
    namespace = ref.namespace or dest.namespace
    return PolicyStatusEntry(
        policy=app.policy,
        code=CODE_UNKNOWN_BACKEND,
        field=path,
        destination=dest.name,
        message=f"no destination `{cluster}/{namespace}/{ref.name}` to send traffic for `{dest.name}` to",
    )
