"""The live CSR exchange end to end: `meshrules agent` in a registered cluster, `sign_pending` on the
management side, the emulator's API between them (docs/trust.md, "Live: the agent and the CSR exchange").
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import typer
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from typer.testing import CliRunner

from meshrules.cli.agent import agent_command
from meshrules.kube import exchange as X
from meshrules.kube import rbac
from meshrules.kube import resources as R
from meshrules.kube.agent import AgentAction, AgentLoop, agent_step
from meshrules.kube.cluster import Cluster, ConflictError
from meshrules.kube.deploy import manifests
from meshrules.kube.fake import FakeCluster
from meshrules.kube.memory import StoreError
from meshrules.kube.signing import (
    EnrollmentTarget,
    SigningAction,
    SigningOutcome,
    ensure_root,
    reconcile_trust,
    root_secret_name,
    sign_pending,
)
from meshrules.kube.trust import LiveTrustCluster
from meshrules.model.discovery import Mesh, MeshType
from meshrules.model.policy import VirtualMesh
from meshrules.trust import (
    CertificateAuthority,
    IssuedChain,
    MeshIdentity,
    RootSettings,
    create_intermediate_request,
    install_intermediate,
    prepare_intermediate,
    sign_intermediate,
    written_chain,
)

from .conftest import Emulators, connect, write_kubeconfig
from .emulator import Emulator

ISTIO = MeshIdentity("istiod-istio-system-cluster-1", MeshType.ISTIO, "cluster-1", "istio-system")
LINKERD = MeshIdentity("linkerd-destination-linkerd-cluster-1", MeshType.LINKERD, "cluster-1", "linkerd")
PENDING = "meshrules-intermediate-key"


@pytest.fixture(scope="module")
def root() -> CertificateAuthority:
    return CertificateAuthority.generate(RootSettings(org_name="meshrules-test"))


def namespaces(*names: str) -> list[dict[str, object]]:
    return [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in names]


class Fleet:
    """One registered cluster on the emulator, reached by the agent and by the management side."""

    def __init__(self, emu: Emulator, tmp_path: Path, root: CertificateAuthority, meshes: list[MeshIdentity]) -> None:
        self.emu = emu
        self.agent = connect(emu, tmp_path, identity="agent")
        self.mgmt = connect(emu, tmp_path, identity="management")
        self.root = root
        self.targets = [EnrollmentTarget(m, root.root_fingerprint) for m in meshes]
        # Index ranges of the emulator's request log that the management side made.
        self.mgmt_requests: list[tuple[int, int]] = []

    def sign(self) -> tuple[SigningOutcome, ...]:
        start = self.emu.mark()
        out = sign_pending({"cluster-1": self.mgmt}, self.targets, {self.root.root_fingerprint: self.root})
        self.mgmt_requests.append((start, self.emu.mark()))
        return out

    def agent_pass(self) -> dict[str, AgentAction]:
        return {o.mesh: o.action for o in agent_step(self.agent)}

    def exchange(self, mesh: MeshIdentity) -> dict[str, str]:
        obj = self.emu.store.get(R.CONFIG_MAP, mesh.namespace, X.exchange_name(mesh.name))
        return dict(obj["data"])

    def management_paths(self) -> list[str]:
        return [r.path for a, b in self.mgmt_requests for r in self.emu.requests[a:b]]


@pytest.fixture
def fleet(emulators: Emulators, tmp_path: Path, root: CertificateAuthority) -> Fleet:
    emu = emulators("cluster-1")
    emu.seed(namespaces("istio-system", "linkerd"))
    return Fleet(emu, tmp_path, root, [ISTIO, LINKERD])


def _secret(emu: Emulator, namespace: str, name: str) -> dict[str, bytes]:
    obj = emu.store.get(R.SECRET, namespace, name)
    return {k: base64.b64decode(v) for k, v in obj["data"].items()}


def _verify_under(root: CertificateAuthority, cert_pem: bytes, key_pem: bytes) -> x509.Certificate:
    """The intermediate is signed by the root, is a CA with path length 0, and is the key's certificate."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    root_cert = x509.load_pem_x509_certificate(root.root_pem.encode())
    cert.verify_directly_issued_by(root_cert)
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length == 0
    key = serialization.load_pem_private_key(key_pem, password=None)
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()  # type: ignore[union-attr]
    return cert


