"""Live trust operation (docs/trust.md, "Live"): root rotation through the CSR exchange, rollback,
intermediate renewal, crash safety — the management side's `reconcile_trust` and `meshrules agent`
passes over in-memory clusters (`meshrules.kube.fake`, the same API semantics as the emulator).

Two registered clusters run three member meshes (Istio on both, Linkerd on the second). The
VirtualMesh's status is written and read back between passes as the controller does, so losing a
status write is losing the rotation's step. istiod publishes `istio-ca-root-cert` only when a test
says so: what an Istio mesh *serves* lags what was written, and the waits must wait for it.

After every single write — agent, management side or istiod — every pair of members must trust
each other's issuing root, both by what is written (their CA Secrets and trust roots) and by what
they serve.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshrules.kube import exchange as X
from meshrules.kube import resources as R
from meshrules.kube.agent import agent_step
from meshrules.kube.fake import FakeCluster
from meshrules.kube.memory import MemoryApiServer
from meshrules.kube.signing import (
    ROTATE_ROOT_ANNOTATION,
    SigningAction,
    TrustPass,
    previous_root_secret_name,
    reconcile_trust,
    root_secret_name,
)
from meshrules.kube.trust import ISTIO_PUBLISHED_ROOTS, LiveTrustCluster
from meshrules.model.discovery import Mesh, MeshType
from meshrules.model.policy import VirtualMesh
from meshrules.trust import (
    CertificateAuthority,
    MeshIdentity,
    ReportedChain,
    RootSettings,
    RotationPhase,
    bundle_fingerprints,
    trust_each_other,
    written_chain,
)
from meshrules.trust.objects import ISTIO_ROOT_CERT, PENDING_KEY_SECRET

NS = "meshrules-system"
VMESH = "global"
MESHES = (
    Mesh(
        name="istiod-istio-system-c1",
        type=MeshType.ISTIO,
        cluster="c1",
        namespace="istio-system",
        control_plane="istiod",
    ),
    Mesh(
        name="istiod-istio-system-c2",
        type=MeshType.ISTIO,
        cluster="c2",
        namespace="istio-system",
        control_plane="istiod",
    ),
    Mesh(
        name="linkerd-destination-linkerd-c2",
        type=MeshType.LINKERD,
        cluster="c2",
        namespace="linkerd",
        control_plane="linkerd-destination",
    ),
)
IDENTITIES = tuple(MeshIdentity.of(m) for m in MESHES)
ISTIO_MESHES = tuple(m for m in IDENTITIES if m.mesh_type is MeshType.ISTIO)


class Crash(Exception):
    """The process making the write dies right after it (nothing catches this)."""


def namespaces(*names: str) -> list[dict[str, Any]]:
    return [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in names]


class Watched(FakeCluster):
    """A client whose every successful write runs the world's checks (and may be where a process dies)."""

    def __init__(self, name: str, server: MemoryApiServer, world: World) -> None:
        super().__init__(name, server)
        self.world = world

    def _write(self, verb: str, res: R.ApiResource, namespace: str, name: str, call: Any) -> dict[str, Any]:
        done: dict[str, Any] = super()._write(verb, res, namespace, name, call)
        self.world.after_write()
        return done

    def delete(self, resource: R.ApiResource, name: str, namespace: str = "", *, resource_version: str = "") -> bool:
        done = super().delete(resource, name, namespace, resource_version=resource_version)
        self.world.after_write()
        return done


