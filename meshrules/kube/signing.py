"""The management side of the live CSR exchange: root CAs, requests, checks, answers, rotation, renewal.

Beside `meshrules.kube.agent` (the other end, in each registered cluster), over
`meshrules.kube.exchange` (the ConfigMap they share), with `meshrules.kube.rotation` (the live
rotation driver). The controller calls `reconcile_trust` on each pass with the VirtualMeshes (as
read live, status included) and the discovered meshes; per VirtualMesh with shared trust:

1. `ensure_root` — the VirtualMesh's root CA, from Secret `meshrules-root-<vmesh>` in the
   management namespace (created from `trust.shared.rootCertificateAuthority.generated` the first
   time) or from the Secret `rootCertificateAuthority.secret` names. Root keys live only there.
   A new value of the annotation `meshrules.io/rotate-root` replaces a generated root (the current
   one is kept in `meshrules-root-<vmesh>-previous` first); the value `rollback` restores it.
2. `drive_rotation` — one step of a rotation: one starts when the members issue from a root that
   is not the VirtualMesh's root any more.
3. per member: open a request when there is none (or its root or mesh changed, or its
   intermediate has less than a third of its life left), and answer a CSR the agent sent:
   `sign_intermediate` checks it against meshrules' own record of the mesh (never against what
   the exchange claims). Members not enrolled wait while a rotation runs.

The result is each VirtualMesh's `status.trust` (`VirtualMeshTrust`), which the controller writes
in the same status write as the translation's status; the rotation status in it is read back on
the next pass. Only ConfigMaps are read and written in registered clusters: the pending
intermediate key stays in the agent's Secret, which the management side never reads.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from meshrules.emit.naming import is_owned
from meshrules.errors import ClusterError, CsrRefused, Location, MeshrulesError, TrustError
from meshrules.kube import exchange as X
from meshrules.kube import resources as R
from meshrules.kube.cluster import NOT_OWNED, Cluster, ConflictError, Object
from meshrules.kube.rotation import Finding, LiveMember, drive_rotation, request_root, running, steady_root
from meshrules.model.base import ApiModel
from meshrules.model.common import MANAGEMENT_NAMESPACE
from meshrules.model.discovery import Mesh
from meshrules.model.policy import VirtualMesh
from meshrules.trust import (
    CertificateAuthority,
    KeyType,
    MeshIdentity,
    RootSettings,
    RotationStatus,
    SigningPolicy,
    Validity,
    bundle_fingerprints,
    certificate_validity,
    sign_intermediate,
)
from meshrules.trust.objects import OWNER_LABEL, split_bundle
from meshrules.trust.rotation import ROTATION_ERROR

log = logging.getLogger(__name__)

ROOT_SECRET_PREFIX = "meshrules-root-"
PREVIOUS_SUFFIX = "-previous"
VIRTUAL_MESH_LABEL = "meshrules.io/virtual-mesh"
# On a VirtualMesh: a new value replaces its generated root; `rollback` restores the previous one.
# On a root Secret: the value that generated it, so a replaced root is recognised after a crash.
ROTATE_ROOT_ANNOTATION = "meshrules.io/rotate-root"
ROLLBACK = "rollback"
ROOT_ERROR = "MR0701"
ROTATE_ROOT_REFUSED = "MR0722"  # the rotate-root annotation cannot be acted upon (now)
RENEWAL_BLOCKED = "MR0723"  # an intermediate cannot outlive its root: only a root rotation helps
# Renew an intermediate when less than this part of its lifetime is left: with the default 365
# days that is four months ahead, time for a renewal to wait out an outage of the agent or cluster.
RENEW_FRACTION = 1 / 3


class SigningAction(StrEnum):
    """What the management side did or saw for one mesh in a pass."""

    REQUESTED = "Requested"  # a new request was opened (first, renewal, new root); the agent answers with a CSR
    WAITING_FOR_CSR = "WaitingForCsr"
    SIGNED = "Signed"  # the CSR was signed just now
    WAITING_FOR_INSTALL = "WaitingForInstall"  # signed earlier; the agent has not installed it yet
    INSTALLED = "Installed"
    WAITING_FOR_ROTATION = "WaitingForRotation"  # not enrolled; enrolls once the rotation in progress is done
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
    """One mesh's result of a pass; ``detail`` is a one-line message (never key material).

    ``issuing_root`` (fingerprint) and ``expires`` are what the agent's reports say of the
    installed intermediate, when known.
    """

    mesh: str
    cluster: str
    action: SigningAction
    detail: str = ""
    code: str = ""
    issuing_root: str = ""
    expires: datetime | None = None


# --- status.trust ----------------------------------------------------------------------------------


class TrustFinding(ApiModel):
    """A finding of a VirtualMesh's trust (`status.trust.findings`)."""

    code: str
    message: str


