"""Workload identities in each mesh's own format, and fingerprints of the roots meshes publish.

Identities are what AccessPolicies name and what mTLS peers present: Istio uses SPIFFE IDs,
Linkerd a DNS-like name under its control-plane namespace. Fingerprints let meshrules judge
offline whether two meshes trust the same root; they are computed from the PEM text alone
(SHA-256 of the DER bytes is exactly the certificate fingerprint), because `cryptography` enters
meshrules only through `meshrules.trust`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re

DEFAULT_SERVICE_ACCOUNT = "default"

_PEM_CERT = re.compile(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", re.DOTALL)
# Every DER certificate is an ASN.1 SEQUENCE, whose first byte is 0x30.
_DER_SEQUENCE = 0x30


def istio_identity(trust_domain: str, namespace: str, service_account: str) -> str:
    """The SPIFFE ID Istio gives a pod: `spiffe://<trustDomain>/ns/<ns>/sa/<sa>`."""
    return f"spiffe://{trust_domain}/ns/{namespace}/sa/{service_account}"


def linkerd_identity(trust_domain: str, control_plane_namespace: str, namespace: str, service_account: str) -> str:
    """The name Linkerd gives a pod: `<sa>.<ns>.serviceaccount.identity.<cp-ns>.<trustDomain>`."""
    return f"{service_account}.{namespace}.serviceaccount.identity.{control_plane_namespace}.{trust_domain}"


def pem_fingerprints(text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """SHA-256 fingerprints (lower-case hex) of the certificates in a PEM bundle, and the problems found.

    Returns ``(fingerprints, problems)``: fingerprints sorted and without duplicates; each problem
    is a one-line message about a block that could not be read (or about finding no block at all).
    """
    fingerprints: set[str] = set()
    problems: list[str] = []
    blocks = _PEM_CERT.findall(text)
    if not blocks:
        return (), ("no `BEGIN CERTIFICATE` block",)
    for i, block in enumerate(blocks, start=1):
        body = "".join(block.split())
        try:
            der = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            problems.append(f"certificate {i} is not valid base64")
            continue
        if not der or der[0] != _DER_SEQUENCE:
            problems.append(f"certificate {i} is not a DER certificate")
            continue
        fingerprints.add(hashlib.sha256(der).hexdigest())
    return tuple(sorted(fingerprints)), tuple(problems)
