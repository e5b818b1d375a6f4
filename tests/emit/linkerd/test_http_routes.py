"""Client-side HTTPRoutes (policy.linkerd.io/v1beta3) from the route model.

Linkerd references: "HTTPRoute" (parentRefs to a Service with `group: core`, `kind: Service`, a
port; weighted `backendRefs`; `timeouts.request`), "Retries" (`retry.linkerd.io/http`,
`retry.linkerd.io/limit`, `retry.linkerd.io/timeout` annotations on the route), "Multi-cluster
communication" (mirror Services `<svc>-<cluster>`).
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from meshrules.emit.linkerd import emit_linkerd
from meshrules.emit.linkerd.http_routes import gateway_duration
from meshrules.emit.routes import RouteRequest, build_route_table
from meshrules.emit.schema import validate
from meshrules.model.intent import Intent

from .builders import (
    applies,
    destination,
    emit_input,
    linkerd_mesh,
    load,
    member,
    mirror_edge,
    named,
    objects,
    port,
    traffic_policy,
    without_metadata,
    workload,
)
from .linkerd_model import Request, outbound_rule

C = "cluster-3"
MESH = linkerd_mesh(C)
REMOTE = linkerd_mesh("cluster-1")
V1 = workload("reviews", C)
REVIEWS = destination("reviews", C, workloads=[V1], ports=[port(9080, "http", 9080)])
V2 = destination("reviews-v2", C, workloads=[workload("reviews-v2", C)], ports=[port(9080, "http", 9080)])
REMOTE_REVIEWS = destination(
    "reviews", "cluster-1", workloads=[workload("reviews", "cluster-1")], ports=[port(9080, "http", 9080)], mesh=REMOTE
)


def run(
    *policies: Any,
    edges: tuple[Any, ...] = (),
    destinations: tuple[Any, ...] = (REVIEWS, V2, REMOTE_REVIEWS),
    **kw: Any,
) -> Any:
    intent = Intent(
        traffic=tuple(applies(p, REVIEWS) for p in policies),
        federation=edges,
        memberships=(member(MESH), member(REMOTE)),
    )
    return emit_linkerd(
        emit_input(meshes=[MESH, REMOTE], destinations=destinations, policies=policies, intent=intent, **kw)
    )


def test_timeout_retries_and_weights() -> None:
    canary = traffic_policy(
        "canary",
        {
            "policy": {
                "requestTimeout": "3s",
                "retries": {"attempts": 3, "perTryTimeout": "500ms"},
                "trafficShift": {
                    "destinations": [
                        {"service": {"name": "reviews"}, "weight": 80},
                        {"service": {"name": "reviews-v2"}, "weight": 20},
                    ]
                },
            }
        },
    )
    result = run(canary)
    assert without_metadata(named(result, C, "HTTPRoute", "reviews-9080")) == load("""
        apiVersion: policy.linkerd.io/v1beta3
        kind: HTTPRoute
        metadata:
          name: reviews-9080
          namespace: shop
          annotations:
            retry.linkerd.io/http: 5xx
            retry.linkerd.io/limit: "3"
            retry.linkerd.io/timeout: 500ms
        spec:
          parentRefs: [{group: core, kind: Service, name: reviews, port: 9080}]
          rules:
          - matches: [{path: {type: PathPrefix, value: /}}]
            timeouts: {request: 3s}
            backendRefs:
            - {name: reviews, port: 9080, weight: 80}
            - {name: reviews-v2, port: 9080, weight: 20}
    """)
    assert result.statuses == ()


def test_matches_and_the_default_route() -> None:
    # Once an HTTPRoute attaches to the Service a request matching no rule is not routed, so the
    # table's catch-all is rendered too. Istio's string prefix becomes an anchored regex (Linkerd's
    # PathPrefix matches whole segments only).
    jason = traffic_policy(
        "jason",
        {
            "httpRequestMatchers": [
                {"uri": {"prefix": "/reviews"}, "headers": [{"name": "end-user", "value": "jason"}]}
            ],
            "policy": {"requestTimeout": "2s"},
        },
    )
    result = run(jason)
    assert named(result, C, "HTTPRoute", "reviews-9080")["spec"]["rules"] == load("""
        - matches:
          - headers: [{name: end-user, type: Exact, value: jason}]
            path: {type: RegularExpression, value: /reviews.*}
          timeouts: {request: 2s}
        - matches: [{path: {type: PathPrefix, value: /}}]
    """)


def test_header_manipulation_as_filters() -> None:
    headers = traffic_policy(
        "headers",
        {
            "policy": {
                "headerManipulation": {
                    "appendRequestHeaders": {"x-env": "prod"},
                    "removeRequestHeaders": ["x-debug"],
                    "appendResponseHeaders": {"x-served-by": "linkerd"},
                }
            }
        },
    )
    [rule] = named(run(headers), C, "HTTPRoute", "reviews-9080")["spec"]["rules"]
    assert rule == load("""
        matches: [{path: {type: PathPrefix, value: /}}]
        filters:
        - type: RequestHeaderModifier
          requestHeaderModifier: {add: [{name: x-env, value: prod}], remove: [x-debug]}
        backendRefs:
        - name: reviews
          port: 9080
          filters:
          - type: ResponseHeaderModifier
            responseHeaderModifier: {add: [{name: x-served-by, value: linkerd}]}
    """)


def test_federated_destination_gets_routes_on_its_mirror_in_each_caller_cluster() -> None:
    timeout = traffic_policy("timeout", {"policy": {"requestTimeout": "1s"}})
    result = run(timeout, edges=(mirror_edge(REVIEWS, REMOTE),))
    mirror = named(result, "cluster-1", "HTTPRoute", "reviews-cluster-3-9080")
    assert mirror["spec"]["parentRefs"] == [
        {"group": "core", "kind": "Service", "name": "reviews-cluster-3", "port": 9080}
    ]
    assert mirror["spec"]["rules"][0]["timeouts"] == {"request": "1s"}
    assert named(result, C, "HTTPRoute", "reviews-9080")["spec"]["rules"][0]["timeouts"] == {"request": "1s"}


def test_backend_in_another_cluster_is_its_mirror() -> None:
    # The caller-side route in cluster-3 sends 30% to cluster-1's reviews through its mirror there.
    shift = traffic_policy(
        "spill",
        {
            "policy": {
                "trafficShift": {
                    "destinations": [
                        {"service": {"name": "reviews", "cluster": C}, "weight": 70},
                        {"service": {"name": "reviews", "cluster": "cluster-1"}, "weight": 30},
                    ]
                }
            }
        },
    )
    result = run(shift, edges=(mirror_edge(REMOTE_REVIEWS, MESH),))
    assert named(result, C, "HTTPRoute", "reviews-9080")["spec"]["rules"][0]["backendRefs"] == [
        {"name": "reviews", "port": 9080, "weight": 70},
        {"name": "reviews-cluster-1", "port": 9080, "weight": 30},
    ]


def test_different_retries_need_separate_routes() -> None:
    # Retries are annotations of a whole HTTPRoute: two retry settings, two objects.
    slow = traffic_policy(
        "slow",
        {"httpRequestMatchers": [{"uri": {"exact": "/slow"}}], "policy": {"retries": {"attempts": 5}}},
        created="01:00",
    )
    rest = traffic_policy("rest", {"policy": {"retries": {"attempts": 1}}}, created="02:00")
    result = run(slow, rest)
    routes = {o["metadata"]["name"]: o for o in objects(result, C, "HTTPRoute")}
    assert sorted(routes) == ["reviews-9080", "reviews-9080-2"]
    objs = list(routes.values())
    # The exact path ranks above `/` for every request: no tie for route age to decide.
    assert outbound_rule(objs, "reviews", 9080, Request("GET", "/slow"))[0][0]["retry.linkerd.io/limit"] == "5"
    assert outbound_rule(objs, "reviews", 9080, Request("GET", "/x"))[0][0]["retry.linkerd.io/limit"] == "1"


def test_gateway_durations() -> None:
    assert [gateway_duration(d) for d in ("3s", "500ms", "1.5s", "1m", "250us")] == [
        "3s",
        "500ms",
        "1500ms",
        "60s",
        "1ms",
    ]


# --- property: Linkerd's precedence picks the route the table picks ------------------------------

_URIS = [None, {"exact": "/a"}, {"prefix": "/a"}, {"prefix": "/a/b"}, {"regex": "/[ab]/.*"}]
_HEADERS = [
    [],
    [{"name": "x-user", "value": "jason"}],
    [
        {
            "name": "x-user",
            "value": "",
        }
    ],
]
_REQUESTS = [
    Request(method, path, headers)
    for method in ("GET", "POST")
    for path in ("/", "/a", "/a/b", "/a/b/c", "/ab", "/b/x")
    for headers in ((), (("x-user", "jason"),), (("x-user", "kim"),))
]


def _matcher(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {}
    uri = draw(st.sampled_from(_URIS))
    if uri:
        out["uri"] = uri
    method = draw(st.sampled_from([None, "GET"]))
    if method:
        out["method"] = method
    headers = draw(st.sampled_from(_HEADERS))
    if headers:
        out["headers"] = headers
    return out


@st.composite
def policy_sets(draw: st.DrawFn) -> list[Any]:
    policies = []
    for i in range(draw(st.integers(1, 4))):
        matchers = [_matcher(draw) for _ in range(draw(st.integers(0, 2)))]
        settings_: dict[str, Any] = {"requestTimeout": f"{i + 1}s"}
        if draw(st.booleans()):
            settings_["retries"] = {"attempts": draw(st.integers(1, 2))}
        policies.append(
            traffic_policy(f"p{i}", {"httpRequestMatchers": matchers, "policy": settings_}, created=f"0{i}:00")
        )
    return policies


@settings(max_examples=60)
@given(policy_sets())
def test_linkerd_applies_the_configuration_the_route_table_gives(policies: list[Any]) -> None:
    result = run(*policies)
    invalid = {s.policy for s in result.statuses}
    intent = Intent(traffic=tuple(applies(p, REVIEWS) for p in policies))
    table = build_route_table(
        emit_input(meshes=[MESH], destinations=[REVIEWS], policies=policies, intent=intent), REVIEWS.name, invalid
    )
    objs = objects(result, C, "HTTPRoute")
    assert all(validate(o) == [] for o in objs)
    for request in _REQUESTS:
        want = table.match(RouteRequest.of(method=request.method, path=request.path, headers=dict(request.headers)))
        timeout = want.config.request_timeout.value if want.config.request_timeout else None
        retries = want.config.retries.value.attempts if want.config.retries else None
        picks = outbound_rule(objs, "reviews", 9080, request) if objs else [({}, {})]
        for route_annotations, rule in picks:
            assert rule.get("timeouts", {}).get("request") == (gateway_duration(timeout) if timeout else None), request
            limit = route_annotations.get("retry.linkerd.io/limit")
            assert limit == (str(retries) if retries else None), request


def test_overlap_linkerd_cannot_order_sets_the_later_policy_aside() -> None:
    # Both match on one header: the route for `x-user: jason` and the one for any `x-user` rank the
    # same in Linkerd, and different retries put them in different HTTPRoutes, where only route age
    # would decide. The later accepted policy is INVALID for the destination.
    jason = traffic_policy(
        "jason",
        {
            "httpRequestMatchers": [{"headers": [{"name": "x-user", "value": "jason"}]}],
            "policy": {"retries": {"attempts": 5}},
        },
        created="01:00",
    )
    users = traffic_policy(
        "users",
        {
            "httpRequestMatchers": [{"headers": [{"name": "x-user", "value": ""}]}],
            "policy": {"retries": {"attempts": 1}},
        },
        created="02:00",
    )
    result = run(jason, users)
    assert [(s.policy, s.code, s.message) for s in result.statuses] == [
        (
            "TrafficPolicy shop/users",
            "MR0414",
            "Linkerd ranks HTTPRoute matches by specificity, not order, and cannot tell its requests apart from "
            "those of `TrafficPolicy shop/jason` with different retries or settings",
        ),
    ]
    # What stays: jason's route (retries 5) and the default route, in two HTTPRoutes that one header
    # match keeps strictly apart.
    routes = objects(result, C, "HTTPRoute")
    assert [r["metadata"]["annotations"].get("retry.linkerd.io/limit") for r in routes] == ["5", None]


def test_many_matches_are_split_into_rules_of_at_most_eight() -> None:
    # HTTPRoute CRD: `matches` holds at most 8 entries; a policy with 10 matchers needs 2 rules.
    many = traffic_policy(
        "many",
        {"httpRequestMatchers": [{"uri": {"exact": f"/p{i}"}} for i in range(10)], "policy": {"requestTimeout": "1s"}},
    )
    [route] = objects(run(many), C, "HTTPRoute")
    assert [len(rule["matches"]) for rule in route["spec"]["rules"]] == [8, 2, 1]
    assert validate(route) == []
