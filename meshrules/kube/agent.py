"""`meshrules agent`'s logic: the registered cluster's end of the live CSR exchange.

Beside `meshrules.kube.signing` (the management side) and over `meshrules.kube.exchange` (the
ConfigMap they share) and `meshrules.kube.trust.LiveTrustCluster` (the mesh's CA objects). The
agent runs in the cluster whose mesh it serves, with a Role in the mesh namespaces only; each pass
(`agent_step`) looks at every request there and moves it one step:

- a request without this agent's CSR → `prepare_intermediate` generates the key *here* (kept in
  Secret `meshrules-intermediate-key`) and the CSR goes into the exchange (`CsrSent`);
- certificates answering the CSR of the key it holds → checked to chain to the requested root,
  installed with `install_intermediate` (Istio `cacerts`, Linkerd issuer Secret and trust roots),
  reported `Installed` with the root's fingerprint; certificates that do not chain there are never
  installed: the key is dropped and a new CSR sent, with the reason in the exchange's message;
- a refusal of its CSR → reported `Refused` (it stays so until the management side opens a new
  request); a refusal of a CSR that is *not* its own (the exchange was tampered with) → its own CSR
  is sent again.

Then, for a root rotation (`report_state`): a ``bundle`` the management side asks for becomes the
mesh's trust bundle (acknowledged in ``bundleWritten``) — never one that lacks the root the mesh
issues from, which would cut the mesh off from its own workloads — and ``served`` is refreshed with
what the mesh serves now (`LiveTrustCluster.reported_chain`). The management side cannot read the
mesh's Secrets; these reports are what its rotation waits on.

Every step looks at what is written before writing, so an agent stopped anywhere resumes on its
next pass: the pending key survives in its Secret until the chain for it is installed, and an
install that completed before the crash is recognised by the certificate in the mesh's CA Secret.
Keys are never logged or returned: outcomes carry mesh names, phases and fingerprints.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from meshrules.errors import ClusterError, MeshrulesError, TrustError
from meshrules.kube import exchange as X
from meshrules.kube.cluster import FORBIDDEN, NOT_OWNED, Cluster
from meshrules.kube.trust import LiveTrustCluster
from meshrules.model.common import MANAGEMENT_NAMESPACE
from meshrules.trust import (
    IssuedChain,
    MeshIdentity,
    bundle_fingerprints,
    discard_pending,
    install_intermediate,
    issuer_root,
    prepare_intermediate,
    read_bundle,
    write_bundle,
)
from meshrules.trust.objects import (
    PENDING_CSR,
    PENDING_KEY_SECRET,
    issuer_certificates_pem,
    issuer_secret_name,
    split_bundle,
)
from meshrules.trust.pem import dedupe, fingerprint, load_certificates, walk_to_root

log = logging.getLogger(__name__)

AGENT_ERROR = "MR0720"
# The mesh namespaces `deploy/agent` grants the agent a Role in.
DEFAULT_NAMESPACES = ("istio-system", "linkerd")
# Bounds of the pass interval: under a second is a busy loop against the API server; over five
# minutes a rotation would wait too long on this cluster.
MIN_INTERVAL = 1.0
MAX_INTERVAL = 300.0
# After failed passes the agent backs off up to this, so an API outage is not hammered.
MAX_BACKOFF = 300.0


class AgentAction(StrEnum):
    """What one pass did for one request."""

    IDLE = "Idle"  # installed already: nothing to do
    CSR_SENT = "CsrSent"
    WAITING = "Waiting"  # the CSR is out; no answer yet
    INSTALLED = "Installed"
    REFUSED = "Refused"
    FAILED = "Failed"
    BUNDLE_WRITTEN = "BundleWritten"  # nothing to install; the trust bundle was changed as asked


@dataclass(frozen=True, slots=True)
class AgentOutcome:
    """One request's result of a pass; ``detail`` is one line (never key material)."""

    mesh: str
    namespace: str
    action: AgentAction
    detail: str = ""