@dataclass
class World:
    """The management cluster, two registered clusters, and what happened to them."""

    servers: dict[str, MemoryApiServer] = field(default_factory=dict)
    checking: bool = False  # the invariant holds once every member is enrolled
    checks: int = 0
    crash_in: int | None = None  # writes left before the armed crash
    waited: set[RotationPhase] = field(default_factory=set)  # waiting phases that really waited
    log: list[str] = field(default_factory=list)
    now: datetime | None = None

    def __post_init__(self) -> None:
        self.servers = {name: MemoryApiServer() for name in ("management", "c1", "c2")}
        FakeCluster("management", self.servers["management"]).seed([*namespaces(NS), virtual_mesh()])
        for name in ("c1", "c2"):
            FakeCluster(name, self.servers[name]).seed(namespaces("istio-system", "linkerd"))
        self.management = Watched("management", self.servers["management"], self)
        self.remote = {name: Watched(name, self.servers[name], self) for name in ("c1", "c2")}
        self.agents = {name: Watched(name, self.servers[name], self) for name in ("c1", "c2")}
        # Unwatched views, for checks and for the test's own reads.
        self.plain = {name: FakeCluster(name, server) for name, server in self.servers.items()}

    # --- the processes -----------------------------------------------------------------------

    def management_pass(self, *, lose_status: bool = False) -> TrustPass:
        """The controller's trust part of the management job: read the VirtualMesh, one pass, write its status."""
        live = self.plain["management"].get(R.VIRTUAL_MESH, VMESH, NS)
        assert live is not None
        vmesh = VirtualMesh.model_validate(live)
        result = reconcile_trust(self.management, self.remote, [vmesh], MESHES, namespace=NS, now=self.now)
        status = result.statuses[vmesh.ref]
        rotation = status.rotation
        if rotation is not None and rotation.waiting_on:
            self.waited.add(rotation.phase)
        if not lose_status:
            body = {
                "apiVersion": "networking.meshrules.io/v1alpha1",
                "kind": "VirtualMesh",
                "metadata": {"name": VMESH, "namespace": NS},
                "status": {"trust": status.to_wire()},
            }
            self.management.apply(body, force=True, subresource="status")
        return result

    def agent_pass(self, cluster: str) -> None:
        agent_step(self.agents[cluster], owner=NS)

    def publish(self, mesh: MeshIdentity) -> None:
        """istiod copies `root-cert.pem` of `cacerts` into `istio-ca-root-cert` (what its mesh serves)."""
        client = self.plain[mesh.cluster]
        cacerts = client.get(R.SECRET, "cacerts", mesh.namespace)
        if cacerts is None:
            return
        text = base64.b64decode(cacerts["data"][ISTIO_ROOT_CERT]).decode()
        current = client.get(R.CONFIG_MAP, ISTIO_PUBLISHED_ROOTS, mesh.namespace)
        if current is None:
            obj = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": ISTIO_PUBLISHED_ROOTS, "namespace": mesh.namespace},
                "data": {ISTIO_ROOT_CERT: text},
            }
            self.servers[mesh.cluster].create(R.CONFIG_MAP, mesh.namespace, obj, "istiod")
        elif current["data"].get(ISTIO_ROOT_CERT) != text:
            current["data"][ISTIO_ROOT_CERT] = text
            self.servers[mesh.cluster].replace(R.CONFIG_MAP, mesh.namespace, ISTIO_PUBLISHED_ROOTS, current, "istiod")
        else:
            return
        self.after_write()

    def publish_all(self) -> None:
        for mesh in ISTIO_MESHES:
            self.publish(mesh)

    def round(self, *, publish: bool = True) -> TrustPass:
        result = self.management_pass()
        for cluster in ("c1", "c2"):
            self.agent_pass(cluster)
        if publish:
            self.publish_all()
        return result

    def annotate(self, value: str) -> None:
        patch = {"metadata": {"annotations": {ROTATE_ROOT_ANNOTATION: value}}}
        self.servers["management"].merge_patch(R.VIRTUAL_MESH, NS, VMESH, patch, "kubectl")

    # --- what is true now --------------------------------------------------------------------

    def trust_view(self, cluster: str) -> LiveTrustCluster:
        return LiveTrustCluster(self.plain[cluster], NS)

    def written(self) -> list[ReportedChain]:
        return [written_chain(self.trust_view(m.cluster), m) for m in IDENTITIES]

    def served(self) -> list[ReportedChain | None]:
        return [self.trust_view(m.cluster).reported_chain(m) for m in IDENTITIES]

    def status(self) -> dict[str, Any]:
        live = self.plain["management"].get(R.VIRTUAL_MESH, VMESH, NS)
        assert live is not None
        return dict((live.get("status") or {}).get("trust") or {})

    def root(self, suffix: str = "") -> str | None:
        """Fingerprint of the root in `meshrules-root-<vmesh>` (or its `-previous`), None when absent."""
        name = previous_root_secret_name(VMESH) if suffix else root_secret_name(VMESH)
        obj = self.plain["management"].get(R.SECRET, name, NS)
        if obj is None:
            return None
        return next(iter(bundle_fingerprints(base64.b64decode(obj["data"]["ca.crt"]).decode())))

    def after_write(self) -> None:
        if self.checking:
            self.check()
        if self.crash_in is not None:
            self.crash_in -= 1
            if self.crash_in == 0:
                self.crash_in = None
                raise Crash

    def check(self) -> None:
        """INVARIANT: by what is written and by what is served, every pair trusts each other's issuer."""
        self.checks += 1
        written = self.written()
        served = [s for s in self.served() if s is not None]
        assert len(served) == len(IDENTITIES), "a mesh stopped serving a bundle"
        for view in (written, served):
            for a in view:
                assert a.issuer_root is not None, self.log
                for b in view:
                    assert trust_each_other(a, b), (a, b, self.log)

    # --- setup ---------------------------------------------------------------------------------

    def enroll(self) -> str:
        """Enroll every member from the generated root; returns that root's fingerprint."""
        for _ in range(6):
            self.round()
        assert all(m["action"] == SigningAction.INSTALLED for m in self.status()["meshes"]), self.status()
        self.checking = True
        self.check()
        root = self.root()
        assert root is not None
        return root


