"""Test-side PKI: leaf certificates under a mesh intermediate, and the two independent verifiers.

Tests may use `cryptography` directly (the import contract covers `meshrules` only); verifying with
both `cryptography`'s X.509 verifier and the `openssl verify` command keeps meshrules honest
against two implementations that are not its own.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

OPENSSL = shutil.which("openssl")


def cert(pem: str | bytes) -> x509.Certificate:
    """The first certificate of a PEM text."""
    return x509.load_pem_x509_certificates(pem.encode() if isinstance(pem, str) else pem)[0]


def certs(pem: str | bytes) -> list[x509.Certificate]:
    """Every certificate of a PEM text."""
    return x509.load_pem_x509_certificates(pem.encode() if isinstance(pem, str) else pem)


def issue_leaf(issuer_pem: str, issuer_key_pem: bytes, san: x509.GeneralName, *, hours: int = 24) -> x509.Certificate:
    """A workload certificate like the mesh's control plane would issue, signed by the intermediate."""
    issuer = cert(issuer_pem)
    key = serialization.load_pem_private_key(issuer_key_pem, None)
    assert isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey)
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "workload")]))
        .issuer_name(issuer.subject)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(hours=hours))
        .add_extension(x509.SubjectAlternativeName([san]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, True, False, False, False, False, False, False),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def pem(c: x509.Certificate) -> str:
    """A certificate as PEM."""
    return c.public_bytes(serialization.Encoding.PEM).decode()


def crypto_verify(
    leaf: x509.Certificate, roots: Sequence[x509.Certificate], intermediates: Sequence[x509.Certificate]
) -> list[x509.GeneralName]:
    """Verify a leaf with `cryptography`'s verifier (mTLS client profile); its SANs, or raise."""
    verifier = verification.PolicyBuilder().store(verification.Store(list(roots))).build_client_verifier()
    return list(verifier.verify(leaf, list(intermediates)).subjects or [])


def openssl_verify(
    tmp: Path, leaf_pem: str, roots_pem: str, untrusted_pem: str = ""
) -> subprocess.CompletedProcess[str]:
    """`openssl verify -x509_strict -CAfile roots [-untrusted chain] leaf`."""
    assert OPENSSL, "openssl is required by the trust tests (CI installs it)"
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "roots.pem").write_text(roots_pem)
    (tmp / "leaf.pem").write_text(leaf_pem)
    cmd = [OPENSSL, "verify", "-x509_strict", "-CAfile", str(tmp / "roots.pem")]
    if untrusted_pem:
        (tmp / "untrusted.pem").write_text(untrusted_pem)
        cmd += ["-untrusted", str(tmp / "untrusted.pem")]
    return subprocess.run([*cmd, str(tmp / "leaf.pem")], capture_output=True, text=True, check=False)
