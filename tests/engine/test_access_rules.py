"""AccessPolicy authorization (spec §3.3, §4): identity patterns, enforcement, and what `check` warns about."""

from __future__ import annotations

from pathlib import Path

import yaml

from meshrules.model.intent import IdentityPattern
from tests.engine.rules_scenarios import (
    MESH1,
    MESH2,
    MESH3,
    MESH4,
    REVIEWS1,
    REVIEWS2,
    access_policy,
    clusters,
    codes,
    decided,
    policies,
    second_linkerd_cluster,
    service,
    virtual_mesh,
)

T1 = "2026-01-01T00:00:00Z"
GATEWAY_IDENTITY = "linkerd-gateway.linkerd-multicluster.serviceaccount.identity.linkerd.cluster.local"


def test_an_empty_source_selector_allows_any_authenticated_identity(tmp_path: Path) -> None:
    policies(clusters(tmp_path), access_policy("anyone", T1, destinationSelector=[service("reviews", "cluster-1")]))
    (rule,) = decided(tmp_path).intent.access
    assert (rule.destination, rule.sources) == (REVIEWS1, ())


def test_namespace_cluster_and_account_sources_become_identity_patterns(tmp_path: Path) -> None:
    sources = [
        {"namespaces": ["bookinfo"]},
        {"clusters": ["cluster-2"], "namespaces": ["bookinfo"]},
        {"serviceAccounts": [{"name": "bookinfo-reviews", "namespace": "bookinfo", "cluster": "cluster-2"}]},
    ]
    policy = access_policy("mixed", T1, sourceSelector=sources, destinationSelector=[service("ratings")])
    policies(clusters(tmp_path, names=["cluster-1", "cluster-2"]), policy)
    (rule,) = decided(tmp_path).intent.access
    assert rule.sources == (
        IdentityPattern(namespace="bookinfo"),
        IdentityPattern("cluster.local", "bookinfo", None, "cluster-2"),
        IdentityPattern("cluster.local", "bookinfo", "bookinfo-reviews", "cluster-2"),
    )


def test_enforcement_follows_the_virtual_mesh(tmp_path: Path) -> None:
    policies(
        clusters(tmp_path),
        virtual_mesh("strict", [MESH1], accessPolicyEnforcement="ENFORCED"),
        virtual_mesh("lax", [MESH2], created="2026-01-11T00:00:00Z"),
    )
    enforced = {m.mesh: m.enforced for m in decided(tmp_path).intent.memberships}
    assert enforced == {MESH1: True, MESH2: False, MESH3: False}


def test_a_cluster_scoped_source_sharing_a_trust_domain_is_ambiguous(tmp_path: Path) -> None:
    policy = access_policy(
        "from-cluster-1",
        T1,
        sourceSelector=[{"clusters": ["cluster-1"]}],
        destinationSelector=[service("reviews", "cluster-2")],
    )
    policies(clusters(tmp_path), virtual_mesh("global", [MESH1, MESH2]), policy)
    decision = decided(tmp_path)
    (finding,) = decision.findings
    assert finding.code == "MR0622" and finding.object == "AccessPolicy bookinfo/from-cluster-1"
    assert "cluster `cluster-1` shares trust domain `cluster.local` with 1 mesh(es)" in finding.message
    assert f"`{MESH2}`" in finding.message


def test_a_cluster_scoped_source_whose_trust_domain_the_destination_aliases_is_ambiguous(tmp_path: Path) -> None:
    # cluster-2 runs its own trust domain but aliases cluster-1's: Istio rewrites the principal
    # `cluster.local/ns/...` at cluster-2 to cover `cluster-2.example/ns/...` too, so callers in
    # cluster-2 match a source limited to cluster-1 (the simulator says so; `check` must warn).
    def own_domain_with_alias(text: str) -> str:
        return text.replace(
            "    trustDomain: cluster.local\n",
            "    trustDomain: cluster-2.example\n    trustDomainAliases: [cluster.local]\n",
        )

    root = clusters(
        tmp_path, names=["cluster-1", "cluster-2"], edits={"cluster-2/istio-system.yaml": own_domain_with_alias}
    )
    policy = access_policy(
        "from-cluster-1",
        T1,
        sourceSelector=[{"clusters": ["cluster-1"]}],
        destinationSelector=[service("reviews", "cluster-2")],
    )
    policies(root, virtual_mesh("global", [MESH1, MESH2]), policy)
    (finding,) = [f for f in decided(tmp_path).findings if f.code == "MR0622"]
    assert finding.object == "AccessPolicy bookinfo/from-cluster-1"
    assert f"allowed at `{MESH2}`, whose `trustDomainAliases` make trust domain `cluster-2.example` of cluster" in (
        finding.message
    )


