"""The agent's side of trust: what runs in a mesh's cluster, through a `TrustCluster`.

The agent generates the intermediate key where it will be used, hands out only the CSR, installs
the certificate that comes back beside that key, and maintains the mesh's trust bundle. Every
operation is idempotent, so a crash at any point is repaired by running it again: a pending key
survives in its own Secret (`meshrules-intermediate-key`) until its certificate is installed.
"""

from __future__ import annotations

from collections.abc import Sequence

from meshrules.discovery.trust_bundle import ReportedChain, bundle_fingerprints
from meshrules.errors import TrustError
from meshrules.model.common import MANAGEMENT_NAMESPACE
from meshrules.model.discovery import MeshType
from meshrules.trust.cluster import TrustCluster
from meshrules.trust.csr import IssuedChain, SigningPolicy, check_csr, create_intermediate_request
from meshrules.trust.keys import KeyType, load_key, same_public_key
from meshrules.trust.mesh import MeshIdentity
from meshrules.trust.objects import (
    ISTIO_ROOT_CERT,
    LINKERD_BUNDLE,
    LINKERD_TRUST_ROOTS,
    OWNER_LABEL,
    PENDING_CSR,
    PENDING_KEY,
    PENDING_KEY_SECRET,
    SecretObject,
    bundle_pem,
    ca_objects,
    issuer_certificates_pem,
    issuer_secret_name,
    split_bundle,
    trust_roots_config_map,
    with_bundle,
)
from meshrules.trust.pem import dedupe, fingerprint, load_certificates, walk_to_root

AGENT_ERROR = "MR0720"


def read_bundle(cluster: TrustCluster, mesh: MeshIdentity) -> tuple[str, ...]:
    """The root PEMs of the mesh's trust bundle as written (Istio `root-cert.pem`, Linkerd trust roots)."""
    if mesh.mesh_type is MeshType.ISTIO:
        secret = cluster.get_secret(mesh.namespace, issuer_secret_name(mesh))
        raw = secret.data.get(ISTIO_ROOT_CERT, b"") if secret else b""
        return split_bundle(raw.decode("utf-8", "replace"))
    cm = cluster.get_config_map(mesh.namespace, LINKERD_TRUST_ROOTS)
    return split_bundle(cm.data.get(LINKERD_BUNDLE, "")) if cm else ()


def write_bundle(cluster: TrustCluster, mesh: MeshIdentity, roots: Sequence[str]) -> bool:
    """Make the mesh's trust bundle exactly ``roots``; returns whether anything was written.

    An Istio mesh keeps its bundle inside `cacerts`, so one without `cacerts` (not enrolled yet)
    has no bundle to write; its first intermediate brings it.
    """
    if bundle_pem(read_bundle(cluster, mesh)) == bundle_pem(roots):
        return False
    if mesh.mesh_type is MeshType.ISTIO:
        secret = cluster.get_secret(mesh.namespace, issuer_secret_name(mesh))
        if secret is None:
            return False
        cluster.put_secret(with_bundle(secret, roots))
    else:
        cluster.put_config_map(trust_roots_config_map(mesh, roots))
    return True


def prepare_intermediate(cluster: TrustCluster, mesh: MeshIdentity, key_type: KeyType = KeyType.ECDSA_P256) -> str:
    """A CSR for the mesh's next intermediate; its key stays in the cluster.

    Reuses a pending key and its CSR when they are intact and still fit the mesh (a restart after a
    crash asks again for the same key), else generates a new key.
    """
    pending = cluster.get_secret(mesh.namespace, PENDING_KEY_SECRET)
    if pending is not None and _still_usable(pending, mesh):
        return pending.data[PENDING_CSR].decode()
    request = create_intermediate_request(mesh, key_type)
    cluster.put_secret(_pending(mesh, request.key_pem, request.csr_pem))
    return request.csr_pem


