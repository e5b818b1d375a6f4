"""The route model realises spec §3.2 with first-match routing.

One test per merge, conflict and ordering rule, on small hand-built intents (the rule set's
decisions stated directly), then properties: the first matching route gives every request
exactly the field-by-field merge §3.2 defines, and the table does not depend on input order.
"""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from emit.emit_builders import applies, beats, destination, emit_input, istio_mesh, traffic_policy, workload
from meshrules.emit.routes import (
    CODE_INEXPRESSIBLE_OVERLAP,
    CODE_ROUTE_CAP,
    CODE_UNKNOWN_BACKEND,
    ROUTE_CAP,
    Backend,
    RouteRequest,
    RouteTable,
    build_route_table,
    destination_config,
    effective_config,
    match_request,
    route_tables,
)
from meshrules.model.intent import Intent, Specificity, TrafficApplication, TrafficPrecedence
from meshrules.model.policy import TrafficPolicy

V1 = workload("reviews-v1", "c1", labels={"app": "reviews", "version": "v1"})
V2 = workload("reviews-v2", "c1", labels={"app": "reviews", "version": "v2"})
REVIEWS = destination("reviews", "c1", workloads=[V1, V2], subsets={"version": ["v1", "v2"]})
RATINGS = destination("ratings", "c1")


def table(
    policies: list[TrafficPolicy],
    *precedence: TrafficPrecedence,
    apps: list[TrafficApplication] | None = None,
    dest: Any = REVIEWS,
) -> RouteTable:
    intent = Intent(
        traffic=tuple(apps if apps is not None else [applies(p, dest) for p in policies]), precedence=precedence
    )
    inp = emit_input(
        meshes=[istio_mesh("c1")], workloads=[V1, V2], destinations=[REVIEWS, RATINGS], policies=policies, intent=intent
    )
    return build_route_table(inp, dest.name)


def request(
    path: str = "/", *, ns: str = "shop", cluster: str = "c1", method: str = "GET", **headers: str
) -> RouteRequest:
    return RouteRequest.of(
        cluster=cluster,
        namespace=ns,
        labels={"app": "web"},
        method=method,
        path=path,
        headers={k.replace("_", "-"): v for k, v in headers.items()},
    )


def providers(t: RouteTable, r: RouteRequest) -> dict[str, str]:
    return {k: v.split("/")[-1] for k, v in effective_config(t, r).providers().items()}


def canary(created: str = "01:00", **extra: Any) -> TrafficPolicy:
    shift = {
        "destinations": [
            {"service": {"name": "reviews"}, "subset": {"version": "v1"}, "weight": 80},
            {"service": {"name": "reviews"}, "subset": {"version": "v2"}, "weight": 20},
        ]
    }
    return traffic_policy(
        "canary", {"policy": {"trafficShift": shift, "requestTimeout": "3s"}, **extra}, created=created
    )


def timeout(name: str, value: str, created: str, **spec: Any) -> TrafficPolicy:
    return traffic_policy(name, {**spec, "policy": {"requestTimeout": value}}, created=created)


# --- §3.2 merging, one rule per test --------------------------------------------------------------


def test_more_specific_policy_wins_its_field_and_the_other_fields_still_apply() -> None:
    # `web` calls are a strict subset of all calls: its timeout wins there, the canary split stays.
    general = canary("01:00")
    web = timeout("web-timeout", "1s", "02:00", sourceSelector=[{"namespaces": ["web"]}])
    t = table([general, web], beats(REVIEWS, "requestTimeout", web, general, Specificity.MORE_SPECIFIC))
    assert providers(t, request(ns="web")) == {"requestTimeout": "web-timeout", "trafficShift": "canary"}
    assert effective_config(t, request(ns="web")).request_timeout.value == "1s"  # type: ignore[union-attr]
    assert providers(t, request(ns="shop")) == {"requestTimeout": "canary", "trafficShift": "canary"}
    # The more specific route comes first and the catch-all last.
    assert [r.policies for r in t.routes] == [(general.ref, web.ref), (general.ref,)]
    assert t.routes[-1].is_catch_all


def test_fields_only_one_policy_sets_combine() -> None:
    split = canary("01:00")
    retries = traffic_policy(
        "retries",
        {"sourceSelector": [{"namespaces": ["web"]}], "policy": {"retries": {"attempts": 3}}},
        created="02:00",
    )
    t = table([split, retries])  # no shared field: no precedence needed
    assert providers(t, request(ns="web")) == {
        "requestTimeout": "canary",
        "trafficShift": "canary",
        "retries": "retries",
    }
    assert providers(t, request(ns="shop")) == {"requestTimeout": "canary", "trafficShift": "canary"}


