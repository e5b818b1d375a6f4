"""Federation rules (spec §3.1, §4) on small scenarios: one test per decision and per finding."""

from __future__ import annotations

from pathlib import Path

from meshrules.model.intent import NotFederatedReason
from tests.engine.rules_scenarios import (
    DETAILS1,
    MESH1,
    MESH2,
    MESH3,
    MESH4,
    PRODUCTPAGE1,
    RATINGS2,
    REVIEWS1,
    REVIEWS2,
    clusters,
    codes,
    decided,
    policies,
    second_linkerd_cluster,
    virtual_mesh,
)

ISTIO_DESTINATIONS = {(DETAILS1, MESH2), (PRODUCTPAGE1, MESH2), (REVIEWS1, MESH2), (RATINGS2, MESH1), (REVIEWS2, MESH1)}


def test_without_selectors_every_destination_is_federated_into_every_other_member(tmp_path: Path) -> None:
    policies(clusters(tmp_path), virtual_mesh("global", [MESH1, MESH2]))
    decision = decided(tmp_path)
    assert {(e.destination, e.mesh) for e in decision.intent.federation} == ISTIO_DESTINATIONS
    assert decision.model.rows("federated") == sorted(ISTIO_DESTINATIONS)
    assert decision.findings == ()


def test_a_selector_naming_meshes_federates_only_into_them_and_reports_the_rest_not_selected(tmp_path: Path) -> None:
    selectors = [{"destinations": [{"labels": {"app": "reviews"}}], "meshes": [{"name": MESH2}]}]
    policies(clusters(tmp_path), virtual_mesh("global", [MESH1, MESH2], federation={"selectors": selectors}))
    decision = decided(tmp_path)
    assert {(e.destination, e.mesh) for e in decision.intent.federation} == {(REVIEWS1, MESH2)}
    blocked = {(b.destination, b.mesh, b.reason) for b in decision.intent.blocked}
    assert blocked == {(d, m, NotFederatedReason.NOT_SELECTED) for d, m in ISTIO_DESTINATIONS - {(REVIEWS1, MESH2)}}


def test_hostname_suffix_names_the_istio_host(tmp_path: Path) -> None:
    policies(clusters(tmp_path), virtual_mesh("global", [MESH1, MESH2], federation={"hostnameSuffix": "mesh.example"}))
    hosts = {e.host for e in decided(tmp_path).intent.federation if e.destination == RATINGS2}
    assert hosts == {"ratings.bookinfo.svc.cluster-2.mesh.example"}


def test_limited_trust_federates_nothing_and_says_so(tmp_path: Path) -> None:
    policies(clusters(tmp_path), virtual_mesh("global", [MESH1, MESH2], trust={"limited": {}}))
    decision = decided(tmp_path)
    assert decision.intent.federation == ()
    assert {(b.destination, b.mesh, b.reason) for b in decision.intent.blocked} == {
        (d, m, NotFederatedReason.LIMITED_TRUST) for d, m in ISTIO_DESTINATIONS
    }
    assert codes(decision) == ["MR0603"]
    assert decision.findings[0].location is not None and decision.findings[0].location.file == "policies/policies.yaml"
    assert not any(m.shared_trust for m in decision.intent.memberships)


def test_mixed_mesh_types_federate_nothing(tmp_path: Path) -> None:
    policies(clusters(tmp_path), virtual_mesh("mixed", [MESH1, MESH3]))
    decision = decided(tmp_path)
    assert decision.intent.federation == ()
    reasons = {b.reason for b in decision.intent.blocked}
    assert reasons == {NotFederatedReason.MIXED_MESH_TYPES}
    assert "MR0605" in codes(decision)


def test_mixed_mesh_types_with_different_trust_domains_ask_for_no_mesh_config_change(tmp_path: Path) -> None:
    # Nothing is federated between an Istio and a Linkerd member, so neither calls the other: asking
    # to add each other's trust domain (MR0606) would send the user to edit installations for nothing.
    def own_domain(text: str) -> str:
        return text.replace("    trustDomain: cluster.local\n", "    trustDomain: cluster-1.example\n")

    root = clusters(tmp_path, edits={"cluster-1/istio-system.yaml": own_domain})
    policies(root, virtual_mesh("mixed", [MESH1, MESH3]))
    decision = decided(tmp_path)
    assert decision.intent.trust_rejections == ()
    assert "MR0605" in codes(decision) and "MR0606" not in codes(decision)


