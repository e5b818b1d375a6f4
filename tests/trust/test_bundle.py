"""Bundle overlap, the offline judge of MTLS_MISMATCH, and fingerprints that match discovery's."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from meshrules.discovery import pem_fingerprints
from meshrules.trust import CertificateAuthority, ReportedChain, bundle_fingerprints, bundles_overlap, trust_each_other
from meshrules.trust.pem import fingerprint

roots = st.frozensets(st.sampled_from([f"{i:064x}" for i in range(6)]), max_size=4)


@given(a=roots, b=roots, extra=roots)
def test_overlap_is_symmetric_and_adding_roots_never_removes_it(
    a: frozenset[str], b: frozenset[str], extra: frozenset[str]
) -> None:
    assert bundles_overlap(a, b) == bundles_overlap(b, a) == bool(a & b)
    if bundles_overlap(a, b):
        assert bundles_overlap(a | extra, b)


def test_an_empty_bundle_overlaps_nothing() -> None:
    assert not bundles_overlap([], ["ab"]) and not bundles_overlap([], [])


def test_mutual_trust_needs_each_issuer_in_the_other_bundle() -> None:
    old, new = "0" * 64, "1" * 64
    a = ReportedChain(frozenset({old, new}), issuer_root=new)
    b = ReportedChain(frozenset({old}), issuer_root=old)
    assert bundles_overlap(a.bundle, b.bundle)
    assert not trust_each_other(a, b)  # b cannot verify a's new-root certificates
    assert trust_each_other(a, ReportedChain(frozenset({old, new}), issuer_root=old))
    assert trust_each_other(a, ReportedChain(frozenset({new})))  # issuer unknown: bundles decide


def test_fingerprints_match_cryptography_and_discovery(
    root_ca: CertificateAuthority, other_ca: CertificateAuthority
) -> None:
    text = root_ca.root_pem + other_ca.root_pem
    expected = {fingerprint(root_ca.root), fingerprint(other_ca.root)}
    assert bundle_fingerprints(text) == expected
    assert set(pem_fingerprints(text)[0]) == expected
    assert root_ca.root_fingerprint == fingerprint(root_ca.root)