class MemberTrust(ApiModel):
    """One member mesh in `status.trust.meshes`."""

    name: str
    cluster: str
    action: SigningAction
    detail: str | None = None
    code: str | None = None
    issuing_root: str | None = None
    expires: datetime | None = None


class RotateRootRecord(ApiModel):
    """The `meshrules.io/rotate-root` value last acted upon (so it fires once), and what came of it."""

    value: str
    outcome: str  # Rotated, RolledBack or Refused
    code: str | None = None
    message: str | None = None


class VirtualMeshTrust(ApiModel):
    """A VirtualMesh's `status.trust`: its root, each member's state, the rotation and findings."""

    root_fingerprint: str | None = None
    meshes: tuple[MemberTrust, ...] = ()
    rotation: RotationStatus | None = None
    rotate_root: RotateRootRecord | None = None
    findings: tuple[TrustFinding, ...] = ()


@dataclass(frozen=True)
class TrustPass:
    """The result of `reconcile_trust`: every member's outcome and each VirtualMesh's `status.trust`."""

    outcomes: tuple[SigningOutcome, ...]
    # VirtualMesh `ref` (`VirtualMesh namespace/name`) → its status.trust.
    statuses: Mapping[str, VirtualMeshTrust] = field(default_factory=dict)

    @property
    def rotating(self) -> bool:
        """Whether a rotation is in progress (its waits need passes even when nothing changes)."""
        return any(running(s.rotation) for s in self.statuses.values())


# --- root CAs --------------------------------------------------------------------------------------


def root_secret_name(virtual_mesh: str) -> str:
    """The management-side Secret holding a VirtualMesh's generated root CA."""
    return ROOT_SECRET_PREFIX + virtual_mesh


def previous_root_secret_name(virtual_mesh: str) -> str:
    """Where the root a generated root replaced is kept while the rotation away from it runs."""
    return root_secret_name(virtual_mesh) + PREVIOUS_SUFFIX


def ensure_root(
    management: Cluster, vmesh: VirtualMesh, *, namespace: str = MANAGEMENT_NAMESPACE, marker: str = ""
) -> CertificateAuthority | None:
    """The root CA of ``vmesh`` (None without shared trust), creating a generated one on first use.

    A root created here carries ``marker`` (the VirtualMesh's rotate-root value, if any) so that
    value does not replace it again.
    """
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
        ca = _generate(vmesh)
        try:
            management.create(_root_secret(name, namespace, vmesh.name, ca, marker))
            log.info("generated root CA %s… for virtual mesh %s", ca.root_fingerprint[:16], vmesh.name)
            return ca
        except ConflictError:
            # Another replica created it between our read and our write: use theirs.
            obj = management.get(R.SECRET, name, namespace)
            if obj is None:
                raise
    _check_owned(management, obj, namespace, name)
    return CertificateAuthority.from_secret(_secret_data(obj))


