"""Policy tests (API §7): each `expect` field passes and fails with its exact text; universal tests
report real counterexamples; coverage numbers on the bundled scenario, computed by hand."""

from __future__ import annotations

from typing import Any

import pytest

from meshrules.model.testing import ReachabilityTest
from meshrules.pipeline.discovery import analyse
from meshrules.pipeline.policy_tests import FAILED, PASSED, coverage, run_test, run_tests
from meshrules.pipeline.query import Simulation, simulate
from meshrules.resources import bundled_scenario
from meshrules.testing import load_scenario, why

JASON: dict[str, Any] = {
    "from": {"workload": "cluster-1/bookinfo/productpage-v1"},
    "to": {"host": "reviews.bookinfo.svc.cluster.local", "port": 9080},
    "request": {"method": "GET", "path": "/reviews/0", "headers": {"end-user": "jason"}},
}
PAIR = "cluster-1/bookinfo/productpage-v1 -> reviews.bookinfo.svc.cluster.local:9080 GET /reviews/0"


@pytest.fixture(scope="module")
def sim() -> Simulation:
    return simulate(analyse(load_scenario(bundled_scenario("bookinfo-multicluster"))))


def reachability(name: str, spec: dict[str, Any]) -> ReachabilityTest:
    return ReachabilityTest.model_validate(
        {
            "apiVersion": "testing.meshrules.io/v1alpha1",
            "kind": "ReachabilityTest",
            "metadata": {"name": name, "namespace": "bookinfo"},
            "spec": spec,
        }
    )


def lines(sim: Simulation, expect: dict[str, Any], base: dict[str, Any] = JASON) -> list[str]:
    result = run_test(sim, reachability("t", {**base, "expect": expect}))
    if result.status == PASSED:
        return []
    assert result.status == FAILED and result.failure is not None, result.error
    return [m.line() for m in result.failure.mismatches]


# Each field: (a passing expectation, a failing one, the exact failure line).
FIELDS: list[tuple[dict[str, Any], dict[str, Any], str]] = [
    ({"allowed": True}, {"allowed": False}, "allowed: expected false, got true"),
    ({"code": "ALLOWED"}, {"code": "DENIED_ENFORCED"}, "code: expected DENIED_ENFORCED, got ALLOWED"),
    ({"timeout": "2000ms"}, {"timeout": "3s"}, "timeout: expected 3s, got 2s"),
    ({"retries": {"attempts": 3}}, {"retries": {"attempts": 2}}, "retries.attempts: expected 2, got 3"),
    (
        {"retries": {"perTryTimeout": "500ms"}},
        {"retries": {"perTryTimeout": "1s"}},
        "retries.perTryTimeout: expected 1s, got 500ms",
    ),
    ({"mtls": True}, {"mtls": False}, "mtls: expected false, got true"),
    (
        {"backends": [{"destination": "cluster-2/bookinfo/reviews", "subset": {"version": "v2"}, "weight": 100}]},
        {"backends": [{"destination": "cluster-2/bookinfo/reviews", "subset": {"version": "v3"}, "weight": 100}]},
        "backends: expected {cluster-2/bookinfo/reviews version=v3 100%}, "
        "got {cluster-2/bookinfo/reviews version=v2 100%}",
    ),
    (
        {"hops": [{"kind": "sidecar"}, {"kind": "eastwest-gateway", "port": 15443}, {"kind": "destination"}]},
        {"hops": [{"kind": "sidecar", "cluster": "cluster-1"}, {"kind": "destination", "cluster": "cluster-2"}]},
        "hops: expected sidecar cluster-1/* -> destination cluster-2/*, got sidecar cluster-1/productpage-v1 -> "
        "eastwest-gateway cluster-2/203.0.113.2:15443 -> destination cluster-2/reviews-v2",
    ),
]


@pytest.mark.parametrize(("passing", "failing", "text"), FIELDS, ids=[str(next(iter(p))) for p, _, _ in FIELDS])
def test_each_expect_field_passes_and_fails_with_exact_text(
    sim: Simulation, passing: dict[str, Any], failing: dict[str, Any], text: str
) -> None:
    assert lines(sim, passing) == []
    assert lines(sim, failing) == [text]


def test_backends_compare_as_a_set_and_without_subset_mean_the_whole_destination(sim: Simulation) -> None:
    canary = {**JASON, "request": {"method": "GET", "path": "/reviews/0"}}
    split = [
        {"destination": "cluster-2/bookinfo/reviews", "subset": {"version": "v3"}, "weight": 20},
        {"destination": "cluster-1/bookinfo/reviews", "subset": {"version": "v1"}, "weight": 50},
        {"destination": "cluster-2/bookinfo/reviews", "subset": {"version": "v2"}},
    ]  # weight not compared
    assert lines(sim, {"backends": split}, canary) == []
    whole = [{"destination": "cluster-2/bookinfo/ratings", "weight": 100}]
    ratings = {
        **JASON,
        "from": {"workload": "cluster-1/bookinfo/reviews-v1"},
        "to": {"destination": "cluster-2/bookinfo/ratings", "port": 9080},
    }
    assert lines(sim, {"backends": whole}, ratings) == []
    assert lines(
        sim, {"backends": [{"destination": "cluster-2/bookinfo/ratings", "subset": {"version": "v1"}}]}, ratings
    ) == ["backends: expected {cluster-2/bookinfo/ratings version=v1}, got {cluster-2/bookinfo/ratings 100%}"]


