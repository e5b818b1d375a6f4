"""Certificates in PEM: reading bundles, fingerprints, and walking a chain up to its root.

Shared by the CA (importing a root or an intermediate with its chain), the agent (what a mesh's
Secret says) and trust status (what a scenario holds). Only certificates pass through here.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from meshrules.discovery.trust_bundle import fingerprint_der
from meshrules.errors import TrustError

# A chain longer than this is a loop or a mistake, not a PKI (roots, a few corporate layers, ours).
MAX_CHAIN_LENGTH = 8


def load_certificates(text: str | bytes, what: str) -> tuple[x509.Certificate, ...]:
    """Every certificate of a PEM text, in order; ``what`` names the source in errors."""
    data = text.encode() if isinstance(text, str) else text
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise TrustError(
            f"`{what}` holds no PEM certificate",
            code="MR0701",
            hint="expected one or more `-----BEGIN CERTIFICATE-----` blocks",
        )
    try:
        return tuple(x509.load_pem_x509_certificates(data))
    except ValueError as exc:
        raise TrustError(
            f"`{what}` holds a certificate that cannot be read",
            code="MR0701",
            hint=f"the PEM block is damaged or not X.509 ({exc})",
        ) from exc


def cert_pem(cert: x509.Certificate) -> str:
    """One certificate as PEM text."""
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def pems(certs: Iterable[x509.Certificate]) -> str:
    """Certificates as one PEM text, in the order given."""
    return "".join(cert_pem(c) for c in certs)


def fingerprint(cert: x509.Certificate) -> str:
    """The certificate's SHA-256 fingerprint, lower-case hex (discovery's `trustRoots` format)."""
    return fingerprint_der(cert.public_bytes(serialization.Encoding.DER))


def issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether ``issuer`` signed ``cert`` (names match and the signature verifies)."""
    return cert.issuer == issuer.subject and _signature_verifies(cert, issuer)


# Certificates hash and compare by their DER bytes, so the answer is a pure function of the pair;
# walking chains re-checks the same signatures over and over (status, rotation waits), and a
# signature check costs a thousand times more than this lookup.
@functools.lru_cache(maxsize=4096)
def _signature_verifies(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def is_self_signed(cert: x509.Certificate) -> bool:
    """Whether the certificate is a root: it names itself as issuer and its own key signed it."""
    return issued_by(cert, cert)


def walk_to_root(
    start: x509.Certificate, pool: Sequence[x509.Certificate]
) -> tuple[tuple[x509.Certificate, ...], x509.Certificate | None]:
    """The certificates above ``start`` found in ``pool``, and the self-signed root they end at.

    Returns ``(intermediates, root)``: the intermediates strictly between ``start`` and the root,
    in order; ``root`` is None when the walk ends at a certificate whose issuer is not in the pool.
    ``start`` itself may be the root (then both are empty / ``start``).
    """
    if is_self_signed(start):
        return (), start
    above: list[x509.Certificate] = []
    current = start
    for _ in range(MAX_CHAIN_LENGTH):
        parent = next((c for c in pool if c is not current and issued_by(current, c)), None)
        if parent is None:
            return tuple(above), None
        if is_self_signed(parent):
            return tuple(above), parent
        above.append(parent)
        current = parent
    return tuple(above), None


def dedupe(certs: Iterable[x509.Certificate]) -> tuple[x509.Certificate, ...]:
    """Certificates without repeats, first occurrence kept."""
    seen: set[str] = set()
    out: list[x509.Certificate] = []
    for cert in certs:
        fp = fingerprint(cert)
        if fp not in seen:
            seen.add(fp)
            out.append(cert)
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Validity:
    """When a certificate is valid: ``not_before`` to ``not_after`` (UTC)."""

    not_before: datetime
    not_after: datetime

    @property
    def lifetime(self) -> float:
        """The whole validity period, in seconds."""
        return (self.not_after - self.not_before).total_seconds()

    def remaining(self, now: datetime) -> float:
        """Seconds left at ``now`` (negative once expired)."""
        return (self.not_after - now).total_seconds()

    def renewal_due(self, now: datetime, fraction: float) -> bool:
        """Whether less than ``fraction`` of the lifetime is left at ``now``."""
        return self.remaining(now) < self.lifetime * fraction


def certificate_validity(text: str | bytes, what: str = "certificate") -> Validity:
    """The validity of the first certificate of a PEM text (public data; refused with MR0701 when unreadable)."""
    cert = load_certificates(text, what)[0]
    return Validity(cert.not_valid_before_utc, cert.not_valid_after_utc)


def subject_alt_names(cert_or_csr: x509.Certificate | x509.CertificateSigningRequest) -> tuple[str, ...]:
    """The SANs as `URI:...` / `DNS:...` strings, sorted; empty when there is no SAN extension."""
    try:
        ext = cert_or_csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    return tuple(sorted(general_name(n) for n in ext))


def general_name(name: x509.GeneralName) -> str:
    """A general name as `URI:...`, `DNS:...`, `IP:...` or `email:...`."""
    if isinstance(name, x509.UniformResourceIdentifier):
        return f"URI:{name.value}"
    if isinstance(name, x509.DNSName):
        return f"DNS:{name.value}"
    if isinstance(name, x509.IPAddress):
        return f"IP:{name.value}"
    if isinstance(name, x509.RFC822Name):
        return f"email:{name.value}"
    return f"other:{name.value!s}"