def test_equally_specific_conflict_leaves_the_later_policy_out_entirely() -> None:
    # The rule set found `late` conflicting with `early` (same selectors, different timeout): it has
    # no application at the destination, only an INVALID status, and so contributes nothing, not
    # even the field (`retries`) that nobody else sets.
    early = timeout("early", "1s", "01:00")
    late = traffic_policy("late", {"policy": {"requestTimeout": "9s", "retries": {"attempts": 5}}}, created="02:00")
    t = table([early, late], apps=[applies(early, REVIEWS)])
    assert providers(t, request()) == {"requestTimeout": "early"}
    assert all(late.ref not in r.policies for r in t.routes)


def test_equal_selectors_with_equal_values_give_one_route() -> None:
    a = timeout("a", "1s", "01:00", httpRequestMatchers=[{"uri": {"prefix": "/api"}}])
    b = timeout("b", "1s", "02:00", httpRequestMatchers=[{"uri": {"prefix": "/api"}}])
    t = table([a, b], beats(REVIEWS, "requestTimeout", a, b, Specificity.SAME))
    assert [r.policies for r in t.routes] == [(a.ref, b.ref), ()]
    assert providers(t, request("/api/x")) == {"requestTimeout": "a"}


def test_overlap_earlier_wins_the_field_with_an_intersection_route() -> None:
    prefix = timeout("prefix", "1s", "01:00", httpRequestMatchers=[{"uri": {"prefix": "/api"}}])
    header = traffic_policy(
        "header",
        {
            "httpRequestMatchers": [{"headers": [{"name": "x-canary", "value": "1"}]}],
            "policy": {"requestTimeout": "2s", "retries": {"attempts": 2}},
        },
        created="02:00",
    )
    t = table([prefix, header], beats(REVIEWS, "requestTimeout", prefix, header))
    # The intersection route comes first; the earlier policy wins the field both set.
    first = t.routes[0]
    assert first.policies == (prefix.ref, header.ref)
    assert first.matches[0].uri is not None and first.matches[0].headers[0].name == "x-canary"
    assert providers(t, request("/api/1", x_canary="1")) == {"requestTimeout": "prefix", "retries": "header"}
    assert providers(t, request("/api/1")) == {"requestTimeout": "prefix"}
    assert providers(t, request("/other", x_canary="1")) == {"requestTimeout": "header", "retries": "header"}
    assert providers(t, request("/other")) == {}


def test_inexpressible_overlap_makes_the_later_policy_invalid_there() -> None:
    # Istio holds one `uri` per match: a prefix AND a regex cannot be intersected.
    prefix = timeout("prefix", "1s", "01:00", httpRequestMatchers=[{"uri": {"prefix": "/api"}}])
    regex = timeout("regex", "2s", "02:00", httpRequestMatchers=[{"uri": {"regex": "/api/v[0-9]+"}}])
    t = table([prefix, regex], beats(REVIEWS, "requestTimeout", prefix, regex))
    assert [(s.policy, s.code, s.destination) for s in t.statuses] == [
        (regex.ref, CODE_INEXPRESSIBLE_OVERLAP, REVIEWS.name)
    ]
    assert "prefix /api" in t.statuses[0].message and "regex /api/v[0-9]+" in t.statuses[0].message
    assert providers(t, request("/api/v1")) == {"requestTimeout": "prefix"}
    assert all(regex.ref not in r.policies for r in t.routes)


def test_two_different_exact_uris_are_disjoint_not_inexpressible() -> None:
    a = timeout("a", "1s", "01:00", httpRequestMatchers=[{"uri": {"exact": "/a"}}])
    b = timeout("b", "2s", "02:00", httpRequestMatchers=[{"uri": {"exact": "/b"}}])
    t = table([a, b])
    assert t.statuses == ()
    assert [r.policies for r in t.routes] == [(a.ref,), (b.ref,), ()]


def test_exact_uri_inside_a_regex_intersects_exactly() -> None:
    regex = timeout("regex", "1s", "01:00", httpRequestMatchers=[{"uri": {"regex": "/v[0-9]"}}])
    exact = timeout("exact", "2s", "02:00", httpRequestMatchers=[{"uri": {"exact": "/v1"}}])
    t = table([regex, exact], beats(REVIEWS, "requestTimeout", exact, regex, Specificity.MORE_SPECIFIC))
    assert t.statuses == ()
    assert providers(t, request("/v1")) == {"requestTimeout": "exact"}
    assert providers(t, request("/v2")) == {"requestTimeout": "regex"}


