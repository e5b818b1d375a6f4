"""`why` on the bundled scenario, answers written by hand, and each API §6 code from a small variation.

The bundled scenario: bookinfo across two Istio clusters (one VirtualMesh, shared trust, federation,
ENFORCED access) and emojivoto on a Linkerd cluster (its own VirtualMesh, ENFORCED).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from meshrules.errors import QueryError, UsageError
from meshrules.pipeline.query import why
from meshrules.sim.verdict import (
    DENIED_DEFAULT,
    DENIED_ENFORCED,
    DENIED_EXPLICIT,
    MTLS_MISMATCH,
    NO_DNS,
    NO_GATEWAY_ADDRESS,
    NO_ROUTE,
    NOT_FEDERATED,
    TRUST_DOMAIN_REJECTED,
    Edit,
    first_code,
)
from meshrules.sim.why import answer

from .why_scenarios import (
    PRODUCTPAGE,
    REVIEWS_V1,
    REVIEWS_V2,
    Variation,
    bookinfo,
    mesh_config,
    q,
    root_cert_configmap,
    self_signed_pem,
    two_linkerd_clusters,
    user_object,
)

EXAMPLE = Path("/work/shared/spec/examples/why-answer.json")
ISTIO_SYSTEM_1 = "clusters/cluster-1/istio-system.yaml"
ISTIO_SYSTEM_2 = "clusters/cluster-2/istio-system.yaml"


# ================================================================================================
# The bundled scenario
# ================================================================================================


def test_jason_goes_to_cluster_2_v2_with_2s_timeout_and_3_retries_over_the_eastwest_gateway() -> None:
    v = answer(bookinfo().fleet, q(PRODUCTPAGE, "reviews", path="/reviews/0", end_user="jason"))
    got = v.to_json()
    assert got["allowed"] is True and got["code"] == "ALLOWED" and got["causes"] == []
    assert got["backends"] == [
        {
            "destination": "cluster-2/bookinfo/reviews",
            "subset": {"version": "v2"},
            "weight": 100,
            "allowed": True,
            "code": "ALLOWED",
        }
    ]
    assert got["timeout"] == "2s"
    assert got["retries"] == {"attempts": 3, "perTryTimeout": "500ms"}
    assert got["mtls"] is True
    assert got["hops"] == [
        {"kind": "sidecar", "cluster": "cluster-1", "name": "productpage-v1"},
        {"kind": "eastwest-gateway", "cluster": "cluster-2", "address": "203.0.113.2", "port": 15443},
        {"kind": "destination", "cluster": "cluster-2", "name": "reviews-v2"},
    ]
    steps = {s["step"]: s for s in got["explanation"]}
    assert "route-by-most-specific-match" in steps["route"]["rule"]
    assert any(
        o.startswith("TrafficPolicy bookinfo/reviews-jason-to-v2 (policies/traffic.yaml:")
        for o in steps["route"]["objects"]
    )
    assert steps["federation"]["rule"] == "federate-selected-destinations"
    assert steps["federation"]["objects"][0].startswith("VirtualMesh meshrules-system/bookinfo (policies/")
    assert steps["authorization"]["rule"] == "allow-listed-identities"
    assert steps["authorization"]["objects"][0].startswith(
        "AccessPolicy bookinfo/productpage-reads-backends (policies/access.yaml:"
    )


def test_the_spec_example_answer_is_what_why_says_apart_from_the_explanation_text() -> None:
    """why-answer.json pins the field names and value formats; its explanation is illustrative."""
    example = json.loads(EXAMPLE.read_text())
    got = answer(bookinfo().fleet, q(PRODUCTPAGE, "reviews", path="/reviews/0", end_user="jason")).to_json()
    for key in example:
        if key != "explanation":
            assert got[key] == example[key], key
    assert [s["step"] for s in got["explanation"]][:2] == ["route", "federation"]
    assert set(got) == set(example)


def test_other_users_get_the_canary_split_with_istios_default_retries() -> None:
    v = answer(bookinfo().fleet, q(PRODUCTPAGE, "cluster-1/bookinfo/reviews", path="/reviews/0"))
    assert v.allowed
    assert [(b.destination, dict(b.subset or ()), b.weight) for b in v.backends] == [
        ("cluster-1/bookinfo/reviews", {"version": "v1"}, 50),
        ("cluster-2/bookinfo/reviews", {"version": "v2"}, 30),
        ("cluster-2/bookinfo/reviews", {"version": "v3"}, 20),
    ]
    assert v.timeout == "3s"
    # No policy sets retries for this route: Istio retries twice by default.
    assert v.retries is not None and (v.retries.attempts, v.retries.per_try_timeout) == (2, None)
    assert v.retries.source == "istio default"


def test_productpage_to_ratings_is_denied_by_default() -> None:
    # An AccessPolicy selects ratings and none matches: its ALLOW rules deny (spec §6 DENIED_DEFAULT).
    v = answer(bookinfo().fleet, q(PRODUCTPAGE, "cluster-2/bookinfo/ratings"))
    assert (v.allowed, v.code) == (False, DENIED_DEFAULT)
    assert v.host == "ratings.bookinfo.svc.cluster-2.global"
    assert (v.timeout, v.retries and v.retries.attempts) == ("5s", 2)
    assert v.nearest_miss is not None and v.nearest_miss.policy == "AccessPolicy bookinfo/reviews-reads-ratings"
    steps = {s.step: s for s in v.explanation}
    assert any(o.startswith("AccessPolicy bookinfo/reviews-reads-ratings") for o in steps["authorization"].objects)


def test_reviews_reads_ratings_with_get_and_not_with_post_and_the_fix_adds_post() -> None:
    sim = bookinfo()
    ok = why(sim, q(REVIEWS_V2, "ratings", path="/ratings/1"))
    assert ok.allowed and ok.code == "ALLOWED" and ok.nearest_miss is None
    denied = why(sim, q(REVIEWS_V2, "ratings", method="POST", path="/ratings/1"))
    assert (denied.allowed, denied.code) == (False, DENIED_DEFAULT)
    miss = denied.nearest_miss
    assert miss is not None
    assert miss.policy == "AccessPolicy bookinfo/reviews-reads-ratings"
    assert miss.field == "spec.allowedMethods"
    assert miss.location.startswith("policies/access.yaml:")
    assert [(e.target, e.op, e.field, e.value) for e in miss.edits] == [
        ("AccessPolicy bookinfo/reviews-reads-ratings", "add", "spec.allowedMethods", "POST")
    ]
    assert miss.verified is True and miss.code_after == "ALLOWED"


def test_emojivoto_web_reaches_emoji_and_vote_bot_does_not() -> None:
    fleet = bookinfo().fleet
    ok = answer(fleet, q("cluster-3/emojivoto/web", "emoji-svc", port=8080))
    assert ok.allowed and ok.mtls
    assert [h.kind for h in ok.hops] == ["linkerd-proxy", "destination"]
    assert ok.retries is not None and ok.retries.attempts == 0  # Linkerd does not retry by default
    bot = answer(fleet, q("cluster-3/emojivoto/vote-bot", "emoji-svc", port=8080))
    assert (bot.allowed, bot.code) == (False, DENIED_DEFAULT)
    assert bot.nearest_miss is not None and bot.nearest_miss.field == "spec.sourceSelector"


def test_linkerd_voting_gets_a_1s_timeout_and_2_retries() -> None:
    v = answer(bookinfo().fleet, q("cluster-3/emojivoto/web", "voting-svc", port=8080))
    assert v.allowed
    assert v.timeout == "1s"
    assert v.retries is not None and v.retries.attempts == 2


def test_an_unknown_host_is_a_clear_error() -> None:
    with pytest.raises(QueryError, match="unknown host `no-such-service`"):
        answer(bookinfo().fleet, q(PRODUCTPAGE, "no-such-service"))


def test_several_ports_need_a_port() -> None:
    with pytest.raises(UsageError, match="2 ports, give one with `--port`"):
        answer(bookinfo().fleet, q("cluster-3/emojivoto/web", "emoji-svc"))


def test_unknown_workload_and_destination_are_errors() -> None:
    with pytest.raises(QueryError, match="no meshed workload"):
        answer(bookinfo().fleet, q("cluster-1/bookinfo/nobody", "reviews"))
    with pytest.raises(QueryError, match="no destination"):
        answer(bookinfo().fleet, q(PRODUCTPAGE, "cluster-9/bookinfo/reviews"))
    with pytest.raises(UsageError):
        answer(bookinfo().fleet, q("productpage-v1", "reviews"))


def test_a_service_of_another_cluster_dialed_by_its_local_name_is_no_route() -> None:
    v = answer(bookinfo().fleet, q(PRODUCTPAGE, "ratings"))
    assert (v.allowed, v.code) == (False, NO_ROUTE)
    assert "ratings.bookinfo.svc.cluster-2.global" in v.reason


def test_istio_and_linkerd_meshes_in_different_virtual_meshes_are_not_federated() -> None:
    v = answer(bookinfo().fleet, q(PRODUCTPAGE, "cluster-3/emojivoto/web-svc"))
    assert v.code == NOT_FEDERATED and "NO_VIRTUAL_MESH" in v.reason


def test_codes_follow_the_path_order() -> None:
    assert first_code([DENIED_ENFORCED, "ALLOWED", MTLS_MISMATCH, NO_DNS]) == (NO_DNS, (MTLS_MISMATCH, DENIED_ENFORCED))
    assert first_code(["ALLOWED", "GATEWAY_IDENTITY"]) == ("ALLOWED", ("GATEWAY_IDENTITY",))


# ================================================================================================
# One variation per code
# ================================================================================================


def test_limited_trust_is_not_federated_with_the_rule_sets_reason(tmp_path: Path) -> None:
    def limited(doc: dict[str, Any]) -> None:
        doc["spec"]["trust"] = {"limited": {}}

    sim = (
        Variation(tmp_path / "s")
        .edit("policies/virtual-meshes.yaml", limited, kind="VirtualMesh", name="bookinfo")
        .simulate()
    )
    v = answer(sim.fleet, q(PRODUCTPAGE, "cluster-2/bookinfo/ratings"))
    assert (v.allowed, v.code) == (False, NOT_FEDERATED)
    assert "LIMITED_TRUST" in v.reason


def test_without_dns_capture_the_global_name_does_not_resolve(tmp_path: Path) -> None:
    def no_capture(config: dict[str, Any]) -> None:
        config["defaultConfig"]["proxyMetadata"]["ISTIO_META_DNS_CAPTURE"] = "false"

    sim = (
        Variation(tmp_path / "s")
        .edit(ISTIO_SYSTEM_1, mesh_config(no_capture), kind="ConfigMap", name="istio")
        .simulate()
    )
    v = answer(sim.fleet, q(PRODUCTPAGE, "ratings.bookinfo.svc.cluster-2.global"))
    assert (v.allowed, v.code) == (False, NO_DNS)
    # Routes from cluster.local names to the federated host still work (API §4).
    routed = answer(sim.fleet, q(PRODUCTPAGE, "reviews", path="/reviews/0", end_user="jason"))
    assert routed.allowed


def test_a_gateway_without_address_is_no_gateway_address(tmp_path: Path) -> None:
    def unaddressed(doc: dict[str, Any]) -> None:
        doc["status"] = {"loadBalancer": {}}

    sim = (
        Variation(tmp_path / "s")
        .edit("clusters/cluster-2/eastwest-gateway.yaml", unaddressed, kind="Service", name="istio-eastwestgateway")
        .simulate()
    )
    for target in ("cluster-2/bookinfo/ratings", "ratings.bookinfo.svc.cluster-2.global"):
        v = answer(sim.fleet, q(PRODUCTPAGE, target))
        assert (v.allowed, v.code) == (False, NO_GATEWAY_ADDRESS), target


def test_plaintext_to_a_strict_workload_is_mtls_mismatch(tmp_path: Path) -> None:
    sim = (
        Variation(tmp_path / "s")
        .add(
            "clusters/cluster-1/user-mtls.yaml",
            [
                user_object(
                    "PeerAuthentication", "security.istio.io/v1", "bookinfo", "strict", {"mtls": {"mode": "STRICT"}}
                ),
                user_object(
                    "DestinationRule",
                    "networking.istio.io/v1",
                    "bookinfo",
                    "productpage-plaintext",
                    {"host": "productpage", "trafficPolicy": {"tls": {"mode": "DISABLE"}}},
                ),
            ],
        )
        .simulate()
    )
    v = answer(sim.fleet, q(REVIEWS_V1, "productpage"))
    assert (v.allowed, v.code) == (False, MTLS_MISMATCH)
    assert not v.mtls
    mtls = next(s for s in v.explanation if s.step == "mtls")
    assert any(
        "DestinationRule bookinfo/productpage-plaintext (clusters/cluster-1/user-mtls.yaml" in o for o in mtls.objects
    )


def test_meshes_whose_roots_share_nothing_are_mtls_mismatch(tmp_path: Path) -> None:
    sim = (
        Variation(tmp_path / "s")
        .add("clusters/cluster-1/root.yaml", [root_cert_configmap(self_signed_pem("root one"))])
        .add("clusters/cluster-2/root.yaml", [root_cert_configmap(self_signed_pem("root two"))])
        .simulate()
    )
    v = answer(sim.fleet, q(PRODUCTPAGE, "cluster-2/bookinfo/reviews"))
    assert (v.allowed, v.code) == (False, MTLS_MISMATCH)
    assert "share no certificate" in v.reason


def test_a_trust_domain_the_destination_does_not_accept_is_rejected(tmp_path: Path) -> None:
    def own_domain(config: dict[str, Any]) -> None:
        config["trustDomain"] = "cluster-2.example"

    sim = (
        Variation(tmp_path / "s")
        .edit(ISTIO_SYSTEM_2, mesh_config(own_domain), kind="ConfigMap", name="istio")
        .simulate()
    )
    v = answer(sim.fleet, q(PRODUCTPAGE, "cluster-2/bookinfo/reviews"))
    assert (v.allowed, v.code) == (False, TRUST_DOMAIN_REJECTED)
    # API §6: the other obstacles on the same backend are causes. productpage may only GET reviews.
    post = answer(sim.fleet, q(PRODUCTPAGE, "cluster-2/bookinfo/reviews", method="POST"))
    assert (post.code, post.causes) == (TRUST_DOMAIN_REJECTED, (DENIED_DEFAULT,))
    assert [b.code for b in post.backends] == [TRUST_DOMAIN_REJECTED]


def test_the_nearest_miss_of_a_rejected_trust_domain_is_the_mesh_config_change(tmp_path: Path) -> None:
    # An AccessPolicy edit cannot fix TRUST_DOMAIN_REJECTED: the miss is MR0606's mesh-config
    # change, then the policy edit for what the backend would deny next (POST), verified together.
    def own_domain(config: dict[str, Any]) -> None:
        config["trustDomain"] = "cluster-2.example"

    sim = (
        Variation(tmp_path / "s")
        .edit(ISTIO_SYSTEM_2, mesh_config(own_domain), kind="ConfigMap", name="istio")
        .simulate()
    )
    v = why(sim, q(PRODUCTPAGE, "cluster-2/bookinfo/reviews", method="POST"))
    assert (v.code, v.causes) == (TRUST_DOMAIN_REJECTED, (DENIED_DEFAULT,))
    miss = v.nearest_miss
    assert miss is not None
    assert (miss.policy, miss.field) == ("ConfigMap istio-system/istio", "data.mesh.trustDomainAliases")
    assert miss.location.startswith(f"{ISTIO_SYSTEM_2}:")
    assert "does not accept trust domain `cluster.local`" in miss.detail
    first, *then = miss.edits
    assert first == Edit(
        "cluster-2/ConfigMap istio-system/istio", "add", "data.mesh.trustDomainAliases", "cluster.local"
    )
    assert [(e.target.split(" ")[0], e.field, e.value) for e in then] == [
        ("AccessPolicy", "spec.allowedMethods", "POST")
    ]
    assert (miss.verified, miss.code_after) == (True, "ALLOWED")
    # Without the later obstacle, the mesh-config change alone is the miss.
    get = why(sim, q(PRODUCTPAGE, "cluster-2/bookinfo/reviews"))
    assert get.nearest_miss is not None and get.nearest_miss.edits == (first,)
    assert get.nearest_miss.verified is True


def test_mtls_mismatch_has_no_nearest_miss(tmp_path: Path) -> None:
    # No policy edit makes two meshes' roots overlap: no miss, rather than an unverifiable one.
    sim = (
        Variation(tmp_path / "s")
        .add("clusters/cluster-1/root.yaml", [root_cert_configmap(self_signed_pem("root one"))])
        .add("clusters/cluster-2/root.yaml", [root_cert_configmap(self_signed_pem("root two"))])
        .simulate()
    )
    v = why(sim, q(PRODUCTPAGE, "cluster-2/bookinfo/reviews", method="POST"))
    assert (v.code, v.causes) == (MTLS_MISMATCH, (DENIED_DEFAULT,))
    assert v.nearest_miss is None and v.to_json()["nearestMiss"] is None


def test_a_user_deny_policy_is_denied_explicit_and_the_fix_removes_its_rule(tmp_path: Path) -> None:
    sim = (
        Variation(tmp_path / "s")
        .add(
            "clusters/cluster-2/deny.yaml",
            [
                user_object(
                    "AuthorizationPolicy",
                    "security.istio.io/v1",
                    "bookinfo",
                    "no-rating-zero",
                    {
                        "selector": {"matchLabels": {"app": "ratings"}},
                        "action": "DENY",
                        "rules": [{"to": [{"operation": {"paths": ["/ratings/0"]}}]}],
                    },
                ),
            ],
        )
        .simulate()
    )
    v = why(sim, q(REVIEWS_V2, "ratings", path="/ratings/0"))
    assert (v.allowed, v.code) == (False, DENIED_EXPLICIT)
    assert "bookinfo/no-rating-zero" in v.reason
    miss = v.nearest_miss
    assert miss is not None and miss.policy == "AuthorizationPolicy bookinfo/no-rating-zero"
    assert [(e.op, e.field) for e in miss.edits] == [("remove", "spec.rules[0]")]
    assert miss.verified is True
    assert answer(sim.fleet, q(REVIEWS_V2, "ratings", path="/ratings/1")).allowed


def test_without_enforcement_an_access_policy_still_denies_what_it_does_not_allow(tmp_path: Path) -> None:
    def disabled(doc: dict[str, Any]) -> None:
        doc["spec"]["accessPolicyEnforcement"] = "DISABLED"

    sim = (
        Variation(tmp_path / "s")
        .edit("policies/virtual-meshes.yaml", disabled, kind="VirtualMesh", name="bookinfo")
        .simulate()
    )
    v = why(sim, q(REVIEWS_V2, "ratings", method="POST", path="/ratings/1"))
    assert (v.allowed, v.code) == (False, DENIED_DEFAULT)
    assert v.nearest_miss is not None and v.nearest_miss.verified is True
    # A destination no AccessPolicy selects is open when access is not enforced.
    assert answer(sim.fleet, q(REVIEWS_V2, "cluster-1/bookinfo/productpage")).allowed


def test_unmodelled_objects_on_the_path_are_assumptions(tmp_path: Path) -> None:
    sim = (
        Variation(tmp_path / "s")
        .add(
            "clusters/cluster-2/extras.yaml",
            [
                user_object("EnvoyFilter", "networking.istio.io/v1alpha3", "bookinfo", "lua", {"configPatches": []}),
                user_object("NetworkPolicy", "networking.k8s.io/v1", "bookinfo", "fence", {"podSelector": {}}),
            ],
        )
        .simulate()
    )
    v = answer(sim.fleet, q(REVIEWS_V2, "ratings", path="/ratings/1"))
    assert {"ENVOYFILTER_NOT_MODELLED", "NETWORKPOLICY_NOT_MODELLED"} <= set(v.assumptions)
    elsewhere = answer(sim.fleet, q("cluster-3/emojivoto/web", "emoji-svc", port=8080))
    assert "ENVOYFILTER_NOT_MODELLED" not in elsewhere.assumptions


def test_linkerd_gateway_mode_allows_by_the_gateways_identity(tmp_path: Path) -> None:
    """API §4: in gateway mode the destination sees the remote gateway, so every caller there is allowed."""
    sim = two_linkerd_clusters(tmp_path / "s").simulate()
    for caller in ("cluster-3/emojivoto/web", "cluster-3/emojivoto/vote-bot"):
        v = answer(sim.fleet, q(caller, "cluster-4/emojivoto/emoji-svc", port=8080))
        assert (v.allowed, v.code, v.causes) == (True, "ALLOWED", ("GATEWAY_IDENTITY",)), caller
        assert v.host == "emoji-svc-cluster-4.emojivoto.svc.cluster.local"
        assert [h.kind for h in v.hops] == ["linkerd-proxy", "linkerd-gateway", "destination"]
        assert (v.hops[1].address, v.hops[1].port, v.hops[1].cluster) == ("203.0.113.4", 4143, "cluster-4")
        authz = next(s for s in v.explanation if s.step == "authorization")
        assert authz.objects[0].startswith("AccessPolicy emojivoto/web-calls-emoji-and-voting")


def test_linkerd_remote_discovery_keeps_the_callers_identity(tmp_path: Path) -> None:
    sim = two_linkerd_clusters(tmp_path / "s", mode="remote-discovery").simulate()
    web = answer(sim.fleet, q("cluster-3/emojivoto/web", "cluster-4/emojivoto/emoji-svc", port=8080))
    assert (web.allowed, web.causes) == (True, ())
    assert [h.kind for h in web.hops] == ["linkerd-proxy", "destination"]
    bot = answer(sim.fleet, q("cluster-3/emojivoto/vote-bot", "cluster-4/emojivoto/emoji-svc", port=8080))
    assert (bot.allowed, bot.code) == (False, DENIED_DEFAULT)
