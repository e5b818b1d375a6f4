"""TrafficPolicy applicability and merging (spec §3.2): one test per merge rule and per validation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from meshrules.model.intent import Specificity
from meshrules.pipeline.rules import Decision
from tests.engine.rules_scenarios import REVIEWS1, REVIEWS2, clusters, decided, policies, service, traffic_policy

T1, T2 = "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"


def _decide(tmp_path: Path, *docs: dict[str, Any]) -> Decision:
    policies(clusters(tmp_path, names=["cluster-1", "cluster-2"]), *docs)
    return decided(tmp_path)


def _applied(decision: Decision) -> dict[tuple[str, str], tuple[str, ...]]:
    return {
        (a.policy.removeprefix("TrafficPolicy bookinfo/"), a.destination): a.fields for a in decision.intent.traffic
    }


def _precedence(decision: Decision) -> set[tuple[str, str, str, str, Specificity]]:
    short = "TrafficPolicy bookinfo/"
    return {
        (p.destination, p.field, p.winner.removeprefix(short), p.loser.removeprefix(short), p.relation)
        for p in decision.intent.precedence
    }


def test_the_policy_with_narrower_sources_wins_the_field(tmp_path: Path) -> None:
    everyone = traffic_policy(
        "everyone", T1, destinationSelector=[service("reviews", "cluster-1")], policy={"requestTimeout": "3s"}
    )
    shop = traffic_policy(
        "bookinfo-only",
        T2,
        sourceSelector=[{"namespaces": ["bookinfo"]}],
        destinationSelector=[service("reviews", "cluster-1")],
        policy={"requestTimeout": "1s"},
    )
    decision = _decide(tmp_path, everyone, shop)
    assert _applied(decision) == {
        ("everyone", REVIEWS1): ("requestTimeout",),
        ("bookinfo-only", REVIEWS1): ("requestTimeout",),
    }
    assert _precedence(decision) == {
        (REVIEWS1, "requestTimeout", "bookinfo-only", "everyone", Specificity.MORE_SPECIFIC)
    }
    assert decision.findings == ()


def test_an_exact_uri_inside_a_prefix_is_more_specific_even_when_accepted_later(tmp_path: Path) -> None:
    prefix = traffic_policy(
        "prefix",
        T1,
        destinationSelector=[service("reviews", "cluster-1")],
        httpRequestMatchers=[{"uri": {"prefix": "/reviews"}}],
        policy={"retries": {"attempts": 1}},
    )
    exact = traffic_policy(
        "exact",
        T2,
        destinationSelector=[service("reviews", "cluster-1")],
        httpRequestMatchers=[{"uri": {"exact": "/reviews/1"}, "method": "GET"}],
        policy={"retries": {"attempts": 5}},
    )
    assert _precedence(_decide(tmp_path, prefix, exact)) == {
        (REVIEWS1, "retries", "exact", "prefix", Specificity.MORE_SPECIFIC)
    }


def test_equally_specific_policies_with_different_values_conflict_and_the_later_contributes_nothing(
    tmp_path: Path,
) -> None:
    first = traffic_policy("first", T1, destinationSelector=[service("reviews")], policy={"requestTimeout": "3s"})
    second = traffic_policy(
        "second",
        T2,
        destinationSelector=[service("reviews", "cluster-1")],
        policy={"requestTimeout": "5s", "headerManipulation": {"appendRequestHeaders": {"x-team": "b"}}},
    )
    decision = _decide(tmp_path, first, second)
    assert _applied(decision) == {("first", REVIEWS1): ("requestTimeout",), ("first", REVIEWS2): ("requestTimeout",)}
    assert decision.intent.precedence == ()
    (status,) = decision.intent.statuses
    assert (status.policy, status.destination, status.code, status.field) == (
        "TrafficPolicy bookinfo/second",
        REVIEWS1,
        "MR0613",
        "spec.policy.requestTimeout",
    )
    assert status.message == (
        "conflicts with `TrafficPolicy bookinfo/first` on `requestTimeout`: same sources and matchers, "
        "different values; the earlier accepted wins"
    )
    assert status.why is not None and status.why.rule == "conflict-invalidates"
    assert decision.findings == ()  # `check` reports status errors from the statuses


def test_equally_specific_policies_with_the_same_value_do_not_conflict(tmp_path: Path) -> None:
    a = traffic_policy("a", T1, destinationSelector=[service("reviews", "cluster-1")], policy={"requestTimeout": "3s"})
    b = traffic_policy("b", T2, destinationSelector=[service("reviews", "cluster-1")], policy={"requestTimeout": "3s"})
    decision = _decide(tmp_path, a, b)
    assert decision.intent.statuses == ()
    assert _precedence(decision) == {(REVIEWS1, "requestTimeout", "a", "b", Specificity.SAME)}


def test_the_same_split_listed_in_another_order_is_the_same_value(tmp_path: Path) -> None:
    """Weighted backends have no order (Envoy weighted clusters): no conflict, the earlier provides it."""

    def split(*versions: str) -> dict[str, Any]:
        backends = [{"service": {"name": "reviews"}, "subset": {"version": v}, "weight": 50} for v in versions]
        return {"trafficShift": {"destinations": backends}}

    a = traffic_policy("a", T1, destinationSelector=[service("reviews", "cluster-2")], policy=split("v2", "v3"))
    b = traffic_policy("b", T2, destinationSelector=[service("reviews", "cluster-2")], policy=split("v3", "v2"))
    decision = _decide(tmp_path, a, b)
    assert decision.intent.statuses == ()
    assert _precedence(decision) == {(REVIEWS2, "trafficShift", "a", "b", Specificity.SAME)}


def test_overlapping_policies_earlier_accepted_wins_and_check_warns_naming_both(tmp_path: Path) -> None:
    productpage = traffic_policy(
        "from-productpage",
        T1,
        sourceSelector=[{"labels": {"app": "productpage"}}],
        destinationSelector=[service("reviews", "cluster-1")],
        policy={"requestTimeout": "2s"},
    )
    bookinfo = traffic_policy(
        "from-bookinfo",
        T2,
        sourceSelector=[{"namespaces": ["bookinfo"]}],
        destinationSelector=[service("reviews", "cluster-1")],
        policy={"requestTimeout": "4s"},
    )
    decision = _decide(tmp_path, productpage, bookinfo)
    assert _precedence(decision) == {
        (REVIEWS1, "requestTimeout", "from-productpage", "from-bookinfo", Specificity.OVERLAP)
    }
    (finding,) = decision.findings
    assert finding.code == "MR0614" and finding.object == "TrafficPolicy bookinfo/from-bookinfo"
    assert "overlaps `TrafficPolicy bookinfo/from-productpage` on `requestTimeout`" in finding.message
    assert finding.field == "spec.policy.requestTimeout"


def test_fields_only_one_policy_sets_combine(tmp_path: Path) -> None:
    canary = traffic_policy(
        "canary",
        T1,
        destinationSelector=[service("reviews", "cluster-2")],
        policy={
            "trafficShift": {
                "destinations": [
                    {"service": {"name": "reviews"}, "subset": {"version": "v2"}, "weight": 50},
                    {"service": {"name": "reviews"}, "subset": {"version": "v3"}, "weight": 50},
                ]
            }
        },
    )
    timeout = traffic_policy(
        "bookinfo-timeout",
        T2,
        sourceSelector=[{"namespaces": ["bookinfo"]}],
        destinationSelector=[service("reviews", "cluster-2")],
        policy={"requestTimeout": "2s"},
    )
    decision = _decide(tmp_path, canary, timeout)
    assert _applied(decision) == {
        ("canary", REVIEWS2): ("trafficShift",),
        ("bookinfo-timeout", REVIEWS2): ("requestTimeout",),
    }
    assert decision.intent.precedence == () and decision.findings == ()


def test_disjoint_matchers_never_contend(tmp_path: Path) -> None:
    reads = traffic_policy(
        "reads",
        T1,
        destinationSelector=[service("reviews", "cluster-1")],
        httpRequestMatchers=[{"method": "GET"}],
        policy={"requestTimeout": "2s"},
    )
    writes = traffic_policy(
        "writes",
        T2,
        destinationSelector=[service("reviews", "cluster-1")],
        httpRequestMatchers=[{"method": "POST"}],
        policy={"requestTimeout": "9s"},
    )
    decision = _decide(tmp_path, reads, writes)
    assert len(decision.intent.traffic) == 2
    assert decision.intent.precedence == () and decision.intent.statuses == () and decision.findings == ()


def test_a_spec_level_error_makes_the_policy_invalid_everywhere(tmp_path: Path) -> None:
    shift = {
        "destinations": [
            {"service": {"name": "reviews"}, "subset": {"version": "v2"}, "weight": 50},
            {"service": {"name": "reviews"}, "subset": {"version": "v3"}, "weight": 40},
        ]
    }
    bad = traffic_policy(
        "bad-weights", T1, destinationSelector=[service("reviews", "cluster-2")], policy={"trafficShift": shift}
    )
    decision = _decide(tmp_path, bad)
    assert decision.intent.traffic == ()
    (status,) = decision.intent.statuses
    assert (status.destination, status.code, status.field) == (None, "MR0201", "spec.policy.trafficShift.destinations")


def test_a_missing_subset_makes_the_policy_invalid_only_where_it_is_missing(tmp_path: Path) -> None:
    # The backend omits cluster and namespace: at each selected destination it is that destination.
    shift = {"destinations": [{"service": {"name": "reviews"}, "subset": {"version": "v1"}}]}
    policy = traffic_policy("to-v1", T1, destinationSelector=[service("reviews")], policy={"trafficShift": shift})
    decision = _decide(tmp_path, policy)
    assert _applied(decision) == {("to-v1", REVIEWS1): ("trafficShift",)}
    (status,) = decision.intent.statuses
    assert (status.destination, status.code, status.field) == (
        REVIEWS2,
        "MR0612",
        "spec.policy.trafficShift.destinations[0].subset",
    )
    assert "subset `version=v1` does not exist in `reviews-bookinfo-cluster-2`" in status.message
    assert status.why is not None
    assert "policies/policies.yaml:15" in decision.explain(status.why).sources()  # trafficShift.destinations[0]


def test_destination_rule_fields_with_request_matchers_are_invalid_at_the_destination(tmp_path: Path) -> None:
    """A DestinationRule applies to every request: outlier detection limited to `/admin` cannot be
    emitted without also applying it to `/other`, so the policy is INVALID there (and contributes
    none of its fields, not even its timeout)."""
    policy = traffic_policy(
        "admin-only",
        T1,
        destinationSelector=[service("reviews", "cluster-1")],
        httpRequestMatchers=[{"uri": {"prefix": "/admin"}}],
        policy={"outlierDetection": {"consecutiveErrors": 1}, "mtls": {"mode": "DISABLE"}, "requestTimeout": "2s"},
    )
    decision = _decide(tmp_path, policy)
    assert _applied(decision) == {}
    got = sorted((s.destination, s.code, s.field) for s in decision.intent.statuses)
    assert got == [
        (REVIEWS1, "MR0615", "spec.policy.mtls"),
        (REVIEWS1, "MR0615", "spec.policy.outlierDetection"),
    ]


def test_a_backend_or_mirror_port_the_target_does_not_expose_is_invalid_at_the_destination(tmp_path: Path) -> None:
    """Istio would route to an upstream cluster that does not exist (503 for every request)."""
    policy = traffic_policy(
        "bad-ports",
        T1,
        destinationSelector=[service("reviews", "cluster-1")],
        policy={
            "trafficShift": {"destinations": [{"service": {"name": "reviews"}, "port": 1234}]},
            "mirror": {"service": {"name": "reviews"}, "port": 9080},
        },
    )
    decision = _decide(tmp_path, policy)
    assert _applied(decision) == {}
    (status,) = decision.intent.statuses
    assert (status.destination, status.code, status.field) == (
        REVIEWS1,
        "MR0616",
        "spec.policy.trafficShift.destinations[0].port",
    )
    assert status.message.startswith("port `1234` is not a port of `reviews-bookinfo-cluster-1`")


def test_a_mirror_to_a_service_that_does_not_exist_is_invalid_at_the_destination(tmp_path: Path) -> None:
    mirror = {"service": {"name": "reviews-shadow", "cluster": "cluster-1"}, "percentage": 10}
    policy = traffic_policy(
        "shadow", T1, destinationSelector=[service("reviews", "cluster-1")], policy={"mirror": mirror}
    )
    decision = _decide(tmp_path, policy)
    assert decision.intent.traffic == ()
    (status,) = decision.intent.statuses
    assert (status.destination, status.code, status.field) == (REVIEWS1, "MR0611", "spec.policy.mirror.service")
    assert status.message == "service `cluster-1/bookinfo/reviews-shadow` is not a meshed destination"


def test_a_policy_that_selects_nothing_is_accepted_with_a_warning(tmp_path: Path) -> None:
    policy = traffic_policy(
        "nothing", T1, destinationSelector=[service("no-such-service")], policy={"requestTimeout": "1s"}
    )
    decision = _decide(tmp_path, policy)
    assert decision.intent.statuses == () and decision.intent.traffic == ()
    (finding,) = decision.findings
    assert (finding.code, finding.severity.value, finding.field) == ("MR0610", "warning", "spec.destinationSelector")
