"""The query pipeline: edits for the nearest miss, verification by re-running, describe, diff, matrix."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from meshrules.errors import InputError, QueryError, UsageError
from meshrules.kube.scenario import load_scenario
from meshrules.pipeline import analyse
from meshrules.pipeline.query import apply_edits, describe, diff, matrix, simulate, verify, why
from meshrules.sim.verdict import Edit
from meshrules.sim.why import Query, answer
from tests.sim.why_scenarios import BOOKINFO, PRODUCTPAGE, REVIEWS_V2, bookinfo, q


def test_apply_edits_adds_to_a_policy_list_and_keeps_the_rest() -> None:
    scenario = bookinfo().analysis.scenario
    edited = apply_edits(scenario, [Edit("AccessPolicy bookinfo/reviews-reads-ratings", "add",
                                         "spec.allowedMethods", "POST")])
    policy = next(p for p in edited.policies if p.ref == "AccessPolicy bookinfo/reviews-reads-ratings")
    assert policy.to_wire()["spec"]["allowedMethods"] == ["GET", "POST"]
    assert len(edited.policies) == len(scenario.policies)
    # The original is untouched (scenarios are values).
    original = next(p for p in scenario.policies if p.ref == policy.ref)
    assert original.to_wire()["spec"]["allowedMethods"] == ["GET"]


def test_apply_edits_creates_and_removes() -> None:
    scenario = bookinfo().analysis.scenario
    body = {"apiVersion": "networking.meshrules.io/v1alpha1", "kind": "AccessPolicy",
            "metadata": {"name": "new", "namespace": "bookinfo"}, "spec": {}}
    created = apply_edits(scenario, [Edit("AccessPolicy bookinfo/new", "create", "", body)])
    assert "AccessPolicy bookinfo/new" in {p.ref for p in created.policies}
    with pytest.raises(InputError):
        apply_edits(scenario, [Edit("AccessPolicy bookinfo/reviews-reads-ratings", "add", "spec.allowedMethods",
                                    {"not": "a method"})])


def test_a_denial_without_any_access_policy_suggests_a_new_one_and_it_works() -> None:
    sim = bookinfo()
    v = why(sim, q(REVIEWS_V2, "cluster-1/bookinfo/productpage"))
    assert v.code == "DENIED_ENFORCED"
    miss = v.nearest_miss
    assert miss is not None
    assert [e.op for e in miss.edits] == ["create"]
    assert miss.verified is True and miss.code_after == "ALLOWED"


def test_verify_reports_false_when_the_edit_does_not_help() -> None:
    sim = bookinfo()
    query = q(REVIEWS_V2, "ratings", method="POST", path="/ratings/1")
    v = answer(sim.fleet, query)
    assert v.nearest_miss is not None
    useless = replace(v.nearest_miss, edits=(
        Edit("AccessPolicy bookinfo/reviews-reads-ratings", "add", "spec.allowedPaths", "/elsewhere"),))
    checked = verify(sim, query, replace(v, nearest_miss=useless))
    assert checked.nearest_miss is not None and checked.nearest_miss.verified is False


def test_matrix_of_the_bundled_scenario() -> None:
    m = matrix(bookinfo())
    cells = {(c.source, c.destination): c.code for c in m.cells}
    assert cells[(PRODUCTPAGE, "cluster-2/bookinfo/reviews")] == "ALLOWED"
    assert cells[(PRODUCTPAGE, "cluster-2/bookinfo/ratings")] == "DENIED_DEFAULT"
    assert cells[(REVIEWS_V2, "cluster-2/bookinfo/ratings")] == "DENIED_DEFAULT"  # GET / is not /ratings/*
    assert cells[("cluster-3/emojivoto/web", "cluster-3/emojivoto/emoji-svc")] == "ALLOWED"
    assert cells[("cluster-3/emojivoto/vote-bot", "cluster-3/emojivoto/web-svc")] == "ALLOWED"
    assert cells[(PRODUCTPAGE, "cluster-3/emojivoto/web-svc")] == "NOT_FEDERATED"
    assert len(m.cells) == len(m.classes) * len(m.destinations)


def test_describe_a_destination() -> None:
    d = describe(bookinfo(), "destination", "cluster-2/bookinfo/ratings")
    assert d["object"]["federatedAs"] == [{"mesh": "istiod-istio-system-cluster-1",
                                           "host": "ratings.bookinfo.svc.cluster-2.global"}]
    roles = {(a["role"], a["policy"]) for a in d["applies"]}
    assert ("access", "AccessPolicy bookinfo/reviews-reads-ratings") in roles
    assert ("traffic", "TrafficPolicy bookinfo/ratings-timeout") in roles
    assert "AuthorizationPolicy bookinfo/ratings" in d["emits"]["cluster-2"]
    assert any(c["source"] == PRODUCTPAGE and c["code"] == "DENIED_DEFAULT" for c in d["inbound"])


def test_describe_a_workload_and_a_policy() -> None:
    w = describe(bookinfo(), "workload", PRODUCTPAGE)
    assert w["object"]["identity"] == "spiffe://cluster.local/ns/bookinfo/sa/bookinfo-productpage"
    assert ("source", "TrafficPolicy bookinfo/reviews-jason-to-v2") in {(a["role"], a["policy"]) for a in w["applies"]}
    assert any(c["destination"] == "cluster-2/bookinfo/reviews" and c["code"] == "ALLOWED" for c in w["outbound"])
    p = describe(bookinfo(), "policy", "emojivoto/emoji-chaos")
    assert p["object"]["state"] in ("INVALID", "PARTIALLY_ACCEPTED")
    assert p["errors"] and p["errors"][0]["destination"] == "emoji-svc-emojivoto-cluster-3"
    with pytest.raises(QueryError):
        describe(bookinfo(), "policy", "nothing-like-it")
    with pytest.raises(UsageError):
        describe(bookinfo(), "gateway", "x")


def test_diff_finds_the_pairs_an_edit_changes_with_a_witness(tmp_path: Path) -> None:
    other = tmp_path / "policies"
    shutil.copytree(BOOKINFO / "policies", other)
    path = other / "access.yaml"
    docs = list(yaml.safe_load_all(path.read_text()))
    for d in docs:
        if d["metadata"]["name"] == "reviews-reads-ratings":
            d["spec"]["allowedMethods"] = ["GET", "POST"]
    path.write_text(yaml.safe_dump_all(docs))
    after = simulate(analyse(load_scenario(BOOKINFO, policies_dir=other)))
    changes, compared = diff(bookinfo(), after)
    assert compared > 0
    pairs = {(c.source, c.destination): c for c in changes}
    # Every workload running as bookinfo-reviews, in either cluster, may now POST to ratings.
    assert set(pairs) == {(REVIEWS_V2, "cluster-2/bookinfo/ratings"),
                          ("cluster-2/bookinfo/reviews-v3", "cluster-2/bookinfo/ratings"),
                          ("cluster-1/bookinfo/reviews-v1", "cluster-2/bookinfo/ratings")}
    witness = pairs[(REVIEWS_V2, "cluster-2/bookinfo/ratings")].witness
    assert (witness.method, witness.path) == ("POST", "/ratings/")
    again = answer(after.fleet, Query(witness.source, witness.destination, witness.port, witness.method,
                                      witness.path))
    assert again.allowed