def agent_step(
    cluster: Cluster,
    *,
    namespaces: Sequence[str] = DEFAULT_NAMESPACES,
    meshes: Collection[str] = (),
    owner: str = MANAGEMENT_NAMESPACE,
) -> tuple[AgentOutcome, ...]:
    """One pass over the requests in ``namespaces`` (only those of ``meshes`` when given).

    A request that fails (a 409 from a concurrent management write, a chain that does not fit)
    is that request's outcome; listing failures raise `ClusterError` for the loop to back off.
    """
    trust = LiveTrustCluster(cluster, owner)
    outcomes: list[AgentOutcome] = []
    for namespace in namespaces:
        if meshes:
            found: list[X.Exchange] = []
            for name in sorted(meshes):
                try:
                    ex = X.read_exchange(cluster, namespace, name, owner)
                except ClusterError as err:
                    if err.code != NOT_OWNED:
                        raise
                    # A user's ConfigMap of the exchange's name: reported, never touched.
                    outcomes.append(AgentOutcome(name, namespace, AgentAction.FAILED, err.message))
                    continue
                if ex is not None:
                    found.append(ex)
            exchanges = tuple(found)
        else:
            try:
                exchanges = X.list_exchanges(cluster, namespace, owner)
            except ClusterError as err:
                if err.code != FORBIDDEN:
                    raise
                # No Role there (deploy/agent says to drop the one of a mesh the cluster does
                # not run): the other namespaces are still served.
                outcomes.append(AgentOutcome("", namespace, AgentAction.FAILED, err.message))
                continue
        for ex in exchanges:
            mesh_name = ex.name.removeprefix(X.PREFIX)
            try:
                outcome = serve_request(cluster, trust, ex)
                written = report_state(cluster, trust, namespace, mesh_name, owner)
                if written and outcome.action in (AgentAction.IDLE, AgentAction.WAITING):
                    outcome = AgentOutcome(mesh_name, namespace, AgentAction.BUNDLE_WRITTEN, written)
            except MeshrulesError as err:
                log.warning("agent: mesh %s: %s", mesh_name, err.message)
                outcome = AgentOutcome(mesh_name, namespace, AgentAction.FAILED, err.message)
                _report_failure(cluster, ex, err, owner)
            outcomes.append(outcome)
    return tuple(outcomes)


def serve_request(cluster: Cluster, trust: LiveTrustCluster, ex: X.Exchange) -> AgentOutcome:
    """Move one request one step (see the module docstring)."""
    mesh_name = ex.name.removeprefix(X.PREFIX)

    def outcome(action: AgentAction, detail: str = "") -> AgentOutcome:
        return AgentOutcome(mesh_name, ex.namespace, action, detail)

    nonce = ex.get(X.NONCE)
    mesh = ex.mesh
    if mesh is None or not nonce:
        return outcome(AgentAction.WAITING, "no request yet")
    if mesh.name != mesh_name or mesh.namespace != ex.namespace:
        # The agent writes a mesh's CA only in the namespace its request lives in, for that mesh.
        raise TrustError(
            f"request `{ex.namespace}/{ex.name}` is for mesh `{mesh.name}` in `{mesh.namespace}`",
            code=AGENT_ERROR,
            hint="a request names the mesh of its own ConfigMap; the management side rewrites it",
        )
    if ex.installed:
        return outcome(AgentAction.IDLE)
    if ex.answered and ex.get(X.CERTIFICATE):
        try:
            chain = _issued_chain(ex)
        except TrustError as err:
            # A forged answer names the digest of this agent's CSR, so sending that CSR again
            # would look answered: a new key and CSR get a real answer, and the message says why.
            discard_pending(trust, mesh)
            csr = prepare_intermediate(trust, mesh)
            fresh = {X.CSR: csr, X.CSR_NONCE: nonce, X.PHASE: X.Phase.CSR_SENT.value}
            X.replace_exchange(cluster, ex, ex.with_data({**fresh, X.MESSAGE: f"{err.code}: {err.message}"}))
            log.warning("agent: mesh %s: %s; sent a new CSR", mesh.name, err.message)
            return outcome(AgentAction.FAILED, err.message)
        pending = trust.get_secret(mesh.namespace, PENDING_KEY_SECRET)
        pending_csr = pending.data.get(PENDING_CSR, b"").decode() if pending is not None else ""
        if pending_csr and X.csr_digest(pending_csr) == ex.get(X.ANSWER_FOR):
            install_intermediate(trust, mesh, chain)
            return _installed(cluster, ex, chain, outcome)
        if _already_installed(trust, mesh, chain):
            # Installed before a crash, status not yet written: finish the report.
            discard_pending(trust, mesh)
            return _installed(cluster, ex, chain, outcome)
        # The answer is for a key this agent does not hold (lost, or a CSR it did not send): ask again.
    csr = prepare_intermediate(trust, mesh)
    if ex.get(X.CSR) == csr and ex.get(X.CSR_NONCE) == nonce:
        refused = ex.get(X.REFUSED) if ex.answered else ""
        if not refused:
            return outcome(AgentAction.WAITING, "waiting for the signed chain")
        if ex.get(X.PHASE) != X.Phase.REFUSED.value:
            X.replace_exchange(cluster, ex, ex.with_data({X.PHASE: X.Phase.REFUSED.value, X.MESSAGE: refused}))
        return outcome(AgentAction.REFUSED, refused)
    X.replace_exchange(
        cluster,
        ex,
        ex.with_data({X.CSR: csr, X.CSR_NONCE: nonce, X.PHASE: X.Phase.CSR_SENT.value, X.MESSAGE: None}),
    )
    log.info("agent: sent the CSR of mesh %s", mesh.name)
    return outcome(AgentAction.CSR_SENT)


