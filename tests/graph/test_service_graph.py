"""The service graph of the bundled scenario: nodes, edges and what each policy selects."""

from __future__ import annotations

import pytest

from meshrules.kube.scenario import load_scenario
from meshrules.pipeline import Analysis, analyse
from meshrules.resources import bundled_scenario


@pytest.fixture(scope="module")
def bookinfo() -> Analysis:
    return analyse(load_scenario(bundled_scenario("bookinfo-multicluster")))


def test_graph_holds_every_discovered_thing(bookinfo: Analysis) -> None:
    assert bookinfo.graph.summary() == {
        "cluster": 3,
        "destination": 8,
        "gateway": 3,
        "identity": 8,
        "mesh": 3,
        "policy": 12,
        "workload": 10,
    }


def _selected(a: Analysis, ref: str) -> dict[str, list[str]]:
    policy = next(p for p in a.scenario.policies if p.ref == ref)
    sel = a.graph.selection(policy)
    return {
        "sources": sorted(sel.sources),
        "destinations": sorted(sel.destinations),
        "identities": sorted(sel.identities),
        "meshes": sorted(sel.meshes),
    }


def test_virtual_mesh_selects_its_member_meshes(bookinfo: Analysis) -> None:
    assert _selected(bookinfo, "VirtualMesh meshrules-system/bookinfo")["meshes"] == [
        "istiod-istio-system-cluster-1",
        "istiod-istio-system-cluster-2",
    ]
    assert bookinfo.graph.neighbours("policy", "VirtualMesh meshrules-system/bookinfo", "member") == [
        "istiod-istio-system-cluster-1",
        "istiod-istio-system-cluster-2",
    ]


def test_service_refs_without_cluster_match_every_cluster(bookinfo: Analysis) -> None:
    sel = _selected(bookinfo, "AccessPolicy bookinfo/productpage-reads-backends")
    assert sel["destinations"] == [
        "details-bookinfo-cluster-1",
        "reviews-bookinfo-cluster-1",
        "reviews-bookinfo-cluster-2",
    ]
    assert sel["identities"] == ["spiffe://cluster.local/ns/bookinfo/sa/bookinfo-productpage"]


def test_identity_selectors_pick_identities_by_where_their_workloads_run(bookinfo: Analysis) -> None:
    from meshrules.model.common import ClusterObjectRef, IdentitySelector

    graph = bookinfo.graph
    reviews = "spiffe://cluster.local/ns/bookinfo/sa/bookinfo-reviews"
    by_account = IdentitySelector(service_accounts=[ClusterObjectRef(name="bookinfo-reviews", namespace="bookinfo")])
    assert graph.select_identities([by_account]) == {reviews}
    # reviews runs in both clusters; ratings only in cluster-2: cluster-1 has no ratings identity.
    in_cluster_1 = graph.select_identities([IdentitySelector(clusters=["cluster-1"], namespaces=["bookinfo"])])
    assert reviews in in_cluster_1
    assert "spiffe://cluster.local/ns/bookinfo/sa/bookinfo-ratings" not in in_cluster_1
    assert graph.select_identities([]) == frozenset(w.identity for w in bookinfo.discovery.workloads)


def test_identity_clusters_are_where_a_selected_account_runs_and_the_selector_allows(bookinfo: Analysis) -> None:
    from meshrules.model.common import ClusterObjectRef, IdentitySelector

    graph = bookinfo.graph
    # bookinfo-reviews runs in cluster-1 and cluster-2 under one identity string (one trust domain):
    # naming cluster-1 must not bring in cluster-2.
    account = ClusterObjectRef(name="bookinfo-reviews", namespace="bookinfo", cluster="cluster-1")
    assert graph.select_identity_clusters([IdentitySelector(service_accounts=[account])]) == {"cluster-1"}
    anywhere = ClusterObjectRef(name="bookinfo-reviews", namespace="bookinfo")
    assert graph.select_identity_clusters([IdentitySelector(service_accounts=[anywhere])]) == {"cluster-1", "cluster-2"}
    assert graph.select_identity_clusters([IdentitySelector(namespaces=["emojivoto"])]) == {"cluster-3"}
    assert graph.select_identity_clusters([]) == {"cluster-1", "cluster-2", "cluster-3"}


def test_source_selector_with_labels_selects_matching_workloads(bookinfo: Analysis) -> None:
    sel = _selected(bookinfo, "TrafficPolicy bookinfo/reviews-jason-to-v2")
    assert sel["sources"] == ["productpage-v1-bookinfo-cluster-1-deployment"]
    assert bookinfo.graph.neighbours("policy", "TrafficPolicy bookinfo/reviews-jason-to-v2", "selects-source") == [
        "productpage-v1-bookinfo-cluster-1-deployment"
    ]


def test_empty_source_selector_selects_all_without_materialising_edges(bookinfo: Analysis) -> None:
    assert len(_selected(bookinfo, "TrafficPolicy bookinfo/ratings-timeout")["sources"]) == 10
    assert bookinfo.graph.neighbours("policy", "TrafficPolicy bookinfo/ratings-timeout", "selects-source") == []


def test_workloads_back_their_destinations(bookinfo: Analysis) -> None:
    assert bookinfo.graph.neighbours("workload", "reviews-v2-bookinfo-cluster-2-deployment", "backs") == [
        "reviews-bookinfo-cluster-2"
    ]
    assert bookinfo.graph.neighbours("workload", "web-emojivoto-cluster-3-deployment", "runs-as") == [
        "web.emojivoto.serviceaccount.identity.linkerd.cluster.local"
    ]
