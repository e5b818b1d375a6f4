"""Trust bundles as sets of root fingerprints: the part of trust that needs no cryptography.

Two meshes can talk mTLS only if each trusts the root that signed the other's certificates. Offline,
meshrules knows each mesh's published roots (discovery's `Mesh.trustRoots`: lower-case hex SHA-256
of the DER certificates) and, when the CA Secret is at hand, the root its issuer chains to. These
functions judge trust from those fingerprints alone. They live in discovery, below both `trust` and
`sim`, so the simulator can use them for MTLS_MISMATCH without touching `cryptography` (which
enters only through `meshrules.trust`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from meshrules.discovery.identity import pem_fingerprints


def fingerprint_der(der: bytes) -> str:
    """The SHA-256 fingerprint of a DER certificate, lower-case hex (as discovery writes `trustRoots`)."""
    return hashlib.sha256(der).hexdigest()


def bundle_fingerprints(pem_text: str) -> frozenset[str]:
    """Fingerprints of the certificates in a PEM bundle; unreadable blocks are left out."""
    fingerprints, _problems = pem_fingerprints(pem_text)
    return frozenset(fingerprints)


def bundles_overlap(a: Iterable[str], b: Iterable[str]) -> bool:
    """Whether two meshes' trust bundles (root fingerprints) share at least one root.

    This is the offline test for MTLS_MISMATCH: meshes whose bundles share no root cannot verify
    each other's certificates whatever their issuers are. An empty bundle overlaps nothing.
    Overlap is necessary, not sufficient: during a rotation each mesh's *issuing* root must also be
    in the other's bundle, which `trust_each_other` checks when issuers are known.
    """
    return not frozenset(a).isdisjoint(frozenset(b))


@dataclass(frozen=True, slots=True)
class ReportedChain:
    """What a mesh serves right now: the roots its proxies trust and the root its issuer chains to.

    ``issuer_root`` is None when the mesh has no issuer meshrules can see (not enrolled yet).
    """

    bundle: frozenset[str]
    issuer_root: str | None = None


def trust_each_other(a: ReportedChain, b: ReportedChain) -> bool:
    """Whether mTLS works both ways: each side's issuing root is in the other side's bundle.

    A side with no known issuer is judged by bundle overlap alone (the best offline evidence).
    """
    if not bundles_overlap(a.bundle, b.bundle):
        return False
    a_ok = a.issuer_root is None or a.issuer_root in b.bundle
    b_ok = b.issuer_root is None or b.issuer_root in a.bundle
    return a_ok and b_ok