def report_state(cluster: Cluster, trust: LiveTrustCluster, namespace: str, mesh_name: str, owner: str) -> str:
    """Write the bundle the management side asks for, and report what the mesh serves (one write at most).

    Returns a one-line detail when the trust bundle was written, else "". Refused (`TrustError`)
    when the asked-for bundle is empty or lacks the root the mesh issues from now.
    """
    ex = X.read_exchange(cluster, namespace, mesh_name, owner)  # fresh: `serve_request` may have written
    mesh = ex.mesh if ex is not None else None
    if ex is None or mesh is None or mesh.name != mesh_name or mesh.namespace != namespace:
        return ""
    changes: dict[str, str | None] = {}
    detail = ""
    wanted = ex.get(X.BUNDLE)
    if wanted:
        roots = split_bundle(wanted)
        if not roots:
            raise TrustError(
                f"the trust bundle asked for mesh `{mesh.name}` holds no certificate",
                code=AGENT_ERROR,
                hint="the management side writes `bundle`; it is rewritten on its next pass",
            )
        current = read_bundle(trust, mesh)
        issuing = issuer_root(trust, mesh, (*current, *roots))
        fingerprints = bundle_fingerprints(wanted)
        if issuing is not None and issuing not in fingerprints:
            # INVARIANT: a mesh always trusts the root it issues from; the rotation removes a root
            # only after every mesh issues from the new one, so this means the exchange is stale.
            raise TrustError(
                f"the trust bundle asked for mesh `{mesh.name}` lacks root `{issuing[:16]}…` the mesh issues from",
                code=AGENT_ERROR,
                hint="the mesh must first get an intermediate from a root of the new bundle",
            )
        if write_bundle(trust, mesh, roots):
            detail = f"trust bundle is now {len(roots)} root(s)"
            log.info("agent: mesh %s: %s", mesh.name, detail)
        # Acknowledged only once the mesh's bundle is what was asked (an Istio mesh without
        # `cacerts` has no bundle to write yet).
        digest = X.bundle_digest(wanted)
        if X.bundle_digest("".join(read_bundle(trust, mesh))) == digest and ex.get(X.BUNDLE_WRITTEN) != digest:
            changes[X.BUNDLE_WRITTEN] = digest
    elif ex.get(X.BUNDLE_WRITTEN):
        changes[X.BUNDLE_WRITTEN] = None
    served = trust.reported_chain(mesh)
    text = X.served_text(served) if served is not None else None
    if (text or "") != ex.get(X.SERVED):
        changes[X.SERVED] = text
    if changes:
        X.replace_exchange(cluster, ex, ex.with_data(changes))
    return detail


def _issued_chain(ex: X.Exchange) -> IssuedChain:
    """The answer as an `IssuedChain`, refused unless it chains, by signature, to the requested root."""
    certificate, chain_pem, root_pem = ex.get(X.CERTIFICATE), ex.get(X.CHAIN), ex.get(X.ROOT_CERTIFICATE)
    leaf = load_certificates(certificate, X.CERTIFICATE)[0]
    chain = load_certificates(chain_pem, X.CHAIN) if chain_pem.strip() else ()
    roots = load_certificates(root_pem, X.ROOT_CERTIFICATE)
    _above, root = walk_to_root(leaf, dedupe((*chain, *roots)))
    if root is None or fingerprint(root) != ex.get(X.ROOT):
        raise TrustError(
            f"the chain answering mesh `{ex.name.removeprefix(X.PREFIX)}` does not lead to the requested root",
            code=AGENT_ERROR,
            hint="the exchange was changed after signing; the management side answers again on a new request",
        )
    return IssuedChain(
        certificate=certificate,
        chain=split_bundle(chain_pem),
        root=root_pem,
        not_after=leaf.not_valid_after_utc,
    )


