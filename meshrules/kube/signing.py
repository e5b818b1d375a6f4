"""The management side of the live CSR exchange: root CAs, requests, checks and answers.

Beside `meshrules.kube.agent` (the other end, in each registered cluster) and over
`meshrules.kube.exchange` (the ConfigMap they share). The controller calls `reconcile_trust` on
each reconcile with the VirtualMeshes and discovered meshes it already holds:

1. `ensure_root` — the VirtualMesh's root CA, from Secret `meshrules-root-<vmesh>` in the
   management namespace (created from `trust.shared.rootCertificateAuthority.generated` the first
   time) or from the Secret `rootCertificateAuthority.secret` names. Root keys live only there.
2. `trust_targets` — each member mesh, the root it must issue from and the signing policy.
3. `sign_pending` — per member: open a request when there is none (or its root or mesh changed),
   and answer a CSR the agent sent for the current request: `sign_intermediate` checks it against
   meshrules' own record of the mesh (never against what the exchange claims) and the answer is
   the certificates, or the refusal's code and message.

Only ConfigMaps are read and written in registered clusters: the pending intermediate key stays in
the agent's Secret, which the management side never reads (and its role there cannot read).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from meshrules.emit.naming import is_owned
from meshrules.errors import ClusterError, CsrRefused, Location, MeshrulesError, TrustError
from meshrules.kube import exchange as X
from meshrules.kube import resources as R
from meshrules.kube.cluster import NOT_OWNED, Cluster, ConflictError, Object
from meshrules.model.common import MANAGEMENT_NAMESPACE
from meshrules.model.discovery import Mesh
from meshrules.model.policy import VirtualMesh
from meshrules.trust import CertificateAuthority, KeyType, MeshIdentity, RootSettings, SigningPolicy, sign_intermediate
from meshrules.trust.objects import OWNER_LABEL

log = logging.getLogger(__name__)

ROOT_SECRET_PREFIX = "meshrules-root-"
VIRTUAL_MESH_LABEL = "meshrules.io/virtual-mesh"
ROOT_ERROR = "MR0701"
# 128 bits: request nonces only need to be unique per mesh, never secret.
_NONCE_BYTES = 16


class SigningAction(StrEnum):
    """What `sign_pending` did or saw for one mesh."""

    REQUESTED = "Requested"  # a new request was opened; the agent answers with a CSR
    WAITING_FOR_CSR = "WaitingForCsr"
    SIGNED = "Signed"  # the CSR was signed just now
    WAITING_FOR_INSTALL = "WaitingForInstall"  # signed earlier; the agent has not installed it yet
    INSTALLED = "Installed"
    REFUSED = "Refused"  # the CSR in the exchange was refused (now or earlier)
    FAILED = "Failed"  # the cluster or the CA could not be used; retried on the next pass


@dataclass(frozen=True, slots=True)
class EnrollmentTarget:
    """A member mesh, the root its intermediate must chain to, and what may be issued to it."""

    mesh: MeshIdentity
    root: str
    policy: SigningPolicy = field(default_factory=SigningPolicy)


@dataclass(frozen=True, slots=True)
class SigningOutcome:
    """One mesh's result of a pass; ``detail`` is a one-line message (never key material)."""

    mesh: str
    cluster: str
    action: SigningAction
    detail: str = ""
    code: str = ""


def root_secret_name(virtual_mesh: str) -> str:
    """The management-side Secret holding a VirtualMesh's generated root CA."""
    return ROOT_SECRET_PREFIX + virtual_mesh


