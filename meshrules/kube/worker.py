"""One writer thread per cluster: the latest job, retried with exponential back-off, only while leading.

The controller hands each cluster's worker a job (apply these outputs; write these statuses) and
moves on: a slow or unreachable cluster delays only its own worker. A new job replaces a pending
one — only the latest desired state matters — and a failed job is retried with back-off until it
succeeds or a newer one arrives. Every write goes through `LeaderOnly`, so a replica that lost its
Lease stops writing between two requests, not at the end of a job.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from meshrules.errors import ClusterError, Location
from meshrules.kube.cluster import Cluster, Object, ObjectList, WatchStream
from meshrules.kube.informer import DEFAULT_BACKOFF, Backoff
from meshrules.kube.resources import ApiResource

log = logging.getLogger(__name__)

NOT_LEADER = "MR0812"


@dataclass
class Outcome:
    """What one run of a job did."""

    writes: Counter[str] = field(default_factory=Counter)  # action → count
    errors: list[ClusterError] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # objects left alone, for the log


Job = Callable[[Cluster], Outcome]


class NotLeader(ClusterError):
    """This replica does not hold the leader Lease (any more): it must not write."""


class LeaderOnly:
    """A `Cluster` whose writes fail unless ``is_leader()`` holds at the moment of each write."""

    def __init__(self, cluster: Cluster, is_leader: Callable[[], bool]) -> None:
        self._cluster = cluster
        self._is_leader = is_leader

    @property
    def name(self) -> str:
        """The wrapped cluster's name."""
        return self._cluster.name

    def served(self) -> Mapping[tuple[str, str], str]:
        """As the wrapped cluster."""
        return self._cluster.served()

    def get(self, resource: ApiResource, name: str, namespace: str = "") -> Object | None:
        """As the wrapped cluster."""
        return self._cluster.get(resource, name, namespace)

    def list(self, resource: ApiResource, namespace: str = "", label_selector: str = "") -> ObjectList:
        """As the wrapped cluster."""
        return self._cluster.list(resource, namespace, label_selector)

    def watch(
        self,
        resource: ApiResource,
        resource_version: str,
        namespace: str = "",
        label_selector: str = "",
        timeout_seconds: float = 60.0,
    ) -> WatchStream:
        """As the wrapped cluster."""
        return self._cluster.watch(resource, resource_version, namespace, label_selector, timeout_seconds)

    def create(self, obj: Mapping[str, Any]) -> Object:
        """Create, if leading."""
        self._check()
        return self._cluster.create(obj)

    def replace(self, obj: Mapping[str, Any]) -> Object:
        """Replace, if leading."""
        self._check()
        return self._cluster.replace(obj)

    def apply(self, obj: Mapping[str, Any], *, force: bool = False, subresource: str = "") -> Object:
        """Server-side apply, if leading."""
        self._check()
        return self._cluster.apply(obj, force=force, subresource=subresource)

    def delete(self, resource: ApiResource, name: str, namespace: str = "", *, resource_version: str = "") -> bool:
        """Delete, if leading."""
        self._check()
        return self._cluster.delete(resource, name, namespace, resource_version=resource_version)

    def _check(self) -> None:
        if not self._is_leader():
            raise NotLeader(
                "not the leader: write skipped",
                code=NOT_LEADER,
                location=Location(cluster=self._cluster.name),
                hint="only the replica holding the Lease writes; this one keeps its caches warm",
            )


class Worker:
    """Runs the latest job for one cluster in its own thread."""

    def __init__(
        self,
        name: str,
        cluster: Cluster,
        *,
        is_leader: Callable[[], bool],
        backoff: Backoff = DEFAULT_BACKOFF,
        on_outcome: Callable[[Worker, Outcome], None] | None = None,
    ) -> None:
        self.name = name
        self.cluster = LeaderOnly(cluster, is_leader)
        self._is_leader = is_leader
        self._backoff = backoff
        self._on_outcome = on_outcome
        self._job: Job | None = None
        self._pending = False
        self._retry_at = 0.0
        self._cond = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name=f"worker-{name}", daemon=True)
        self.failures = 0
        self.error: ClusterError | None = None
        self.runs = 0
        self.idle = threading.Event()
        self.idle.set()

    def start(self) -> Worker:
        """Start the thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop after the current request."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        self._thread.join(timeout=10)

    def submit(self, job: Job) -> None:
        """Run ``job`` next (replacing a pending one); a failing cluster keeps its back-off."""
        with self._cond:
            self._job = job
            self._pending = True
            self.idle.clear()
            self._cond.notify_all()

    def kick(self) -> None:
        """Run the current job again (something it wrote may have been changed by someone else)."""
        with self._cond:
            if self._job is not None:
                self._pending = True
                self.idle.clear()
                self._cond.notify_all()

    @property
    def retry_in(self) -> float:
        """Seconds until the next retry of a failed job (0 when not failing)."""
        return max(0.0, self._retry_at - time.monotonic()) if self.failures else 0.0

    def _next(self) -> Job | None:
        with self._cond:
            while not self._stopped:
                now = time.monotonic()
                if self._pending and now >= self._retry_at:
                    self._pending = False
                    return self._job
                if not self._pending:
                    self.idle.set()
                timeout = max(0.01, self._retry_at - now) if self._pending else None
                self._cond.wait(timeout)
            return None

    def _run(self) -> None:
        while True:
            job = self._next()
            if job is None:
                return
            if not self._is_leader():
                continue  # followers keep the job for when they lead
            self.runs += 1
            try:
                outcome = job(self.cluster)
            except ClusterError as err:
                outcome = Outcome(errors=[err])
            except Exception as exc:  # a bug in a job must not kill the worker
                log.exception("job for %s failed", self.name)
                outcome = Outcome(
                    errors=[ClusterError(f"meshrules failed: {type(exc).__name__}: {exc}", code="MR9999")]
                )
            real = [e for e in outcome.errors if not isinstance(e, NotLeader)]
            with self._cond:
                if real:
                    self.failures += 1
                    self.error = real[0]
                    self._retry_at = time.monotonic() + self._backoff.delay(self.failures)
                    self._pending = True  # retry the latest job after the back-off
                else:
                    self.failures = 0
                    self.error = None
                    self._retry_at = 0.0
            if real:
                log.warning("%s: %s (retry in %.1fs)", self.name, real[0], self.retry_in)
            if self._on_outcome is not None:
                try:
                    self._on_outcome(self, outcome)
                except Exception:
                    log.exception("outcome handler failed for %s", self.name)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no job is pending (for tests and graceful shutdown)."""
        return self.idle.wait(timeout)