def _no_key_material(text: str, *keys: bytes) -> None:
    assert "PRIVATE KEY" not in text
    for key in keys:
        body = b"".join(line for line in key.splitlines() if not line.startswith(b"-----"))
        assert body.decode()[:40] not in text


def test_agent_and_management_enroll_istio_and_linkerd_through_the_exchange(
    fleet: Fleet, root: CertificateAuthority, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    assert {o.action for o in fleet.sign()} == {SigningAction.REQUESTED}
    assert set(fleet.agent_pass().values()) == {AgentAction.CSR_SENT}
    # The intermediate key was generated in the cluster and waits in the agent's Secret.
    istio_pending = _secret(fleet.emu, "istio-system", PENDING)["key.pem"]
    assert {o.action for o in fleet.sign()} == {SigningAction.SIGNED}
    assert set(fleet.agent_pass().values()) == {AgentAction.INSTALLED}
    assert {o.action for o in fleet.sign()} == {SigningAction.INSTALLED}
    assert set(fleet.agent_pass().values()) == {AgentAction.IDLE}

    # Istio: `cacerts` holds the key generated in the cluster and a chain that verifies under the root.
    cacerts = _secret(fleet.emu, "istio-system", "cacerts")
    assert cacerts["ca-key.pem"] == istio_pending
    cert = _verify_under(root, cacerts["ca-cert.pem"], cacerts["ca-key.pem"])
    assert cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.UniformResourceIdentifier
    ) == [ISTIO.identity]
    assert cacerts["root-cert.pem"].decode() == root.root_pem
    assert cacerts["cert-chain.pem"].decode().endswith(root.root_pem)
    # Linkerd: the issuer Secret and the trust roots.
    issuer = _secret(fleet.emu, "linkerd", "linkerd-identity-issuer")
    _verify_under(root, issuer["crt.pem"], issuer["key.pem"])
    roots = fleet.emu.store.get(R.CONFIG_MAP, "linkerd", "linkerd-identity-trust-roots")
    assert roots["data"]["ca-bundle.crt"] == root.root_pem
    for mesh in (ISTIO, LINKERD):
        assert written_chain(LiveTrustCluster(fleet.agent), mesh).issuer_root == root.root_fingerprint
        ex = fleet.exchange(mesh)
        assert ex[X.PHASE] == "Installed" and ex[X.INSTALLED_ROOT] == root.root_fingerprint
        assert "PRIVATE KEY" not in "".join(ex.values())  # only public material crossed
        with pytest.raises(StoreError):  # the pending key is gone after install
            fleet.emu.store.get(R.SECRET, mesh.namespace, PENDING)

    # The management side never asked for a Secret of the registered cluster: the key stayed there.
    paths = fleet.management_paths()
    assert paths and not [p for p in paths if "/secrets" in p]
    out = capsys.readouterr()
    _no_key_material(caplog.text + out.out + out.err, cacerts["ca-key.pem"], issuer["key.pem"])


def test_a_tampered_csr_is_refused_visibly_and_the_agent_sends_its_own_again(
    fleet: Fleet, root: CertificateAuthority
) -> None:
    fleet.sign()
    fleet.agent_pass()
    # Someone with write access to the namespace swaps in a CSR for another mesh's identity.
    other = MeshIdentity("istiod-other", MeshType.ISTIO, "cluster-1", "istio-system", trust_domain="evil.example")
    tampered = create_intermediate_request(other).csr_pem
    obj = fleet.emu.store.get(R.CONFIG_MAP, "istio-system", X.exchange_name(ISTIO.name))
    obj["data"][X.CSR] = tampered
    fleet.emu.store.replace(R.CONFIG_MAP, "istio-system", obj["metadata"]["name"], obj, "kubectl")

    refused = {o.mesh: o for o in fleet.sign()}[ISTIO.name]
    assert refused.action is SigningAction.REFUSED and refused.code == "MR0714"
    ex = fleet.exchange(ISTIO)
    assert ex[X.REFUSED].startswith("MR0714: ") and X.CERTIFICATE not in ex
    assert ex[X.ANSWER_FOR] == X.csr_digest(tampered)
    assert ({o.mesh: o.action for o in fleet.sign()})[ISTIO.name] is SigningAction.REFUSED  # stays visible

    # The agent does not recognise the refused CSR as its own: it sends its CSR again, which is signed.
    assert fleet.agent_pass()[ISTIO.name] is AgentAction.CSR_SENT
    assert {o.mesh: o.action for o in fleet.sign()}[ISTIO.name] is SigningAction.SIGNED
    assert fleet.agent_pass()[ISTIO.name] is AgentAction.INSTALLED
    cacerts = _secret(fleet.emu, "istio-system", "cacerts")
    _verify_under(root, cacerts["ca-cert.pem"], cacerts["ca-key.pem"])