def ensure_root(
    management: Cluster, vmesh: VirtualMesh, *, namespace: str = MANAGEMENT_NAMESPACE
) -> CertificateAuthority | None:
    """The root CA of ``vmesh`` (None without shared trust), creating a generated one on first use."""
    trust = vmesh.spec.trust
    shared = trust.shared if trust is not None else None
    if shared is None:
        return None
    source = shared.root_certificate_authority
    if source.secret is not None:
        ref_ns = source.secret.namespace or namespace
        obj = management.get(R.SECRET, source.secret.name, ref_ns)
        if obj is None:
            raise TrustError(
                f"root CA secret `{ref_ns}/{source.secret.name}` of virtual mesh `{vmesh.name}` does not exist",
                code=ROOT_ERROR,
                location=Location(cluster=management.name, kind="Secret", namespace=ref_ns, name=source.secret.name),
                hint="create it with `tls.crt` and `tls.key` (see `meshrules trust init --from-secret`)",
            )
        return CertificateAuthority.from_secret(_secret_data(obj))
    name = root_secret_name(vmesh.name)
    obj = management.get(R.SECRET, name, namespace)
    if obj is None:
        generated = source.generated
        assert generated is not None  # INVARIANT: the model admits exactly one of `generated` and `secret`
        ca = CertificateAuthority.generate(
            RootSettings(KeyType(generated.key_algorithm.value), generated.ttl_days, generated.org_name)
        )
        try:
            management.create(_root_secret(name, namespace, vmesh.name, ca))
            log.info("generated root CA %s… for virtual mesh %s", ca.root_fingerprint[:16], vmesh.name)
            return ca
        except ConflictError:
            # Another replica created it between our read and our write: use theirs.
            obj = management.get(R.SECRET, name, namespace)
            if obj is None:
                raise
    if not is_owned(obj, namespace):
        raise ClusterError(
            f"Secret `{namespace}/{name}` exists and meshrules does not own it",
            code=NOT_OWNED,
            location=Location(cluster=management.name, kind="Secret", namespace=namespace, name=name),
            hint="to bring your own root, reference it from `rootCertificateAuthority.secret` instead",
        )
    return CertificateAuthority.from_secret(_secret_data(obj))


def _root_secret(name: str, namespace: str, vmesh: str, ca: CertificateAuthority) -> Object:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {OWNER_LABEL: namespace, VIRTUAL_MESH_LABEL: vmesh},
        },
        "data": {k: base64.b64encode(v).decode() for k, v in sorted(ca.secret_data().items())},
    }


def _secret_data(obj: Mapping[str, object]) -> dict[str, bytes]:
    raw = obj.get("data")
    out: dict[str, bytes] = {}
    for key, value in raw.items() if isinstance(raw, Mapping) else ():
        try:
            out[str(key)] = base64.b64decode(str(value), validate=True)
        except binascii.Error:
            continue
    return out


def trust_targets(
    virtual_meshes: Sequence[VirtualMesh],
    meshes: Sequence[Mesh],
    roots: Mapping[str, CertificateAuthority],
) -> tuple[EnrollmentTarget, ...]:
    """Every member mesh of a VirtualMesh with shared trust whose root is in ``roots`` (by VirtualMesh name).

    Members not discovered (yet) are skipped: there is no record to check their CSRs against.
    """
    by_name = {m.name: m for m in meshes}
    targets: list[EnrollmentTarget] = []
    for vmesh in sorted(virtual_meshes, key=lambda v: v.name):
        trust = vmesh.spec.trust
        ca = roots.get(vmesh.name)
        if trust is None or trust.shared is None or ca is None:
            continue
        policy = SigningPolicy.from_days(trust.shared.intermediate_ttl_days)
        for ref in vmesh.spec.meshes:
            mesh = by_name.get(ref.name)
            if mesh is not None:
                targets.append(EnrollmentTarget(MeshIdentity.of(mesh), ca.root_fingerprint, policy))
    return tuple(targets)


def reconcile_trust(
    management: Cluster,
    clusters: Mapping[str, Cluster],
    virtual_meshes: Sequence[VirtualMesh],
    meshes: Sequence[Mesh],
    *,
    namespace: str = MANAGEMENT_NAMESPACE,
    now: datetime | None = None,
) -> tuple[SigningOutcome, ...]:
    """One pass of the management side: roots, then every member's request and answer."""
    roots: dict[str, CertificateAuthority] = {}
    failed: list[SigningOutcome] = []
    for vmesh in virtual_meshes:
        try:
            ca = ensure_root(management, vmesh, namespace=namespace)
        except MeshrulesError as err:
            failed.append(SigningOutcome(vmesh.name, management.name, SigningAction.FAILED, err.message, err.code))
            continue
        if ca is not None:
            roots[vmesh.name] = ca
    authorities = {ca.root_fingerprint: ca for ca in roots.values()}
    targets = trust_targets(virtual_meshes, meshes, roots)
    return (*failed, *sign_pending(clusters, targets, authorities, owner=namespace, now=now))