def test_a_trust_domain_accepted_by_ca_certificates_is_no_alias(tmp_path: Path) -> None:
    # `caCertificates[].trustDomains` make cluster-2 accept cluster-1's certificates (mTLS) but
    # rewrite no principal: a source limited to cluster-1 stays apart, no MR0622.
    def own_domain_with_ca(text: str) -> str:
        return text.replace(
            "    trustDomain: cluster.local\n",
            "    trustDomain: cluster-2.example\n    caCertificates: [{pem: x, trustDomains: [cluster.local]}]\n",
        )

    root = clusters(
        tmp_path, names=["cluster-1", "cluster-2"], edits={"cluster-2/istio-system.yaml": own_domain_with_ca}
    )
    policy = access_policy(
        "from-cluster-1",
        T1,
        sourceSelector=[{"clusters": ["cluster-1"]}],
        destinationSelector=[service("reviews", "cluster-2")],
    )
    policies(root, virtual_mesh("global", [MESH1, MESH2]), policy)
    findings = decided(tmp_path).findings
    assert "MR0622" not in [f.code for f in findings]
    # cluster-2 accepts cluster-1's trust domain for mTLS; only cluster-1 rejects cluster-2's
    assert [f.object for f in findings if f.code == "MR0606"] == [f"Mesh {MESH1}"]


def test_distinct_trust_domains_without_aliases_tell_clusters_apart(tmp_path: Path) -> None:
    def own_domain(text: str) -> str:
        return text.replace("    trustDomain: cluster.local\n", "    trustDomain: cluster-2.example\n")

    root = clusters(tmp_path, names=["cluster-1", "cluster-2"], edits={"cluster-2/istio-system.yaml": own_domain})
    policy = access_policy(
        "from-cluster-1",
        T1,
        sourceSelector=[{"clusters": ["cluster-1"]}],
        destinationSelector=[service("reviews", "cluster-2")],
    )
    policies(root, virtual_mesh("global", [MESH1, MESH2]), policy)
    assert [f for f in decided(tmp_path).findings if f.code == "MR0622"] == []


def test_two_istio_services_over_the_same_workloads_get_the_union_of_their_access(tmp_path: Path) -> None:
    root = clusters(tmp_path, names=["cluster-1"])
    alias = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "reviews-alias", "namespace": "bookinfo"},
        "spec": {"selector": {"app": "reviews"}, "ports": [{"name": "http", "port": 9080}]},
    }
    (root / "clusters" / "cluster-1" / "alias.yaml").write_text(yaml.safe_dump(alias))
    policies(root, access_policy("reviews-only", T1, destinationSelector=[service("reviews", "cluster-1")]))
    decision = decided(tmp_path)
    (finding,) = decision.findings
    assert finding.code == "MR0621"
    assert (
        "`reviews-bookinfo-cluster-1`, whose workloads also back `reviews-alias-bookinfo-cluster-1`" in finding.message
    )


def test_linkerd_gateway_mode_authorizes_the_gateway_for_remote_callers_and_warns(tmp_path: Path) -> None:
    root = clusters(tmp_path, names=["cluster-3"])
    second_linkerd_cluster(root)
    policy = access_policy(
        "web-calls-emoji",
        T1,
        sourceSelector=[{"serviceAccounts": [{"name": "web", "namespace": "emojivoto"}]}],
        destinationSelector=[service("emoji-svc", "cluster-3", namespace="emojivoto")],
    )
    policies(root, virtual_mesh("linkerd", [MESH3, MESH4]), policy)
    decision = decided(tmp_path)
    (rule,) = decision.intent.access
    assert rule.gateway_identities == (GATEWAY_IDENTITY,)
    assert rule.sources == (IdentityPattern("cluster.local", "emojivoto", "web"),)
    (finding,) = decision.findings
    assert finding.code == "MR0623"
    assert "callers in `cluster-4` reach `emoji-svc-emojivoto-cluster-3` through its linkerd-gateway" in finding.message


