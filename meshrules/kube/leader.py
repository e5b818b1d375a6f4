"""Leader election through a `coordination.k8s.io/v1` Lease, so several controller replicas can run.

The algorithm of client-go's `leaderelection`: the holder renews the Lease every `retry` seconds;
another replica takes over only when it has seen the Lease unchanged for `lease` seconds. Every
write is conditional on the Lease's resourceVersion, so two replicas can never both win.

Safety margin: a leader considers itself leader only until `renew_deadline` (< `lease`) after
its last successful renewal, so it stops writing before any other replica may take over — even
when it cannot reach the API server to learn that it lost.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from meshrules.errors import ClusterError
from meshrules.kube import resources as R
from meshrules.kube.cluster import Cluster, ConflictError, Object
from meshrules.model.common import MANAGEMENT_NAMESPACE

log = logging.getLogger(__name__)

LEASE_NAME = "meshrules-controller"


@dataclass(frozen=True, slots=True)
class LeaseTiming:
    """Seconds: how long a Lease is valid, how long a leader trusts its last renewal, how often it tries."""

    lease: float = 15.0
    renew_deadline: float = 10.0
    retry: float = 2.0

    def __post_init__(self) -> None:
        if not self.retry < self.renew_deadline < self.lease:
            raise ValueError("lease timing needs retry < renew_deadline < lease")


class LeaderElector:
    """Campaigns for the Lease in a thread; `is_leader()` answers at any time."""

    def __init__(
        self,
        cluster: Cluster,
        identity: str,
        *,
        name: str = LEASE_NAME,
        namespace: str = MANAGEMENT_NAMESPACE,
        timing: LeaseTiming = LeaseTiming(),
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        self.cluster = cluster
        self.identity = identity
        self.name = name
        self.namespace = namespace
        self.timing = timing
        self._on_change = on_change
        self._renewed_at = float("-inf")
        self._leading = False
        self._observed: tuple[Any, ...] | None = None
        self._observed_at = 0.0
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> LeaderElector:
        """Start campaigning."""
        self._thread = threading.Thread(target=self._run, name=f"leader-{self.identity}", daemon=True)
        self._thread.start()
        return self

    def stop(self, release: bool = True) -> None:
        """Stop campaigning; with ``release``, a leader gives the Lease up so another takes over at once."""
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if release and self.is_leader():
            try:
                self._release()
            except ClusterError as err:
                log.warning("could not release the lease: %s", err)
        self._set_leading(False)

    def is_leader(self) -> bool:
        """Whether this replica holds the Lease and renewed it within the renew deadline."""
        with self._lock:
            return self._leading and time.monotonic() - self._renewed_at < self.timing.renew_deadline

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                self.try_acquire_or_renew()
            except ConflictError:
                # The Lease changed under us: someone else holds it now. Stop leading at once.
                self._set_leading(False)
            except ClusterError as err:
                log.debug("lease %s/%s: %s", self.namespace, self.name, err)
            if not self.is_leader():
                self._set_leading(False)
            self._stopped.wait(self.timing.retry)

    def try_acquire_or_renew(self) -> bool:
        """One round: create, renew or take over the Lease; returns whether this replica leads."""
        started = time.monotonic()
        lease = self.cluster.get(R.LEASE, self.name, self.namespace)
        now = _micro_time()
        if lease is None:
            self.cluster.create(self._lease(None, now, transitions=0))
            return self._won(started)
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        seen = (holder, spec.get("renewTime"), spec.get("leaseDurationSeconds"))
        if seen != self._observed:
            self._observed, self._observed_at = seen, started
        if holder == self.identity:
            self.cluster.replace(self._lease(lease, now, transitions=int(spec.get("leaseTransitions") or 0), keep=True))
            return self._won(started)
        duration = float(spec.get("leaseDurationSeconds") or self.timing.lease)
        if holder and started - self._observed_at < duration:
            self._set_leading(False)
            return False
        # Expired (unchanged for a whole lease duration) or released: take it over.
        self.cluster.replace(self._lease(lease, now, transitions=int(spec.get("leaseTransitions") or 0) + 1))
        return self._won(started)

    def _won(self, started: float) -> bool:
        with self._lock:
            # The renewal counts from before the request: the Lease may be that old for others.
            self._renewed_at = started
        self._set_leading(True)
        return True

    def _lease(self, current: Object | None, now: str, *, transitions: int, keep: bool = False) -> Object:
        spec: dict[str, Any] = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": max(1, round(self.timing.lease)),
            "renewTime": now,
            "leaseTransitions": transitions,
            "acquireTime": ((current or {}).get("spec") or {}).get("acquireTime", now) if keep else now,
        }
        meta: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if current is not None:
            meta["resourceVersion"] = current["metadata"]["resourceVersion"]
        return {"apiVersion": R.LEASE.api_version, "kind": "Lease", "metadata": meta, "spec": spec}

    def _release(self) -> None:
        lease = self.cluster.get(R.LEASE, self.name, self.namespace)
        if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.identity:
            return
        released = self._lease(lease, _micro_time(), transitions=int(lease["spec"].get("leaseTransitions") or 0))
        released["spec"]["holderIdentity"] = ""
        released["spec"]["leaseDurationSeconds"] = 1
        self.cluster.replace(released)

    def _set_leading(self, leading: bool) -> None:
        with self._lock:
            changed = leading != self._leading
            self._leading = leading
        if changed:
            log.info("%s %s leadership", self.identity, "acquired" if leading else "lost")
            if self._on_change is not None:
                self._on_change(leading)


def _micro_time() -> str:
    """Kubernetes MicroTime: RFC 3339 with microseconds."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