def read_previous_root(
    management: Cluster, vmesh: VirtualMesh, *, namespace: str = MANAGEMENT_NAMESPACE
) -> CertificateAuthority | None:
    """The root a rotation of ``vmesh``'s generated root replaced, while it is kept (else None)."""
    name = previous_root_secret_name(vmesh.name)
    obj = management.get(R.SECRET, name, namespace)
    if obj is None:
        return None
    _check_owned(management, obj, namespace, name)
    return CertificateAuthority.from_secret(_secret_data(obj))


def rotate_generated_root(
    management: Cluster, vmesh: VirtualMesh, marker: str, *, namespace: str = MANAGEMENT_NAMESPACE
) -> None:
    """Replace ``vmesh``'s generated root with a new one marked ``marker``; the current one is kept first.

    Crash-safe in either order of events: the current root is written to the `-previous` Secret
    before the root Secret is replaced, and a root already marked ``marker`` is not replaced again.
    """
    name = root_secret_name(vmesh.name)
    current = management.get(R.SECRET, name, namespace)
    if current is None:
        raise TrustError(f"root CA secret `{namespace}/{name}` does not exist", code=ROOT_ERROR)
    _check_owned(management, current, namespace, name)
    if _annotations(current).get(ROTATE_ROOT_ANNOTATION) == marker:
        return  # replaced before a crash; only the status was not written
    # INVARIANT: the root being retired is kept before it is replaced: a rollback needs its key.
    _copy_secret(management, current, previous_root_secret_name(vmesh.name), namespace)
    body = _root_secret(name, namespace, vmesh.name, _generate(vmesh), marker)
    body["metadata"]["resourceVersion"] = _rv(current)
    management.replace(body)
    log.info("replaced the root CA of virtual mesh %s (rotate-root %s)", vmesh.name, marker)


def restore_previous_root(management: Cluster, vmesh: VirtualMesh, *, namespace: str = MANAGEMENT_NAMESPACE) -> None:
    """Make the kept `-previous` root ``vmesh``'s root again (a rollback of a generated root)."""
    previous = management.get(R.SECRET, previous_root_secret_name(vmesh.name), namespace)
    if previous is None:
        raise TrustError(
            f"virtual mesh `{vmesh.name}` keeps no previous root to restore",
            code=ROTATE_ROOT_REFUSED,
            hint="a rotation keeps it in `meshrules-root-<vmesh>-previous` until it is done",
        )
    _copy_secret(management, previous, root_secret_name(vmesh.name), namespace)
    log.info("restored the previous root CA of virtual mesh %s", vmesh.name)


def delete_previous_root(management: Cluster, vmesh: VirtualMesh, *, namespace: str = MANAGEMENT_NAMESPACE) -> None:
    """Drop the kept `-previous` root once nothing can need it (absent is fine)."""
    name = previous_root_secret_name(vmesh.name)
    obj = management.get(R.SECRET, name, namespace)
    if obj is not None:
        _check_owned(management, obj, namespace, name)
        management.delete(R.SECRET, name, namespace, resource_version=_rv(obj))
        log.info("deleted the previous root CA of virtual mesh %s", vmesh.name)


def _generate(vmesh: VirtualMesh) -> CertificateAuthority:
    trust = vmesh.spec.trust
    generated = trust.shared.root_certificate_authority.generated if trust and trust.shared else None
    assert generated is not None  # INVARIANT: the model admits exactly one of `generated` and `secret`
    return CertificateAuthority.generate(
        RootSettings(KeyType(generated.key_algorithm.value), generated.ttl_days, generated.org_name)
    )


def _root_secret(name: str, namespace: str, vmesh: str, ca: CertificateAuthority, marker: str = "") -> Object:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "labels": {OWNER_LABEL: namespace, VIRTUAL_MESH_LABEL: vmesh},
    }
    if marker and marker != ROLLBACK:
        meta["annotations"] = {ROTATE_ROOT_ANNOTATION: marker}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": meta,
        "data": {k: base64.b64encode(v).decode() for k, v in sorted(ca.secret_data().items())},
    }