def test_a_mesh_in_two_virtual_meshes_belongs_to_the_earlier_one(tmp_path: Path) -> None:
    policies(
        clusters(tmp_path),
        virtual_mesh("first", [MESH1, MESH2], created="2026-01-01T00:00:00Z"),
        virtual_mesh("second", [MESH2], created="2026-01-02T00:00:00Z", accessPolicyEnforcement="ENFORCED"),
    )
    decision = decided(tmp_path)
    memberships = {m.mesh: (m.virtual_mesh, m.enforced) for m in decision.intent.memberships}
    assert memberships[MESH2] == ("VirtualMesh meshrules-system/first", False)
    (finding,) = decision.findings
    assert finding.code == "MR0602" and finding.object == "VirtualMesh meshrules-system/second"
    assert "already belongs to `VirtualMesh meshrules-system/first`" in finding.message


def test_a_mesh_in_no_virtual_mesh_is_ungoverned_and_not_enforced(tmp_path: Path) -> None:
    policies(clusters(tmp_path), virtual_mesh("global", [MESH1, MESH2], accessPolicyEnforcement="ENFORCED"))
    memberships = {m.mesh: m for m in decided(tmp_path).intent.memberships}
    assert memberships[MESH3].virtual_mesh is None and not memberships[MESH3].enforced
    assert memberships[MESH3].why is not None and memberships[MESH3].why.rule == "mesh-outside-virtual-meshes"
    assert memberships[MESH1].enforced


def test_a_virtual_mesh_naming_an_unknown_mesh_is_reported_at_its_line(tmp_path: Path) -> None:
    policies(clusters(tmp_path), virtual_mesh("global", [MESH1, "istiod-istio-system-cluster-9"]))
    decision = decided(tmp_path)
    (finding,) = decision.findings
    assert finding.code == "MR0601" and finding.field == "spec.meshes[1]"
    assert str(finding.location) == "policies/policies.yaml:11"
    assert "`istiod-istio-system-cluster-9`" in finding.message


def _trust_domain_c2(text: str) -> str:
    return text.replace("trustDomain: cluster.local", "trustDomain: c2.example")


def test_unaccepted_trust_domain_rejects_callers_and_names_the_mesh_config_change(tmp_path: Path) -> None:
    root = clusters(tmp_path, edits={"cluster-2/istio-system.yaml": _trust_domain_c2})
    policies(root, virtual_mesh("global", [MESH1, MESH2]))
    decision = decided(tmp_path)
    rejected = {(r.mesh, r.caller, r.trust_domain) for r in decision.intent.trust_rejections}
    assert rejected == {(MESH1, MESH2, "c2.example"), (MESH2, MESH1, "cluster.local")}
    assert codes(decision) == ["MR0606", "MR0606"]
    hint = next(d.hint for d in decision.findings if d.object == f"Mesh {MESH1}")
    assert "add `c2.example` to `trustDomainAliases`" in hint
    assert "ConfigMap `istio` in namespace `istio-system` of cluster `cluster-1`" in hint


def test_trust_domain_aliases_accept_the_peer(tmp_path: Path) -> None:
    def alias(text: str) -> str:
        aliased = "trustDomain: cluster.local\n    trustDomainAliases: [c2.example]"
        return text.replace("trustDomain: cluster.local", aliased)

    root = clusters(
        tmp_path,
        edits={
            "cluster-1/istio-system.yaml": alias,
            "cluster-2/istio-system.yaml": _trust_domain_c2,
        },
    )
    policies(root, virtual_mesh("global", [MESH1, MESH2]))
    rejected = {(r.mesh, r.caller) for r in decided(tmp_path).intent.trust_rejections}
    assert rejected == {(MESH2, MESH1)}  # cluster-1 accepts c2.example now; cluster-2 still rejects cluster.local


