"""The management side signs only CSRs that ask for exactly what their mesh may have.

Each tampered request is refused with `CsrRefused`, its own code and a reason a person can act on.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from meshrules.errors import CsrRefused
from meshrules.trust import (
    CertificateAuthority,
    MeshIdentity,
    SigningPolicy,
    create_intermediate_request,
    expected_name_constraints,
    sign_intermediate,
)
from meshrules.trust.csr import (
    CSR_BAD_SIGNATURE,
    CSR_BASIC_CONSTRAINTS,
    CSR_EXTENSION,
    CSR_IDENTITY,
    CSR_KEY_TYPE,
    CSR_KEY_USAGE,
    CSR_NAME_CONSTRAINTS,
    CSR_TTL,
    CSR_UNREADABLE,
)

from .conftest import ISTIO_1, ISTIO_2, LINKERD_3
from .pki import OPENSSL, cert

Key = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


def _usage(cert_sign: bool = True, digital_signature: bool = False, key_encipherment: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature, False, key_encipherment, False, False, cert_sign, cert_sign, False, False)


def make_csr(
    mesh: MeshIdentity,
    *,
    key: Key | None = None,
    sans: Sequence[x509.GeneralName] | None = None,
    ca: bool = True,
    path_length: int | None = 0,
    usage: x509.KeyUsage | None = None,
    extra: Sequence[x509.ExtensionType] = (),
    basic_constraints: bool = True,
) -> str:
    """A CSR like the agent's, with one thing changed."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    default_san: x509.GeneralName = (
        x509.UniformResourceIdentifier(mesh.identity)
        if mesh.mesh_type.value == "istio"
        else x509.DNSName(mesh.identity)
    )
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tampered")])
    )
    if sans != []:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans or [default_san]), critical=False)
    if basic_constraints:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), critical=True
        )
    builder = builder.add_extension(usage or _usage(), critical=True)
    for ext in extra:
        builder = builder.add_extension(ext, critical=False)
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(key, algorithm).public_bytes(serialization.Encoding.PEM).decode()


def refused(ca: CertificateAuthority, csr: str | bytes, mesh: MeshIdentity, **kwargs: object) -> CsrRefused:
    with pytest.raises(CsrRefused) as info:
        sign_intermediate(ca, csr, mesh, **kwargs)  # type: ignore[arg-type]
    err = info.value
    text = str(err)
    assert text == text.strip() and not text.endswith(".") and "\n" not in text
    assert err.message[0].islower()
    return err


def test_the_agent_csr_is_accepted(root_ca: CertificateAuthority) -> None:
    for mesh in (ISTIO_1, LINKERD_3):
        sign_intermediate(root_ca, create_intermediate_request(mesh).csr_pem, mesh)


def test_wrong_san_is_refused(root_ca: CertificateAuthority) -> None:
    csr = make_csr(ISTIO_1, sans=[x509.UniformResourceIdentifier("spiffe://cluster.local/ns/istio-system/sa/evil")])
    err = refused(root_ca, csr, ISTIO_1)
    assert err.code == CSR_IDENTITY and err.field == "subjectAltName"
    assert "spiffe://cluster.local/ns/istio-system/sa/istiod" in err.message


def test_extra_san_is_refused(root_ca: CertificateAuthority) -> None:
    sans = [x509.UniformResourceIdentifier(ISTIO_1.identity), x509.DNSName("evil.example.com")]
    assert refused(root_ca, make_csr(ISTIO_1, sans=sans), ISTIO_1).code == CSR_IDENTITY


def test_missing_san_is_refused(root_ca: CertificateAuthority) -> None:
    assert refused(root_ca, make_csr(ISTIO_1, sans=[]), ISTIO_1).code == CSR_IDENTITY


def test_csr_for_another_mesh_is_refused(root_ca: CertificateAuthority) -> None:
    other_domain = MeshIdentity(
        "istiod-istio-system-cluster-9", ISTIO_1.mesh_type, "cluster-9", "istio-system", "corp.example"
    )
    # the agent of another mesh (other trust domain), and a Linkerd CSR sent as an Istio mesh's
    assert refused(root_ca, create_intermediate_request(other_domain).csr_pem, ISTIO_1).code == CSR_IDENTITY
    assert refused(root_ca, create_intermediate_request(LINKERD_3).csr_pem, ISTIO_1).code == CSR_IDENTITY
    # same trust domain, different control-plane namespace
    elsewhere = MeshIdentity("istiod-istio-canary-cluster-2", ISTIO_2.mesh_type, "cluster-2", "istio-canary")
    assert refused(root_ca, create_intermediate_request(elsewhere).csr_pem, ISTIO_2).code == CSR_IDENTITY


def test_ca_false_is_refused(root_ca: CertificateAuthority) -> None:
    err = refused(root_ca, make_csr(ISTIO_1, ca=False), ISTIO_1)
    assert err.code == CSR_BASIC_CONSTRAINTS and "CA" in err.hint


def test_missing_basic_constraints_is_refused(root_ca: CertificateAuthority) -> None:
    assert refused(root_ca, make_csr(ISTIO_1, basic_constraints=False), ISTIO_1).code == CSR_BASIC_CONSTRAINTS


