"""The agent: keys stay in the cluster, every operation can be repeated after a crash."""

from __future__ import annotations

import pytest

from meshrules.errors import TrustError
from meshrules.trust import (
    CertificateAuthority,
    FakeCluster,
    create_intermediate_request,
    install_intermediate,
    prepare_intermediate,
    read_bundle,
    sign_intermediate,
    write_bundle,
    written_chain,
)
from meshrules.trust.objects import PENDING_KEY_SECRET

from .conftest import ISTIO_1, LINKERD_3


def test_prepare_is_idempotent_and_keeps_the_key_in_the_mesh_namespace() -> None:
    cluster = FakeCluster("cluster-1")
    first = prepare_intermediate(cluster, ISTIO_1)
    assert prepare_intermediate(cluster, ISTIO_1) == first
    pending = cluster.get_secret("istio-system", PENDING_KEY_SECRET)
    assert pending is not None and b"PRIVATE KEY" in pending.data["key.pem"]
    assert b"PRIVATE KEY" not in first.encode()


def test_install_writes_the_ca_objects_and_drops_the_pending_key(root_ca: CertificateAuthority) -> None:
    cluster = FakeCluster("cluster-3")
    chain = sign_intermediate(root_ca, prepare_intermediate(cluster, LINKERD_3), LINKERD_3)
    install_intermediate(cluster, LINKERD_3, chain)
    assert cluster.get_secret("linkerd", PENDING_KEY_SECRET) is None
    assert cluster.get_secret("linkerd", "linkerd-identity-issuer") is not None
    assert read_bundle(cluster, LINKERD_3) == (root_ca.root_pem,)
    seen = written_chain(cluster, LINKERD_3)
    assert seen.issuer_root == root_ca.root_fingerprint and seen.bundle == {root_ca.root_fingerprint}


def test_install_keeps_roots_already_in_the_bundle(
    root_ca: CertificateAuthority, other_ca: CertificateAuthority
) -> None:
    cluster = FakeCluster("cluster-3")
    write_bundle(cluster, LINKERD_3, [other_ca.root_pem])
    chain = sign_intermediate(root_ca, prepare_intermediate(cluster, LINKERD_3), LINKERD_3)
    install_intermediate(cluster, LINKERD_3, chain)
    assert read_bundle(cluster, LINKERD_3) == (other_ca.root_pem, root_ca.root_pem)


def test_install_refuses_a_certificate_for_another_key(root_ca: CertificateAuthority) -> None:
    cluster = FakeCluster("cluster-1")
    prepare_intermediate(cluster, ISTIO_1)
    stranger = sign_intermediate(root_ca, create_intermediate_request(ISTIO_1).csr_pem, ISTIO_1)
    with pytest.raises(TrustError, match="not for its pending key"):
        install_intermediate(cluster, ISTIO_1, stranger)
    assert cluster.get_secret("istio-system", "cacerts") is None


def test_install_without_a_pending_key_is_refused(root_ca: CertificateAuthority) -> None:
    chain = sign_intermediate(root_ca, create_intermediate_request(ISTIO_1).csr_pem, ISTIO_1)
    with pytest.raises(TrustError, match="no pending intermediate key"):
        install_intermediate(FakeCluster("cluster-1"), ISTIO_1, chain)


def test_an_istio_mesh_without_cacerts_has_no_bundle_to_write(root_ca: CertificateAuthority) -> None:
    cluster = FakeCluster("cluster-1")
    assert write_bundle(cluster, ISTIO_1, [root_ca.root_pem]) is False
    assert cluster.secrets == {}


def test_fake_cluster_round_trips_through_json(root_ca: CertificateAuthority) -> None:
    cluster = FakeCluster("cluster-3", auto_reload=False)
    chain = sign_intermediate(root_ca, prepare_intermediate(cluster, LINKERD_3), LINKERD_3)
    install_intermediate(cluster, LINKERD_3, chain)
    cluster.reload(LINKERD_3)
    again = FakeCluster.from_json(cluster.to_json(), auto_reload=False)
    assert again.secrets == cluster.secrets and again.config_maps == cluster.config_maps
    assert again.reported_chain(LINKERD_3) == cluster.reported_chain(LINKERD_3)
