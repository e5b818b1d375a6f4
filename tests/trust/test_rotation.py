"""Root rotation: at every instant every pair of member meshes trusts each other, whatever crashes.

The clusters are fakes whose meshes serve what they last loaded (`reload`), so propagation lag is
modelled; Hypothesis picks when meshes reload, where the rotation crashes (after any cluster write,
before its status is saved) and, in the second property, when it is rolled back. After every single
write and reload, both what is written and what is served must keep mTLS working between every
pair; the end state holds exactly one root.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshrules.errors import TrustError
from meshrules.model.discovery import MeshType
from meshrules.trust import (
    CertificateAuthority,
    FakeCluster,
    IssuerScheme,
    MeshIdentity,
    ReportedChain,
    RotationPhase,
    RotationScope,
    RotationStatus,
    advance_rotation,
    bundles_overlap,
    enroll_mesh,
    rollback_rotation,
    run_rotation,
    start_rotation,
    trust_each_other,
    written_chain,
)
from meshrules.trust.objects import PENDING_KEY_SECRET

from .conftest import ISTIO_1, ISTIO_2

# Enough chaos to crash inside every phase several times; the settle loop then finishes the job.
MAX_ACTIONS = 45
SETTLE_STEPS = 200


class SimulatedCrash(Exception):
    """The process dies right after a cluster write."""


@dataclass
class World:
    meshes: list[MeshIdentity]
    clusters: dict[str, FakeCluster]
    crash_in: int | None = None  # writes left before the armed crash
    checks: int = 0
    saved: str = ""
    log: list[str] = field(default_factory=list)

    def views(self) -> Iterator[list[ReportedChain]]:
        served = [self.clusters[m.cluster].reported_chain(m) for m in self.meshes]
        assert all(s is not None for s in served), "a mesh stopped serving a chain"
        yield [s for s in served if s is not None]
        yield [written_chain(self.clusters[m.cluster], m) for m in self.meshes]

    def check(self, _cluster: FakeCluster) -> None:
        """INVARIANT: served and written, each mesh pair overlaps and trusts the other's issuer."""
        self.checks += 1
        for view in self.views():
            for a in view:
                assert a.issuer_root is not None
                for b in view:
                    assert bundles_overlap(a.bundle, b.bundle), self.log
                    assert trust_each_other(a, b), self.log

    def maybe_crash(self, _cluster: FakeCluster) -> None:
        if self.crash_in is not None:
            self.crash_in -= 1
            if self.crash_in == 0:
                self.crash_in = None
                raise SimulatedCrash


def meshes_of(kind: MeshType, schemes: list[IssuerScheme]) -> list[MeshIdentity]:
    if kind is MeshType.ISTIO:
        return [MeshIdentity(f"istiod-istio-system-c{i}", kind, f"c{i}", "istio-system") for i in range(len(schemes))]
    return [
        MeshIdentity(f"linkerd-destination-linkerd-c{i}", kind, f"c{i}", "linkerd", issuer_scheme=s)
        for i, s in enumerate(schemes)
    ]


member_sets = st.tuples(
    st.sampled_from(list(MeshType)), st.lists(st.sampled_from(list(IssuerScheme)), min_size=2, max_size=3)
).map(lambda t: meshes_of(*t))


def build_world(meshes: list[MeshIdentity], old: CertificateAuthority) -> World:
    world = World(meshes, {m.cluster: FakeCluster(m.cluster, auto_reload=False) for m in meshes})
    for mesh in meshes:
        enroll_mesh(world.clusters[mesh.cluster], mesh, old)
        world.clusters[mesh.cluster].reload(mesh)
    for cluster in world.clusters.values():
        cluster.listeners += [world.check, world.maybe_crash]
    return world


def save(status: RotationStatus) -> str:
    return json.dumps(status.to_wire())


def load(saved: str) -> RotationStatus:
    return RotationStatus.model_validate(json.loads(saved))


def chaos(
    data: st.DataObject, world: World, scope: RotationScope, status: RotationStatus, rollbacks: bool
) -> RotationStatus:
    """Steps, crashes, reloads and (optionally) rollbacks in an order Hypothesis picks."""
    saved = save(status)
    for _ in range(data.draw(st.integers(0, MAX_ACTIONS), label="actions")):
        actions = ["step", "crash", "reload"] + (["rollback"] if rollbacks else [])
        action = data.draw(st.sampled_from(actions), label="action")
        world.log.append(action)
        if action == "reload":
            mesh = data.draw(st.sampled_from(world.meshes), label="mesh")
            world.clusters[mesh.cluster].reload(mesh)
        elif action == "rollback":
            current = load(saved)
            if current.reversible:
                saved = save(rollback_rotation(current))
            else:
                with pytest.raises(TrustError):
                    rollback_rotation(current)
        else:
            if action == "crash":
                world.crash_in = data.draw(st.integers(1, 4), label="crash after writes")
            try:
                # Every step starts from what was saved: a restart is a load.
                saved = save(advance_rotation(load(saved), scope))
            except SimulatedCrash:
                world.log.append("crashed")
            finally:
                world.crash_in = None
    return load(saved)


def settle(world: World, scope: RotationScope, status: RotationStatus) -> RotationStatus:
    for _ in range(SETTLE_STEPS):
        if status.done:
            break
        status = advance_rotation(status, scope)
        for mesh in world.meshes:
            world.clusters[mesh.cluster].reload(mesh)
    return status


def assert_single_root(world: World, status: RotationStatus, root: CertificateAuthority, *keys: bytes) -> None:
    assert status.done and status.to_root == root.root_fingerprint
    for view in world.views():
        for chain in view:
            assert chain.bundle == {root.root_fingerprint}
            assert chain.issuer_root == root.root_fingerprint
    for cluster in world.clusters.values():
        assert all(name != PENDING_KEY_SECRET for _, name in cluster.secrets)
        for secret in cluster.secrets.values():
            for value in secret.data.values():
                assert all(key not in value for key in keys)