def _already_installed(trust: LiveTrustCluster, mesh: MeshIdentity, chain: IssuedChain) -> bool:
    secret = trust.get_secret(mesh.namespace, issuer_secret_name(mesh))
    text = issuer_certificates_pem(mesh, secret.data) if secret is not None else None
    return text is not None and text.strip().startswith(chain.certificate.strip())


def _installed(
    cluster: Cluster, ex: X.Exchange, chain: IssuedChain, outcome: Callable[[AgentAction, str], AgentOutcome]
) -> AgentOutcome:
    detail = f"issued from root {chain.root_fingerprint[:16]}…, expires {chain.not_after:%Y-%m-%d}"
    X.replace_exchange(
        cluster,
        ex,
        ex.with_data(
            {
                X.PHASE: X.Phase.INSTALLED.value,
                X.INSTALLED_NONCE: ex.get(X.NONCE),
                X.INSTALLED_ROOT: chain.root_fingerprint,
                X.MESSAGE: detail,
            }
        ),
    )
    log.info("agent: installed the intermediate of mesh %s (%s)", ex.name.removeprefix(X.PREFIX), detail)
    return outcome(AgentAction.INSTALLED, detail)


def _report_failure(cluster: Cluster, ex: X.Exchange, err: MeshrulesError, owner: str) -> None:
    """Make a failure visible in the exchange (best effort: the next pass retries anyway)."""
    message = f"{err.code}: {err.message}"
    if ex.get(X.PHASE) == X.Phase.FAILED.value and ex.get(X.MESSAGE) == message:
        return
    try:
        current = X.read_exchange(cluster, ex.namespace, ex.name.removeprefix(X.PREFIX), owner)
        if current is not None:
            X.replace_exchange(cluster, current, current.with_data({X.PHASE: X.Phase.FAILED.value, X.MESSAGE: message}))
    except ClusterError:
        pass  # the outcome and the log already say it


@dataclass
class AgentLoop:
    """Runs `agent_step` every ``interval`` seconds until ``stop`` is set; health for the probes."""

    cluster: Cluster
    namespaces: Sequence[str] = DEFAULT_NAMESPACES
    meshes: Collection[str] = ()
    interval: float = 10.0
    owner: str = MANAGEMENT_NAMESPACE
    stop: threading.Event = field(default_factory=threading.Event)
    on_pass: Callable[[tuple[AgentOutcome, ...]], None] | None = None
    last_pass: float | None = field(default=None, init=False)
    failures: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.interval = min(max(self.interval, MIN_INTERVAL), MAX_INTERVAL)

    def run_once(self) -> tuple[AgentOutcome, ...]:
        """One pass; a cluster error counts as a failure (the next wait backs off)."""
        try:
            outcomes = agent_step(self.cluster, namespaces=self.namespaces, meshes=self.meshes, owner=self.owner)
        except ClusterError as err:
            self.failures += 1
            log.warning("agent: pass failed (%s): %s", err.code, err.message)
            return ()
        self.failures = 0
        self.last_pass = time.monotonic()
        if self.on_pass is not None:
            self.on_pass(outcomes)
        return outcomes

    def next_wait(self) -> float:
        """The interval, doubled per consecutive failure up to `MAX_BACKOFF`."""
        backoff: float = self.interval * float(2 ** min(self.failures, 16))
        return min(backoff, max(MAX_BACKOFF, self.interval))

    def run(self) -> None:
        """Pass after pass until ``stop`` is set."""
        while not self.stop.is_set():
            self.run_once()
            self.stop.wait(self.next_wait())

    def alive(self) -> bool:
        """A pass succeeded within the last three waits (or none has been tried long enough to tell)."""
        if self.last_pass is None:
            return True
        return time.monotonic() - self.last_pass < 3 * max(self.next_wait(), self.interval) + 30

    def ready(self) -> bool:
        """At least one pass succeeded."""
        return self.last_pass is not None
