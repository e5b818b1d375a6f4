"""Live root rotation: the phases of `meshrules.trust.rotation`, driven through the CSR exchange.

Beside `meshrules.kube.signing`, which calls `drive_rotation` once per pass for each VirtualMesh
and then serves each member's request from the root `request_root` names; over
`meshrules.kube.exchange`. The offline machine writes each mesh's CA objects itself. Here the
management side may write only the exchange ConfigMaps of registered clusters, so every phase is
an instruction the agent carries out, and every wait reads what the agent reports (``served``, the
bundle acknowledgement ``bundleWritten``, ``installedRoot``):

| phase | the management side writes | done when |
|---|---|---|
| `ADDING_ROOT` | ``bundle`` = old + new, one member per step | every member asked |
| `WAITING_FOR_BUNDLES` | nothing | every member acknowledged its bundle and serves the new root |
| `ISSUING` | a request from the new root, one member per step | every member asked |
| `WAITING_FOR_CHAINS` | (answers, through `signing`) | every member installed from the new root and issues from it |
| `REMOVING_OLD_ROOT` | ``bundle`` = new, one member per step | every member asked |
| `WAITING_FOR_REMOVAL` | nothing | no member serves the old root |

State, resumability and rollback are the offline machine's: the `RotationStatus` is the
VirtualMesh's `status.trust.rotation`, read back at the start of each pass; one step per pass; each
step looks at the exchange before writing, so a pass whose status write was lost is repaired by
redoing its step. `rollback_rotation` reverses it until the old root starts leaving the bundles.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime

from meshrules.errors import MeshrulesError, TrustError
from meshrules.kube import exchange as X
from meshrules.kube.cluster import Cluster
from meshrules.trust import MeshIdentity, PhaseRecord, RotationPhase, RotationStatus, rollback_rotation
from meshrules.trust.objects import bundle_pem
from meshrules.trust.rotation import ROTATION_ERROR, step_phases

log = logging.getLogger(__name__)

_ORDER = tuple(RotationPhase)


@dataclass(frozen=True, slots=True)
class LiveMember:
    """A member mesh as one pass sees it: its identity, its cluster's client, its exchange as read.

    ``cluster`` is None when the mesh's cluster cannot be used now (not registered, unreadable).
    """

    mesh: MeshIdentity
    cluster: Cluster | None
    exchange: X.Exchange | None


@dataclass(frozen=True, slots=True)
class Finding:
    """Something a person should know about a VirtualMesh's trust (one line, with its code)."""

    code: str
    message: str


@dataclass(frozen=True)
class RotationPass:
    """What `drive_rotation` did: the status to save and what to tell the user."""

    status: RotationStatus | None
    findings: tuple[Finding, ...] = ()


def running(status: RotationStatus | None) -> bool:
    """Whether a rotation is in progress (started and not done)."""
    return status is not None and not status.done


def request_root(status: RotationStatus, name: str, exchange: X.Exchange | None) -> str:
    """The root member ``name``'s request must be from while ``status`` runs.

    Only the new root once this member's ISSUING step was taken: before that, not every member
    is known to trust it. Before, the old root — or, in a rolled-back rotation, the root the
    rotation first started from, which no bundle has lost, so a member that still has it keeps it.
    """
    phase = _ORDER.index(status.phase)
    issuing = _ORDER.index(RotationPhase.ISSUING)
    if phase > issuing or (phase == issuing and name not in status.pending):
        return status.to_root
    current = exchange.get(X.ROOT) if exchange is not None else ""
    if status.rolled_back and current == status.to_root:
        return current
    return status.from_root


def steady_root(desired: str, exchange: X.Exchange | None) -> str:
    """Outside a rotation: the desired root, except for a mesh enrolled under another root.

    Moving an enrolled mesh to another root at once would leave its peers unable to verify it;
    only a rotation moves it (and one starts whenever it can).
    """
    issuing = exchange.issuing_root if exchange is not None else None
    if exchange is not None and issuing is not None and issuing != desired and exchange.get(X.ROOT):
        return exchange.get(X.ROOT)
    return desired