def test_a_refusal_of_the_agents_own_csr_is_reported_and_not_retried(fleet: Fleet) -> None:
    fleet.sign()
    fleet.agent_pass()
    obj = fleet.emu.store.get(R.CONFIG_MAP, "istio-system", X.exchange_name(ISTIO.name))
    refusal = "MR0718: certificate request asks for 400 days; at most 365 days are allowed"
    obj["data"] |= {X.ANSWER_FOR: X.csr_digest(obj["data"][X.CSR]), X.REFUSED: refusal}
    fleet.emu.store.replace(R.CONFIG_MAP, "istio-system", obj["metadata"]["name"], obj, "kubectl")
    assert fleet.agent_pass()[ISTIO.name] is AgentAction.REFUSED
    ex = fleet.exchange(ISTIO)
    assert ex[X.PHASE] == "Refused" and ex[X.MESSAGE] == refusal
    assert fleet.agent_pass()[ISTIO.name] is AgentAction.REFUSED  # the same CSR is not sent again


def test_a_changed_mesh_record_opens_a_new_request_never_a_signature(fleet: Fleet, root: CertificateAuthority) -> None:
    fleet.sign()
    fleet.agent_pass()
    first_nonce = fleet.exchange(ISTIO)[X.NONCE]
    # The management side's record of the mesh now has another trust domain than its request.
    moved = MeshIdentity(ISTIO.name, MeshType.ISTIO, "cluster-1", "istio-system", trust_domain="other.example")
    ca = {root.root_fingerprint: root}
    out = sign_pending({"cluster-1": fleet.mgmt}, [EnrollmentTarget(moved, root.root_fingerprint)], ca)
    assert out[0].action is SigningAction.REQUESTED
    assert fleet.exchange(ISTIO)[X.NONCE] != first_nonce
    assert fleet.agent_pass()[ISTIO.name] is AgentAction.CSR_SENT  # a new key and CSR for the new identity
    out = sign_pending({"cluster-1": fleet.mgmt}, [EnrollmentTarget(moved, root.root_fingerprint)], ca)
    assert out[0].action is SigningAction.SIGNED
    assert fleet.agent_pass()[ISTIO.name] is AgentAction.INSTALLED
    cacerts = _secret(fleet.emu, "istio-system", "cacerts")
    cert = _verify_under(root, cacerts["ca-cert.pem"], cacerts["ca-key.pem"])
    assert "other.example" in str(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)


def test_a_chain_that_does_not_lead_to_the_requested_root_is_not_installed(
    fleet: Fleet, root: CertificateAuthority
) -> None:
    fleet.sign()
    fleet.agent_pass()
    # An answer signed by another CA, written into the exchange by someone else.
    stranger = CertificateAuthority.generate(RootSettings(org_name="stranger"))
    obj = fleet.emu.store.get(R.CONFIG_MAP, "istio-system", X.exchange_name(ISTIO.name))
    forged = sign_intermediate(stranger, obj["data"][X.CSR], ISTIO)
    obj["data"] |= {
        X.ANSWER_FOR: X.csr_digest(obj["data"][X.CSR]),
        X.CERTIFICATE: forged.certificate,
        X.CHAIN: "",
        X.ROOT_CERTIFICATE: forged.root,
    }
    fleet.emu.store.replace(R.CONFIG_MAP, "istio-system", obj["metadata"]["name"], obj, "kubectl")
    assert fleet.agent_pass()[ISTIO.name] is AgentAction.FAILED
    ex = fleet.exchange(ISTIO)
    assert ex[X.MESSAGE].startswith("MR0720: ") and "requested root" in ex[X.MESSAGE]
    assert ex[X.CSR] != obj["data"][X.CSR]  # a new key and CSR, so a real answer can follow
    with pytest.raises(StoreError):  # nothing was installed
        fleet.emu.store.get(R.SECRET, "istio-system", "cacerts")
    assert {o.mesh: o.action for o in fleet.sign()}[ISTIO.name] is SigningAction.SIGNED
    assert fleet.agent_pass()[ISTIO.name] is AgentAction.INSTALLED
    cacerts = _secret(fleet.emu, "istio-system", "cacerts")
    _verify_under(root, cacerts["ca-cert.pem"], cacerts["ca-key.pem"])


