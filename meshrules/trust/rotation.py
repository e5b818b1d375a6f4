"""Root rotation without downtime: a phased, resumable, reversible state machine.

Every member mesh must trust every other member's issuing root at every instant. The phases keep
that true whatever order meshes reload in:

1. ``ADDING_ROOT`` — add the new root to each mesh's trust bundle (old + new);
2. ``WAITING_FOR_BUNDLES`` — until every mesh *serves* a bundle holding the new root;
3. ``ISSUING`` — issue each mesh a new intermediate from the new root (CSR round trip);
4. ``WAITING_FOR_CHAINS`` — until every mesh serves the new chain;
5. ``REMOVING_OLD_ROOT`` — drop the old root from each bundle (no way back from here);
6. ``WAITING_FOR_REMOVAL`` — until no mesh serves the old root; then ``DONE``.

The state is a `RotationStatus` (the VirtualMesh's `status.trust.rotation`). `advance_rotation` does
one step — at most one mesh's writes — and returns the next status; the caller persists it before
the next step. Each step is idempotent (it looks at what is written before writing), so a crash
anywhere, even between a write and the save of the status, is repaired by advancing again from the
last saved status. A rollback before step 5 is the same machine pointed back at the old root.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from meshrules.discovery.trust_bundle import bundle_fingerprints
from meshrules.errors import TrustError
from meshrules.model.base import ApiModel
from meshrules.trust.agent import (
    discard_pending,
    install_intermediate,
    issuer_root,
    prepare_intermediate,
    read_bundle,
    write_bundle,
)
from meshrules.trust.ca import CertificateAuthority
from meshrules.trust.cluster import TrustCluster
from meshrules.trust.csr import IssuedChain, SigningPolicy, sign_intermediate
from meshrules.trust.keys import KeyType
from meshrules.trust.mesh import MeshIdentity

log = logging.getLogger(__name__)

ROTATION_ERROR = "MR0721"


class RotationPhase(StrEnum):
    """Where a rotation is (see the module docstring for what each phase does)."""

    ADDING_ROOT = "ADDING_ROOT"
    WAITING_FOR_BUNDLES = "WAITING_FOR_BUNDLES"
    ISSUING = "ISSUING"
    WAITING_FOR_CHAINS = "WAITING_FOR_CHAINS"
    REMOVING_OLD_ROOT = "REMOVING_OLD_ROOT"
    WAITING_FOR_REMOVAL = "WAITING_FOR_REMOVAL"
    DONE = "DONE"


_ORDER = tuple(RotationPhase)
# INVARIANT: until the old root leaves a bundle, every mesh still trusts it, so pointing the
# machine back at it is as safe as going forward.
REVERSIBLE_PHASES = frozenset(_ORDER[: _ORDER.index(RotationPhase.REMOVING_OLD_ROOT)])
WAITING_PHASES = frozenset(
    {RotationPhase.WAITING_FOR_BUNDLES, RotationPhase.WAITING_FOR_CHAINS, RotationPhase.WAITING_FOR_REMOVAL}
)


class PhaseRecord(ApiModel):
    """A phase that finished, and when (toward ``to_root``)."""

    phase: RotationPhase
    to_root: str
    completed_at: datetime


class RotationStatus(ApiModel):
    """A rotation's state: enough to resume it after a crash (VirtualMesh `status.trust.rotation`).

    ``from_root`` is the root being retired and ``to_root`` the one every mesh ends on (both SHA-256
    fingerprints); after a rollback they are swapped and ``rolled_back`` is true. ``pending`` lists
    the meshes the current phase has still to do; ``waiting_on`` the meshes a waiting phase waits for.
    """

    phase: RotationPhase
    from_root: str
    to_root: str
    meshes: tuple[str, ...]
    pending: tuple[str, ...] = ()
    waiting_on: tuple[str, ...] = ()
    rolled_back: bool = False
    started_at: datetime
    history: tuple[PhaseRecord, ...] = ()

    @property
    def done(self) -> bool:
        """Whether the rotation (or its rollback) has finished."""
        return self.phase is RotationPhase.DONE

    @property
    def reversible(self) -> bool:
        """Whether `rollback_rotation` may still be used (the old root is in every bundle)."""
        return self.phase in REVERSIBLE_PHASES


@dataclass(frozen=True)
class RotationScope:
    """What a rotation works on: the member meshes, their clusters and the CAs by root fingerprint.

    ``authorities`` must hold the CA of ``to_root`` (and of ``from_root`` to be able to roll back).
    """

    meshes: Sequence[MeshIdentity]
    clusters: Mapping[str, TrustCluster]
    authorities: Mapping[str, CertificateAuthority]
    policy: SigningPolicy = field(default_factory=SigningPolicy)
    key_type: KeyType = KeyType.ECDSA_P256

    def mesh(self, name: str) -> MeshIdentity:
        """The member mesh ``name``."""
        for mesh in self.meshes:
            if mesh.name == name:
                return mesh
        raise TrustError(
            f"mesh `{name}` of the rotation is not a member any more",
            code=ROTATION_ERROR,
            hint="finish or roll back the rotation with the members it started with",
        )

    def cluster(self, mesh: MeshIdentity) -> TrustCluster:
        """The cluster ``mesh`` runs in."""
        try:
            return self.clusters[mesh.cluster]
        except KeyError:
            raise TrustError(
                f"cluster `{mesh.cluster}` of mesh `{mesh.name}` is not known",
                code=ROTATION_ERROR,
                hint="register the cluster, or remove the mesh from the VirtualMesh before rotating",
            ) from None

    def authority(self, root: str) -> CertificateAuthority:
        """The CA whose root has fingerprint ``root``."""
        ca = self.authorities.get(root)
        if ca is None:
            raise TrustError(
                f"no CA for root `{root[:16]}…` is at hand",
                code=ROTATION_ERROR,
                hint="the rotation needs the key of the root it issues from; restore it on the management side",
            )
        return ca


def enroll_mesh(
    cluster: TrustCluster,
    mesh: MeshIdentity,
    ca: CertificateAuthority,
    *,
    policy: SigningPolicy | None = None,
    key_type: KeyType = KeyType.ECDSA_P256,
    now: datetime | None = None,
) -> IssuedChain:
    """The whole CSR round trip for one mesh: the agent asks, the CA signs, the agent installs."""
    csr = prepare_intermediate(cluster, mesh, key_type)
    chain = sign_intermediate(ca, csr, mesh, policy=policy, now=now)
    install_intermediate(cluster, mesh, chain)
    return chain


def start_rotation(scope: RotationScope, to_root: str, *, now: datetime | None = None) -> RotationStatus:
    """Begin rotating every member mesh onto the CA of ``to_root``.

    Every member must already be enrolled under one common root (the one retired); refused
    otherwise, because a rotation cannot keep trust that does not exist yet.
    """
    scope.authority(to_root)
    if not scope.meshes:
        raise TrustError("a rotation needs at least one member mesh", code=ROTATION_ERROR)
    current = {m.name: issuer_root(scope.cluster(m), m, read_bundle(scope.cluster(m), m)) for m in scope.meshes}
    missing = sorted(name for name, root in current.items() if root is None)
    if missing:
        raise TrustError(
            f"mesh `{missing[0]}` has no intermediate from a meshrules root yet",
            code=ROTATION_ERROR,
            hint="enroll every member mesh first; a rotation moves meshes that already share a root",
        )
    roots = sorted({r for r in current.values() if r is not None})
    if len(roots) > 1:
        raise TrustError(
            "member meshes issue from different roots",
            code=ROTATION_ERROR,
            hint="enroll every member under the same root before rotating it",
        )
    if roots[0] == to_root:
        raise TrustError("member meshes already issue from the new root", code=ROTATION_ERROR)
    names = tuple(m.name for m in scope.meshes)
    log.info("trust rotation started: root %s… -> %s…", roots[0][:16], to_root[:16])
    return RotationStatus(
        phase=RotationPhase.ADDING_ROOT,
        from_root=roots[0],
        to_root=to_root,
        meshes=names,
        pending=names,
        started_at=now or datetime.now(UTC),
    )


def rollback_rotation(status: RotationStatus, *, now: datetime | None = None) -> RotationStatus:
    """Point a rotation back at the root it started from; refused once the old root is being removed.

    The reversed rotation runs the same phases: the old root is still in every bundle, so adding
    it is a no-op and the meshes get intermediates from it again before the new root is removed.
    """
    if not status.reversible:
        raise TrustError(
            f"the rotation cannot be rolled back in phase `{status.phase.value}`",
            code=ROTATION_ERROR,
            hint="the old root has left (or is leaving) the trust bundles; rotate forward again instead",
        )
    now = now or datetime.now(UTC)
    log.info("trust rotation rolled back in phase %s", status.phase.value)
    return status.model_copy(
        update={
            "phase": RotationPhase.ADDING_ROOT,
            "from_root": status.to_root,
            "to_root": status.from_root,
            "rolled_back": not status.rolled_back,
            "pending": status.meshes,
            "waiting_on": (),
            "history": (*status.history, PhaseRecord(phase=status.phase, to_root=status.to_root, completed_at=now)),
        }
    )


def advance_rotation(status: RotationStatus, scope: RotationScope, *, now: datetime | None = None) -> RotationStatus:
    """One step: one mesh's writes, or one look at what the meshes serve. Persist the result.

    A waiting phase whose meshes have not caught up returns the status with ``waiting_on`` set and
    nothing else changed; call again later.
    """
    now = now or datetime.now(UTC)
    return step_phases(
        status,
        caught_up=lambda name: _caught_up(status.phase, status, scope, scope.mesh(name)),
        act=lambda name: _act(status.phase, status, scope, scope.mesh(name), now),
        now=now,
    )


def step_phases(
    status: RotationStatus,
    *,
    caught_up: Callable[[str], bool],
    act: Callable[[str], None],
    behind: Callable[[], tuple[str, ...]] = tuple,
    now: datetime,
) -> RotationStatus:
    """The phase machine both drivers share: one member's ``act`` in an acting phase, or one look.

    In a waiting phase the members not ``caught_up`` become ``waiting_on``; when none is left the
    next phase begins. In an acting phase, members ``behind`` (a driver's guard: not ready for
    this phase's write) are waited on first; otherwise the first pending member is acted on.
    """
    phase = status.phase
    if phase is RotationPhase.DONE:
        return status
    if phase in WAITING_PHASES:
        waiting = tuple(name for name in status.meshes if not caught_up(name))
        if waiting:
            return status if waiting == status.waiting_on else status.model_copy(update={"waiting_on": waiting})
        return next_phase(status, now)
    late = behind()
    if late:
        return status if late == status.waiting_on else status.model_copy(update={"waiting_on": late})
    if status.pending:
        act(status.pending[0])
        status = status.model_copy(update={"pending": status.pending[1:], "waiting_on": ()})
    return status if status.pending else next_phase(status, now)


def run_rotation(
    status: RotationStatus,
    scope: RotationScope,
    *,
    now: Callable[[], datetime] | None = None,
    max_steps: int | None = None,
    on_step: Callable[[RotationStatus], None] | None = None,
) -> RotationStatus:
    """Advance until done, until the meshes must be waited for, or for ``max_steps`` steps.

    ``on_step`` receives every new status, to persist it before the next step runs.
    """
    clock = now or (lambda: datetime.now(UTC))
    steps = 0
    while not status.done and (max_steps is None or steps < max_steps):
        nxt = advance_rotation(status, scope, now=clock())
        steps += 1
        if nxt == status:
            break  # waiting: nothing changed
        status = nxt
        if on_step is not None:
            on_step(status)
        if status.waiting_on and status.phase in WAITING_PHASES:
            break
    return status


def next_phase(status: RotationStatus, now: datetime) -> RotationStatus:
    """The status of the phase after ``status``'s, with the finished phase in the history.

    Shared with the live driver (`meshrules.kube.rotation`), which runs the same phases through
    the CSR exchange.
    """
    nxt = _ORDER[_ORDER.index(status.phase) + 1]
    log.info("trust rotation: %s done, now %s", status.phase.value, nxt.value)
    return status.model_copy(
        update={
            "phase": nxt,
            "pending": () if nxt in WAITING_PHASES or nxt is RotationPhase.DONE else status.meshes,
            "waiting_on": (),
            "history": (*status.history, PhaseRecord(phase=status.phase, to_root=status.to_root, completed_at=now)),
        }
    )


def _act(phase: RotationPhase, status: RotationStatus, scope: RotationScope, mesh: MeshIdentity, now: datetime) -> None:
    cluster = scope.cluster(mesh)
    roots = read_bundle(cluster, mesh)
    if phase is RotationPhase.ADDING_ROOT:
        if status.to_root not in _fingerprints(roots):
            write_bundle(cluster, mesh, [*roots, scope.authority(status.to_root).root_pem])
    elif phase is RotationPhase.ISSUING:
        _ensure_issued(status, scope, cluster, mesh, roots, now)
    elif phase is RotationPhase.REMOVING_OLD_ROOT:
        # Drift guard: a mesh whose issuer was put back on the old root would be cut off by the
        # removal, so it gets its new-root intermediate first.
        _ensure_issued(status, scope, cluster, mesh, roots, now)
        kept = [r for r in read_bundle(cluster, mesh) if status.from_root not in bundle_fingerprints(r)]
        write_bundle(cluster, mesh, kept)


def _ensure_issued(
    status: RotationStatus,
    scope: RotationScope,
    cluster: TrustCluster,
    mesh: MeshIdentity,
    roots: Sequence[str],
    now: datetime,
) -> None:
    if issuer_root(cluster, mesh, roots) == status.to_root:
        discard_pending(cluster, mesh)  # a crash after install left it behind
        return
    enroll_mesh(cluster, mesh, scope.authority(status.to_root), policy=scope.policy, key_type=scope.key_type, now=now)


def _caught_up(phase: RotationPhase, status: RotationStatus, scope: RotationScope, mesh: MeshIdentity) -> bool:
    served = scope.cluster(mesh).reported_chain(mesh)
    if served is None or status.to_root not in served.bundle:
        return False
    if phase is RotationPhase.WAITING_FOR_BUNDLES:
        return True
    if served.issuer_root != status.to_root:
        return False
    return phase is RotationPhase.WAITING_FOR_CHAINS or status.from_root not in served.bundle


def _fingerprints(roots: Sequence[str]) -> frozenset[str]:
    return frozenset().union(*(bundle_fingerprints(r) for r in roots)) if roots else frozenset()