def test_a_source_limited_to_the_destinations_own_linkerd_cluster_authorizes_no_gateway(tmp_path: Path) -> None:
    # `web` runs in both Linkerd clusters under one identity string (one trust domain). A source
    # limited to cluster-3 must not count cluster-4 as a source cluster: the cluster-3 gateway,
    # which speaks for every cluster-4 caller, is not authorized at cluster-3's emoji-svc.
    root = clusters(tmp_path, names=["cluster-3"])
    second_linkerd_cluster(root)
    policy = access_policy(
        "web-calls-emoji",
        T1,
        sourceSelector=[{"serviceAccounts": [{"name": "web", "namespace": "emojivoto", "cluster": "cluster-3"}]}],
        destinationSelector=[service("emoji-svc", namespace="emojivoto")],
    )
    policies(root, virtual_mesh("linkerd", [MESH3, MESH4]), policy)
    decision = decided(tmp_path)
    gateways = {r.destination: r.gateway_identities for r in decision.intent.access}
    assert gateways == {"emoji-svc-emojivoto-cluster-3": (), "emoji-svc-emojivoto-cluster-4": (GATEWAY_IDENTITY,)}
    # Gateway mode: cluster-4's `web` reaches cluster-3 only as the gateway, so the shared trust
    # domain makes nothing ambiguous (no MR0622); the remote callers of cluster-4's emoji-svc warn.
    assert [(f.code, "`cluster-3` reach `emoji-svc-emojivoto-cluster-4`" in f.message) for f in decision.findings] == [
        ("MR0623", True)
    ]


def test_linkerd_remote_discovery_makes_a_cluster_scoped_source_ambiguous(tmp_path: Path) -> None:
    root = clusters(tmp_path, names=["cluster-3"])
    second_linkerd_cluster(root)
    policy = access_policy(
        "web-calls-emoji",
        T1,
        sourceSelector=[{"serviceAccounts": [{"name": "web", "namespace": "emojivoto", "cluster": "cluster-3"}]}],
        destinationSelector=[service("emoji-svc", namespace="emojivoto")],
    )
    vm = virtual_mesh("linkerd", [MESH3, MESH4], federation={"linkerd": {"mode": "remote-discovery"}})
    policies(root, vm, policy)
    assert codes(decided(tmp_path)) == ["MR0622"]


def test_linkerd_remote_discovery_keeps_caller_identities(tmp_path: Path) -> None:
    root = clusters(tmp_path, names=["cluster-3"])
    second_linkerd_cluster(root)
    policy = access_policy(
        "web-calls-emoji",
        T1,
        sourceSelector=[{"serviceAccounts": [{"name": "web", "namespace": "emojivoto"}]}],
        destinationSelector=[service("emoji-svc", "cluster-3", namespace="emojivoto")],
    )
    vm = virtual_mesh("linkerd", [MESH3, MESH4], federation={"linkerd": {"mode": "remote-discovery"}})
    policies(root, vm, policy)
    decision = decided(tmp_path)
    (rule,) = decision.intent.access
    assert rule.gateway_identities == ()
    assert decision.findings == ()


def test_sources_naming_only_meshless_clusters_allow_nobody(tmp_path: Path) -> None:
    policy = access_policy(
        "from-nowhere",
        T1,
        sourceSelector=[{"clusters": ["cluster-9"]}],
        destinationSelector=[service("reviews", "cluster-1")],
    )
    policies(clusters(tmp_path), policy)
    decision = decided(tmp_path)
    assert decision.intent.access == ()
    assert codes(decision) == ["MR0624"]


def test_sources_matching_no_running_identity_warn(tmp_path: Path) -> None:
    policy = access_policy(
        "from-ghost",
        T1,
        sourceSelector=[{"serviceAccounts": [{"name": "ghost", "namespace": "bookinfo"}]}],
        destinationSelector=[service("reviews", "cluster-2")],
    )
    policies(clusters(tmp_path), policy)
    decision = decided(tmp_path)
    (rule,) = decision.intent.access
    assert rule.destination == REVIEWS2
    assert codes(decision) == ["MR0625"]


def test_an_invalid_access_policy_allows_nothing(tmp_path: Path) -> None:
    policy = access_policy("bad-port", T1, destinationSelector=[service("reviews", "cluster-1")], allowedPorts=[70000])
    policies(clusters(tmp_path), policy)
    decision = decided(tmp_path)
    assert decision.intent.access == ()
    (status,) = decision.intent.statuses
    assert (status.destination, status.code, status.field) == (None, "MR0206", "spec.allowedPorts[0]")