def test_route_cap_makes_later_policies_invalid() -> None:
    # n policies on n different headers all overlap: 2^n - 1 routes plus the default one.
    policies = [
        timeout(
            f"p{i}", f"{i + 1}s", f"{i:02d}:00", httpRequestMatchers=[{"headers": [{"name": f"h{i}", "value": "1"}]}]
        )
        for i in range(10)
    ]
    t = table(policies)
    assert len(t.routes) <= ROUTE_CAP
    assert len(t.routes) == 2**8  # eight policies fit: 255 intersections and own routes, one default
    assert [(s.policy, s.code) for s in t.statuses] == [(p.ref, CODE_ROUTE_CAP) for p in policies[8:]]


def test_unknown_backend_makes_the_policy_invalid() -> None:
    ghost = traffic_policy(
        "ghost", {"policy": {"trafficShift": {"destinations": [{"service": {"name": "nowhere"}}]}}}, created="01:00"
    )
    t = table([ghost])
    assert [(s.code, s.field) for s in t.statuses] == [
        (CODE_UNKNOWN_BACKEND, "spec.policy.trafficShift.destinations[0].service")
    ]
    assert not t.has_policy_routes


# --- ordering ------------------------------------------------------------------------------------


def test_equal_sizes_order_by_specificity_then_acceptance() -> None:
    loose = timeout("loose", "1s", "01:00", httpRequestMatchers=[{"uri": {"exact": "/a"}}])
    tight = timeout("tight", "2s", "03:00", httpRequestMatchers=[{"uri": {"exact": "/b"}, "method": "GET"}])
    late = timeout("late", "3s", "02:00", httpRequestMatchers=[{"uri": {"exact": "/c"}}])
    t = table([late, loose, tight])
    assert [r.policies for r in t.routes] == [(tight.ref,), (loose.ref,), (late.ref,), ()]


def test_policy_without_timestamp_is_accepted_last() -> None:
    undated = timeout("a-undated", "1s", None)  # type: ignore[arg-type]
    dated = timeout("z-dated", "2s", "05:00")
    t = table([undated, dated])
    assert t.routes[0].policies == (dated.ref, undated.ref)
    assert providers(t, request()) == {"requestTimeout": "z-dated"}  # no precedence given: earlier wins


def test_routes_limited_to_a_cluster_are_dropped_elsewhere() -> None:
    local = timeout("local", "1s", "01:00", sourceSelector=[{"clusters": ["c1"]}])
    t = table([local])
    assert t.for_cluster("c1").has_policy_routes
    assert not t.for_cluster("c2").has_policy_routes
    assert t.for_cluster("c2").routes[-1].is_catch_all


# --- matching semantics --------------------------------------------------------------------------


def test_matching_follows_envoy() -> None:
    p = timeout(
        "p",
        "1s",
        "01:00",
        httpRequestMatchers=[
            {
                "uri": {"exact": "/a"},
                "method": "POST",
                "headers": [{"name": "X-User", "value": "jason"}, {"name": "x-debug", "invertMatch": True}],
                "queryParameters": [{"name": "v", "value": "[0-9]+", "regex": True}],
            },
        ],
    )
    t = table([p])
    hit = request("/a?v=12", method="POST", x_user="jason")
    assert match_request(t, hit) is t.routes[0]  # exact uri compares the path without its query
    assert match_request(t, request("/a?v=12", method="GET", x_user="jason")) is t.routes[-1]
    assert match_request(t, request("/a?v=x", method="POST", x_user="jason")) is t.routes[-1]  # regex: full match
    assert match_request(t, request("/a?v=12", method="POST", x_user="jason", x_debug="1")) is t.routes[-1]
    assert match_request(t, request("/a?v=12", method="POST")) is t.routes[-1]