def drive_rotation(
    previous: RotationStatus | None,
    desired: str,
    members: Mapping[str, LiveMember],
    listed: Collection[str],
    roots: Mapping[str, str],
    *,
    owner: str,
    now: datetime,
) -> RotationPass:
    """One step of a VirtualMesh's rotation: start, roll back, or advance it; at most one member's write.

    ``previous`` is the saved status, ``desired`` the fingerprint of the VirtualMesh's root now,
    ``members`` every discovered member by name, ``listed`` the member names of the VirtualMesh's
    spec and ``roots`` the PEM of every root at hand by fingerprint. A rotation starts when every
    enrolled member issues from one root and it is not ``desired``; members not enrolled then
    wait for it to finish.
    """
    if not running(previous):
        return _maybe_start(previous, desired, members, roots, now)
    assert previous is not None  # INVARIANT: `running` holds only for a status
    status = previous
    gone = tuple(n for n in status.meshes if n not in listed)
    if gone:
        # Removed from the VirtualMesh: it need not trust the others any more. (A member merely
        # not discovered now stays, and the waits wait for it.)
        log.info("trust rotation: %s left the virtual mesh", ", ".join(gone))
        kept = {k: tuple(n for n in getattr(status, k) if n not in gone) for k in ("meshes", "pending", "waiting_on")}
        return RotationPass(status.model_copy(update=kept))
    findings: list[Finding] = []
    if desired != status.to_root:
        if desired == status.from_root and status.reversible:
            return RotationPass(rollback_rotation(status, now=now))
        if desired == status.from_root:
            findings.append(
                Finding(
                    ROTATION_ERROR,
                    f"the root was changed back to `{desired[:16]}…` in phase {status.phase.value}, after the old "
                    "root began leaving the bundles: the rotation finishes, then a new one moves the meshes back",
                )
            )
        else:
            findings.append(
                Finding(
                    ROTATION_ERROR,
                    f"the root changed to `{desired[:16]}…` during a rotation toward `{status.to_root[:16]}…`: "
                    "that rotation finishes first, then a new one starts",
                )
            )
    late = sorted(
        n
        for n, m in members.items()
        if n not in status.meshes
        and m.exchange is not None
        and m.exchange.issuing_root in (status.from_root, status.to_root)
    )
    if late and status.reversible:
        # Enrolled while the rotation ran (an answer installed just before it started): it joins,
        # and the phases start over — every step already taken is a no-op the second time.
        log.info("trust rotation: %s joins; phases start over", ", ".join(late))
        meshes = tuple(sorted((*status.meshes, *late)))
        record = PhaseRecord(phase=status.phase, to_root=status.to_root, completed_at=now)
        return RotationPass(
            status.model_copy(
                update={
                    "phase": RotationPhase.ADDING_ROOT,
                    "meshes": meshes,
                    "pending": meshes,
                    "waiting_on": (),
                    "history": (*status.history, record),
                }
            ),
            tuple(findings),
        )
    if late:
        findings.append(
            Finding(
                ROTATION_ERROR,
                f"mesh `{late[0]}` was enrolled during the rotation after the point of no return; "
                "it is moved to the new root but its bundle keeps the old one until the next rotation",
            )
        )
    try:
        status = advance_live_rotation(status, members, roots, owner=owner, now=now)
    except MeshrulesError as err:
        findings.append(Finding(err.code, err.message))
    return RotationPass(status, tuple(findings))


def _maybe_start(
    previous: RotationStatus | None,
    desired: str,
    members: Mapping[str, LiveMember],
    roots: Mapping[str, str],
    now: datetime,
) -> RotationPass:
    enrolled = {
        name: root
        for name, m in members.items()
        if m.exchange is not None and (root := m.exchange.issuing_root) is not None
    }
    current = sorted(set(enrolled.values()))
    if not enrolled or current == [desired]:
        return RotationPass(previous)
    if len(current) > 1:
        return RotationPass(
            previous,
            (
                Finding(
                    ROTATION_ERROR,
                    f"member meshes issue from {len(current)} different roots; no rotation can start",
                ),
            ),
        )
    if current[0] not in roots:
        return RotationPass(
            previous,
            (
                Finding(
                    ROTATION_ERROR, f"the certificate of root `{current[0][:16]}…` the members issue from is unknown"
                ),
            ),
        )
    names = tuple(sorted(enrolled))
    log.info("trust rotation started: root %s… -> %s… (%s)", current[0][:16], desired[:16], ", ".join(names))
    return RotationPass(
        RotationStatus(
            phase=RotationPhase.ADDING_ROOT,
            from_root=current[0],
            to_root=desired,
            meshes=names,
            pending=names,
            started_at=now,
        )
    )