# --- restart safety (in memory: the same code over `meshrules.kube.fake.FakeCluster`) -------------


def _memory_fleet(root: CertificateAuthority) -> tuple[FakeCluster, Callable[[], SigningAction]]:
    cluster = FakeCluster("cluster-1")
    cluster.seed(namespaces("istio-system"))

    def sign() -> SigningAction:
        out = sign_pending({"cluster-1": cluster}, [EnrollmentTarget(ISTIO, root.root_fingerprint)], _ca(root))
        return out[0].action

    return cluster, sign


def _ca(root: CertificateAuthority) -> dict[str, CertificateAuthority]:
    return {root.root_fingerprint: root}


def test_an_agent_restarted_after_generating_its_key_sends_that_key_s_csr(root: CertificateAuthority) -> None:
    cluster, sign = _memory_fleet(root)
    sign()
    # The previous agent generated the key and died before writing the CSR into the exchange.
    csr = prepare_intermediate(LiveTrustCluster(cluster), ISTIO)
    assert agent_step(cluster)[0].action is AgentAction.CSR_SENT
    assert _exchange(cluster)[X.CSR] == csr
    assert sign() is SigningAction.SIGNED
    assert agent_step(cluster)[0].action is AgentAction.INSTALLED


def test_an_agent_restarted_after_installing_reports_without_a_new_key(root: CertificateAuthority) -> None:
    cluster, sign = _memory_fleet(root)
    sign()
    agent_step(cluster)
    sign()
    # The previous agent installed the chain and died before reporting it.
    trust = LiveTrustCluster(cluster)
    ex = X.read_exchange(cluster, "istio-system", ISTIO.name)
    assert ex is not None
    answer = IssuedChain(ex.get(X.CERTIFICATE), (), ex.get(X.ROOT_CERTIFICATE), datetime.now(UTC))
    install_intermediate(trust, ISTIO, answer)
    installed = cluster.get(R.SECRET, "cacerts", "istio-system")
    outcome = agent_step(cluster)[0]
    assert outcome.action is AgentAction.INSTALLED
    assert cluster.get(R.SECRET, "cacerts", "istio-system") == installed  # the installed key was kept
    assert cluster.get(R.SECRET, PENDING, "istio-system") is None
    assert sign() is SigningAction.INSTALLED
    assert agent_step(cluster)[0].action is AgentAction.IDLE


def test_a_lost_pending_key_is_replaced_and_its_chain_is_never_installed(root: CertificateAuthority) -> None:
    cluster, sign = _memory_fleet(root)
    sign()
    agent_step(cluster)
    sign()  # signed for the first key
    cluster.delete(R.SECRET, PENDING, "istio-system")  # the first key is lost
    assert agent_step(cluster)[0].action is AgentAction.CSR_SENT  # a new key, a new CSR
    assert cluster.get(R.SECRET, "cacerts", "istio-system") is None
    assert sign() is SigningAction.SIGNED
    assert agent_step(cluster)[0].action is AgentAction.INSTALLED
    assert written_chain(LiveTrustCluster(cluster), ISTIO).issuer_root == root.root_fingerprint


def test_a_concurrent_write_is_retried_not_lost(root: CertificateAuthority) -> None:
    cluster, sign = _memory_fleet(root)
    sign()
    stale = X.read_exchange(cluster, "istio-system", ISTIO.name)
    assert stale is not None
    agent_step(cluster)  # the agent writes its CSR after `stale` was read
    with pytest.raises(ConflictError):
        X.replace_exchange(cluster, stale, stale.with_data({X.REFUSED: "MR0714: x"}))
    assert _exchange(cluster)[X.CSR]  # the agent's write survived


def _exchange(cluster: Cluster) -> dict[str, str]:
    obj = cluster.get(R.CONFIG_MAP, X.exchange_name(ISTIO.name), "istio-system")
    assert obj is not None
    return dict(obj["data"])