def test_an_inverted_value_test_needs_the_header_present_as_in_envoy() -> None:
    """Istio `withoutHeaders` runs as Envoy `invert_match`, which fails on an absent header for a
    value test (istio/istio#50988); only an inverted presence test matches an absent header."""
    not_jason = timeout(
        "not-jason",
        "1s",
        "01:00",
        httpRequestMatchers=[{"headers": [{"name": "x-user", "value": "jason", "invertMatch": True}]}],
    )
    anonymous = timeout(
        "anonymous", "2s", "02:00", httpRequestMatchers=[{"headers": [{"name": "x-user", "invertMatch": True}]}]
    )
    t = table([not_jason, anonymous])
    assert providers(t, request("/", x_user="bob")) == {"requestTimeout": "not-jason"}
    assert providers(t, request("/", x_user="jason")) == {}
    assert providers(t, request("/")) == {"requestTimeout": "anonymous"}
    # "absent" and "present and not jason" never meet: no intersection route
    assert [r.policies for r in t.routes] == [("TrafficPolicy shop/not-jason",), ("TrafficPolicy shop/anonymous",), ()]


def test_destination_settings_take_the_winner() -> None:
    early = traffic_policy("early", {"policy": {"mtls": {"mode": "DISABLE"}}}, created="01:00")
    late = traffic_policy(
        "late",
        {"policy": {"mtls": {"mode": "ISTIO_MUTUAL"}, "outlierDetection": {"consecutiveErrors": 3}}},
        created="02:00",
    )
    intent = Intent(
        traffic=(applies(early, REVIEWS), applies(late, REVIEWS)),
        precedence=(beats(REVIEWS, "mtls", early, late, Specificity.SAME),),
    )
    inp = emit_input(meshes=[istio_mesh("c1")], destinations=[REVIEWS], policies=[early, late], intent=intent)
    config = destination_config(inp, REVIEWS.name)
    assert config.mtls is not None and (config.mtls.policy, config.mtls.value.mode) == (early.ref, "DISABLE")
    assert config.outlier_detection is not None and config.outlier_detection.policy == late.ref


def test_backends_resolve_relative_to_the_destination() -> None:
    t = table([canary()])
    shift = effective_config(t, request()).traffic_shift
    assert shift is not None
    assert shift.value == (
        Backend(REVIEWS.name, (("version", "v1"),), None, 80),
        Backend(REVIEWS.name, (("version", "v2"),), None, 20),
    )


# --- properties ----------------------------------------------------------------------------------

# A small world: every request of it is enumerated, so a policy's request space is a finite set.
_NAMESPACES = ("a", "b", "c")
_PATHS = ("/", "/a", "/a/1", "/b", "/b?x=1")
_REQUESTS = [
    RouteRequest.of(cluster=c, namespace=ns, labels=lab, method=m, path=p, headers=h)
    for c in ("c1", "c2")
    for ns in _NAMESPACES
    for lab in ({"app": "x"}, {})
    for m in ("GET", "POST")
    for p in _PATHS
    for h in ({}, {"h": "1"}, {"h": "2"})
]

_uris = st.sampled_from([None, {"exact": "/a"}, {"exact": "/b"}, {"prefix": "/a"}, {"prefix": "/"}, {"regex": "/a.*"}])
_headers = st.sampled_from(
    [
        [],
        [{"name": "h", "value": "1"}],
        [{"name": "h"}],
        [{"name": "h", "value": "1", "invertMatch": True}],
        [{"name": "h", "value": "[12]", "regex": True}],
    ]
)
_sources = st.sampled_from(
    [
        [],
        [{"namespaces": ["a"]}],
        [{"namespaces": ["a", "b"]}],
        [{"labels": {"app": "x"}}],
        [{"clusters": ["c2"]}],
        [{"namespaces": ["b"]}, {"labels": {"app": "x"}}],
    ]
)


@st.composite
def _matchers(draw: st.DrawFn) -> list[dict[str, Any]]:
    out = []
    for _ in range(draw(st.integers(0, 2))):
        m: dict[str, Any] = {}
        uri = draw(_uris)
        if uri is not None:
            m["uri"] = uri
        if draw(st.booleans()):
            m["method"] = "GET"
        m["headers"] = draw(_headers)
        out.append(m)
    return out


@st.composite
def _policies(draw: st.DrawFn) -> list[TrafficPolicy]:
    count = draw(st.integers(1, 5))
    out = []
    for i in range(count):
        fields = draw(st.sets(st.sampled_from(["requestTimeout", "retries"]), min_size=1))
        settings: dict[str, Any] = {}
        if "requestTimeout" in fields:
            settings["requestTimeout"] = f"{i + 1}s"
        if "retries" in fields:
            settings["retries"] = {"attempts": i + 1}
        spec = {"sourceSelector": draw(_sources), "httpRequestMatchers": draw(_matchers()), "policy": settings}
        out.append(traffic_policy(f"p{i}", spec, created=f"{i:02d}:00"))
    return out