def _still_usable(pending: SecretObject, mesh: MeshIdentity) -> bool:
    """Whether a pending key and its CSR are intact and still what ``mesh`` may be issued."""
    key_pem, csr_pem = pending.data.get(PENDING_KEY), pending.data.get(PENDING_CSR)
    if not key_pem or not csr_pem:
        return False
    try:
        csr = check_csr(csr_pem, mesh, policy=SigningPolicy())
        return same_public_key(csr.public_key(), load_key(key_pem, PENDING_KEY_SECRET).public_key())
    except TrustError:
        return False


def _pending(mesh: MeshIdentity, key_pem: bytes, csr_pem: str) -> SecretObject:
    return SecretObject(
        mesh.namespace,
        PENDING_KEY_SECRET,
        {PENDING_KEY: key_pem, PENDING_CSR: csr_pem.encode()},
        labels={OWNER_LABEL: MANAGEMENT_NAMESPACE},
    )


def install_intermediate(cluster: TrustCluster, mesh: MeshIdentity, chain: IssuedChain) -> None:
    """Write the mesh's CA objects from the pending key and ``chain``, then drop the pending key.

    The bundle keeps every root already in it and gains the chain's root. Refused when no pending
    key exists or the certificate is not for it (a chain meant for another request).
    """
    pending = cluster.get_secret(mesh.namespace, PENDING_KEY_SECRET)
    if pending is None or PENDING_KEY not in pending.data:
        raise TrustError(
            f"mesh `{mesh.name}` has no pending intermediate key to install a certificate for",
            code=AGENT_ERROR,
            hint="ask the agent for a CSR (`prepare_intermediate`) and sign that one",
        )
    key_pem = pending.data[PENDING_KEY]
    cert = load_certificates(chain.certificate, "certificate")[0]
    if not same_public_key(cert.public_key(), load_key(key_pem, PENDING_KEY_SECRET).public_key()):
        raise TrustError(
            f"certificate for mesh `{mesh.name}` is not for its pending key",
            code=AGENT_ERROR,
            hint="the certificate answers another CSR; sign the CSR the agent holds now",
        )
    roots = [*read_bundle(cluster, mesh), chain.root]
    for obj in ca_objects(mesh, chain, key_pem, roots):
        if isinstance(obj, SecretObject):
            cluster.put_secret(obj)
        else:
            cluster.put_config_map(obj)
    cluster.delete_secret(mesh.namespace, PENDING_KEY_SECRET)


def discard_pending(cluster: TrustCluster, mesh: MeshIdentity) -> None:
    """Drop a pending key that will not be used (its mesh already has the chain it was for)."""
    if cluster.get_secret(mesh.namespace, PENDING_KEY_SECRET) is not None:
        cluster.delete_secret(mesh.namespace, PENDING_KEY_SECRET)


def written_chain(cluster: TrustCluster, mesh: MeshIdentity) -> ReportedChain:
    """What the mesh's objects say now: its bundle and the root its issuer chains to."""
    roots = read_bundle(cluster, mesh)
    bundle = frozenset().union(*(bundle_fingerprints(r) for r in roots)) if roots else frozenset[str]()
    return ReportedChain(bundle=bundle, issuer_root=issuer_root(cluster, mesh, roots))


def issuer_root(cluster: TrustCluster, mesh: MeshIdentity, roots: Sequence[str] = ()) -> str | None:
    """Fingerprint of the root the mesh's written issuer chains to, or None (no or unreadable issuer)."""
    secret = cluster.get_secret(mesh.namespace, issuer_secret_name(mesh))
    text = issuer_certificates_pem(mesh, secret.data) if secret else None
    if text is None:
        return None
    try:
        certs = load_certificates(text, issuer_secret_name(mesh))
        pool = dedupe((*certs, *(c for r in roots for c in load_certificates(r, "trust bundle"))))
    except TrustError:
        return None
    _chain, root = walk_to_root(certs[0], pool)
    return fingerprint(root) if root is not None else None