def _copy_secret(management: Cluster, source: Mapping[str, Any], name: str, namespace: str) -> None:
    """Make Secret ``name`` hold ``source``'s data and annotations (created, replaced, or left when equal)."""
    meta = source.get("metadata") or {}
    body: Object = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": source.get("type", "kubernetes.io/tls"),
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": dict(meta.get("labels") or {}),
            "annotations": dict(meta.get("annotations") or {}),
        },
        "data": dict(source.get("data") or {}),
    }
    current = management.get(R.SECRET, name, namespace)
    if current is None:
        management.create(body)
        return
    _check_owned(management, current, namespace, name)
    if current.get("data") == body["data"] and _annotations(current) == body["metadata"]["annotations"]:
        return
    body["metadata"]["resourceVersion"] = _rv(current)
    management.replace(body)


def _check_owned(management: Cluster, obj: Mapping[str, Any], namespace: str, name: str) -> None:
    if not is_owned(obj, namespace):
        raise ClusterError(
            f"Secret `{namespace}/{name}` exists and meshrules does not own it",
            code=NOT_OWNED,
            location=Location(cluster=management.name, kind="Secret", namespace=namespace, name=name),
            hint="to bring your own root, reference it from `rootCertificateAuthority.secret` instead",
        )


def _annotations(obj: Mapping[str, Any]) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("annotations") or {})


def _rv(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion", ""))


def _secret_data(obj: Mapping[str, object]) -> dict[str, bytes]:
    raw = obj.get("data")
    out: dict[str, bytes] = {}
    for key, value in raw.items() if isinstance(raw, Mapping) else ():
        try:
            out[str(key)] = base64.b64decode(str(value), validate=True)
        except binascii.Error:
            continue
    return out


# --- one pass --------------------------------------------------------------------------------------


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
) -> TrustPass:
    """One pass of the management side for every VirtualMesh with shared trust (see the module docstring).

    ``virtual_meshes`` should be read live: their `status.trust` holds the rotation to resume and
    their annotations the rotate-root request. One VirtualMesh's failure is its status only.
    """
    now = now or datetime.now(UTC)
    outcomes: list[SigningOutcome] = []
    statuses: dict[str, VirtualMeshTrust] = {}
    for vmesh in sorted(virtual_meshes, key=lambda v: (v.namespace, v.name)):
        trust = vmesh.spec.trust
        if trust is None or trust.shared is None:
            continue
        status, found = _reconcile_virtual_mesh(management, clusters, vmesh, meshes, namespace, now)
        statuses[vmesh.ref] = status
        outcomes.extend(found)
    return TrustPass(tuple(outcomes), statuses)


def _previous_status(vmesh: VirtualMesh) -> tuple[RotationStatus | None, RotateRootRecord | None]:
    """The rotation and rotate-root record saved in the VirtualMesh's status (None when absent or unreadable)."""
    block = (vmesh.status or {}).get("trust")
    if not isinstance(block, Mapping):
        return None, None
    rotation: RotationStatus | None = None
    record: RotateRootRecord | None = None
    try:
        rotation = RotationStatus.model_validate(block["rotation"]) if block.get("rotation") else None
    except ValueError:
        log.warning("trust: virtual mesh %s: unreadable status.trust.rotation is ignored", vmesh.name)
    try:
        record = RotateRootRecord.model_validate(block["rotateRoot"]) if block.get("rotateRoot") else None
    except ValueError:
        log.warning("trust: virtual mesh %s: unreadable status.trust.rotateRoot is ignored", vmesh.name)
    return rotation, record