def virtual_mesh(intermediate_ttl_days: int = 365, root_ttl_days: int = 3650) -> dict[str, Any]:
    return {
        "apiVersion": "networking.meshrules.io/v1alpha1",
        "kind": "VirtualMesh",
        "metadata": {"name": VMESH, "namespace": NS},
        "spec": {
            "meshes": [{"name": m.name} for m in MESHES],
            "trust": {
                "shared": {
                    "rootCertificateAuthority": {"generated": {"ttlDays": root_ttl_days}},
                    "intermediateTtlDays": intermediate_ttl_days,
                }
            },
        },
    }


def one_root(world: World, root: str) -> None:
    """The end state: every member writes, serves and issues from ``root`` alone."""
    for chain in (*world.written(), *world.served()):
        assert chain is not None and chain.bundle == {root} and chain.issuer_root == root


def settle(world: World, rounds: int = 40, *, started: bool = True) -> dict[str, Any]:
    """Run rounds (istiod publishing every time) until the rotation is done; its final status.

    With ``started=False`` no rotation at all is also an end (the request was never acted upon).
    """
    for _ in range(rounds):
        world.round()
        rotation = world.status().get("rotation")
        if (rotation or {}).get("phase") == RotationPhase.DONE.value or (rotation is None and not started):
            world.round()  # the pass after DONE drops the kept previous root
            return world.status()
    raise AssertionError(f"the rotation did not finish: {world.status().get('rotation')}")


@pytest.fixture
def world() -> Iterator[World]:
    yield World()


# --- rotation end to end ---------------------------------------------------------------------------


def test_rotating_a_generated_root_through_the_exchange_keeps_every_pair_trusting_each_other(world: World) -> None:
    old = world.enroll()
    world.annotate("2026-07")
    phases: list[str] = []
    for _ in range(60):
        # istiod is slow: it publishes only once the rotation has waited for it, so what Istio
        # meshes serve lags what is written and the waits must see it.
        world.round(publish=False)
        rotation = world.status().get("rotation") or {}
        if rotation.get("waitingOn"):
            world.publish_all()
        phases.append(rotation.get("phase", ""))
        if rotation.get("phase") == RotationPhase.DONE.value:
            break
    world.round()
    new = world.root()
    assert new is not None and new != old
    status = world.status()
    assert status["rootFingerprint"] == new
    assert status["rotation"]["fromRoot"] == old and status["rotation"]["toRoot"] == new
    assert status["rotateRoot"] == {"value": "2026-07", "outcome": "Rotated"}
    assert [r["phase"] for r in status["rotation"]["history"]] == [p.value for p in RotationPhase][:-1]
    # Every phase came in order, and the waits on what Istio serves really waited.
    assert [p for i, p in enumerate(phases) if i == 0 or p != phases[i - 1]] == [p.value for p in RotationPhase]
    assert {RotationPhase.WAITING_FOR_BUNDLES, RotationPhase.WAITING_FOR_REMOVAL} <= world.waited
    one_root(world, new)
    assert world.root("previous") is None  # the kept root goes once the rotation is done
    for member in status["meshes"]:
        assert member["action"] == SigningAction.INSTALLED and member["issuingRoot"] == new
        assert member["expires"]
    assert world.checks > 50
    # The annotation fired once: more passes change nothing.
    world.round()
    assert world.root() == new and world.status()["rotation"]["phase"] == RotationPhase.DONE.value


