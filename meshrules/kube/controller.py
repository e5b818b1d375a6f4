"""`meshrules controller` (spec §8): the pure pipeline plus I/O, reconciling continuously.

Threads and what they own:
- informers (`ClusterCache`) keep the management cluster's policies, KubernetesClusters and
  kubeconfig Secrets, and every registered cluster's inputs and outputs, in memory;
- the leader elector holds (or waits for) the Lease; only the leader writes (`LeaderOnly`);
- the reconcile loop debounces bursts of changes (`debounce` quiet seconds, at most `max_delay`
  after the first), builds a `Scenario` from the caches, calls the injected `translate`, and
  hands each cluster's outputs to that cluster's worker;
- one worker per registered cluster applies its outputs (plan against that cluster's informer
  cache — every write carries a precondition, so a lagging cache only costs a 409 and a fresh
  read on the retry — execute, back-off on failure), and one for the management cluster writes discovery objects, policy
  statuses (`observedGeneration` = the generation translated) and each KubernetesCluster's
  status (its health, failures and back-off).

Safety: outputs are pruned only when every registered cluster's inputs are known (listed at
least once): a cluster that was never reachable could otherwise make another cluster's outputs
look stale. Owned outputs are not inputs (meshrules' own objects never feed back into
translation); a change to one only makes its worker re-check the cluster (drift correction).
"""

from __future__ import annotations

import hashlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from meshrules.emit.naming import OWNER_LABEL
from meshrules.errors import ClusterError, MeshrulesError
from meshrules.kube import resources as R
from meshrules.kube.apply import Action, ApplyPlan, ObjectKey, digest, execute, live_index, plan_apply, read_live
from meshrules.kube.cluster import Cluster, Object
from meshrules.kube.exchange import EXCHANGE_LABEL
from meshrules.kube.fields import selector
from meshrules.kube.informer import Backoff, ClusterCache
from meshrules.kube.kubeconfig import KUBECONFIG_KEY, KUBECONFIG_SECRET_TYPE, secret_data
from meshrules.kube.leader import LeaderElector, LeaseTiming
from meshrules.kube.live import LiveCluster, is_output, live_scenario, served_resources
from meshrules.kube.metrics import Metrics
from meshrules.kube.resources import ApiResource
from meshrules.kube.signing import SigningAction, reconcile_trust
from meshrules.kube.translation import Translate, Translation
from meshrules.kube.worker import Outcome, Worker
from meshrules.model.common import MANAGEMENT_NAMESPACE
from meshrules.model.discovery import CLUSTER_LABEL, Mesh
from meshrules.model.policy import VirtualMesh

log = logging.getLogger(__name__)

# (cluster name, kubeconfig text) → a client for that cluster.
Connect = Callable[[str, str], Cluster]
MANAGEMENT = "management"
# What the management worker writes discovery objects of (KubernetesCluster belongs to registration).
PUBLISHED = (R.MESH, R.WORKLOAD, R.DESTINATION)


@dataclass(frozen=True)
class ControllerSettings:
    """Tunables; the defaults suit a production cluster, tests shrink them."""

    namespace: str = MANAGEMENT_NAMESPACE
    identity: str = field(default_factory=socket.gethostname)
    debounce: float = 0.5
    max_delay: float = 5.0
    # A full reconcile this often even without changes (a safety net for missed events).
    resync: float = 600.0
    # How often cluster health is checked for KubernetesCluster status updates.
    health_interval: float = 5.0
    watch_seconds: float = 300.0
    backoff: Backoff = field(default_factory=lambda: Backoff(0.5, 60.0))
    lease: LeaseTiming = field(default_factory=LeaseTiming)