def _reconcile_virtual_mesh(
    management: Cluster,
    clusters: Mapping[str, Cluster],
    vmesh: VirtualMesh,
    meshes: Sequence[Mesh],
    namespace: str,
    now: datetime,
) -> tuple[VirtualMeshTrust, list[SigningOutcome]]:
    rotation, record = _previous_status(vmesh)
    findings: list[Finding] = []
    marker = vmesh.metadata.annotations.get(ROTATE_ROOT_ANNOTATION, "").strip()
    generated = _is_generated(vmesh)
    try:
        ca = ensure_root(management, vmesh, namespace=namespace, marker=marker)
        assert ca is not None  # INVARIANT: only VirtualMeshes with shared trust get here
        if marker and (record is None or record.value != marker):
            handled = _on_rotate_root(management, vmesh, marker, rotation, generated, namespace)
            if handled is None:
                findings.append(
                    Finding(ROTATE_ROOT_REFUSED, f"rotate-root `{marker}` waits for the rotation in progress")
                )
            else:
                record = handled
                ca = ensure_root(management, vmesh, namespace=namespace, marker=marker) or ca
        previous_ca = read_previous_root(management, vmesh, namespace=namespace) if generated else None
    except MeshrulesError as err:
        log.warning("trust: virtual mesh %s: %s", vmesh.name, err.message)
        failed = SigningOutcome(vmesh.name, management.name, SigningAction.FAILED, err.message, err.code)
        status = VirtualMeshTrust(
            rotation=rotation, rotate_root=record, findings=(TrustFinding(code=err.code, message=err.message),)
        )
        return status, [failed]

    authorities = {ca.root_fingerprint: ca}
    if previous_ca is not None:
        authorities.setdefault(previous_ca.root_fingerprint, previous_ca)
    targets = trust_targets([vmesh], meshes, {vmesh.name: ca})
    members: dict[str, LiveMember] = {}
    failed_members: dict[str, SigningOutcome] = {}
    for target in targets:
        mesh = target.mesh
        cluster = clusters.get(mesh.cluster)
        ex: X.Exchange | None = None
        if cluster is None:
            failed_members[mesh.name] = SigningOutcome(
                mesh.name, mesh.cluster, SigningAction.FAILED, f"cluster `{mesh.cluster}` is not registered"
            )
        else:
            try:
                ex = X.read_exchange(cluster, mesh.namespace, mesh.name, namespace)
            except MeshrulesError as err:
                failed_members[mesh.name] = SigningOutcome(
                    mesh.name, mesh.cluster, SigningAction.FAILED, err.message, err.code
                )
                cluster = None
        members[mesh.name] = LiveMember(mesh, cluster, ex)

    roots = _known_roots(authorities, members)
    listed = {ref.name for ref in vmesh.spec.meshes}
    step = drive_rotation(rotation, ca.root_fingerprint, members, listed, roots, owner=namespace, now=now)
    rotation = step.status
    findings.extend(step.findings)
    active = running(rotation)
    enrolled_roots = {m.exchange.issuing_root for m in members.values() if m.exchange is not None} - {None}
    settled = not active and enrolled_roots <= {ca.root_fingerprint}
    if settled and previous_ca is not None:
        # Nothing can need the retired root any more: no rotation runs and none is about to start.
        try:
            delete_previous_root(management, vmesh, namespace=namespace)
        except MeshrulesError as err:
            findings.append(Finding(err.code, err.message))

    outcomes: list[SigningOutcome] = []
    for target in targets:
        name = target.mesh.name
        if name in failed_members:
            outcomes.append(failed_members[name])
            continue
        member = members[name]
        enrolled = member.exchange is not None and member.exchange.issuing_root is not None
        if not enrolled and (active or not settled):
            why = "the rotation in progress is done" if active else "the members share the root (see findings)"
            outcomes.append(_hold(member, f"enrolls once {why}"))
            continue
        if rotation is not None and active:
            root = request_root(rotation, name, member.exchange)
        else:
            root = steady_root(ca.root_fingerprint, member.exchange)
        assert member.cluster is not None  # INVARIANT: a member without a client failed above
        try:
            outcomes.append(_serve(member.cluster, replace(target, root=root), authorities, namespace, now))
        except MeshrulesError as err:
            log.warning("trust: mesh %s: %s", name, err.message)
            outcomes.append(SigningOutcome(name, target.mesh.cluster, SigningAction.FAILED, err.message, err.code))
    status = VirtualMeshTrust(
        root_fingerprint=ca.root_fingerprint,
        meshes=tuple(_member_status(o) for o in sorted(outcomes, key=lambda o: o.mesh)),
        rotation=rotation,
        rotate_root=record,
        findings=tuple(TrustFinding(code=f.code, message=f.message) for f in findings),
    )
    return status, outcomes


