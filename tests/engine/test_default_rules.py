"""The default rule set on the bundled scenario: every decision written out by hand.

`simulator/scenarios/bookinfo-multicluster`: two Istio clusters in VirtualMesh `bookinfo` (shared
root, ENFORCED, federating namespace `bookinfo`), a Linkerd cluster alone in VirtualMesh
`emojivoto` (ENFORCED, nothing to federate with). The expectations below are read off the policy
files and spec §3, not off the rules' output.
"""

from __future__ import annotations

import pytest

from meshrules.kube.scenario import load_scenario
from meshrules.model.intent import IdentityPattern, Specificity
from meshrules.pipeline import analyse
from meshrules.pipeline.rules import Decision, decide
from meshrules.resources import bundled_scenario

MESH1 = "istiod-istio-system-cluster-1"
MESH2 = "istiod-istio-system-cluster-2"
MESH3 = "linkerd-destination-linkerd-cluster-3"
BOOKINFO_VM = "VirtualMesh meshrules-system/bookinfo"
EMOJIVOTO_VM = "VirtualMesh meshrules-system/emojivoto"


@pytest.fixture(scope="module")
def decision() -> Decision:
    return decide(analyse(load_scenario(bundled_scenario("bookinfo-multicluster"))))


def test_every_mesh_is_governed_by_its_virtual_mesh_with_enforcement(decision: Decision) -> None:
    got = {(m.mesh, m.virtual_mesh, m.enforced, m.shared_trust, m.hostname_suffix) for m in decision.intent.memberships}
    assert got == {
        (MESH1, BOOKINFO_VM, True, True, "global"),
        (MESH2, BOOKINFO_VM, True, True, "global"),
        (MESH3, EMOJIVOTO_VM, True, False, "global"),
    }


def test_bookinfo_destinations_are_federated_into_the_other_istio_mesh_by_hostname(decision: Decision) -> None:
    got = {(e.destination, e.mesh, e.host, e.virtual_mesh) for e in decision.intent.federation}
    assert got == {
        ("details-bookinfo-cluster-1", MESH2, "details.bookinfo.svc.cluster-1.global", BOOKINFO_VM),
        ("productpage-bookinfo-cluster-1", MESH2, "productpage.bookinfo.svc.cluster-1.global", BOOKINFO_VM),
        ("reviews-bookinfo-cluster-1", MESH2, "reviews.bookinfo.svc.cluster-1.global", BOOKINFO_VM),
        ("ratings-bookinfo-cluster-2", MESH1, "ratings.bookinfo.svc.cluster-2.global", BOOKINFO_VM),
        ("reviews-bookinfo-cluster-2", MESH1, "reviews.bookinfo.svc.cluster-2.global", BOOKINFO_VM),
    }
    assert {e.why.rule for e in decision.intent.federation} == {"federate-selected-destinations"}
    assert decision.intent.blocked == ()
    assert decision.intent.gaps == () and decision.intent.trust_rejections == ()


def test_applicable_traffic_policies_and_their_fields(decision: Decision) -> None:
    got = {(a.policy.removeprefix("TrafficPolicy "), a.destination, a.fields) for a in decision.intent.traffic}
    assert got == {
        ("bookinfo/reviews-canary", "reviews-bookinfo-cluster-1", ("requestTimeout", "trafficShift")),
        ("bookinfo/reviews-jason-to-v2", "reviews-bookinfo-cluster-1", ("requestTimeout", "retries", "trafficShift")),
        ("bookinfo/ratings-timeout", "ratings-bookinfo-cluster-2", ("requestTimeout", "retries")),
        ("bookinfo/details-resilience", "details-bookinfo-cluster-1", ("outlierDetection", "mtls")),
        ("emojivoto/voting-timeout", "voting-svc-emojivoto-cluster-3", ("requestTimeout", "retries")),
        # Fault injection is an Istio feature: the Linkerd emitter, not the rules, rejects it.
        ("emojivoto/emoji-chaos", "emoji-svc-emojivoto-cluster-3", ("faultInjection",)),
    }


def test_the_jason_route_is_more_specific_than_the_canary_for_its_shared_fields(decision: Decision) -> None:
    got = {(p.destination, p.field, p.winner, p.loser, p.relation) for p in decision.intent.precedence}
    jason, canary = "TrafficPolicy bookinfo/reviews-jason-to-v2", "TrafficPolicy bookinfo/reviews-canary"
    assert got == {
        ("reviews-bookinfo-cluster-1", "requestTimeout", jason, canary, Specificity.MORE_SPECIFIC),
        ("reviews-bookinfo-cluster-1", "trafficShift", jason, canary, Specificity.MORE_SPECIFIC),
    }
    assert {p.why.rule for p in decision.intent.precedence} == {"route-by-most-specific-match"}


def test_allowed_identities_per_destination(decision: Decision) -> None:
    productpage = IdentityPattern("cluster.local", "bookinfo", "bookinfo-productpage")
    reviews = IdentityPattern("cluster.local", "bookinfo", "bookinfo-reviews")
    web = IdentityPattern("cluster.local", "emojivoto", "web", "cluster-3")
    bot = IdentityPattern("cluster.local", "emojivoto", "default", "cluster-3")
    got = {
        (r.destination, r.sources, r.paths, r.methods, r.ports, r.gateway_identities) for r in decision.intent.access
    }
    assert got == {
        ("details-bookinfo-cluster-1", (productpage,), (), ("GET",), (9080,), ()),
        ("reviews-bookinfo-cluster-1", (productpage,), (), ("GET",), (9080,), ()),
        ("reviews-bookinfo-cluster-2", (productpage,), (), ("GET",), (9080,), ()),
        ("ratings-bookinfo-cluster-2", (reviews,), ("/ratings/*",), ("GET",), (), ()),
        ("emoji-svc-emojivoto-cluster-3", (web,), (), (), (), ()),
        ("voting-svc-emojivoto-cluster-3", (web,), (), (), (), ()),
        ("web-svc-emojivoto-cluster-3", (bot,), (), (), (80,), ()),
    }
    assert {r.why.rule for r in decision.intent.access if r.why} == {"allow-listed-identities"}


def test_no_status_errors_and_no_findings(decision: Decision) -> None:
    assert decision.intent.statuses == ()
    assert decision.findings == ()


def test_selected_sources_are_the_graphs_selection(decision: Decision) -> None:
    assert decision.intent.selected_sources["TrafficPolicy bookinfo/reviews-jason-to-v2"] == (
        "productpage-v1-bookinfo-cluster-1-deployment",
    )
    assert len(decision.intent.selected_sources["TrafficPolicy bookinfo/reviews-canary"]) == 10


def test_every_intent_item_explains_down_to_the_policy_files(decision: Decision) -> None:
    edge = next(e for e in decision.intent.federation if e.destination == "reviews-bookinfo-cluster-2")
    tree = decision.explain(edge.why)
    assert tree.rule == "federate-selected-destinations"
    assert "policies/virtual-meshes.yaml:12" in tree.sources()  # spec.meshes[1], the cluster-2 mesh
    assert "cluster-2/Service/bookinfo/reviews" in tree.sources()
    precedence = decision.intent.precedence[0]
    assert {"policies/traffic.yaml:8", "policies/traffic.yaml:33"} <= set(decision.explain(precedence.why).sources())