@dataclass
class Member:
    """A registered cluster as the controller holds it."""

    name: str
    digest: str
    cluster: Cluster | None = None
    cache: ClusterCache | None = None
    worker: Worker | None = None
    error: ClusterError | None = None
    desired: tuple[tuple[Mapping[str, Any], ...], tuple[Mapping[str, Any], ...], bool] | None = None
    unsettled: dict[ObjectKey, str] = field(default_factory=dict)
    # After a failed write the next apply reads the cluster instead of trusting its cache.
    read_fresh: bool = False

    def stop(self) -> None:
        """Stop its worker and informers."""
        if self.worker is not None:
            self.worker.stop()
        if self.cache is not None:
            self.cache.stop()


class Controller:
    """The reconciler of one management cluster."""

    def __init__(
        self,
        management: Cluster,
        translate: Translate,
        connect: Connect,
        settings: ControllerSettings = ControllerSettings(),
        metrics: Metrics | None = None,
    ) -> None:
        self.management = management
        self.translate = translate
        self.connect = connect
        self.settings = settings
        self.metrics = metrics or Metrics()
        ns = settings.namespace
        self.elector = LeaderElector(
            management, settings.identity, namespace=ns, timing=settings.lease, on_change=self._leadership
        )
        in_namespace = {(r.group, r.kind): ns for r in (R.KUBERNETES_CLUSTER, R.SECRET, *PUBLISHED)}
        self.cache = ClusterCache(
            management,
            [*R.POLICIES, R.KUBERNETES_CLUSTER, R.SECRET],
            self._on_management_change,
            namespaces=in_namespace,
            selectors={(R.SECRET.group, R.SECRET.kind): selector({OWNER_LABEL: ns})},
            watch_seconds=settings.watch_seconds,
            backoff=settings.backoff,
            on_synced=self.changed,
        )
        self.management_worker = Worker(
            MANAGEMENT,
            management,
            is_leader=self.elector.is_leader,
            backoff=settings.backoff,
            on_outcome=self._outcome,
        )
        self.members: dict[str, Member] = {}
        self.translation: Translation | None = None
        self.reconciles = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._first_change: float | None = None
        self._last_change = 0.0
        self._last_health: dict[str, Any] = {}
        self._policies: list[Object] = []
        # Set by the management job while a trust rotation runs: its waits need passes even when no
        # event comes (the loop's health tick kicks the job, at most once per `health_interval`).
        self._trust_rotating = False
        self._trust_kicked = 0.0
        self._thread = threading.Thread(target=self._loop, name="reconcile", daemon=True)

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> Controller:
        """Start caches, leader election, the management worker and the reconcile loop."""
        self.cache.start()
        self.management_worker.start()
        self.elector.start()
        self._thread.start()
        return self

    def stop(self, release: bool = True) -> None:
        """Stop everything; with ``release`` the Lease is given up so another replica leads at once."""
        self._stopped.set()
        self._wake.set()
        self._thread.join(timeout=10)
        self.elector.stop(release=release)
        self.management_worker.stop()
        with self._lock:
            members = list(self.members.values())
            self.members = {}
        for member in members:
            member.stop()
        self.cache.stop()

    def alive(self) -> bool:
        """Whether the reconcile loop runs (for `/healthz`)."""
        return self._thread.is_alive()

    def ready(self) -> bool:
        """Whether the management cluster's caches are synced (for `/readyz`)."""
        return self.cache.synced

    def changed(self) -> None:
        """Note a change: a reconcile follows once changes pause (debounce)."""
        now = time.monotonic()
        with self._lock:
            if self._first_change is None:
                self._first_change = now
            self._last_change = now
        self._wake.set()

    # --- the loop ------------------------------------------------------------------------------

    def _loop(self) -> None:
        next_resync = time.monotonic() + self.settings.resync
        while not self._stopped.is_set():
            woke = self._wake.wait(timeout=self.settings.health_interval)
            if self._stopped.is_set():
                return
            try:
                if self.cache.synced:
                    self._sync_members()
                    self._check_health()
                if time.monotonic() >= next_resync:
                    self._refresh_kinds()
                    self.changed()
                    next_resync = time.monotonic() + self.settings.resync
                    woke = True
                if not woke or not self._debounced():
                    continue
                if self.elector.is_leader() and self.cache.synced:
                    self.reconcile()
                elif not self.cache.synced:
                    self.changed()  # try again once synced
                    self._stopped.wait(0.05)
            except Exception:  # the loop must survive anything; the next change retries
                log.exception("reconcile failed")
                self.metrics.errors.labels(MANAGEMENT).inc()

    def _debounced(self) -> bool:
        """Wait until changes pause; False when stopped."""
        while not self._stopped.is_set():
            with self._lock:
                first = self._first_change
                if first is None:
                    self._wake.clear()
                    return False
                due = min(self._last_change + self.settings.debounce, first + self.settings.max_delay)
                now = time.monotonic()
                if now >= due:
                    self._first_change = None
                    self._wake.clear()
                    return True
            self._stopped.wait(due - now)
        return False

    def reconcile(self) -> Translation | None:
        """One pass: caches → scenario → translate → hand outputs to the workers."""
        started = time.monotonic()
        with self._lock:
            members = dict(self.members)
        configs = {o["metadata"]["name"]: o.get("spec") or {} for o in self.cache.objects([R.KUBERNETES_CLUSTER])}
        live: list[LiveCluster] = []
        for name, member in sorted(members.items()):
            if member.cache is None or not member.cache.synced:
                continue
            spec = configs.get(name, {})
            inputs = [o for o in member.cache.objects(R.CLUSTER_INPUTS) if not self._is_output(o)]
            live.append(
                LiveCluster(name, inputs, spec.get("clusterDomain"), spec.get("region"), spec.get("secretName"))
            )
        complete = {c.name for c in live} == set(members)
        policies = self.cache.objects(R.POLICIES)
        scenario = live_scenario(live, policies)
        try:
            translation = self.translate(scenario)
        except Exception:
            log.exception("translation failed")
            self.metrics.errors.labels(MANAGEMENT).inc()
            return None
        with self._lock:
            self.translation = translation
            self._policies = policies
            self.reconciles += 1
        if translation.outputs is not None:
            for cluster in live:
                member = members[cluster.name]
                objects = tuple(translation.outputs.objects.get(cluster.name, ()))
                patches = tuple(translation.outputs.patches.get(cluster.name, ()))
                member.desired = (objects, patches, complete)
                if member.worker is not None:
                    member.worker.submit(self._apply_job(member))
        self.management_worker.submit(self._management_job)
        self.metrics.reconciles.inc()
        self.metrics.reconcile_duration.observe(time.monotonic() - started)
        return translation

    # --- registered clusters -------------------------------------------------------------------

    def _sync_members(self) -> None:
        """Start, restart or stop the caches and workers of registered clusters."""
        secrets = {
            o["metadata"]["name"]: o for o in self.cache.objects([R.SECRET]) if o.get("type") == KUBECONFIG_SECRET_TYPE
        }
        wanted: dict[str, tuple[str, str | None]] = {}
        for obj in self.cache.objects([R.KUBERNETES_CLUSTER]):
            name = str(obj["metadata"]["name"])
            secret = secrets.get(str((obj.get("spec") or {}).get("secretName") or name))
            text = secret_data(secret, KUBECONFIG_KEY) if secret else None
            wanted[name] = (hashlib.sha256((text or "").encode()).hexdigest(), text)
        with self._lock:
            current = dict(self.members)
        for name in sorted(set(current) - set(wanted)):
            log.info("cluster %s deregistered", name)
            current[name].stop()
            with self._lock:
                self.members.pop(name, None)
            self.changed()
        for name, (text_digest, text) in sorted(wanted.items()):
            member = current.get(name)
            if member is not None and member.digest == text_digest:
                continue
            if member is not None:
                member.stop()
            fresh = self._member(name, text_digest, text)
            with self._lock:
                self.members[name] = fresh
            self.changed()

    def _member(self, name: str, text_digest: str, text: str | None) -> Member:
        member = Member(name=name, digest=text_digest)
        if not text:
            member.error = ClusterError(
                f"cluster `{name}` has no kubeconfig Secret yet", code="MR0809", hint="run `meshrules cluster register`"
            )
            return member
        try:
            cluster = self.connect(name, text)
        except ClusterError as err:
            member.error = err
            return member
        member.cluster = cluster
        member.cache = ClusterCache(
            cluster,
            R.unique((*R.CLUSTER_INPUTS, *R.EMITTED)),
            lambda res, old, new: self._on_member_change(member, res, old, new),
            watch_seconds=self.settings.watch_seconds,
            backoff=self.settings.backoff,
            on_synced=self.changed,
        ).start()
        member.worker = Worker(
            name, cluster, is_leader=self.elector.is_leader, backoff=self.settings.backoff, on_outcome=self._outcome
        ).start()
        return member

    def _refresh_kinds(self) -> None:
        """Watch kinds a cluster began serving since (its own thread each: discovery may be slow)."""
        with self._lock:
            caches = [m.cache for m in self.members.values() if m.cache is not None]
        for cache in caches:
            threading.Thread(target=cache.refresh, name=f"refresh-{cache.cluster.name}", daemon=True).start()

    def _is_output(self, obj: Mapping[str, Any]) -> bool:
        return is_output(obj, self.settings.namespace)

    # --- change handlers -----------------------------------------------------------------------

    def _on_management_change(self, resource: ApiResource, old: Object | None, new: Object | None) -> None:
        if resource in R.POLICIES or resource.kind in ("KubernetesCluster", "Secret"):
            # Status-only changes (our own status writes) are not relevant: see `informer.relevant`.
            self.changed()

    def _on_member_change(self, member: Member, resource: ApiResource, old: Object | None, new: Object | None) -> None:
        either = new if new is not None else old
        if either is not None and _is_exchange(either, self.settings.namespace):
            # A CSR, an install or a report in a CSR exchange: the management job answers it (and
            # takes the next rotation step); nothing translation reads has changed.
            self.management_worker.kick()
            return
        if either is not None and self._is_output(either) and (old is None or self._is_output(old)):
            if member.worker is not None:
                member.worker.kick()  # someone touched an output: re-check that cluster only
            return
        self.changed()

    def _leadership(self, leading: bool) -> None:
        self.metrics.leader.set(1 if leading else 0)
        if leading:
            self.changed()

    def _outcome(self, worker: Worker, outcome: Outcome) -> None:
        for action, count in outcome.writes.items():
            self.metrics.applied.labels(worker.name, action).inc(count)
        if outcome.errors:
            self.metrics.errors.labels(worker.name).inc(len(outcome.errors))
        if worker.name != MANAGEMENT:
            self._check_health()

    def _check_health(self) -> None:
        """Kick the management worker when a cluster's health changed (its KubernetesCluster status)."""
        health = self.cluster_statuses()
        for name, status in health.items():
            self.metrics.cluster_up.labels(name).set(1 if status["state"] == "Ready" else 0)
        with self._lock:
            changed = health != self._last_health
            self._last_health = health
        due = self._trust_rotating and time.monotonic() - self._trust_kicked >= self.settings.health_interval
        if due:
            self._trust_kicked = time.monotonic()
        if changed or due:
            self.management_worker.kick()

    def cluster_statuses(self) -> dict[str, dict[str, Any]]:
        """The status each registered cluster's KubernetesCluster should show now."""
        with self._lock:
            members = dict(self.members)
        out = {}
        for name, member in sorted(members.items()):
            error = member.error
            failures = 0
            if error is None and member.cache is not None:
                error = member.cache.health()
                failures = member.cache.failures()
            if error is None and member.worker is not None and member.worker.error is not None:
                error, failures = member.worker.error, member.worker.failures
            if error is not None:
                state = "Unreachable" if member.cache is None or member.cache.health() is not None else "Failing"
                out[name] = {"state": state, "message": str(error), "failures": max(failures, 1)}
            elif member.cache is None or not member.cache.synced:
                out[name] = {"state": "Connecting", "message": "reading the cluster", "failures": 0}
            else:
                out[name] = {"state": "Ready", "message": "", "failures": 0}
        return out

    # --- jobs ------------------------------------------------------------------------------------

    def _apply_job(self, member: Member) -> Callable[[Cluster], Outcome]:
        def job(cluster: Cluster) -> Outcome:
            if member.desired is None:
                return Outcome()
            objects, patches, prune = member.desired
            # Planned from the informers' cache: no list per apply. A lagging cache costs a 409
            # (every write has a precondition) and one fresh read on the retry, never a lost write.
            cache = None if member.read_fresh or member.cache is None else member.cache.cached
            member.read_fresh = False
            live = read_live(cluster, objects, patches, cached=cache)
            plan = plan_apply(cluster.name, objects, live, patches=patches, owner=self.settings.namespace, prune=prune)
            plan = _skip_unsettled(plan, member.unsettled)
            result = execute(plan, cluster)
            outcome = Outcome()
            for change in result.done:
                outcome.writes[change.action.value] += 1
            outcome.errors.extend(err for _, err in result.failed)
            member.read_fresh = bool(result.failed)
            for change in result.unsettled:
                if change.desired is not None:
                    member.unsettled[change.key] = digest(change.desired)
                    log.warning(
                        "%s: %s did not settle after apply; not re-applied until it changes", member.name, change.key
                    )
            outcome.notes.extend(f"{c.key}: {c.message}" for c in result.reported)
            return outcome

        return job

    def _management_job(self, cluster: Cluster) -> Outcome:
        """Publish discovery, run shared trust, write policy statuses and KubernetesCluster statuses (fresh reads).

        Trust runs before the statuses are written: a VirtualMesh's `trust` block goes into the same
        status write as its translated status (one server-side apply by one field manager: a
        second apply would drop the first one's fields), and its saved rotation is read from the
        VirtualMesh as listed here.
        """
        outcome = Outcome()
        with self._lock:
            translation = self.translation
            policies = list(self._policies)
            members = dict(self.members)
        ns = self.settings.namespace
        if translation is not None and translation.discovery is not None:
            self._publish_discovery(cluster, translation, members, outcome)
        if translation is not None and (translation.statuses or translation.discovery is not None):
            generations = {_ref(p): (p.get("metadata") or {}).get("generation") for p in policies}
            current = {_ref(p): p for res in served_resources(cluster, R.POLICIES) for p in cluster.list(res).items}
            trust: dict[str, dict[str, Any]] = {}
            if translation.discovery is not None:
                # Only VirtualMeshes whose status is written below: a step whose status is not saved
                # would only be redone.
                vmeshes = [o for r, o in sorted(current.items()) if r in generations and o.get("kind") == "VirtualMesh"]
                trust = self._reconcile_trust(cluster, vmeshes, members, translation.discovery.meshes)
            for ref in sorted(set(translation.statuses) | set(trust)):
                live = current.get(ref)
                if live is None or ref not in generations:
                    continue  # deleted since: nothing to report on
                translated = translation.statuses.get(ref)
                body: dict[str, Any] = {}
                if translated is not None:
                    body = {"observedGeneration": generations[ref], **translated}
                if ref in trust:
                    body["trust"] = trust[ref]
                if live.get("status") == body:
                    continue
                self._write_status(cluster, live, body, outcome)
        statuses = self.cluster_statuses()
        for obj in cluster.list(R.KUBERNETES_CLUSTER, ns).items:
            name = obj["metadata"]["name"]
            if name in statuses and obj.get("status") != statuses[name]:
                self._write_status(cluster, obj, statuses[name], outcome)
        return outcome

    def _reconcile_trust(
        self,
        management: Cluster,
        vmeshes: list[Object],
        members: Mapping[str, Member],
        meshes: tuple[Mesh, ...],
    ) -> dict[str, dict[str, Any]]:
        """Shared trust (spec §3.1, §8): roots, rotation, signing; each VirtualMesh's `status.trust` by ref.

        ``vmeshes`` are the VirtualMeshes as just read (their status holds the rotation to resume).
        """
        virtual_meshes = []
        for obj in vmeshes:
            try:
                vmesh = VirtualMesh.model_validate(obj)
            except ValueError:
                continue  # a broken VirtualMesh is reported on its status by the translation
            if vmesh.spec.trust is not None and vmesh.spec.trust.shared is not None:
                virtual_meshes.append(vmesh)
        if not virtual_meshes:
            self._trust_rotating = False
            return {}
        clusters = {name: m.worker.cluster for name, m in members.items() if m.worker is not None}
        try:
            result = reconcile_trust(management, clusters, virtual_meshes, meshes, namespace=self.settings.namespace)
        except MeshrulesError as err:
            log.warning("trust: %s", err)
            return {}
        for outcome in result.outcomes:
            if outcome.action in (SigningAction.FAILED, SigningAction.REFUSED):
                log.warning("trust: %s in %s: %s %s", outcome.mesh, outcome.cluster, outcome.code, outcome.detail)
        self._trust_rotating = result.rotating
        return {ref: status.to_wire() for ref, status in result.statuses.items()}

    def _publish_discovery(
        self, cluster: Cluster, translation: Translation, members: Mapping[str, Member], outcome: Outcome
    ) -> None:
        assert translation.discovery is not None
        known = {n for n, m in members.items() if m.cache is not None and m.cache.synced}
        desired = [
            o
            for o in translation.discovery.objects()
            if o["kind"] != "KubernetesCluster" and o["metadata"]["labels"].get(CLUSTER_LABEL) in known
        ]
        live: list[Object] = []
        for res in served_resources(cluster, PUBLISHED):
            for obj in cluster.list(res, self.settings.namespace).items:
                owner_cluster = ((obj.get("metadata") or {}).get("labels") or {}).get(CLUSTER_LABEL)
                # Objects of clusters still being read stay; those of deregistered clusters go.
                if owner_cluster in known or owner_cluster not in members:
                    live.append(obj)
        plan = plan_apply(
            MANAGEMENT, desired, live_index(live), owner=self.settings.namespace, prunable=PUBLISHED, patchable=()
        )
        result = execute(plan, cluster)
        for change in result.done:
            outcome.writes[change.action.value] += 1
        outcome.errors.extend(err for _, err in result.failed)

    def _write_status(
        self, cluster: Cluster, live: Mapping[str, Any], status: Mapping[str, Any], outcome: Outcome
    ) -> None:
        meta = live.get("metadata") or {}
        body = {
            "apiVersion": live.get("apiVersion"),
            "kind": live.get("kind"),
            "metadata": {"name": meta.get("name"), "namespace": meta.get("namespace")},
            "status": dict(status),
        }
        try:
            cluster.apply(body, force=True, subresource="status")
        except ClusterError as err:
            if getattr(err, "status", 0) == 404:
                return  # deleted meanwhile
            outcome.errors.append(err)
            return
        outcome.writes["status"] += 1


def _is_exchange(obj: Mapping[str, Any], owner: str) -> bool:
    """Whether ``obj`` is a CSR exchange ConfigMap (`meshrules.kube.exchange`) of this management namespace."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return obj.get("kind") == "ConfigMap" and labels.get(EXCHANGE_LABEL) == "true" and labels.get(OWNER_LABEL) == owner


def _ref(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{obj.get('kind')} {meta.get('namespace') or MANAGEMENT_NAMESPACE}/{meta.get('name')}"


def _skip_unsettled(plan: ApplyPlan, unsettled: Mapping[ObjectKey, str]) -> ApplyPlan:
    """Leave out updates that already failed to settle with the same desired state."""
    if not unsettled:
        return plan
    kept = tuple(
        c
        for c in plan.changes
        if not (c.action is Action.UPDATE and c.desired is not None and unsettled.get(c.key) == digest(c.desired))
    )
    return ApplyPlan(cluster=plan.cluster, changes=kept, pruned=plan.pruned)
