"""Root CAs: generated with the requested algorithm and lifetime, imported only when usable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from meshrules.errors import TrustError
from meshrules.trust import CertificateAuthority, RootSettings
from meshrules.trust.ca import CA_CRT, TLS_CRT, TLS_KEY
from meshrules.trust.keys import KeyType, key_to_pem

from .pki import pem


def test_generated_root_has_the_requested_settings(root_ca: CertificateAuthority) -> None:
    ca = CertificateAuthority.generate(RootSettings(ttl_days=42, org_name="bookinfo"))
    root = ca.root
    assert ca.is_root and ca.key_type is KeyType.ECDSA_P256
    assert root.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "bookinfo"
    assert root.not_valid_after_utc - datetime.now(UTC) <= timedelta(days=42)
    assert root.not_valid_after_utc - datetime.now(UTC) > timedelta(days=41)
    bc = root.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 1
    assert root.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    root.verify_directly_issued_by(root)


def test_root_key_algorithm_must_be_one_the_spec_allows() -> None:
    with pytest.raises(TrustError, match="RSA_2048"):
        CertificateAuthority.generate(RootSettings(key_type=KeyType.RSA_2048))


def test_round_trip_through_secret_data(root_ca: CertificateAuthority) -> None:
    again = CertificateAuthority.from_secret(root_ca.secret_data())
    assert again.root_fingerprint == root_ca.root_fingerprint and again.is_root


def test_repr_never_shows_the_key(root_ca: CertificateAuthority) -> None:
    key_body = root_ca.secret_data()[TLS_KEY].decode().splitlines()[1]
    assert key_body not in repr(root_ca) and "PRIVATE" not in repr(root_ca)


def _self_signed(
    key: ec.EllipticCurvePrivateKey, *, ca: bool, path: int | None, days: int = 30, start: timedelta = timedelta(days=1)
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "imported")])
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - start)
        .not_valid_after(now - start + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path if ca else None), critical=True)
        .sign(key, hashes.SHA256())
    )


def test_import_refuses_a_key_that_is_not_the_certificates(root_ca: CertificateAuthority) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    data: dict[str, bytes | str] = {TLS_CRT: root_ca.root_pem, TLS_KEY: key_to_pem(other)}
    with pytest.raises(TrustError, match="not the key"):
        CertificateAuthority.from_secret(data)


@pytest.mark.parametrize(
    ("ca", "path", "match"),
    [(False, None, "not a CA"), (True, 0, "path length 0")],
)
def test_import_refuses_certificates_that_cannot_sign_intermediates(ca: bool, path: int | None, match: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(TrustError, match=match):
        CertificateAuthority.from_secret({TLS_CRT: pem(_self_signed(key, ca=ca, path=path)), TLS_KEY: key_to_pem(key)})


def test_import_refuses_an_expired_root() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    old = _self_signed(key, ca=True, path=None, days=10, start=timedelta(days=20))
    with pytest.raises(TrustError, match="not valid now"):
        CertificateAuthority.from_secret({TLS_CRT: pem(old), TLS_KEY: key_to_pem(key)})


def test_import_of_an_intermediate_without_its_root_is_refused(root_ca: CertificateAuthority) -> None:
    # An intermediate whose issuer is missing: tell the user where to put the root.
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    inter = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "corp CA")]))
        .issuer_name(root_ca.root.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .sign(root_ca.key, hashes.SHA256())
    )
    data: dict[str, bytes | str] = {TLS_CRT: pem(inter), TLS_KEY: key_to_pem(key)}
    with pytest.raises(TrustError) as info:
        CertificateAuthority.from_secret(data)
    assert "ca.crt" in info.value.hint
    assert (
        CertificateAuthority.from_secret({**data, CA_CRT: root_ca.root_pem}).root_fingerprint
        == root_ca.root_fingerprint
    )


def test_unreadable_key_error_quotes_nothing_of_the_key(root_ca: CertificateAuthority) -> None:
    secret_looking = "-----BEGIN EC PRIVATE KEY-----\nTOPSECRETTOPSECRET\n-----END EC PRIVATE KEY-----\n"
    with pytest.raises(TrustError, match=r"tls\.key") as info:
        CertificateAuthority.from_secret({TLS_CRT: root_ca.root_pem, TLS_KEY: secret_looking})
    err = info.value
    assert err.__cause__ is None and err.__suppress_context__
    assert "TOPSECRET" not in str(err) and "TOPSECRET" not in repr(err)


def test_missing_secret_keys_are_named() -> None:
    with pytest.raises(TrustError, match=r"tls\.key"):
        CertificateAuthority.from_secret({TLS_CRT: "x"})