def test_every_mismatch_is_listed_in_field_order(sim: Simulation) -> None:
    got = lines(sim, {"mtls": False, "allowed": False, "code": "NO_ROUTE"})
    assert got == [
        "allowed: expected false, got true",
        "code: expected NO_ROUTE, got ALLOWED",
        "mtls: expected false, got true",
    ]


def test_unknown_workload_is_an_error_not_a_failure(sim: Simulation) -> None:
    spec = {**JASON, "from": {"workload": "cluster-1/bookinfo/nope"}, "expect": {"allowed": True}}
    result = run_test(sim, reachability("t", spec))
    assert result.status == "error" and "no meshed workload `cluster-1/bookinfo/nope`" in result.error


def test_bundled_scenario_tests_pass(sim: Simulation) -> None:
    results = run_tests(sim)
    assert len(results) >= 8 and {r.status for r in results} == {PASSED}, [(r.name, r.status) for r in results]
    assert any(r.universal and len(r.pairs) > 1 for r in results)


def test_universal_failure_reports_a_real_counterexample(sim: Simulation) -> None:
    spec = {
        "from": {"selector": {"namespaces": ["bookinfo"]}},
        "to": {"destination": "cluster-2/bookinfo/ratings", "port": 9080},
        "request": {"method": "GET", "path": "/ratings/0"},
        "expect": {"allowed": True},
    }
    result = run_test(sim, reachability("all-bookinfo-reads-ratings", spec))
    assert result.status == FAILED and result.failure is not None
    pair = result.failure
    # A real pair: a bookinfo workload of the scenario, and the answer `why` gives for it.
    assert sim.fleet.workload_by_ref[pair.source].namespace == "bookinfo"
    again = why(sim, pair.source, pair.target, port=9080, path="/ratings/0")
    assert (again.allowed, again.code) == (False, pair.verdict.code) == (False, "DENIED_DEFAULT")
    assert [m.line() for m in pair.mismatches] == ["allowed: expected true, got false"]
    # Only the reviews service account may read ratings: details, productpage and ratings fail.
    assert (result.failing_pairs, len(result.pairs)) == (3, 6)
    assert pair.source == "cluster-1/bookinfo/details-v1"  # the first failing pair, sorted


def test_universal_targets_from_a_destination_selector(sim: Simulation) -> None:
    spec = {
        "from": {"workload": "cluster-3/emojivoto/web"},
        "to": {"selector": {"namespaces": ["bookinfo"]}, "port": 9080},
        "expect": {"allowed": False},
    }
    result = run_test(sim, reachability("t", spec))
    assert result.status == PASSED
    assert sorted(p.target for p in result.pairs) == [
        "cluster-1/bookinfo/details",
        "cluster-1/bookinfo/productpage",
        "cluster-1/bookinfo/reviews",
        "cluster-2/bookinfo/ratings",
        "cluster-2/bookinfo/reviews",
    ]


def test_coverage_of_one_test_computed_by_hand(sim: Simulation) -> None:
    # Items of the bundled scenario (18):
    #   AccessPolicy x destination: productpage-reads-backends (details, reviews c1, reviews c2),
    #     reviews-reads-ratings (ratings), web-calls-emoji-and-voting (emoji, voting), vote-bot-calls-web (web) = 7
    #   TrafficPolicy x matcher: details-resilience, ratings-timeout, reviews-canary, voting-timeout,
    #     emoji-chaos (no matchers: one each) and reviews-jason-to-v2 (one matcher) = 6
    #   federation edges: bookinfo c1 {details, productpage, reviews} -> c2, c2 {ratings, reviews} -> c1 = 5
    # The jason request uses: productpage-reads-backends at reviews c2, jason matcher[0] (reviews-canary
    # loses every field it sets to the more specific jason policy), the edge reviews c2 -> c1: 3 of 18.
    result = run_test(sim, reachability("t", {**JASON, "expect": {"allowed": True}}))
    cov = coverage(sim, [result])
    assert len(cov.items) == 18
    assert sorted(cov.covered) == [
        "AccessPolicy bookinfo/productpage-reads-backends -> cluster-2/bookinfo/reviews",
        "TrafficPolicy bookinfo/reviews-jason-to-v2 matcher[0]",
        "federation cluster-2/bookinfo/reviews -> istiod-istio-system-cluster-1",
    ]
    assert cov.percent == pytest.approx(100 * 3 / 18)
    used = {"allow-listed-identities", "federate-selected-destinations", "route-by-most-specific-match"}
    assert used <= cov.covered_rules
    assert cov.covered_rules <= set(cov.rules)
    assert "TrafficPolicy bookinfo/reviews-canary" in cov.unexercised_policies
    assert "VirtualMesh meshrules-system/bookinfo" not in cov.unexercised_policies


def test_no_tests_cover_nothing(sim: Simulation) -> None:
    cov = coverage(sim, [])
    assert cov.percent == 0 and not cov.covered_rules and len(cov.unexercised_policies) == len(cov.policies)
