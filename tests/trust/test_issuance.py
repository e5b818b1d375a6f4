"""Issued intermediates verify with `cryptography` and with `openssl verify`, and shared trust is real.

Each chain is checked for its SANs, key usages, basic constraints and validity, and a workload
certificate under it verifies up to the root; a leaf under mesh A's intermediate verifies under
mesh B's bundle (same root) and not under an unrelated root.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import verification
from cryptography.x509.oid import NameOID

from meshrules.trust import (
    CertificateAuthority,
    MeshIdentity,
    RootSettings,
    SigningPolicy,
    create_intermediate_request,
    sign_intermediate,
)
from meshrules.trust.ca import CA_CRT, TLS_CRT, TLS_KEY
from meshrules.trust.keys import KeyType, key_to_pem

from .conftest import ISTIO_1, ISTIO_2, LINKERD_3, LINKERD_4_K8S
from .pki import cert, certs, crypto_verify, issue_leaf, openssl_verify, pem


def _leaf_san(mesh: MeshIdentity, sa: str = "reviews", ns: str = "bookinfo") -> x509.GeneralName:
    if mesh.mesh_type.value == "istio":
        return x509.UniformResourceIdentifier(f"spiffe://{mesh.trust_domain}/ns/{ns}/sa/{sa}")
    return x509.DNSName(f"{sa}.{ns}.serviceaccount.identity.{mesh.namespace}.{mesh.trust_domain}")


@pytest.mark.parametrize("mesh", [ISTIO_1, LINKERD_3, LINKERD_4_K8S], ids=lambda m: m.name)
def test_issued_intermediate_has_the_mesh_profile_and_verifies_with_both_verifiers(
    mesh: MeshIdentity, root_ca: CertificateAuthority, tmp_path: Path
) -> None:
    request = create_intermediate_request(mesh)
    chain = sign_intermediate(root_ca, request.csr_pem, mesh, policy=SigningPolicy.from_days(30))
    inter, root = cert(chain.certificate), cert(chain.root)

    san = inter.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert [n.value for n in san.value] == [mesh.identity]
    bc = inter.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 0
    ku = inter.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign and not ku.value.digital_signature
    now = datetime.now(UTC)
    assert inter.not_valid_before_utc <= now <= inter.not_valid_after_utc
    assert inter.not_valid_after_utc - now <= timedelta(days=30)
    assert chain.not_after == inter.not_valid_after_utc

    # the intermediate itself, under the root
    inter.verify_directly_issued_by(root)
    assert openssl_verify(tmp_path / "inter", chain.certificate, chain.root).returncode == 0
    # a workload certificate under it, through the chain, by both verifiers
    leaf = issue_leaf(chain.certificate, request.key_pem, _leaf_san(mesh))
    assert crypto_verify(leaf, [root], [inter]) == [_leaf_san(mesh)]
    done = openssl_verify(tmp_path / "leaf", pem(leaf), chain.root, chain.issuer_pem)
    assert done.returncode == 0, done.stderr


def test_linkerd_issuer_is_name_constrained_to_its_identity_zone(root_ca: CertificateAuthority, tmp_path: Path) -> None:
    request = create_intermediate_request(LINKERD_3)
    chain = sign_intermediate(root_ca, request.csr_pem, LINKERD_3)
    nc = cert(chain.certificate).extensions.get_extension_for_class(x509.NameConstraints)
    assert nc.critical
    assert nc.value.permitted_subtrees == [x509.DNSName("identity.linkerd.cluster.local")]
    # a name outside the zone (another control plane's) is refused by both verifiers
    outside = x509.DNSName("web.default.serviceaccount.identity.other.cluster.local")
    leaf = issue_leaf(chain.certificate, request.key_pem, outside)
    with pytest.raises(verification.VerificationError):
        crypto_verify(leaf, [cert(chain.root)], [cert(chain.certificate)])
    assert openssl_verify(tmp_path, pem(leaf), chain.root, chain.issuer_pem).returncode != 0


def test_leaf_of_mesh_a_verifies_under_mesh_b_bundle_and_not_under_an_unrelated_root(
    root_ca: CertificateAuthority, other_ca: CertificateAuthority, tmp_path: Path
) -> None:
    req_a = create_intermediate_request(ISTIO_1)
    chain_a = sign_intermediate(root_ca, req_a.csr_pem, ISTIO_1)
    chain_b = sign_intermediate(root_ca, create_intermediate_request(ISTIO_2).csr_pem, ISTIO_2)
    leaf = issue_leaf(chain_a.certificate, req_a.key_pem, _leaf_san(ISTIO_1, "productpage"))
    # mesh B trusts the root in its `root-cert.pem`; mesh A's leaf arrives with A's chain
    b_bundle = chain_b.root
    assert crypto_verify(leaf, certs(b_bundle), [cert(chain_a.certificate)])
    assert openssl_verify(tmp_path / "b", pem(leaf), b_bundle, chain_a.issuer_pem).returncode == 0
    # an unrelated mesh's bundle does not accept it
    with pytest.raises(verification.VerificationError):
        crypto_verify(leaf, [other_ca.root], [cert(chain_a.certificate)])
    assert openssl_verify(tmp_path / "other", pem(leaf), other_ca.root_pem, chain_a.issuer_pem).returncode != 0


def test_ttl_is_capped_at_the_ca_expiry() -> None:
    short = CertificateAuthority.generate(RootSettings(ttl_days=10))
    chain = sign_intermediate(short, create_intermediate_request(ISTIO_1).csr_pem, ISTIO_1)
    assert chain.not_after == short.root.not_valid_after_utc


def _corporate_pki() -> tuple[x509.Certificate, x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A corporate root (no path limit) and its intermediate (path length 1) that meshrules imports."""
    now = datetime.now(UTC)
    root_key = ec.generate_private_key(ec.SECP256R1())
    int_key = ec.generate_private_key(ec.SECP256R1())
    root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "corp root")])
    int_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "corp mesh CA")])

    def build(
        subject: x509.Name,
        issuer: x509.Name,
        key: ec.EllipticCurvePrivateKey,
        path: int | None,
        signer: ec.EllipticCurvePrivateKey,
    ) -> x509.Certificate:
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=900))
            .add_extension(x509.BasicConstraints(ca=True, path_length=path), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False)
            .sign(signer, hashes.SHA256())
        )

    root = build(root_name, root_name, root_key, None, root_key)
    return root, build(int_name, root_name, int_key, 1, root_key), int_key