# --- the management side from VirtualMeshes ------------------------------------------------------


def test_reconcile_trust_generates_the_root_once_and_enrolls_the_members() -> None:
    management = FakeCluster("management")
    management.seed(namespaces("meshrules-system"))
    remote = FakeCluster("cluster-1")
    remote.seed(namespaces("istio-system"))
    vmesh = VirtualMesh.model_validate(
        {
            "metadata": {"name": "global", "namespace": "meshrules-system"},
            "spec": {"meshes": [{"name": ISTIO.name}, {"name": "not-discovered"}], "trust": {"shared": {}}},
        }
    )
    mesh = Mesh(
        name=ISTIO.name, type=MeshType.ISTIO, cluster="cluster-1", namespace="istio-system", control_plane="istiod"
    )

    def run() -> list[SigningAction]:
        return [o.action for o in reconcile_trust(management, {"cluster-1": remote}, [vmesh], [mesh]).outcomes]

    assert run() == [SigningAction.REQUESTED]
    secret = management.get(R.SECRET, root_secret_name("global"), "meshrules-system")
    assert secret is not None and secret["type"] == "kubernetes.io/tls"
    agent_step(remote)
    assert run() == [SigningAction.SIGNED]
    agent_step(remote)
    assert run() == [SigningAction.INSTALLED]
    ca = ensure_root(management, vmesh)
    assert ca is not None
    assert management.get(R.SECRET, root_secret_name("global"), "meshrules-system") == secret  # created once
    assert written_chain(LiveTrustCluster(remote), ISTIO).issuer_root == ca.root_fingerprint
    # The root key is on the management side only.
    remote_secrets = remote.list(R.SECRET, "istio-system").items
    root_key = base64.b64decode(secret["data"]["tls.key"])
    assert all(root_key not in base64.b64decode(v) for s in remote_secrets for v in s["data"].values())


def test_a_users_configmap_of_the_exchange_name_is_never_taken_over(root: CertificateAuthority) -> None:
    cluster = FakeCluster("cluster-1")
    cluster.seed(
        [
            *namespaces("istio-system"),
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": X.exchange_name(ISTIO.name), "namespace": "istio-system"},
                "data": {"mine": "yes"},
            },
        ]
    )
    out = sign_pending({"cluster-1": cluster}, [EnrollmentTarget(ISTIO, root.root_fingerprint)], _ca(root))
    assert out[0].action is SigningAction.FAILED and out[0].code == "MR0806"
    assert agent_step(cluster) == ()  # not labelled as an exchange: not found
    (mine,) = agent_step(cluster, meshes=[ISTIO.name])
    assert mine.action is AgentAction.FAILED and "does not own" in mine.detail
    assert _exchange(cluster) == {"mine": "yes"}


# --- the loop and the command ---------------------------------------------------------------------


def test_the_loop_bounds_its_interval_and_backs_off() -> None:
    loop = AgentLoop(FakeCluster("c"), interval=0.01)
    assert loop.interval == 1.0
    assert AgentLoop(FakeCluster("c"), interval=10_000).interval == 300.0
    loop.failures = 3
    assert loop.next_wait() == 8.0
    loop.failures = 50
    assert loop.next_wait() == 300.0
    assert loop.alive() and not loop.ready()
    loop.failures = 0
    loop.run_once()
    assert loop.ready()


