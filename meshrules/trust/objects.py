"""The Kubernetes objects each mesh reads its CA from, rendered from an issued chain and a bundle.

- Istio: Secret `cacerts` in istiod's namespace — `ca-cert.pem` (the intermediate), `ca-key.pem`
  (its key), `cert-chain.pem` (intermediate up to and including the root), `root-cert.pem` (the
  trust bundle: one root, or old + new during a rotation). istiod publishes `root-cert.pem` to every
  namespace as ConfigMap `istio-ca-root-cert`.
- Linkerd: Secret `linkerd-identity-issuer` with the keys of the mesh's issuer scheme — `crt.pem` /
  `key.pem` for `linkerd.io/tls` (the default, as `linkerd install` renders it), `tls.crt` / `tls.key`
  / `ca.crt` for `kubernetes.io/tls` — and ConfigMap `linkerd-identity-trust-roots`, key
  `ca-bundle.crt`, the bundle proxies trust.

The root key is never an input here: these functions take the intermediate's key (generated in the
mesh's cluster) and certificates only.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from meshrules.discovery.trust_bundle import fingerprint_der
from meshrules.model.common import MANAGEMENT_NAMESPACE
from meshrules.model.discovery import MeshType
from meshrules.trust.csr import IssuedChain
from meshrules.trust.mesh import IssuerScheme, MeshIdentity

OWNER_LABEL = "meshrules.io/owner"

ISTIO_CACERTS = "cacerts"
ISTIO_CA_CERT = "ca-cert.pem"
ISTIO_CA_KEY = "ca-key.pem"
ISTIO_CERT_CHAIN = "cert-chain.pem"
ISTIO_ROOT_CERT = "root-cert.pem"

LINKERD_ISSUER = "linkerd-identity-issuer"
LINKERD_CRT = "crt.pem"
LINKERD_KEY = "key.pem"
TLS_CRT = "tls.crt"
TLS_KEY = "tls.key"
TLS_CA = "ca.crt"
LINKERD_TRUST_ROOTS = "linkerd-identity-trust-roots"
LINKERD_BUNDLE = "ca-bundle.crt"

# Where the agent keeps a key it generated until its certificate comes back: in the mesh's own
# namespace, so a crash between CSR and install loses nothing and the key never leaves the cluster.
PENDING_KEY_SECRET = "meshrules-intermediate-key"
PENDING_KEY = "key.pem"
PENDING_CSR = "csr.pem"

SECRET_TYPE_OPAQUE = "Opaque"
SECRET_TYPE_TLS = "kubernetes.io/tls"


@dataclass(frozen=True, slots=True)
class SecretObject:
    """A Secret to write or as read; ``data`` holds decoded bytes and is never shown by ``repr``."""

    namespace: str
    name: str
    data: Mapping[str, bytes] = field(repr=False)
    type: str = SECRET_TYPE_OPAQUE
    labels: Mapping[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        keys = ", ".join(sorted(self.data))
        return f"SecretObject({self.namespace}/{self.name}, type={self.type}, keys=[{keys}])"

    def manifest(self) -> dict[str, Any]:
        """The Kubernetes object (base64 `data`) for the live writer; it holds key material."""
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": self.name, "namespace": self.namespace, "labels": dict(sorted(self.labels.items()))},
            "type": self.type,
            "data": {k: base64.b64encode(v).decode() for k, v in sorted(self.data.items())},
        }


@dataclass(frozen=True, slots=True)
class ConfigMapObject:
    """A ConfigMap to write or as read (public data: trust bundles)."""

    namespace: str
    name: str
    data: Mapping[str, str]
    labels: Mapping[str, str] = field(default_factory=dict)

    def manifest(self) -> dict[str, Any]:
        """The Kubernetes object for the live writer."""
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": self.name, "namespace": self.namespace, "labels": dict(sorted(self.labels.items()))},
            "data": dict(sorted(self.data.items())),
        }


MeshObject = SecretObject | ConfigMapObject


def bundle_pem(roots: Sequence[str]) -> str:
    """A trust bundle: the roots' PEM blocks in the order given, each once, newline-terminated."""
    seen: set[str] = set()
    out: list[str] = []
    for pem in roots:
        key = _pem_key(pem)
        if key not in seen:
            seen.add(key)
            out.append(pem.strip() + "\n")
    return "".join(out)


def split_bundle(text: str) -> tuple[str, ...]:
    """The PEM blocks of a bundle, in order, each newline-terminated."""
    blocks: list[str] = []
    end = "-----END CERTIFICATE-----"
    for part in text.split(end)[:-1]:
        start = part.find("-----BEGIN CERTIFICATE-----")
        if start >= 0:
            blocks.append(part[start:].strip() + "\n" + end + "\n")
    return tuple(blocks)