def test_a_rotation_rolled_back_before_the_old_root_leaves_ends_on_the_old_root(world: World) -> None:
    old = world.enroll()
    world.annotate("next")
    for _ in range(30):
        world.round()
        if world.status()["rotation"]["phase"] == RotationPhase.WAITING_FOR_CHAINS.value:
            break
    assert world.status()["rotation"]["phase"] == RotationPhase.WAITING_FOR_CHAINS.value
    new = world.root()
    assert new != old
    world.annotate("rollback")
    status = settle(world)
    assert status["rotateRoot"] == {"value": "rollback", "outcome": "RolledBack"}
    assert status["rotation"]["rolledBack"] is True and status["rotation"]["toRoot"] == old
    assert world.root() == old and world.root("previous") is None
    one_root(world, old)


def test_a_rollback_after_the_old_root_began_leaving_is_refused_and_the_rotation_finishes(world: World) -> None:
    old = world.enroll()
    world.annotate("next")
    for _ in range(40):
        world.round(publish=False)  # istiod never catches up: stuck waiting for the old root to go
        if world.status()["rotation"]["phase"] == RotationPhase.WAITING_FOR_BUNDLES.value:
            world.publish_all()
        if world.status()["rotation"]["phase"] == RotationPhase.WAITING_FOR_REMOVAL.value:
            break
    assert world.status()["rotation"]["phase"] == RotationPhase.WAITING_FOR_REMOVAL.value
    new = world.root()
    world.annotate("rollback")
    world.round(publish=False)
    refused = world.status()["rotateRoot"]
    assert refused["value"] == "rollback" and refused["outcome"] == "Refused" and refused["code"] == "MR0721"
    assert world.root() == new  # the root was not swapped back
    status = settle(world)
    assert status["rotation"]["toRoot"] == new and not status["rotation"].get("rolledBack")
    one_root(world, new)
    assert old != new


def test_changing_a_referenced_root_back_after_the_point_of_no_return_is_a_finding_then_a_new_rotation(
    world: World,
) -> None:
    """With a root from `rootCertificateAuthority.secret`, the desired root is the Secret's: the
    rotation follows it, and a change back too late is reported and done as a second rotation."""
    first = world.enroll()
    # The user switches to their own CA Secret.
    mine = CertificateAuthority.generate(RootSettings(org_name="mine"))
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": {"name": "my-root", "namespace": NS},
        "data": {k: base64.b64encode(v).decode() for k, v in mine.secret_data().items()},
    }
    world.servers["management"].create(R.SECRET, NS, secret, "kubectl")
    original = world.plain["management"].get(R.SECRET, root_secret_name(VMESH), NS)
    assert original is not None
    copy = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": {"name": "old-root", "namespace": NS},
        "data": original["data"],
    }
    world.servers["management"].create(R.SECRET, NS, copy, "kubectl")

    def use(name: str) -> None:
        patch = {
            "spec": {"trust": {"shared": {"rootCertificateAuthority": {"generated": None, "secret": {"name": name}}}}}
        }
        world.servers["management"].merge_patch(R.VIRTUAL_MESH, NS, VMESH, patch, "kubectl")

    use("my-root")
    for _ in range(40):
        world.round()
        if world.status()["rotation"]["phase"] == RotationPhase.WAITING_FOR_REMOVAL.value:
            break
    use("old-root")  # too late: the old root is leaving the bundles
    world.round()
    findings = world.status()["findings"]
    assert findings and findings[0]["code"] == "MR0721" and "finishes" in findings[0]["message"]
    finished: list[str] = []  # the target root of every rotation seen to finish
    for _ in range(60):
        rotation = world.status()["rotation"]
        if rotation["phase"] == RotationPhase.DONE.value and rotation["toRoot"] not in finished:
            finished.append(rotation["toRoot"])
        if finished[-1:] == [first]:
            break
        world.round()
    # The first rotation finished on the user's root, then a second one moved the members back.
    assert finished == [mine.root_fingerprint, first]
    one_root(world, first)