def test_the_agent_command_runs_a_pass_and_prints_no_key(
    fleet: Fleet, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    config = write_kubeconfig(tmp_path / "kubeconfig", {"cluster-1": fleet.emu})
    app = typer.Typer()
    app.command("agent")(agent_command)
    app.command("noop")(lambda: None)  # two commands: `agent` stays a subcommand
    args = ["agent", "--once", "--kubeconfig", str(config), "--context", "cluster-1"]
    fleet.sign()
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "istio-system/istiod-istio-system-cluster-1: CsrSent" in first.stdout
    fleet.sign()
    second = CliRunner().invoke(app, [*args, "--mesh", ISTIO.name])
    assert second.exit_code == 0, second.output
    assert "istio-system/istiod-istio-system-cluster-1: Installed" in second.stdout
    assert "linkerd" not in second.stdout  # only the mesh asked for
    key = _secret(fleet.emu, "istio-system", "cacerts")["ca-key.pem"]
    _no_key_material(first.output + second.output + caplog.text, key)
    bad = CliRunner().invoke(app, [*args, "--interval", "0.1"])
    assert bad.exit_code != 0 and "interval" in bad.output


def test_a_namespace_without_a_role_and_a_failing_write_do_not_stop_the_agent(fleet: Fleet) -> None:
    fleet.sign()
    fleet.emu.faults.fail(403, method="GET", path="/namespaces/linkerd/configmaps$")
    failing = fleet.emu.faults.fail(500, method="PUT", path="/namespaces/istio-system/configmaps/", times=1)
    by_ns = {o.namespace: o for o in agent_step(fleet.agent)}
    assert by_ns["linkerd"].action is AgentAction.FAILED and "403" in by_ns["linkerd"].detail  # reported, skipped
    assert by_ns["istio-system"].action is AgentAction.FAILED  # the 500 on its write
    fleet.emu.faults.remove(failing)
    assert fleet.agent_pass()[ISTIO.name] is AgentAction.CSR_SENT  # the next pass recovers
    assert {o.mesh: o.action for o in fleet.sign()}[ISTIO.name] is SigningAction.SIGNED


def test_the_exchange_rbac_grants_configmaps_to_the_management_side_and_root_secrets_to_the_controller() -> None:
    assert rbac.remote_exchange_rules() == [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create", "update"]}
    ]
    # Secrets: create a generated root, replace it on a rotation, delete the kept previous root.
    assert rbac.controller_trust_rules() == [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create", "delete", "update"]}
    ]
    (agent_cm,) = [r for r in rbac.agent_namespace_rules() if "configmaps" in r["resources"]]
    assert "list" in agent_cm["verbs"] and "delete" not in agent_cm["verbs"]
    # deploy/agent binds the exchange Role to the identity `cluster register` creates.
    bindings = [o for o in manifests()["agent/rbac.yaml"] if o["kind"] == "RoleBinding"]
    exchange = [b for b in bindings if b["roleRef"]["name"] == "meshrules-remote-csr-exchange"]
    assert {b["metadata"]["namespace"] for b in exchange} == {"istio-system", "linkerd"}
    assert all(b["subjects"][0]["name"] == "meshrules-remote" for b in exchange)


class _Crash(Exception):
    """The agent process dies (not a `MeshrulesError`: nothing catches it)."""


class _CrashingCluster(FakeCluster):
    """The agent's view of a cluster: the process dies just after its ``after``-th write."""

    def __init__(self, server: FakeCluster, after: int) -> None:
        super().__init__(server.name, server.server)
        self.after = after

    def _write(self, verb: str, res: R.ApiResource, namespace: str, name: str, call: Any) -> dict[str, Any]:
        done = super()._write(verb, res, namespace, name, call)
        if len(self.writes) == self.after:
            raise _Crash
        return done

    def delete(self, resource: R.ApiResource, name: str, namespace: str = "", *, resource_version: str = "") -> bool:
        done = super().delete(resource, name, namespace, resource_version=resource_version)
        if len(self.writes) == self.after:
            raise _Crash
        return done


@pytest.mark.parametrize("crash_after", range(1, 6))  # the agent writes 5 times in all
def test_an_agent_that_dies_after_any_write_is_finished_by_the_next_one(
    root: CertificateAuthority, crash_after: int
) -> None:
    cluster, sign = _memory_fleet(root)
    crashing = _CrashingCluster(cluster, crash_after)
    crashed = False
    for _ in range(6):  # the first agent, until it dies
        sign()
        try:
            agent_step(crashing)
        except _Crash:
            crashed = True
            break
    assert crashed
    for _ in range(4):  # a new agent carries on
        sign()
        agent_step(cluster)
    assert sign() is SigningAction.INSTALLED
    assert cluster.get(R.SECRET, PENDING, "istio-system") is None
    cacerts = cluster.get(R.SECRET, "cacerts", "istio-system")
    assert cacerts is not None
    data = {k: base64.b64decode(v) for k, v in cacerts["data"].items()}
    _verify_under(root, data["ca-cert.pem"], data["ca-key.pem"])
    assert written_chain(LiveTrustCluster(cluster), ISTIO).issuer_root == root.root_fingerprint
