"""Fact extraction: the bundled scenario as base relations, each fact with a source a person can open."""

from __future__ import annotations

import pytest

from meshrules.engine.facts import Facts
from meshrules.engine.facts_from_graph import extract_facts, fact_counts
from meshrules.kube.scenario import load_scenario
from meshrules.pipeline import Analysis, analyse
from meshrules.resources import bundled_scenario


@pytest.fixture(scope="module")
def analysis() -> Analysis:
    return analyse(load_scenario(bundled_scenario("bookinfo-multicluster")))


@pytest.fixture(scope="module")
def facts(analysis: Analysis) -> Facts:
    return extract_facts(analysis.graph, analysis.scenario)


def test_discovered_objects_become_facts_sourced_at_their_cluster_objects(facts: Facts) -> None:
    row = ("reviews-bookinfo-cluster-2", "istiod-istio-system-cluster-2", "cluster-2", "bookinfo", "reviews")
    assert facts.source("destination", row) == "cluster-2/Service/bookinfo/reviews"
    mesh = ("istiod-istio-system-cluster-1", "istio", "cluster-1", "istio-system", "cluster.local")
    assert facts.source("mesh", mesh) == "cluster-1/Deployment/istio-system/istiod"
    assert facts.source("mesh_dns_capture", ("istiod-istio-system-cluster-1", True)) == (
        "cluster-1/ConfigMap/istio-system/istio"
    )
    assert facts.source("mesh_config", ("linkerd-destination-linkerd-cluster-3", "linkerd-config")) is not None
    gateway = ("istiod-istio-system-cluster-2/istio-eastwestgateway", "203.0.113.2", 15443)
    assert facts.source("gateway_address", gateway) == "cluster-2/Service/istio-system/istio-eastwestgateway"
    workload = (
        "reviews-v2-bookinfo-cluster-2-deployment",
        "istiod-istio-system-cluster-2",
        "cluster-2",
        "bookinfo",
        "spiffe://cluster.local/ns/bookinfo/sa/bookinfo-reviews",
    )
    assert facts.source("workload", workload) == "cluster-2/Deployment/bookinfo/reviews-v2"
    assert facts.source("cluster", ("cluster-3", "cluster.local")) == "clusters/cluster-3/cluster.yaml:2"


def test_identities_are_per_cluster_and_sourced_at_the_service_account(facts: Facts) -> None:
    reviews = "spiffe://cluster.local/ns/bookinfo/sa/bookinfo-reviews"
    rows = {r for r in facts.rows("identity") if r[0] == reviews}
    assert rows == {
        (reviews, "cluster-1", "bookinfo", "bookinfo-reviews", "istiod-istio-system-cluster-1"),
        (reviews, "cluster-2", "bookinfo", "bookinfo-reviews", "istiod-istio-system-cluster-2"),
    }
    assert facts.source("identity", min(rows)) == "cluster-1/ServiceAccount/bookinfo/bookinfo-reviews"


def test_namespaces_present_per_cluster(facts: Facts) -> None:
    present = {r for r in facts.rows("namespace_in_cluster")}
    assert ("cluster-3", "emojivoto") in present and ("cluster-3", "linkerd-multicluster") in present
    assert ("cluster-3", "bookinfo") not in present and ("cluster-1", "bookinfo") in present


def test_policies_are_ranked_by_acceptance_and_sourced_at_their_fields(facts: Facts) -> None:
    ranks = sorted((rank, p) for p, rank, _ in facts.rows("traffic_policy"))
    assert [p.removeprefix("TrafficPolicy ") for _, p in ranks] == [
        "bookinfo/reviews-canary",
        "bookinfo/reviews-jason-to-v2",
        "bookinfo/ratings-timeout",
        "bookinfo/details-resilience",
        "emojivoto/voting-timeout",
        "emojivoto/emoji-chaos",
    ]
    vm = "VirtualMesh meshrules-system/bookinfo"
    assert facts.source("vm_member", (vm, "istiod-istio-system-cluster-1")) == "policies/virtual-meshes.yaml:11"
    assert facts.source("vm_member", (vm, "istiod-istio-system-cluster-2")) == "policies/virtual-meshes.yaml:12"
    assert facts.source("vm_enforcement", (vm, "ENFORCED")) == "policies/virtual-meshes.yaml:23"
    assert facts.source("vm_selector_any_mesh", (vm, 0)) == "policies/virtual-meshes.yaml:21"
    assert facts.source("tp_sets", ("TrafficPolicy bookinfo/reviews-canary", "requestTimeout", "3s")) == (
        "policies/traffic.yaml:24"
    )


def test_selections_come_from_the_graph(facts: Facts) -> None:
    assert {d for p, d in facts.rows("ap_selects_destination") if p.endswith("productpage-reads-backends")} == {
        "details-bookinfo-cluster-1",
        "reviews-bookinfo-cluster-1",
        "reviews-bookinfo-cluster-2",
    }
    assert set(facts.rows("ap_source_account")) >= {
        ("AccessPolicy bookinfo/productpage-reads-backends", "", "bookinfo", "bookinfo-productpage"),
        ("AccessPolicy emojivoto/web-calls-emoji-and-voting", "cluster-3", "emojivoto", "web"),
    }
    assert (
        "AccessPolicy bookinfo/reviews-reads-ratings",
        "spiffe://cluster.local/ns/bookinfo/sa/bookinfo-reviews",
    ) in (facts.rows("ap_source_identity"))


def test_a_traffic_policy_sources_are_its_selector_not_its_workloads(analysis: Analysis, facts: Facts) -> None:
    # Linear granularity: one scope fact per policy, however many workloads its selector matches.
    traffic = [p for p in analysis.graph.policies if p.kind == "TrafficPolicy"]
    assert len(facts.rows("tp_scope")) == len(traffic)
    scope = {p: (s, m) for p, s, m in facts.rows("tp_scope")}
    assert scope["TrafficPolicy bookinfo/reviews-canary"] == ((), ())
    sources, matchers = scope["TrafficPolicy bookinfo/reviews-jason-to-v2"]
    assert sources == ({"clusters": (), "namespaces": ("bookinfo",), "labels": {"app": "productpage"}},)
    assert matchers[0]["uri"] == {"prefix": "/reviews"}
    # No relation pairs workloads with destinations beyond the Service → pod edges themselves.
    counts = fact_counts(facts)
    assert counts["destination_workload"] == sum(len(d.workloads) for d in analysis.discovery.destinations)


def test_backends_keep_omitted_fields_empty_for_the_rules_to_resolve(facts: Facts) -> None:
    rows = {r[:6] for r in facts.rows("tp_backend") if r[0] == "TrafficPolicy bookinfo/reviews-canary"}
    assert (
        "TrafficPolicy bookinfo/reviews-canary",
        "trafficShift",
        "spec.policy.trafficShift.destinations[0]",
        "cluster-1",
        "bookinfo",
        "reviews",
    ) in rows


def test_without_a_scenario_policies_are_sourced_by_reference(analysis: Analysis) -> None:
    facts = extract_facts(analysis.graph)
    row = next(r for r in facts.rows("virtual_mesh") if r[0] == "VirtualMesh meshrules-system/emojivoto")
    assert facts.source("virtual_mesh", row) == "VirtualMesh meshrules-system/emojivoto"
    assert facts.objects["TrafficPolicy bookinfo/ratings-timeout"].spec.policy.request_timeout == "5s"