def _on_rotate_root(
    management: Cluster,
    vmesh: VirtualMesh,
    marker: str,
    rotation: RotationStatus | None,
    generated: bool,
    namespace: str,
) -> RotateRootRecord | None:
    """Act on a new rotate-root value; None when it must wait for the rotation in progress."""

    def refused(code: str, message: str) -> RotateRootRecord:
        log.warning("trust: virtual mesh %s: rotate-root `%s` refused: %s", vmesh.name, marker, message)
        return RotateRootRecord(value=marker, outcome="Refused", code=code, message=message)

    if not generated:
        return refused(
            ROTATE_ROOT_REFUSED,
            "the root is not generated by meshrules: point `rootCertificateAuthority.secret` at the new root instead",
        )
    if marker == ROLLBACK:
        if rotation is None or not running(rotation):
            return refused(ROTATE_ROOT_REFUSED, "no rotation is in progress to roll back")
        if not rotation.reversible:
            return refused(
                ROTATION_ERROR,
                f"the rotation cannot be rolled back in phase {rotation.phase.value}: the old root is leaving "
                "the bundles; rotate forward again instead",
            )
        previous = read_previous_root(management, vmesh, namespace=namespace)
        if previous is None or previous.root_fingerprint != rotation.from_root:
            return refused(ROTATE_ROOT_REFUSED, "the root the rotation started from is not kept any more")
        restore_previous_root(management, vmesh, namespace=namespace)
        return RotateRootRecord(value=marker, outcome="RolledBack")
    if running(rotation):
        return None
    rotate_generated_root(management, vmesh, marker, namespace=namespace)
    return RotateRootRecord(value=marker, outcome="Rotated")


def _known_roots(authorities: Mapping[str, CertificateAuthority], members: Mapping[str, LiveMember]) -> dict[str, str]:
    """PEM of every root at hand by fingerprint: the CAs, and roots the exchanges carry (answers, bundles)."""
    roots = {fp: ca.root_pem for fp, ca in authorities.items()}
    for member in members.values():
        ex = member.exchange
        if ex is None:
            continue
        for text in (ex.get(X.ROOT_CERTIFICATE), ex.get(X.BUNDLE)):
            for pem in split_bundle(text):
                for fp in bundle_fingerprints(pem):
                    roots.setdefault(fp, pem)
    return roots


def _is_generated(vmesh: VirtualMesh) -> bool:
    trust = vmesh.spec.trust
    return (
        trust is not None and trust.shared is not None and trust.shared.root_certificate_authority.generated is not None
    )


def _member_status(outcome: SigningOutcome) -> MemberTrust:
    return MemberTrust(
        name=outcome.mesh,
        cluster=outcome.cluster,
        action=outcome.action,
        detail=outcome.detail or None,
        code=outcome.code or None,
        issuing_root=outcome.issuing_root or None,
        expires=outcome.expires,
    )


