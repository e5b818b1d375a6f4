"""VirtualServices from route tables: one per host and caller cluster, routes in table order.

Reference: https://istio.io/latest/docs/reference/config/networking/virtual-service/ — `http`
routes are tried in order, the first match wins; `match` entries are ORed and each entry's fields
ANDed; `headers`/`withoutHeaders`/`queryParams` are maps of StringMatch; `fault`, `corsPolicy`,
`headers` (add/remove), `mirror` + `mirrorPercentage` are per route.
"""

from __future__ import annotations

from emit.emit_builders import applies, beats, federate, find, member, spec_of, traffic_policy, yaml_spec
from emit.istio.world import C1, C2, RATINGS, REVIEWS, REVIEWS_C2, emit
from meshrules.emit.schema import validate
from meshrules.model.intent import Specificity


def test_no_route_policies_no_virtual_service() -> None:
    mtls = traffic_policy("mtls", {"policy": {"mtls": {"mode": "ISTIO_MUTUAL"}}}, created="01:00")
    result = emit([mtls], traffic=(applies(mtls, REVIEWS),))
    assert find(result.objects, "c1", "VirtualService") == []
    assert spec_of(result.objects, "c1", "DestinationRule", "reviews") == yaml_spec(
        "{host: reviews.shop.svc.cluster.local, trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}}"
    )


def test_matches_render_per_namespace_with_inverted_and_present_headers() -> None:
    policy = traffic_policy(
        "beta",
        {
            "sourceSelector": [{"namespaces": ["web", "admin"], "labels": {"app": "web"}}],
            "httpRequestMatchers": [
                {
                    "uri": {"regex": "/api/v[0-9]+"},
                    "method": "POST",
                    "headers": [{"name": "X-Beta"}, {"name": "x-debug", "value": "1", "invertMatch": True}],
                    "queryParameters": [{"name": "q", "value": "1"}],
                }
            ],
            "policy": {"requestTimeout": "1s"},
        },
        created="01:00",
    )
    spec = spec_of(emit([policy], traffic=(applies(policy, REVIEWS),)).objects, "c1", "VirtualService", "reviews")
    # Istio's `sourceNamespace` holds one namespace: two namespaces are two ORed match entries.
    # A header with no value tests presence (`regex: .*` fails on an absent header in Envoy).
    entry = """
        uri: {regex: "/api/v[0-9]+"}
        method: {exact: POST}
        headers: {x-beta: {regex: ".*"}}
        withoutHeaders: {x-debug: {exact: "1"}}
        queryParams: {q: {exact: "1"}}
        sourceLabels: {app: web}
    """
    base = yaml_spec(entry)
    assert spec["http"][0]["match"] == [{**base, "sourceNamespace": "admin"}, {**base, "sourceNamespace": "web"}]
    assert spec["http"][0]["timeout"] == "1s"
    # The table's catch-all keeps unmatched requests flowing (an unmatched request would get 404).
    assert spec["http"][-1] == {"route": [{"destination": {"host": "reviews.shop.svc.cluster.local"}}]}


def test_an_absent_header_renders_as_an_inverted_empty_string_match() -> None:
    """`{name: x-canary, invertMatch: true}` means "no `x-canary` header". Istio turns an empty
    StringMatch into Envoy's present match, which `invert_match` makes "absent"; an inverted
    `regex: .*` would match nothing (Envoy fails a regex on an absent header before inverting)."""
    policy = traffic_policy(
        "no-canary",
        {
            "httpRequestMatchers": [{"headers": [{"name": "x-canary", "invertMatch": True}]}],
            "policy": {"requestTimeout": "1s"},
        },
        created="01:00",
    )
    result = emit([policy], traffic=(applies(policy, REVIEWS),))
    spec = spec_of(result.objects, "c1", "VirtualService", "reviews")
    assert spec["http"][0]["match"] == [{"withoutHeaders": {"x-canary": {}}}]
    assert all(validate(o) == [] for o in result.objects["c1"])


def test_every_route_field_renders() -> None:
    policy = traffic_policy(
        "everything",
        {
            "policy": {
                "retries": {"attempts": 2},
                "faultInjection": {"abort": {"httpStatus": 503}, "percentage": 10},
                "corsPolicy": {
                    "allowOrigins": [{"exact": "https://a.example"}, {"regex": "https://.*\\.b\\.example"}],
                    "allowMethods": ["GET"],
                    "maxAge": "24h",
                    "allowCredentials": False,
                },
                "headerManipulation": {
                    "appendRequestHeaders": {"x-b": "2", "x-a": "1"},
                    "removeResponseHeaders": ["server"],
                },
                "mirror": {"service": {"name": "ratings"}, "port": 80, "percentage": 5},
            }
        },
        created="01:00",
    )
    result = emit([policy], traffic=(applies(policy, REVIEWS),))
    spec = spec_of(result.objects, "c1", "VirtualService", "reviews")
    assert spec["http"] == yaml_spec(
        """
        - route: [{destination: {host: reviews.shop.svc.cluster.local}}]
          retries: {attempts: 2}
          fault: {abort: {httpStatus: 503, percentage: {value: 10.0}}}
          corsPolicy:
            allowOrigins: [{exact: "https://a.example"}, {regex: "https://.*\\\\.b\\\\.example"}]
            allowMethods: [GET]
            maxAge: 24h
            allowCredentials: false
          headers:
            request: {add: {x-a: "1", x-b: "2"}}
            response: {remove: [server]}
          mirror: {host: ratings.shop.svc.cluster.local, port: {number: 80}}
          mirrorPercentage: {value: 5.0}
        """
    )
    assert all(validate(o) == [] for o in result.objects["c1"])


