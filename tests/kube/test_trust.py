"""The trust agent's logic on a live cluster (`LiveTrustCluster`), here over the emulator's API."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshrules.errors import ClusterError
from meshrules.kube import resources as R
from meshrules.kube.trust import LiveTrustCluster
from meshrules.model.discovery import MeshType
from meshrules.trust import (
    CertificateAuthority,
    MeshIdentity,
    RootSettings,
    install_intermediate,
    prepare_intermediate,
    read_bundle,
    sign_intermediate,
    written_chain,
)

from .conftest import Emulators, connect

ISTIO = MeshIdentity("istiod-istio-system-cluster-1", MeshType.ISTIO, "cluster-1", "istio-system")
LINKERD = MeshIdentity("linkerd-destination-linkerd-cluster-1", MeshType.LINKERD, "cluster-1", "linkerd")


@pytest.fixture(scope="module")
def root() -> CertificateAuthority:
    return CertificateAuthority.generate(RootSettings(org_name="meshrules-test"))


def namespaces(*names: str) -> list[dict[str, object]]:
    return [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in names]


@pytest.mark.parametrize("mesh", [ISTIO, LINKERD], ids=["istio", "linkerd"])
def test_enrolling_a_mesh_writes_its_ca_objects_and_keeps_the_key_in_the_cluster(
    emulators: Emulators, tmp_path: Path, root: CertificateAuthority, mesh: MeshIdentity
) -> None:
    emu = emulators("cluster-1")
    emu.seed(namespaces(mesh.namespace))
    cluster = LiveTrustCluster(connect(emu, tmp_path))
    csr = prepare_intermediate(cluster, mesh)
    assert prepare_intermediate(cluster, mesh) == csr  # the pending key survives, same CSR
    install_intermediate(cluster, mesh, sign_intermediate(root, csr, mesh))
    assert read_bundle(cluster, mesh) == (root.root_pem,)
    assert written_chain(cluster, mesh).issuer_root == root.root_fingerprint
    assert cluster.get_secret(mesh.namespace, "meshrules-intermediate-key") is None
    issuer = "cacerts" if mesh.mesh_type is MeshType.ISTIO else "linkerd-identity-issuer"
    live = emu.store.get(R.SECRET, mesh.namespace, issuer)
    assert live["metadata"]["labels"]["meshrules.io/owner"] == "meshrules-system"
    assert {e["manager"] for e in live["metadata"]["managedFields"]} == {"meshrules"}


def test_a_users_ca_secret_is_never_overwritten(
    emulators: Emulators, tmp_path: Path, root: CertificateAuthority
) -> None:
    emu = emulators("cluster-1")
    users = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "cacerts", "namespace": "istio-system"},
        "data": {"ca-cert.pem": "dXNlcg=="},
    }
    emu.seed([*namespaces("istio-system"), users])
    cluster = LiveTrustCluster(connect(emu, tmp_path))
    csr = prepare_intermediate(cluster, ISTIO)
    with pytest.raises(ClusterError) as err:
        install_intermediate(cluster, ISTIO, sign_intermediate(root, csr, ISTIO))
    assert err.value.code == "MR0806"
    assert emu.store.get(R.SECRET, "istio-system", "cacerts")["data"] == {"ca-cert.pem": "dXNlcg=="}


def test_what_a_mesh_serves_is_what_its_control_plane_publishes(
    emulators: Emulators, tmp_path: Path, root: CertificateAuthority
) -> None:
    emu = emulators("cluster-1")
    emu.seed(namespaces("istio-system"))
    cluster = LiveTrustCluster(connect(emu, tmp_path))
    install_intermediate(cluster, ISTIO, sign_intermediate(root, prepare_intermediate(cluster, ISTIO), ISTIO))
    assert cluster.reported_chain(ISTIO) is None  # istiod has not published the new root yet
    emu.seed(
        [
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "istio-ca-root-cert", "namespace": "istio-system"},
                "data": {"root-cert.pem": root.root_pem},
            }
        ]
    )
    served = cluster.reported_chain(ISTIO)
    assert served is not None and served.bundle == {root.root_fingerprint}
    assert served.issuer_root == root.root_fingerprint
