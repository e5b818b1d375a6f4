"""The management side's certificate authority: a generated root, or an imported root/intermediate.

The CA signs mesh intermediates and nothing else. Its key never leaves the management side: it is
held here, written only by `secret_data` into a directory or Secret of the management plane, and
no mesh object (`cacerts`, `linkerd-identity-issuer`, trust roots) ever receives it.

An imported CA may itself be an intermediate of a corporate PKI: its chain up to a self-signed root
is kept, every mesh chain carries it, and the self-signed root is what goes into trust bundles.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.x509.oid import NameOID

from meshrules.errors import TrustError
from meshrules.trust.keys import (
    ROOT_KEY_TYPES,
    KeyType,
    PrivateKey,
    describe_key,
    generate_key,
    key_to_pem,
    key_type_of,
    load_key,
    same_public_key,
    signature_hash,
)
from meshrules.trust.pem import cert_pem, dedupe, fingerprint, load_certificates, pems, walk_to_root

# Clocks across clusters disagree by seconds to minutes; back-dating notBefore keeps a certificate
# usable on a cluster whose clock runs slightly behind the management cluster's.
CLOCK_SKEW = timedelta(minutes=5)

# Secret keys of a CA, as `kubernetes.io/tls` Secrets and cert-manager write them; a CA directory
# uses the same names so `kubectl create secret generic --from-file=DIR` moves it as is.
TLS_CRT = "tls.crt"
TLS_KEY = "tls.key"
CA_CRT = "ca.crt"


@dataclass(frozen=True, slots=True)
class RootSettings:
    """How to generate a root CA (VirtualMesh `rootCertificateAuthority.generated`)."""

    key_type: KeyType = KeyType.ECDSA_P256
    ttl_days: int = 3650
    org_name: str = "meshrules"


@dataclass(frozen=True, slots=True, eq=False)
class CertificateAuthority:
    """A signer: its certificate and key, the certificates above it, and the self-signed root.

    ``chain`` holds the certificates strictly between ``certificate`` and ``root`` (empty when the
    signer is the root itself). The key is excluded from ``repr`` so it cannot reach a log line.
    """

    certificate: x509.Certificate
    key: PrivateKey = field(repr=False)
    chain: tuple[x509.Certificate, ...]
    root: x509.Certificate

    def __repr__(self) -> str:
        subject = self.certificate.subject.rfc4514_string()
        return f"CertificateAuthority(subject={subject!r}, root={self.root_fingerprint})"

    @property
    def root_fingerprint(self) -> str:
        """SHA-256 fingerprint of the self-signed root (what trust bundles and status name)."""
        return fingerprint(self.root)

    @property
    def root_pem(self) -> str:
        """The root certificate as PEM: what goes into every mesh's trust bundle."""
        return cert_pem(self.root)

    @property
    def is_root(self) -> bool:
        """Whether the signer is the root itself (not an imported intermediate)."""
        return fingerprint(self.certificate) == self.root_fingerprint

    @property
    def key_type(self) -> KeyType:
        """The signer's key type."""
        kt = key_type_of(self.certificate.public_key())
        assert kt is not None  # INVARIANT: `_checked` admits only signers with a known key type
        return kt

    @property
    def not_after(self) -> datetime:
        """When the first certificate of the signer's path (signer, chain or root) expires."""
        return min(c.not_valid_after_utc for c in (self.certificate, *self.chain, self.root))

    @classmethod
    def generate(cls, settings: RootSettings | None = None, *, now: datetime | None = None) -> CertificateAuthority:
        """A new self-signed root CA (path length 1: it signs mesh intermediates, which sign workloads)."""
        settings = settings or RootSettings()
        if settings.key_type not in ROOT_KEY_TYPES:
            allowed = ", ".join(sorted(k.value for k in ROOT_KEY_TYPES))
            raise TrustError(
                f"root key algorithm `{settings.key_type.value}` is not supported",
                code="MR0701",
                field="keyAlgorithm",
                hint=f"use one of {allowed}",
            )
        if settings.ttl_days < 1:
            raise TrustError("root TTL must be at least 1 day", code="MR0701", field="ttlDays")
        now = now or datetime.now(UTC)
        key = generate_key(settings.key_type)
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, settings.org_name),
                x509.NameAttribute(NameOID.COMMON_NAME, f"{settings.org_name} root CA"[:64]),
            ]
        )
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW)
            .not_valid_after(now + timedelta(days=settings.ttl_days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .add_extension(_CA_KEY_USAGE, critical=True)
            .add_extension(ski, critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
            .sign(key, signature_hash(key))
        )
        return cls(certificate=cert, key=key, chain=(), root=cert)

    @classmethod
    def from_secret(cls, data: Mapping[str, bytes | str], *, now: datetime | None = None) -> CertificateAuthority:
        """Import a CA from Secret-like data: `tls.crt` (signer, then its chain), `tls.key`, optional `ca.crt`.

        The signer may be a root or an intermediate; the chain up to a self-signed root must be in
        `tls.crt` or `ca.crt`. Refused (TrustError) when the key does not match, the signer is not a
        CA allowed to sign intermediates, a certificate has expired, or no root is reached.
        """
        if TLS_CRT not in data or TLS_KEY not in data:
            missing = TLS_CRT if TLS_CRT not in data else TLS_KEY
            raise TrustError(
                f"CA secret has no `{missing}`",
                code="MR0701",
                hint="a CA secret holds `tls.crt` (the CA certificate, then its chain) and `tls.key`",
            )
        certs = load_certificates(data[TLS_CRT], TLS_CRT)
        extra = load_certificates(data[CA_CRT], CA_CRT) if data.get(CA_CRT) else ()
        key = load_key(data[TLS_KEY], TLS_KEY)
        signer = certs[0]
        pool = dedupe((*certs, *extra))
        chain, root = walk_to_root(signer, pool)
        if root is None:
            raise TrustError(
                "CA certificate does not chain up to a self-signed root",
                code="MR0701",
                field=TLS_CRT,
                hint="append the intermediates and the root to `tls.crt`, or put the root in `ca.crt`",
            )
        return _checked(cls(certificate=signer, key=key, chain=chain, root=root), now or datetime.now(UTC))

    def secret_data(self) -> dict[str, bytes]:
        """The CA as Secret data (`tls.crt` signer + chain, `tls.key`, `ca.crt` root); holds the key."""
        return {
            TLS_CRT: pems((self.certificate, *self.chain)).encode(),
            TLS_KEY: key_to_pem(self.key),
            CA_CRT: self.root_pem.encode(),
        }


_CA_KEY_USAGE = x509.KeyUsage(
    digital_signature=False,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=True,
    crl_sign=True,
    encipher_only=False,
    decipher_only=False,
)


def _checked(ca: CertificateAuthority, now: datetime) -> CertificateAuthority:
    """Refuse an imported CA that cannot sign mesh intermediates."""
    cert = ca.certificate
    if not same_public_key(cert.public_key(), ca.key.public_key()):
        raise TrustError(
            "`tls.key` is not the key of the certificate in `tls.crt`",
            code="MR0701",
            hint="the first certificate of `tls.crt` must be the one `tls.key` belongs to",
        )
    if key_type_of(cert.public_key()) is None:
        raise TrustError(
            f"CA key is {describe_key(cert.public_key())}, which meshrules does not sign with",
            code="MR0701",
            hint="use an ECDSA P-256 or RSA (2048, 3072 or 4096) CA",
        )
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        bc = None
    if bc is None or not bc.ca:
        raise TrustError(
            "certificate in `tls.crt` is not a CA",
            code="MR0701",
            hint="it needs basicConstraints CA:TRUE",
        )
    if bc.path_length == 0:
        raise TrustError(
            "CA certificate has path length 0, so it cannot sign mesh intermediates",
            code="MR0701",
            hint="mesh intermediates sit below the CA; import a CA with path length 1 or more (or none)",
        )
    try:
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        ku = None
    if ku is not None and not ku.key_cert_sign:
        raise TrustError(
            "CA certificate may not sign certificates",
            code="MR0701",
            hint="its keyUsage lacks keyCertSign",
        )
    for c in (cert, *ca.chain, ca.root):
        if not c.not_valid_before_utc <= now <= c.not_valid_after_utc:
            raise TrustError(
                f"certificate `{c.subject.rfc4514_string()}` of the CA is not valid now",
                code="MR0701",
                hint=f"it is valid from {c.not_valid_before_utc:%Y-%m-%d} to {c.not_valid_after_utc:%Y-%m-%d}",
            )
    return ca
