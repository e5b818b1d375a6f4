"""Trust status: planned and present chains, expiry warnings, shared roots, and no secret in sight."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from meshrules.errors import Severity
from meshrules.model.policy import VirtualMesh
from meshrules.trust import (
    CertificateAuthority,
    MeshIdentity,
    MeshTrustInput,
    RootSettings,
    TrustMode,
    TrustReport,
    VirtualMeshTrustInput,
    ca_objects,
    create_intermediate_request,
    sign_intermediate,
    trust_status,
)
from meshrules.trust.keys import KeyType
from meshrules.trust.objects import SecretObject
from meshrules.trust.status import (
    EXPIRED,
    EXPIRES_SOON,
    ISSUER_NOT_TRUSTED,
    KEY_MISMATCH,
    NO_SHARED_ROOT,
    PEER_NOT_TRUSTED,
    UNKNOWN_MEMBER,
    ChainSource,
)

from .conftest import ISTIO_1, ISTIO_2, LINKERD_3

SHARED = VirtualMeshTrustInput(
    "bookinfo", "meshrules-system", (ISTIO_1.name, ISTIO_2.name), TrustMode.SHARED, RootSettings(org_name="bookinfo")
)


def enrolled(
    mesh: MeshIdentity, ca: CertificateAuthority, *, roots: list[str] | None = None
) -> tuple[MeshTrustInput, bytes]:
    """A mesh with a CA Secret as a scenario holds it (base64 `data`) and its published roots."""
    request = create_intermediate_request(mesh)
    chain = sign_intermediate(ca, request.csr_pem, mesh)
    bundle = roots if roots is not None else [ca.root_pem]
    secret = next(o for o in ca_objects(mesh, chain, request.key_pem, bundle) if isinstance(o, SecretObject))
    return MeshTrustInput(mesh, ("".join(bundle),), secret.manifest()["data"]), request.key_pem


def codes(report: TrustReport) -> set[str]:
    return {f.code for f in report.all_findings()}


def test_shared_trust_without_secrets_shows_the_planned_chain() -> None:
    report = trust_status([SHARED], [MeshTrustInput(ISTIO_1), MeshTrustInput(ISTIO_2)])
    (vm,) = report.virtual_meshes
    assert vm.mode is TrustMode.SHARED and vm.shared_root is None
    for member in vm.members:
        assert member.source is ChainSource.PLANNED
        issuer, root = member.chain
        assert issuer.planned and issuer.sans == ("URI:spiffe://cluster.local/ns/istio-system/sa/istiod",)
        assert issuer.days_left == 365 and root.days_left == 3650 and root.key_algorithm == "ECDSA P-256"
        assert "O=bookinfo" in root.subject


def test_present_chain_from_the_ca_secret(root_ca: CertificateAuthority) -> None:
    m1, _ = enrolled(ISTIO_1, root_ca)
    m2, _ = enrolled(ISTIO_2, root_ca)
    report = trust_status([SHARED], [m1, m2])
    (vm,) = report.virtual_meshes
    assert vm.shared_root is True and vm.common_roots == (root_ca.root_fingerprint,)
    for member in vm.members:
        assert member.source is ChainSource.SECRET
        assert member.root_fingerprint == root_ca.root_fingerprint
        assert [c.role for c in member.chain] == ["issuer", "root"]
        assert member.expires == min(c.not_after for c in member.chain)
    assert not [f for f in report.all_findings() if f.severity is not Severity.INFO]


def test_certificates_are_flagged_thirty_days_before_expiry_and_when_expired() -> None:
    short = CertificateAuthority.generate(RootSettings(ttl_days=20))
    m1, _ = enrolled(ISTIO_1, short)
    soon = trust_status([], [m1])
    assert {f.code for f in soon.all_findings()} == {EXPIRES_SOON}
    assert all(f.severity is Severity.WARNING for f in soon.all_findings())
    later = trust_status([], [m1], now=datetime.now(UTC) + timedelta(days=40))
    assert EXPIRED in codes(later)
    far = CertificateAuthority.generate(RootSettings(ttl_days=400))
    m2, _ = enrolled(ISTIO_2, far)
    assert EXPIRES_SOON not in codes(trust_status([], [m2]))


def test_members_on_different_roots_do_not_share_one(
    root_ca: CertificateAuthority, other_ca: CertificateAuthority
) -> None:
    m1, _ = enrolled(ISTIO_1, root_ca)
    m2, _ = enrolled(ISTIO_2, other_ca)
    report = trust_status([SHARED], [m1, m2])
    (vm,) = report.virtual_meshes
    assert vm.shared_root is False and vm.common_roots == ()
    assert {NO_SHARED_ROOT, PEER_NOT_TRUSTED} <= codes(report)


def test_a_rotation_halfway_still_shares_a_root(root_ca: CertificateAuthority, other_ca: CertificateAuthority) -> None:
    both = [root_ca.root_pem, other_ca.root_pem]
    m1, _ = enrolled(ISTIO_1, other_ca, roots=both)  # already on the new root
    m2, _ = enrolled(ISTIO_2, root_ca, roots=both)  # not yet
    (vm,) = trust_status([SHARED], [m1, m2]).virtual_meshes
    assert vm.shared_root is True and set(vm.common_roots) == {root_ca.root_fingerprint, other_ca.root_fingerprint}
    assert not vm.findings


def test_issuer_outside_its_own_bundle_and_a_foreign_key_are_errors(
    root_ca: CertificateAuthority, other_ca: CertificateAuthority
) -> None:
    m1, _ = enrolled(ISTIO_1, root_ca, roots=[other_ca.root_pem])
    assert ISSUER_NOT_TRUSTED in codes(trust_status([], [m1]))
    m2, _ = enrolled(LINKERD_3, root_ca)
    _, foreign_key = enrolled(LINKERD_3, root_ca)
    assert m2.ca_secret is not None
    tampered = MeshTrustInput(LINKERD_3, m2.published_roots, {**m2.ca_secret, "key.pem": foreign_key})
    report = trust_status([], [tampered])
    (finding,) = [f for f in report.all_findings() if f.code == KEY_MISMATCH]
    assert finding.severity is Severity.ERROR


def test_unknown_members_are_reported() -> None:
    report = trust_status([SHARED], [MeshTrustInput(ISTIO_1)])
    assert UNKNOWN_MEMBER in codes(report)
    assert [m.name for m in report.virtual_meshes[0].members] == [ISTIO_1.name]


def test_meshes_in_no_virtual_mesh_are_listed_apart(root_ca: CertificateAuthority) -> None:
    m3, _ = enrolled(LINKERD_3, root_ca)
    report = trust_status([SHARED], [MeshTrustInput(ISTIO_1), MeshTrustInput(ISTIO_2), m3])
    assert [m.name for m in report.other_meshes] == [LINKERD_3.name]


def test_the_report_never_holds_secret_data(root_ca: CertificateAuthority) -> None:
    m1, key = enrolled(ISTIO_1, root_ca)
    text = json.dumps(trust_status([SHARED], [m1]).to_wire()) + repr(m1)
    assert "PRIVATE KEY" not in text
    for line in key.decode().splitlines()[1:-1]:
        assert line not in text
    assert m1.ca_secret is not None
    assert str(m1.ca_secret["ca-key.pem"]) not in text


def test_virtual_mesh_trust_input_reads_the_policy() -> None:
    vm = VirtualMesh.model_validate(
        {
            "metadata": {"name": "global", "namespace": "meshrules-system"},
            "spec": {
                "meshes": [{"name": ISTIO_1.name}],
                "trust": {
                    "shared": {
                        "rootCertificateAuthority": {"generated": {"ttlDays": 100, "keyAlgorithm": "RSA_4096"}},
                        "intermediateTtlDays": 30,
                    }
                },
            },
        }
    )
    got = VirtualMeshTrustInput.of(vm)
    assert got.mode is TrustMode.SHARED and got.intermediate_ttl_days == 30
    assert got.root == RootSettings(KeyType.RSA_4096, 100, "meshrules")
    unmanaged = VirtualMesh.model_validate({"metadata": {"name": "x"}, "spec": {"meshes": [{"name": "m"}]}})
    assert VirtualMeshTrustInput.of(unmanaged).mode is TrustMode.UNMANAGED