def _hold(member: LiveMember, detail: str) -> SigningOutcome:
    """A member not enrolled while the others are not settled on the root: nothing is signed for
    it, and an answer not yet installed is taken back (its root may be the one leaving)."""
    mesh, ex = member.mesh, member.exchange
    if member.cluster is not None and ex is not None and ex.get(X.CERTIFICATE) and not ex.installed:
        X.withdraw_answer(member.cluster, ex)
        log.info("trust: withdrew the unused answer of mesh %s until the rotation is done", mesh.name)
    return SigningOutcome(mesh.name, mesh.cluster, SigningAction.WAITING_FOR_ROTATION, detail)


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
            outcomes.append(_serve(cluster, target, authorities, owner, now or datetime.now(UTC)))
        except MeshrulesError as err:
            log.warning("trust: mesh %s: %s", mesh.name, err.message)
            outcomes.append(SigningOutcome(mesh.name, mesh.cluster, SigningAction.FAILED, err.message, err.code))
    return tuple(outcomes)


def installed_validity(ex: X.Exchange | None) -> Validity | None:
    """The validity of the intermediate installed for the exchange's current request (None: not known)."""
    if ex is None or not ex.installed or not ex.get(X.CERTIFICATE):
        return None
    try:
        return certificate_validity(ex.get(X.CERTIFICATE), X.CERTIFICATE)
    except TrustError:
        return None


def _serve(
    cluster: Cluster,
    target: EnrollmentTarget,
    authorities: Mapping[str, CertificateAuthority],
    owner: str,
    now: datetime,
) -> SigningOutcome:
    mesh = target.mesh
    ex = X.read_exchange(cluster, mesh.namespace, mesh.name, owner)
    validity = installed_validity(ex)
    issuing = (ex.issuing_root if ex is not None else None) or ""

    def outcome(action: SigningAction, detail: str = "", code: str = "") -> SigningOutcome:
        expires = validity.not_after if validity is not None else None
        return SigningOutcome(mesh.name, mesh.cluster, action, detail, code, issuing, expires)

    wanted_mesh = json.dumps(mesh.to_wire(), sort_keys=True)
    if ex is None or ex.get(X.MESH) != wanted_mesh or ex.get(X.ROOT) != target.root:
        # No request yet, the mesh changed (trust domain, revision), or its request must be from
        # another root: a new request; `open_request` drops the old answer so it cannot be installed.
        X.open_request(cluster, ex, mesh, target.root, owner)
        log.info("trust: requested an intermediate for mesh %s from root %s…", mesh.name, target.root[:16])
        return outcome(SigningAction.REQUESTED)
    ca = authorities.get(target.root)
    if ex.installed:
        detail = f"issued from root {ex.get(X.INSTALLED_ROOT)[:16]}…"
        if validity is None or not validity.renewal_due(now, RENEW_FRACTION):
            return outcome(SigningAction.INSTALLED, detail)
        if ca is None:
            return outcome(
                SigningAction.INSTALLED, f"{detail}; renewal due but no CA for the root is at hand", ROOT_ERROR
            )
        if min(now + target.policy.max_ttl, ca.not_after) <= validity.not_after:
            return outcome(
                SigningAction.INSTALLED,
                f"{detail}; it expires {validity.not_after:%Y-%m-%d} with its root and cannot be renewed: "
                "rotate the root",
                RENEWAL_BLOCKED,
            )
        X.open_request(cluster, ex, mesh, target.root, owner)
        log.info(
            "trust: renewing the intermediate of mesh %s (expires %s)", mesh.name, f"{validity.not_after:%Y-%m-%d}"
        )
        return outcome(SigningAction.REQUESTED, f"renewing: the intermediate expires {validity.not_after:%Y-%m-%d}")
    csr = ex.get(X.CSR)
    if not csr or ex.get(X.CSR_NONCE) != ex.get(X.NONCE):
        return outcome(SigningAction.WAITING_FOR_CSR)
    if ex.answered:
        refused = ex.get(X.REFUSED)
        if refused:
            code, _, message = refused.partition(": ")
            return outcome(SigningAction.REFUSED, message, code)
        return outcome(SigningAction.WAITING_FOR_INSTALL)
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