@pytest.mark.parametrize("root_in", ["tls.crt", "ca.crt"])
def test_imported_intermediate_ca_issues_chains_that_verify_to_the_corporate_root(root_in: str, tmp_path: Path) -> None:
    corp_root, corp_int, corp_key = _corporate_pki()
    data: dict[str, bytes | str] = {TLS_KEY: key_to_pem(corp_key)}
    if root_in == "tls.crt":
        data[TLS_CRT] = pem(corp_int) + pem(corp_root)
    else:
        data[TLS_CRT], data[CA_CRT] = pem(corp_int), pem(corp_root)
    ca = CertificateAuthority.from_secret(data)
    assert not ca.is_root and ca.root_pem == pem(corp_root)

    request = create_intermediate_request(LINKERD_3)
    chain = sign_intermediate(ca, request.csr_pem, LINKERD_3)
    assert chain.chain == (pem(corp_int),)
    assert chain.full_chain_pem == chain.certificate + pem(corp_int) + pem(corp_root)
    leaf = issue_leaf(chain.certificate, request.key_pem, _leaf_san(LINKERD_3))
    assert crypto_verify(leaf, [corp_root], [cert(chain.certificate), corp_int])
    done = openssl_verify(tmp_path, pem(leaf), chain.root, chain.issuer_pem)
    assert done.returncode == 0, done.stderr


def test_rsa_4096_root_issues_chains_that_verify(tmp_path: Path) -> None:
    # The one RSA-4096 test (key generation takes about a second).
    ca = CertificateAuthority.generate(RootSettings(key_type=KeyType.RSA_4096, ttl_days=30))
    assert ca.key_type is KeyType.RSA_4096
    request = create_intermediate_request(ISTIO_1)
    chain = sign_intermediate(ca, request.csr_pem, ISTIO_1)
    leaf = issue_leaf(chain.certificate, request.key_pem, _leaf_san(ISTIO_1))
    assert crypto_verify(leaf, [ca.root], [cert(chain.certificate)])
    assert openssl_verify(tmp_path, pem(leaf), chain.root, chain.issuer_pem).returncode == 0