def _pem_key(pem: str) -> str:
    body = "".join(line for line in pem.strip().splitlines() if not line.startswith("-----"))
    try:
        return fingerprint_der(base64.b64decode(body))
    except ValueError:
        return body


def _labels(mesh: MeshIdentity) -> dict[str, str]:
    labels = {OWNER_LABEL: MANAGEMENT_NAMESPACE}
    if mesh.mesh_type is MeshType.LINKERD:
        # Linkerd's install labels these objects so; keep them for its tooling (`linkerd check`).
        labels |= {"linkerd.io/control-plane-component": "identity", "linkerd.io/control-plane-ns": mesh.namespace}
    return labels


def ca_objects(mesh: MeshIdentity, chain: IssuedChain, key_pem: bytes, roots: Sequence[str]) -> tuple[MeshObject, ...]:
    """Everything ``mesh`` reads its CA from: the issuer Secret (and Linkerd's trust-roots ConfigMap).

    ``key_pem`` is the intermediate's key (from the agent); ``roots`` the trust bundle, which must
    include ``chain.root`` (old + new during a rotation).
    """
    if mesh.mesh_type is MeshType.ISTIO:
        data = {
            ISTIO_CA_CERT: chain.certificate.encode(),
            ISTIO_CA_KEY: key_pem,
            ISTIO_CERT_CHAIN: chain.full_chain_pem.encode(),
            ISTIO_ROOT_CERT: bundle_pem(roots).encode(),
        }
        return (SecretObject(mesh.namespace, ISTIO_CACERTS, data, SECRET_TYPE_OPAQUE, _labels(mesh)),)
    if mesh.issuer_scheme is IssuerScheme.KUBERNETES_TLS:
        issuer = SecretObject(
            mesh.namespace,
            LINKERD_ISSUER,
            {TLS_CRT: chain.issuer_pem.encode(), TLS_KEY: key_pem, TLS_CA: chain.root.encode()},
            SECRET_TYPE_TLS,
            _labels(mesh),
        )
    else:
        issuer = SecretObject(
            mesh.namespace,
            LINKERD_ISSUER,
            {LINKERD_CRT: chain.issuer_pem.encode(), LINKERD_KEY: key_pem},
            SECRET_TYPE_OPAQUE,
            _labels(mesh),
        )
    return issuer, trust_roots_config_map(mesh, roots)


def trust_roots_config_map(mesh: MeshIdentity, roots: Sequence[str]) -> ConfigMapObject:
    """Linkerd's `linkerd-identity-trust-roots` holding ``roots``."""
    return ConfigMapObject(mesh.namespace, LINKERD_TRUST_ROOTS, {LINKERD_BUNDLE: bundle_pem(roots)}, _labels(mesh))


def with_bundle(secret: SecretObject, roots: Sequence[str]) -> SecretObject:
    """Istio `cacerts` with its `root-cert.pem` replaced by ``roots`` (the CA itself unchanged)."""
    data = dict(secret.data)
    data[ISTIO_ROOT_CERT] = bundle_pem(roots).encode()
    return SecretObject(secret.namespace, secret.name, data, secret.type, secret.labels)


def issuer_secret_name(mesh: MeshIdentity) -> str:
    """The Secret the mesh reads its CA from."""
    return ISTIO_CACERTS if mesh.mesh_type is MeshType.ISTIO else LINKERD_ISSUER


def issuer_certificates_pem(mesh: MeshIdentity, data: Mapping[str, bytes]) -> str | None:
    """The issuer's certificate chain text in the mesh's CA Secret data, or None when there is none.

    Reads whichever scheme's keys are present: a Secret written under the other scheme still says
    which certificate the mesh would load.
    """
    # The signer comes first; the rest may repeat it (Istio's `cert-chain.pem` starts with it),
    # which readers drop when they dedupe.
    if mesh.mesh_type is MeshType.ISTIO:
        signer, rest = data.get(ISTIO_CA_CERT), (data.get(ISTIO_CERT_CHAIN),)
    else:
        signer, rest = data.get(LINKERD_CRT) or data.get(TLS_CRT), (data.get(TLS_CA),)
    if not signer:
        return None
    raw = b"\n".join([signer, *(r for r in rest if r)])
    return raw.decode("utf-8", "replace")


def issuer_key_pem(mesh: MeshIdentity, data: Mapping[str, bytes]) -> bytes | None:
    """The issuer key in the mesh's CA Secret data (used only to check it matches; never shown)."""
    if mesh.mesh_type is MeshType.ISTIO:
        return data.get(ISTIO_CA_KEY)
    return data.get(LINKERD_KEY) or data.get(TLS_KEY)