# --- crashes ---------------------------------------------------------------------------------------


ACTIONS = ("management", "management crashes", "status write lost", "agent", "agent crashes", "istiod")


@settings(max_examples=12)
@given(data=st.data())
def test_a_live_rotation_survives_crashes_and_lost_status_writes(data: st.DataObject) -> None:
    world = World()
    old = world.enroll()
    world.annotate("rotate")
    rollback_at = data.draw(st.none() | st.integers(0, 30), label="rollback after actions")
    for i in range(data.draw(st.integers(0, 40), label="actions")):
        if i == rollback_at:
            world.annotate("rollback")
        action = data.draw(st.sampled_from(ACTIONS), label="action")
        world.log.append(action)
        crashes = action.endswith("crashes")
        if crashes:
            world.crash_in = data.draw(st.integers(1, 4), label="crash after writes")
        try:
            if action.startswith("management"):
                world.management_pass()
            elif action == "status write lost":
                world.management_pass(lose_status=True)
            elif action.startswith("agent"):
                world.agent_pass(data.draw(st.sampled_from(("c1", "c2")), label="cluster"))
            else:
                world.publish(data.draw(st.sampled_from(ISTIO_MESHES), label="mesh"))
        except Crash:
            world.log.append("crashed")
        finally:
            world.crash_in = None
    status = settle(world, rounds=60, started=False)
    final = world.root()
    assert final is not None
    one_root(world, final)
    # Back on the old root exactly when the rollback came in time (or before the rotation began).
    rotated = status.get("rotation") is not None and not status["rotation"].get("rolledBack")
    assert (final != old) == rotated
    if rotated:
        assert status["rotation"]["toRoot"] == final
    assert world.root("previous") is None
    assert not any(world.plain[m.cluster].get(R.SECRET, PENDING_KEY_SECRET, m.namespace) for m in IDENTITIES)


# --- members, renewal ------------------------------------------------------------------------------


def test_a_member_not_enrolled_waits_for_the_rotation_then_enrolls_from_the_new_root(world: World) -> None:
    late = IDENTITIES[2]  # the Linkerd mesh's agent is not running yet
    for _ in range(6):
        world.management_pass()
        world.agent_pass("c1")
        world.publish_all()
    # c2 runs Istio and Linkerd; enroll only Istio there: its agent serves `istio-system` only.
    for _ in range(4):
        world.management_pass()
        agent_step(world.agents["c2"], namespaces=("istio-system",), owner=NS)
        world.publish_all()
    world.annotate("next")
    world.management_pass()
    world.management_pass()
    by_name = {m["name"]: m for m in world.status()["meshes"]}
    assert by_name[late.name]["action"] == SigningAction.WAITING_FOR_ROTATION
    assert world.status()["rotation"]["meshes"] == sorted(m.name for m in ISTIO_MESHES)
    status = settle(world)
    new = world.root()
    assert status["rotation"]["toRoot"] == new
    for _ in range(3):
        world.round()
    by_name = {m["name"]: m for m in world.status()["meshes"]}
    assert by_name[late.name]["action"] == SigningAction.INSTALLED and by_name[late.name]["issuingRoot"] == new
    world.check()
    one_root(world, new)