def advance_live_rotation(
    status: RotationStatus,
    members: Mapping[str, LiveMember],
    roots: Mapping[str, str],
    *,
    owner: str,
    now: datetime,
) -> RotationStatus:
    """One step: one member's exchange write, or one look at what the members report.

    Raises `TrustError` (nothing written) when the member to act on cannot be reached or a root's
    certificate is unknown; the next pass tries again.
    """

    def behind() -> tuple[str, ...]:
        if status.phase is not RotationPhase.REMOVING_OLD_ROOT:
            return ()
        # Drift guard: removing the old root from any bundle while some member still issues from
        # it would cut that member off. `request_root` already moves it to the new root.
        return tuple(n for n in status.meshes if not _issues_from(members.get(n), status.to_root))

    return step_phases(
        status,
        caught_up=lambda name: caught_up(status.phase, status, members.get(name)),
        act=lambda name: _act(status.phase, status, _reachable(members.get(name), name), roots, owner),
        behind=behind,
        now=now,
    )


def caught_up(phase: RotationPhase, status: RotationStatus, member: LiveMember | None) -> bool:
    """Whether ``member``'s reports show it has done what the waiting ``phase`` waits for."""
    ex = member.exchange if member is not None else None
    served = ex.served if ex is not None else None
    if ex is None or served is None or not ex.bundle_applied:
        return False
    if status.to_root not in served.bundle or status.to_root not in ex.bundle_roots:
        return False
    if phase is RotationPhase.WAITING_FOR_BUNDLES:
        return True
    if not _issues_from(member, status.to_root) or not ex.installed or ex.get(X.ROOT) != status.to_root:
        return False
    if phase is RotationPhase.WAITING_FOR_CHAINS:
        return True
    return status.from_root not in served.bundle and status.from_root not in ex.bundle_roots


def _issues_from(member: LiveMember | None, root: str) -> bool:
    ex = member.exchange if member is not None else None
    served = ex.served if ex is not None else None
    return served is not None and served.issuer_root == root and ex is not None and ex.get(X.INSTALLED_ROOT) == root


def _reachable(member: LiveMember | None, name: str) -> tuple[LiveMember, Cluster, X.Exchange]:
    if member is None or member.cluster is None or member.exchange is None:
        raise TrustError(
            f"mesh `{name}` of the rotation cannot be reached now; the rotation waits for it",
            code=ROTATION_ERROR,
            hint="its cluster must be registered and reachable, and the mesh discovered",
        )
    return member, member.cluster, member.exchange


def _act(
    phase: RotationPhase,
    status: RotationStatus,
    reached: tuple[LiveMember, Cluster, X.Exchange],
    roots: Mapping[str, str],
    owner: str,
) -> None:
    member, cluster, ex = reached
    if phase is RotationPhase.ISSUING:
        if ex.get(X.ROOT) != status.to_root:
            X.open_request(cluster, ex, member.mesh, status.to_root, owner)
            log.info("trust rotation: requested an intermediate of %s from the new root", member.mesh.name)
        return
    wanted = (status.from_root, status.to_root) if phase is RotationPhase.ADDING_ROOT else (status.to_root,)
    if status.rolled_back and status.from_root not in roots:
        # Rolled back before the abandoned root reached any exchange (every answer and bundle
        # naming it would carry its certificate): no mesh trusts or issues from it, and its
        # generated Secret was replaced by the restored root, so it is simply left out.
        wanted = (status.to_root,)
    if ex.bundle_roots == frozenset(wanted):
        return  # asked already (a pass whose status write was lost)
    X.ask_bundle(cluster, ex, bundle_pem([_pem(roots, r) for r in wanted]))
    log.info("trust rotation: asked %s to trust %d root(s)", member.mesh.name, len(wanted))


def _pem(roots: Mapping[str, str], fingerprint: str) -> str:
    pem = roots.get(fingerprint)
    if pem is None:
        raise TrustError(
            f"the certificate of root `{fingerprint[:16]}…` is not at hand",
            code=ROTATION_ERROR,
            hint="it is read from the root Secrets and the exchanges' answers; restore the root's Secret",
        )
    return pem