def test_a_member_without_dns_capture_cannot_resolve_federated_names(tmp_path: Path) -> None:
    root = clusters(
        tmp_path,
        edits={"cluster-1/istio-system.yaml": lambda t: t.replace("DNS_CAPTURE: 'true'", "DNS_CAPTURE: 'false'")},
    )
    policies(root, virtual_mesh("global", [MESH1, MESH2]))
    decision = decided(tmp_path)
    assert {(g.destination, g.mesh, g.code) for g in decision.intent.gaps} == {
        (RATINGS2, MESH1, "NO_DNS"),
        (REVIEWS2, MESH1, "NO_DNS"),
    }
    assert codes(decision) == ["MR0608"]
    assert "ISTIO_META_DNS_CAPTURE" in decision.findings[0].hint


def test_a_gateway_without_address_leaves_federated_destinations_unreachable(tmp_path: Path) -> None:
    def no_address(text: str) -> str:
        return text.replace("- ip: 203.0.113.2", "[]").replace("ingress:\n    []", "ingress: []")

    root = clusters(tmp_path, edits={"cluster-2/eastwest-gateway.yaml": no_address})
    policies(root, virtual_mesh("global", [MESH1, MESH2]))
    decision = decided(tmp_path)
    assert {(e.destination, e.mesh) for e in decision.intent.federation} == ISTIO_DESTINATIONS
    assert {(g.destination, g.mesh, g.code) for g in decision.intent.gaps} == {
        (RATINGS2, MESH1, "NO_GATEWAY_ADDRESS"),
        (REVIEWS2, MESH1, "NO_GATEWAY_ADDRESS"),
    }
    assert codes(decision) == ["MR0609"]
    assert decision.findings[0].object == f"Mesh {MESH2}"


def test_linkerd_mirror_needs_the_namespace_in_the_target_cluster(tmp_path: Path) -> None:
    root = clusters(tmp_path, names=["cluster-3"])
    second_linkerd_cluster(root, with_emojivoto=False)
    policies(root, virtual_mesh("linkerd", [MESH3, MESH4]))
    decision = decided(tmp_path)
    assert decision.intent.federation == ()
    assert {b.reason for b in decision.intent.blocked} == {NotFederatedReason.NAMESPACE_MISSING}
    assert {b.destination for b in decision.intent.blocked} == {
        "emoji-svc-emojivoto-cluster-3",
        "voting-svc-emojivoto-cluster-3",
        "web-svc-emojivoto-cluster-3",
    }
    assert set(codes(decision)) == {"MR0607"}


def test_linkerd_federated_host_is_the_mirror_in_the_callers_cluster(tmp_path: Path) -> None:
    root = clusters(tmp_path, names=["cluster-3"])
    second_linkerd_cluster(root, with_emojivoto=False, namespace_only=True)
    policies(root, virtual_mesh("linkerd", [MESH3, MESH4]))
    decision = decided(tmp_path)
    assert {(e.destination, e.mesh, e.host) for e in decision.intent.federation} == {
        ("emoji-svc-emojivoto-cluster-3", MESH4, "emoji-svc-cluster-3.emojivoto.svc.cluster.local"),
        ("voting-svc-emojivoto-cluster-3", MESH4, "voting-svc-cluster-3.emojivoto.svc.cluster.local"),
        ("web-svc-emojivoto-cluster-3", MESH4, "web-svc-cluster-3.emojivoto.svc.cluster.local"),
    }


def test_without_managed_trust_members_without_a_common_root_are_not_federated(tmp_path: Path) -> None:
    # The bundled Istio clusters publish no root ConfigMap: nothing shows they share a root.
    policies(clusters(tmp_path), virtual_mesh("unmanaged", [MESH1, MESH2], trust=None))
    decision = decided(tmp_path)
    assert decision.intent.federation == ()
    assert {b.reason for b in decision.intent.blocked} == {NotFederatedReason.LIMITED_TRUST}
    assert codes(decision) == ["MR0604"]


def test_without_managed_trust_members_publishing_a_common_root_are_federated(tmp_path: Path) -> None:
    # cluster-4 is a copy of cluster-3: the same `linkerd-identity-trust-roots`.
    root = clusters(tmp_path, names=["cluster-3"])
    second_linkerd_cluster(root, with_emojivoto=False, namespace_only=True)
    policies(root, virtual_mesh("unmanaged", [MESH3, MESH4], trust=None))
    decision = decided(tmp_path)
    assert len(decision.intent.federation) == 3
    assert not any(m.shared_trust for m in decision.intent.memberships)
