"""What each mesh reads its CA from: the right Secret and ConfigMap, keys and contents — never the root key."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

from meshrules.trust import (
    CertificateAuthority,
    MeshIdentity,
    ca_objects,
    create_intermediate_request,
    sign_intermediate,
)
from meshrules.trust.objects import ConfigMapObject, SecretObject, bundle_pem, split_bundle

from .conftest import ISTIO_1, LINKERD_3, LINKERD_4_K8S
from .pki import certs

UPSTREAM = Path(__file__).resolve().parents[1] / "fixtures" / "upstream"
LINKERD_INSTALL = UPSTREAM / "linkerd-control-plane" / "install_default.golden.yaml"
ISTIOD_INSTALL = UPSTREAM / "istio-control-plane" / "istiod-pilot_default.golden.yaml"


def _objects(
    mesh: MeshIdentity, ca: CertificateAuthority, roots: list[str]
) -> tuple[bytes, tuple[SecretObject | ConfigMapObject, ...]]:
    request = create_intermediate_request(mesh)
    chain = sign_intermediate(ca, request.csr_pem, mesh)
    return request.key_pem, ca_objects(mesh, chain, request.key_pem, roots)


def test_istio_cacerts_has_the_four_keys_in_istiod_namespace(
    root_ca: CertificateAuthority, other_ca: CertificateAuthority
) -> None:
    key, objs = _objects(ISTIO_1, root_ca, [root_ca.root_pem, other_ca.root_pem])
    (secret,) = objs
    assert isinstance(secret, SecretObject)
    assert (secret.namespace, secret.name, secret.type) == ("istio-system", "cacerts", "Opaque")
    assert sorted(secret.data) == ["ca-cert.pem", "ca-key.pem", "cert-chain.pem", "root-cert.pem"]
    assert secret.data["ca-key.pem"] == key
    chain = certs(secret.data["cert-chain.pem"])
    assert chain[0] == certs(secret.data["ca-cert.pem"])[0] and chain[-1] == root_ca.root
    # during a rotation root-cert.pem holds both roots
    assert certs(secret.data["root-cert.pem"]) == [root_ca.root, other_ca.root]


def test_linkerd_default_scheme_writes_crt_and_key_pem_and_the_trust_roots(root_ca: CertificateAuthority) -> None:
    key, (issuer, roots) = _objects(LINKERD_3, root_ca, [root_ca.root_pem])
    assert isinstance(issuer, SecretObject) and isinstance(roots, ConfigMapObject)
    assert (issuer.namespace, issuer.name, issuer.type) == ("linkerd", "linkerd-identity-issuer", "Opaque")
    assert sorted(issuer.data) == ["crt.pem", "key.pem"] and issuer.data["key.pem"] == key
    assert (roots.namespace, roots.name, list(roots.data)) == (
        "linkerd",
        "linkerd-identity-trust-roots",
        ["ca-bundle.crt"],
    )
    assert certs(roots.data["ca-bundle.crt"]) == [root_ca.root]
    assert issuer.labels["linkerd.io/control-plane-ns"] == "linkerd"


def test_linkerd_kubernetes_tls_scheme_writes_tls_keys(root_ca: CertificateAuthority) -> None:
    key, (issuer, _roots) = _objects(LINKERD_4_K8S, root_ca, [root_ca.root_pem])
    assert isinstance(issuer, SecretObject)
    assert issuer.type == "kubernetes.io/tls"
    assert sorted(issuer.data) == ["ca.crt", "tls.crt", "tls.key"] and issuer.data["tls.key"] == key
    assert certs(issuer.data["ca.crt"]) == [root_ca.root]


def test_names_match_the_rendered_installs() -> None:
    # What `linkerd install` renders, and where istiod mounts its plug-in CA from.
    linkerd = LINKERD_INSTALL.read_text()
    for name in ("name: linkerd-identity-issuer", "crt.pem:", "key.pem:", "name: linkerd-identity-trust-roots"):
        assert name in linkerd
    assert "key: ca-bundle.crt" in linkerd
    istiod = ISTIOD_INSTALL.read_text()
    assert "secretName: cacerts" in istiod and "serviceAccountName: istiod" in istiod


@pytest.mark.parametrize("mesh", [ISTIO_1, LINKERD_3, LINKERD_4_K8S], ids=lambda m: m.name)
def test_root_key_is_never_in_a_mesh_object(mesh: MeshIdentity, root_ca: CertificateAuthority) -> None:
    root_key = root_ca.secret_data()["tls.key"]
    root_body = "".join(root_key.decode().splitlines()[1:-1])
    _key, objs = _objects(mesh, root_ca, [root_ca.root_pem])
    for obj in objs:
        for value in obj.data.values():
            raw = value if isinstance(value, bytes) else value.encode()
            assert root_key not in raw
            assert root_body not in "".join(raw.decode().split())


def test_secret_repr_and_manifest(root_ca: CertificateAuthority) -> None:
    key, (secret,) = _objects(ISTIO_1, root_ca, [root_ca.root_pem])
    assert isinstance(secret, SecretObject)
    assert "PRIVATE" not in repr(secret) and key.decode().splitlines()[1] not in repr(secret)
    manifest = secret.manifest()
    assert manifest["kind"] == "Secret" and manifest["metadata"]["labels"]["meshrules.io/owner"] == "meshrules-system"
    assert base64.b64decode(manifest["data"]["ca-key.pem"]) == key


def test_bundle_keeps_order_and_drops_repeats(root_ca: CertificateAuthority, other_ca: CertificateAuthority) -> None:
    bundle = bundle_pem([root_ca.root_pem, other_ca.root_pem, root_ca.root_pem.replace("\n", "\r\n")])
    assert len(re.findall("BEGIN CERTIFICATE", bundle)) == 2
    assert split_bundle(bundle) == (root_ca.root_pem, other_ca.root_pem)
