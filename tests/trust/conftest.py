"""Fixtures for the trust tests: CAs made once per session (ECDSA: fast), meshes of both kinds."""

from __future__ import annotations

import pytest

from meshrules.model.discovery import MeshType
from meshrules.trust import CertificateAuthority, IssuerScheme, MeshIdentity, RootSettings

ISTIO_1 = MeshIdentity("istiod-istio-system-cluster-1", MeshType.ISTIO, "cluster-1", "istio-system")
ISTIO_2 = MeshIdentity("istiod-istio-system-cluster-2", MeshType.ISTIO, "cluster-2", "istio-system")
LINKERD_3 = MeshIdentity("linkerd-destination-linkerd-cluster-3", MeshType.LINKERD, "cluster-3", "linkerd")
LINKERD_4_K8S = MeshIdentity(
    "linkerd-destination-linkerd-cluster-4",
    MeshType.LINKERD,
    "cluster-4",
    "linkerd",
    issuer_scheme=IssuerScheme.KUBERNETES_TLS,
)


@pytest.fixture(scope="session")
def root_ca() -> CertificateAuthority:
    """The shared root most tests issue from."""
    return CertificateAuthority.generate(RootSettings(org_name="meshrules-test"))


@pytest.fixture(scope="session")
def other_ca() -> CertificateAuthority:
    """An unrelated root (a different VirtualMesh, or the next root of a rotation)."""
    return CertificateAuthority.generate(RootSettings(org_name="other"))