def test_an_intermediate_is_renewed_with_a_new_key_when_a_third_of_its_life_is_left() -> None:
    world = World()
    start = datetime.now(UTC).replace(microsecond=0)  # certificates keep whole seconds
    patch = {"spec": virtual_mesh(intermediate_ttl_days=30, root_ttl_days=40)["spec"]}
    world.servers["management"].merge_patch(R.VIRTUAL_MESH, NS, VMESH, patch, "kubectl")
    world.now = start
    root = world.enroll()
    mesh = IDENTITIES[0]

    def key() -> str:
        cacerts = world.plain[mesh.cluster].get(R.SECRET, "cacerts", mesh.namespace)
        assert cacerts is not None
        return str(cacerts["data"]["ca-key.pem"])

    def expires() -> datetime:
        (member,) = [m for m in world.status()["meshes"] if m["name"] == mesh.name]
        return datetime.fromisoformat(member["expires"])

    def near(a: datetime, b: datetime) -> bool:
        return abs((a - b).total_seconds()) < 60

    first_key = key()
    assert near(expires(), start + timedelta(days=30))
    world.now = start + timedelta(days=19)  # 11 of 30 days left: not yet
    assert {o.action for o in world.management_pass().outcomes} == {SigningAction.INSTALLED}
    world.now = start + timedelta(days=21)  # 9 days left: renew, same root
    renewing = {o.mesh: o for o in world.management_pass().outcomes}[mesh.name]
    assert renewing.action is SigningAction.REQUESTED and "renewing" in renewing.detail
    for _ in range(3):
        world.round()
    assert key() != first_key  # a new key, generated in the cluster
    assert near(expires(), start + timedelta(days=40))  # 21 + 30 days, capped at the root's expiry
    assert all(c.issuer_root == root for c in world.written())
    # Near the root's own expiry a renewal cannot gain anything: a finding, not a loop of renewals.
    world.now = start + timedelta(days=37)
    blocked = {o.mesh: o for o in world.management_pass().outcomes}[mesh.name]
    assert blocked.action is SigningAction.INSTALLED and blocked.code == "MR0723"
    exchange = world.plain[mesh.cluster].get(R.CONFIG_MAP, X.exchange_name(mesh.name), mesh.namespace)
    assert exchange is not None and exchange["data"][X.NONCE] == exchange["data"][X.INSTALLED_NONCE]  # no new request


def test_the_agent_never_writes_a_bundle_without_the_root_its_mesh_issues_from(world: World) -> None:
    """A stale or forged `bundle` (here: only a stranger's root) would cut the mesh off from its own
    workloads; the agent refuses it (MR0720) and leaves the bundle as it is."""
    root = world.enroll()
    mesh = IDENTITIES[2]  # Linkerd: its bundle is a ConfigMap, written at once
    stranger = CertificateAuthority.generate(RootSettings(org_name="stranger"))
    ex = X.read_exchange(world.plain[mesh.cluster], mesh.namespace, mesh.name, NS)
    assert ex is not None
    X.ask_bundle(world.plain[mesh.cluster], ex, stranger.root_pem)
    world.agent_pass(mesh.cluster)
    after = X.read_exchange(world.plain[mesh.cluster], mesh.namespace, mesh.name, NS)
    assert after is not None and after.get(X.PHASE) == "Failed" and after.get(X.MESSAGE).startswith("MR0720: ")
    assert not after.bundle_applied
    assert written_chain(world.trust_view(mesh.cluster), mesh).bundle == {root}


def test_a_new_rotate_root_value_during_a_rotation_waits_for_it_then_fires_once(world: World) -> None:
    first = world.enroll()
    world.annotate("a")
    world.round()
    second = world.root()
    world.annotate("b")  # while the rotation toward `second` runs
    world.round()
    status = world.status()
    assert [f["code"] for f in status["findings"]] == ["MR0722"] and status["rotateRoot"]["value"] == "a"
    assert world.root() == second and world.root("previous") == first
    finished: list[str] = []
    for _ in range(60):
        world.round()
        rotation = world.status()["rotation"]
        if rotation["phase"] == RotationPhase.DONE.value and rotation["toRoot"] not in finished:
            finished.append(rotation["toRoot"])
        if len(finished) == 2:
            break
    third = world.root()
    assert finished == [second, third] and len({first, second, third}) == 3
    assert world.status()["rotateRoot"] == {"value": "b", "outcome": "Rotated"}
    world.round()
    one_root(world, third)
    assert world.root("previous") is None