def _space(policy: TrafficPolicy) -> frozenset[int]:
    """The requests of the small world a policy applies to: its clauses, with no other policy around."""
    solo = table([policy])
    return frozenset(i for i, r in enumerate(_REQUESTS) if solo.match(r).policies)


def _reference_precedence(policies: list[TrafficPolicy], spaces: dict[str, frozenset[int]]) -> list[TrafficPrecedence]:
    """What the rule set decides: the more specific wins, else the earlier accepted."""
    out = []
    for a, b in itertools.combinations(policies, 2):  # a is accepted before b
        for wire in ("requestTimeout", "retries"):
            if wire not in a.spec.policy.set_fields() or wire not in b.spec.policy.set_fields():
                continue
            sa, sb = spaces[a.ref], spaces[b.ref]
            if not sa & sb:
                continue
            winner, loser = (b, a) if sb < sa else (a, b)
            out.append(beats(REVIEWS, wire, winner, loser, Specificity.OVERLAP))
    return out


@given(_policies())
def test_first_match_gives_every_request_the_field_by_field_merge(policies: list[TrafficPolicy]) -> None:
    spaces = {p.ref: _space(p) for p in policies}
    precedence = _reference_precedence(policies, spaces)
    t = table(policies, *precedence)
    invalid = {s.policy for s in t.statuses}
    wins = {(p.winner, p.loser, p.field) for p in precedence}
    for i, req in enumerate(_REQUESTS):
        applicable = [p for p in policies if i in spaces[p.ref] and p.ref not in invalid]
        expected: dict[str, str] = {}
        for wire in ("requestTimeout", "retries"):
            candidates = [p.ref for p in applicable if wire in p.spec.policy.set_fields()]
            unbeaten = [c for c in candidates if not any((o, c, wire) in wins for o in candidates)]
            if candidates:
                expected[wire] = (unbeaten or candidates)[0]
        assert effective_config(t, req).providers() == expected, req


@given(_policies(), st.randoms(use_true_random=False))
def test_table_does_not_depend_on_input_order(policies: list[TrafficPolicy], rnd: Any) -> None:
    apps = [applies(p, REVIEWS) for p in policies]
    shuffled_apps, shuffled_policies = list(apps), list(policies)
    rnd.shuffle(shuffled_apps)
    rnd.shuffle(shuffled_policies)
    assert table(policies, apps=apps) == table(shuffled_policies, apps=shuffled_apps)


def test_route_tables_builds_every_destination_with_exclusions() -> None:
    a = timeout("a", "1s", "01:00")
    intent = Intent(traffic=(applies(a, REVIEWS), applies(a, RATINGS)))
    inp = emit_input(meshes=[istio_mesh("c1")], destinations=[REVIEWS, RATINGS], policies=[a], intent=intent)
    tables = route_tables(inp, exclude={RATINGS.name: {a.ref}})
    assert tables[REVIEWS.name].has_policy_routes and not tables[RATINGS.name].has_policy_routes
    assert tables[REVIEWS.name].statuses == ()


def test_a_cluster_view_drops_the_cluster_condition_and_what_it_shadows() -> None:
    # In c1 the c1-only catch-all policy matches every request: the default route after it is gone.
    local = timeout("local", "1s", "01:00", sourceSelector=[{"clusters": ["c1"]}])
    view = table([local]).for_cluster("c1")
    assert [r.policies for r in view.routes] == [(local.ref,)]
    assert view.routes[0].is_catch_all


def test_public_surface_is_locked() -> None:
    # The Linkerd emitter and the simulator build on these names: changing them is an API change.
    import meshrules.emit.istio
    import meshrules.emit.routes

    assert set(meshrules.emit.routes.__all__) == {
        "CODE_INEXPRESSIBLE_OVERLAP", "CODE_ROUTE_CAP", "CODE_UNKNOWN_BACKEND", "DESTINATION_FIELDS", "ROUTE_CAP",
        "ROUTE_FIELDS", "Backend", "DestinationConfig", "HeaderCondition", "Inexpressible", "MatchKind", "MirrorTarget",
        "Provided",
        "QueryCondition", "Route", "RouteConfig", "RouteMatch", "RouteRequest", "RouteTable", "SourceCondition",
        "StringCondition", "build_route_table", "destination_config", "destination_configs", "effective_config",
        "match_request", "policy_clauses", "resolve_service", "route_tables",
    }  # fmt: skip
    assert meshrules.emit.istio.__all__ == ["emit_istio"]