def test_delay_fault() -> None:
    policy = traffic_policy(
        "slow", {"policy": {"faultInjection": {"fixedDelay": "5s", "percentage": 1.5}}}, created="01:00"
    )
    spec = spec_of(emit([policy], traffic=(applies(policy, RATINGS),)).objects, "c1", "VirtualService", "ratings")
    assert spec["http"][0]["fault"] == {"delay": {"fixedDelay": "5s", "percentage": {"value": 1.5}}}


def test_overlapping_policies_render_the_intersection_first() -> None:
    api = traffic_policy(
        "api",
        {"httpRequestMatchers": [{"uri": {"prefix": "/api"}}], "policy": {"requestTimeout": "1s"}},
        created="01:00",
    )
    canary = traffic_policy(
        "canary",
        {
            "httpRequestMatchers": [{"headers": [{"name": "x-canary", "value": "1"}]}],
            "policy": {
                "requestTimeout": "9s",
                "trafficShift": {"destinations": [{"service": {"name": "reviews"}, "subset": {"version": "v2"}}]},
            },
        },
        created="02:00",
    )
    result = emit(
        [api, canary],
        traffic=(applies(api, REVIEWS), applies(canary, REVIEWS)),
        precedence=(beats(REVIEWS, "requestTimeout", api, canary, Specificity.OVERLAP),),
    )
    spec = spec_of(result.objects, "c1", "VirtualService", "reviews")
    v2 = {"destination": {"host": "reviews.shop.svc.cluster.local", "subset": "version-v2"}}
    assert spec["http"] == [
        {
            "match": [{"uri": {"prefix": "/api"}, "headers": {"x-canary": {"exact": "1"}}}],
            "route": [v2],
            "timeout": "1s",
        },
        {
            "match": [{"uri": {"prefix": "/api"}}],
            "route": [{"destination": {"host": "reviews.shop.svc.cluster.local"}}],
            "timeout": "1s",
        },
        {"match": [{"headers": {"x-canary": {"exact": "1"}}}], "route": [v2], "timeout": "9s"},
        {"route": [{"destination": {"host": "reviews.shop.svc.cluster.local"}}]},
    ]
    assert spec_of(result.objects, "c1", "DestinationRule", "reviews")["subsets"] == [
        {"name": "version-v2", "labels": {"version": "v2"}}
    ]


def test_cross_cluster_shift_uses_the_federated_host_and_cluster_limited_routes_stay_home() -> None:
    spill = traffic_policy(
        "spill",
        {
            "policy": {
                "trafficShift": {
                    "destinations": [
                        {"service": {"name": "reviews"}, "weight": 90},
                        {"service": {"name": "reviews", "cluster": "c2"}, "weight": 10},
                    ]
                }
            }
        },
        created="01:00",
    )
    local_only = traffic_policy(
        "local-only", {"sourceSelector": [{"clusters": ["c1"]}], "policy": {"requestTimeout": "1s"}}, created="02:00"
    )
    result = emit(
        [spill, local_only],
        memberships=(member(C1), member(C2)),
        federation=(federate(REVIEWS, C2), federate(REVIEWS_C2, C1)),
        traffic=(applies(spill, REVIEWS), applies(local_only, REVIEWS)),
    )
    home = spec_of(result.objects, "c1", "VirtualService", "reviews")
    assert home["http"][0]["route"] == [
        {"destination": {"host": "reviews.shop.svc.cluster.local"}, "weight": 90},
        {"destination": {"host": "reviews.shop.svc.c2.global"}, "weight": 10},
    ]
    assert home["http"][0]["timeout"] == "1s"
    # In c2 the same destination is `reviews.shop.svc.c1.global`, and the c1-only timeout is absent.
    away = spec_of(result.objects, "c2", "VirtualService", "reviews-shop-c1-global")
    assert away == yaml_spec(
        """
        hosts: [reviews.shop.svc.c1.global]
        http:
        - route:
          - {destination: {host: reviews.shop.svc.c1.global}, weight: 90}
          - {destination: {host: reviews.shop.svc.cluster.local}, weight: 10}
        """
    )
    for objects in result.objects.values():
        assert all(validate(o) == [] for o in objects)


def test_a_policy_for_one_cluster_has_no_match_there() -> None:
    # Istio cannot match the caller's cluster; the route lives only in that cluster's VirtualService,
    # where it matches every request (an empty HTTPMatchRequest is not allowed, so `match` is left out).
    local = traffic_policy(
        "local", {"sourceSelector": [{"clusters": ["c1"]}], "policy": {"requestTimeout": "1s"}}, created="01:00"
    )
    spec = spec_of(emit([local], traffic=(applies(local, REVIEWS),)).objects, "c1", "VirtualService", "reviews")
    assert spec["http"] == [{"route": [{"destination": {"host": "reviews.shop.svc.cluster.local"}}], "timeout": "1s"}]