def sign_pending(
    clusters: Mapping[str, Cluster],
    targets: Sequence[EnrollmentTarget],
    authorities: Mapping[str, CertificateAuthority],
    *,
    owner: str = MANAGEMENT_NAMESPACE,
    now: datetime | None = None,
) -> tuple[SigningOutcome, ...]:
    """For every target: open its request if needed and answer a CSR waiting in its exchange.

    One mesh's failure (its cluster unreachable, a 409 from a concurrent agent write) is its
    outcome only; the others go on, and the next pass retries.
    """
    outcomes: list[SigningOutcome] = []
    for target in targets:
        mesh = target.mesh
        cluster = clusters.get(mesh.cluster)
        if cluster is None:
            outcomes.append(
                SigningOutcome(
                    mesh.name, mesh.cluster, SigningAction.FAILED, f"cluster `{mesh.cluster}` is not registered"
                )
            )
            continue
        try:
            outcomes.append(_serve(cluster, target, authorities, owner, now))
        except MeshrulesError as err:
            log.warning("trust: mesh %s: %s", mesh.name, err.message)
            outcomes.append(SigningOutcome(mesh.name, mesh.cluster, SigningAction.FAILED, err.message, err.code))
    return tuple(outcomes)


def _serve(
    cluster: Cluster,
    target: EnrollmentTarget,
    authorities: Mapping[str, CertificateAuthority],
    owner: str,
    now: datetime | None,
) -> SigningOutcome:
    mesh = target.mesh

    def outcome(action: SigningAction, detail: str = "", code: str = "") -> SigningOutcome:
        return SigningOutcome(mesh.name, mesh.cluster, action, detail, code)

    wanted_mesh = json.dumps(mesh.to_wire(), sort_keys=True)
    request = {X.MESH: wanted_mesh, X.NONCE: secrets.token_hex(_NONCE_BYTES), X.ROOT: target.root}
    ex = X.read_exchange(cluster, mesh.namespace, mesh.name, owner)
    if ex is None:
        X.create_exchange(cluster, mesh.namespace, mesh.name, {**request, X.PHASE: X.Phase.REQUESTED.value}, owner)
        log.info("trust: requested an intermediate for mesh %s from root %s…", mesh.name, target.root[:16])
        return outcome(SigningAction.REQUESTED)
    if ex.get(X.MESH) != wanted_mesh or ex.get(X.ROOT) != target.root:
        # The mesh changed (trust domain, revision) or its VirtualMesh has another root: a new
        # request; the old answer goes so the agent cannot install it for the new one.
        changes: dict[str, str | None] = {k: None for k in X.ANSWER_KEYS}
        X.replace_exchange(cluster, ex, ex.with_data({**changes, **request, X.PHASE: X.Phase.REQUESTED.value}))
        log.info("trust: renewed the request of mesh %s (root %s…)", mesh.name, target.root[:16])
        return outcome(SigningAction.REQUESTED)
    if ex.installed:
        return outcome(SigningAction.INSTALLED, f"issued from root {ex.get(X.INSTALLED_ROOT)[:16]}…")
    csr = ex.get(X.CSR)
    if not csr or ex.get(X.CSR_NONCE) != ex.get(X.NONCE):
        return outcome(SigningAction.WAITING_FOR_CSR)
    if ex.answered:
        refused = ex.get(X.REFUSED)
        if refused:
            code, _, message = refused.partition(": ")
            return outcome(SigningAction.REFUSED, message, code)
        return outcome(SigningAction.WAITING_FOR_INSTALL)
    ca = authorities.get(target.root)
    if ca is None:
        raise TrustError(
            f"no CA for root `{target.root[:16]}…` of mesh `{mesh.name}` is at hand",
            code=ROOT_ERROR,
            hint="the root's Secret must be readable in the management namespace",
        )
    answer: dict[str, str | None] = {X.ANSWER_FOR: X.csr_digest(csr)}
    try:
        # Checked against meshrules' own record of the mesh: the exchange's `mesh` is only a copy.
        chain = sign_intermediate(ca, csr, mesh, policy=target.policy, now=now)
    except CsrRefused as refusal:
        answer |= {X.REFUSED: f"{refusal.code}: {refusal.message}", X.CERTIFICATE: None, X.CHAIN: None}
        answer[X.ROOT_CERTIFICATE] = None
        X.replace_exchange(cluster, ex, ex.with_data(answer))
        log.warning("trust: refused the CSR of mesh %s: %s %s", mesh.name, refusal.code, refusal.message)
        return outcome(SigningAction.REFUSED, refusal.message, refusal.code)
    answer |= {
        X.REFUSED: None,
        X.CERTIFICATE: chain.certificate,
        X.CHAIN: "".join(chain.chain),
        X.ROOT_CERTIFICATE: chain.root,
    }
    X.replace_exchange(cluster, ex, ex.with_data(answer))
    log.info("trust: signed the intermediate of mesh %s (expires %s)", mesh.name, f"{chain.not_after:%Y-%m-%d}")
    return outcome(SigningAction.SIGNED, f"expires {chain.not_after:%Y-%m-%d}")