@pytest.mark.parametrize("path_length", [1, None])
def test_path_length_other_than_zero_is_refused(root_ca: CertificateAuthority, path_length: int | None) -> None:
    err = refused(root_ca, make_csr(LINKERD_3, path_length=path_length), LINKERD_3)
    assert err.code == CSR_BASIC_CONSTRAINTS


def test_longer_ttl_is_refused(root_ca: CertificateAuthority) -> None:
    csr = create_intermediate_request(ISTIO_1).csr_pem
    policy = SigningPolicy.from_days(90)
    err = refused(root_ca, csr, ISTIO_1, policy=policy, ttl=timedelta(days=91))
    assert err.code == CSR_TTL and "91 days" in err.message and "90 days" in err.message
    assert sign_intermediate(root_ca, csr, ISTIO_1, policy=policy, ttl=timedelta(days=90))
    assert refused(root_ca, csr, ISTIO_1, policy=policy, ttl=timedelta(0)).code == CSR_TTL


@pytest.mark.parametrize(
    ("mesh", "key"),
    [
        (ISTIO_1, ec.generate_private_key(ec.SECP384R1())),
        (ISTIO_1, rsa.generate_private_key(public_exponent=65537, key_size=1024)),
        (ISTIO_1, ed25519.Ed25519PrivateKey.generate()),
        (LINKERD_3, rsa.generate_private_key(public_exponent=65537, key_size=2048)),
    ],
    ids=["istio-p384", "istio-rsa1024", "istio-ed25519", "linkerd-rsa2048"],
)
def test_wrong_key_type_is_refused(root_ca: CertificateAuthority, mesh: MeshIdentity, key: Key) -> None:
    err = refused(root_ca, make_csr(mesh, key=key), mesh)
    assert err.code == CSR_KEY_TYPE and "ECDSA P-256" in err.hint


def test_rsa_2048_is_allowed_for_istio(root_ca: CertificateAuthority) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert sign_intermediate(root_ca, make_csr(ISTIO_1, key=key), ISTIO_1)


def test_missing_key_cert_sign_is_refused(root_ca: CertificateAuthority) -> None:
    csr = make_csr(ISTIO_1, usage=_usage(cert_sign=False, digital_signature=True))
    assert refused(root_ca, csr, ISTIO_1).code == CSR_KEY_USAGE


def test_extra_key_usage_is_refused(root_ca: CertificateAuthority) -> None:
    err = refused(root_ca, make_csr(ISTIO_1, usage=_usage(key_encipherment=True)), ISTIO_1)
    assert err.code == CSR_KEY_USAGE and "keyEncipherment" in err.message


def test_unexpected_extension_is_refused(root_ca: CertificateAuthority) -> None:
    eku = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH])
    err = refused(root_ca, make_csr(ISTIO_1, extra=[eku]), ISTIO_1)
    assert err.code == CSR_EXTENSION and "extendedKeyUsage" in err.message


def test_other_name_constraints_are_refused(root_ca: CertificateAuthority) -> None:
    wide = x509.NameConstraints(permitted_subtrees=[x509.DNSName("cluster.local")], excluded_subtrees=None)
    assert refused(root_ca, make_csr(LINKERD_3, extra=[wide]), LINKERD_3).code == CSR_NAME_CONSTRAINTS
    exact = expected_name_constraints(LINKERD_3)
    assert exact is not None
    assert sign_intermediate(root_ca, make_csr(LINKERD_3, extra=[exact]), LINKERD_3)


def test_tampered_csr_signature_is_refused(root_ca: CertificateAuthority) -> None:
    good = create_intermediate_request(LINKERD_3).csr_pem
    der = bytearray(x509.load_pem_x509_csr(good.encode()).public_bytes(serialization.Encoding.DER))
    der[-5] ^= 0x01  # flip a bit of the signature
    tampered = x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM)
    assert refused(root_ca, tampered, LINKERD_3).code == CSR_BAD_SIGNATURE


def test_garbage_is_refused(root_ca: CertificateAuthority) -> None:
    assert refused(root_ca, "not a csr", ISTIO_1).code == CSR_UNREADABLE


def test_issued_certificate_ignores_what_the_csr_subject_claims(root_ca: CertificateAuthority) -> None:
    chain = sign_intermediate(root_ca, make_csr(ISTIO_1), ISTIO_1)
    assert "tampered" not in cert(chain.certificate).subject.rfc4514_string()


@pytest.mark.skipif(OPENSSL is None, reason="openssl missing")
def test_a_csr_made_with_openssl_req_is_accepted(root_ca: CertificateAuthority, tmp_path: Path) -> None:
    # The recipe of docs/trust.md for users without the agent.
    key, csr = tmp_path / "ca-key.pem", tmp_path / "ca.csr"
    subprocess.run([str(OPENSSL), "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(key)], check=True)
    subprocess.run(
        [
            str(OPENSSL), "req", "-new", "-key", str(key), "-out", str(csr), "-subj", "/CN=istiod intermediate CA",
            "-addext", f"subjectAltName=URI:{ISTIO_1.identity}",
            "-addext", "basicConstraints=critical,CA:TRUE,pathlen:0",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        ],
        check=True,
    )  # fmt: skip
    chain = sign_intermediate(root_ca, csr.read_bytes(), ISTIO_1)
    assert cert(chain.certificate).extensions.get_extension_for_class(x509.BasicConstraints).value.path_length == 0