def _scope(world: World, old: CertificateAuthority, new: CertificateAuthority) -> RotationScope:
    return RotationScope(world.meshes, world.clusters, {old.root_fingerprint: old, new.root_fingerprint: new})


@given(meshes=member_sets, data=st.data())
def test_member_meshes_always_trust_each_other_and_end_on_the_new_root_whatever_the_crash_points(
    root_ca: CertificateAuthority, other_ca: CertificateAuthority, meshes: list[MeshIdentity], data: st.DataObject
) -> None:
    old, new = root_ca, other_ca
    world = build_world(meshes, old)
    scope = _scope(world, old, new)
    status = chaos(data, world, scope, start_rotation(scope, new.root_fingerprint), rollbacks=False)
    status = settle(world, scope, status)
    assert [r.phase for r in status.history] == list(RotationPhase)[:-1]
    assert_single_root(world, status, new, old.secret_data()["tls.key"], new.secret_data()["tls.key"])
    assert world.checks > 0


@given(meshes=member_sets, data=st.data())
def test_member_meshes_always_trust_each_other_and_end_on_one_root_whatever_the_rollbacks(
    root_ca: CertificateAuthority, other_ca: CertificateAuthority, meshes: list[MeshIdentity], data: st.DataObject
) -> None:
    old, new = root_ca, other_ca
    world = build_world(meshes, old)
    scope = _scope(world, old, new)
    status = chaos(data, world, scope, start_rotation(scope, new.root_fingerprint), rollbacks=True)
    status = settle(world, scope, status)
    assert_single_root(world, status, old if status.rolled_back else new, old.secret_data()["tls.key"])


# --- the machine's edges ---------------------------------------------------------------------------------


@pytest.fixture
def enrolled(root_ca: CertificateAuthority, other_ca: CertificateAuthority) -> tuple[World, RotationScope]:
    world = build_world([ISTIO_1, ISTIO_2], root_ca)
    return world, _scope(world, root_ca, other_ca)


def test_waiting_phases_wait_for_every_mesh_to_serve_the_new_root(
    enrolled: tuple[World, RotationScope], other_ca: CertificateAuthority
) -> None:
    world, scope = enrolled
    status = run_rotation(start_rotation(scope, other_ca.root_fingerprint), scope)
    assert status.phase is RotationPhase.WAITING_FOR_BUNDLES
    assert status.waiting_on == (ISTIO_1.name, ISTIO_2.name)
    world.clusters[ISTIO_1.cluster].reload(ISTIO_1)
    status = run_rotation(status, scope)
    assert status.waiting_on == (ISTIO_2.name,)
    world.clusters[ISTIO_2.cluster].reload(ISTIO_2)
    status = run_rotation(status, scope)
    assert status.phase is RotationPhase.WAITING_FOR_CHAINS


def test_rollback_is_refused_once_the_old_root_is_being_removed(
    enrolled: tuple[World, RotationScope], other_ca: CertificateAuthority
) -> None:
    world, scope = enrolled
    status = start_rotation(scope, other_ca.root_fingerprint)
    while status.phase is not RotationPhase.REMOVING_OLD_ROOT:
        assert status.reversible
        rollback_rotation(status)  # allowed in every phase before removal
        status = advance_rotation(status, scope)
        for mesh in world.meshes:
            world.clusters[mesh.cluster].reload(mesh)
    with pytest.raises(TrustError, match="cannot be rolled back") as info:
        rollback_rotation(status)
    assert "rotate forward" in info.value.hint


def test_start_refuses_meshes_that_are_not_enrolled(
    root_ca: CertificateAuthority, other_ca: CertificateAuthority
) -> None:
    clusters = {"cluster-1": FakeCluster("cluster-1")}
    scope = RotationScope([ISTIO_1], clusters, {other_ca.root_fingerprint: other_ca})
    with pytest.raises(TrustError, match="no intermediate"):
        start_rotation(scope, other_ca.root_fingerprint)


def test_start_refuses_meshes_on_different_roots(root_ca: CertificateAuthority, other_ca: CertificateAuthority) -> None:
    clusters = {"cluster-1": FakeCluster("cluster-1"), "cluster-2": FakeCluster("cluster-2")}
    enroll_mesh(clusters["cluster-1"], ISTIO_1, root_ca)
    enroll_mesh(clusters["cluster-2"], ISTIO_2, other_ca)
    scope = RotationScope([ISTIO_1, ISTIO_2], clusters, {other_ca.root_fingerprint: other_ca})
    with pytest.raises(TrustError, match="different roots"):
        start_rotation(scope, other_ca.root_fingerprint)


def test_start_needs_the_new_roots_ca(enrolled: tuple[World, RotationScope]) -> None:
    _world, scope = enrolled
    with pytest.raises(TrustError, match="no CA for root"):
        start_rotation(scope, "0" * 64)


def test_status_records_each_phase_and_survives_json(
    enrolled: tuple[World, RotationScope], other_ca: CertificateAuthority
) -> None:
    world, scope = enrolled
    for cluster in world.clusters.values():
        cluster.auto_reload = True
    status = run_rotation(start_rotation(scope, other_ca.root_fingerprint), scope)
    assert status.done
    wire = status.to_wire()
    assert wire["phase"] == "DONE" and wire["toRoot"] == other_ca.root_fingerprint
    assert [h["phase"] for h in wire["history"]] == [p.value for p in list(RotationPhase)[:-1]]
    assert load(json.dumps(wire)) == status
