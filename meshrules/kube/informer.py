"""Caches of live objects kept current by list + watch, one thread per kind (client-go's informer).

An `Informer` lists a kind once, then watches from the list's resourceVersion; when the watch
ends it resumes from the last resourceVersion it saw (bookmarks keep that fresh), and when the
server no longer has that version (410) it lists again and reports the difference. Errors never
escape the thread: they are kept as the informer's health, and it retries with exponential
back-off. A `ClusterCache` is the informers of one cluster: the controller reads objects from it
instead of calling the API server on every reconcile.

Changes are reported through a callback with the old and new object. `relevant()` says whether
a change can matter to meshrules (a Node's heartbeat or a Pod's status cannot), so bursts of
irrelevant updates do not cause reconciles.
"""

from __future__ import annotations

import copy
import logging
import random
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from meshrules.errors import ClusterError
from meshrules.kube.cluster import Cluster, Object, WatchExpired, WatchStream
from meshrules.kube.resources import ApiResource

log = logging.getLogger(__name__)

ObjKey = tuple[str, str]  # (namespace, name)
OnChange = Callable[[ApiResource, Object | None, Object | None], None]


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential back-off: ``base`` doubling per failure up to ``cap``, with up to 10% jitter."""

    base: float = 0.5
    cap: float = 60.0

    def delay(self, failures: int) -> float:
        """The wait after ``failures`` consecutive failures (0 after none)."""
        if failures <= 0:
            return 0.0
        raw = min(self.cap, self.base * 2 ** min(failures - 1, 30))
        # Jitter keeps many clusters that failed together from retrying in lockstep.
        return float(raw * (1 + random.random() / 10))


DEFAULT_BACKOFF = Backoff()


def relevant(resource: ApiResource, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> bool:
    """Whether the change from ``old`` to ``new`` can change what meshrules computes."""
    if old is None or new is None:
        return True
    return bool(_view(resource, old) != _view(resource, new))


def _view(resource: ApiResource, obj: Mapping[str, Any]) -> Any:
    meta = obj.get("metadata") or {}
    if resource.kind == "Node":
        # Only the region label is read (spec §2); nodes update their status every few seconds.
        return meta.get("labels")
    view = {k: v for k, v in obj.items() if k not in ("metadata", "status")}
    view["metadata"] = {k: v for k, v in meta.items() if k not in ("resourceVersion", "managedFields", "generation")}
    if resource.kind == "Service":
        view["status"] = obj.get("status")  # the load-balancer address of gateways
    return view


class Informer:
    """One kind of one cluster: a cache, a watch thread, a health state."""

    def __init__(
        self,
        cluster: Cluster,
        resource: ApiResource,
        on_change: OnChange,
        *,
        namespace: str = "",
        label_selector: str = "",
        watch_seconds: float = 300.0,
        backoff: Backoff = DEFAULT_BACKOFF,
        on_listed: Callable[[], None] | None = None,
    ) -> None:
        self.cluster = cluster
        self.resource = resource
        self._on_change = on_change
        # Called after every successful list: an empty kind has no change to report, yet its
        # first list may be what completes a cluster's cache.
        self._on_listed = on_listed
        self._namespace = namespace
        self._selector = label_selector
        self._watch_seconds = watch_seconds
        self._backoff = backoff
        self._objects: dict[ObjKey, Object] = {}
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._watch: WatchStream | None = None
        self._thread: threading.Thread | None = None
        self.synced = threading.Event()
        self.error: ClusterError | None = None
        self.failures = 0

    def start(self) -> Informer:
        """Start the list/watch thread."""
        self._thread = threading.Thread(
            target=self._run, name=f"informer-{self.cluster.name}-{self.resource.plural}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop watching; returns once the thread has ended (or after a few seconds)."""
        self._stopped.set()
        watch = self._watch
        if watch is not None:
            watch.close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def objects(self) -> list[Object]:
        """A copy of the cached objects."""
        with self._lock:
            return [copy.deepcopy(o) for _, o in sorted(self._objects.items())]

    @property
    def partial(self) -> bool:
        """Whether it watches one namespace or a label selector rather than every object of its kind."""
        return bool(self._namespace or self._selector)

    @property
    def healthy(self) -> bool:
        """Whether the last list or watch succeeded."""
        return self.error is None

    def _run(self) -> None:
        rv = ""
        need_list = True
        while not self._stopped.is_set():
            try:
                if need_list:
                    rv = self._relist()
                    need_list = False
                rv = self._follow(rv)
                self._ok()
            except WatchExpired:
                need_list = True
            except ClusterError as err:
                self._failed(err)
                # List again rather than resume: the list both proves the cluster is back (health
                # recovers at once) and catches up on anything missed while it was away.
                need_list = True
            except Exception as exc:  # a bug must not kill the thread silently
                log.exception("informer %s/%s failed", self.cluster.name, self.resource.plural)
                self._failed(ClusterError(f"watch failed: {type(exc).__name__}: {exc}", code="MR0802"))
                need_list = True

    def _relist(self) -> str:
        listed = self.cluster.list(self.resource, self._namespace, self._selector)
        fresh = {_key(o): o for o in listed.items}
        with self._lock:
            old = self._objects
            self._objects = fresh
        for key in sorted(set(old) | set(fresh)):
            before, after = old.get(key), fresh.get(key)
            if before is None or after is None or relevant(self.resource, before, after):
                self._notify(before, after)
        self.synced.set()
        self._ok()
        if self._on_listed is not None:
            try:
                self._on_listed()
            except Exception:
                log.exception("list handler failed for %s", self.resource.plural)
        return listed.resource_version

    def _follow(self, rv: str) -> str:
        watch = self.cluster.watch(
            self.resource, rv, self._namespace, self._selector, timeout_seconds=self._watch_seconds
        )
        self._watch = watch
        if self._stopped.is_set():
            watch.close()
        try:
            for event in watch:
                if self._stopped.is_set():
                    break
                if event.type == "BOOKMARK":
                    rv = event.resource_version or rv
                    continue
                key = _key(event.object)
                with self._lock:
                    before = self._objects.get(key)
                    if event.type == "DELETED":
                        self._objects.pop(key, None)
                    else:
                        self._objects[key] = event.object
                rv = event.resource_version or rv
                self._ok()
                after = None if event.type == "DELETED" else event.object
                if before is None or after is None or relevant(self.resource, before, after):
                    self._notify(before, after)
        finally:
            self._watch = None
        return rv

    def _notify(self, before: Object | None, after: Object | None) -> None:
        try:
            self._on_change(self.resource, before, after)
        except Exception:  # a callback bug must not stop the cache
            log.exception("change handler failed for %s", self.resource.plural)

    def _ok(self) -> None:
        self.error = None
        self.failures = 0

    def _failed(self, err: ClusterError) -> None:
        self.error = err
        self.failures += 1
        self._stopped.wait(self._backoff.delay(self.failures))


def _key(obj: Mapping[str, Any]) -> ObjKey:
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace", "")), str(meta.get("name", "")))


class ClusterCache:
    """The informers of one cluster for a set of kinds (those it serves)."""

    def __init__(
        self,
        cluster: Cluster,
        kinds: Iterable[ApiResource],
        on_change: OnChange,
        *,
        namespaces: Mapping[tuple[str, str], str] | None = None,
        selectors: Mapping[tuple[str, str], str] | None = None,
        watch_seconds: float = 300.0,
        backoff: Backoff = DEFAULT_BACKOFF,
        on_synced: Callable[[], None] | None = None,
    ) -> None:
        self.cluster = cluster
        self._kinds = list(kinds)
        self._on_synced = on_synced
        self._on_change = on_change
        # `(group, kind)` → the one namespace to watch it in (default: all namespaces).
        self._namespaces = dict(namespaces or {})
        self._selectors = dict(selectors or {})
        self._watch_seconds = watch_seconds
        self._backoff = backoff
        self._informers: dict[tuple[str, str], Informer] = {}
        # Set once every informer exists (none is started before), so `synced` never sees half a set.
        self._started = False
        self._add_lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: ClusterError | None = None

    def start(self) -> ClusterCache:
        """Find which kinds the cluster serves (retrying with back-off), then start an informer for each."""
        self._thread = threading.Thread(target=self._start, name=f"cache-{self.cluster.name}", daemon=True)
        self._thread.start()
        return self

    def _start(self) -> None:
        failures = 0
        while not self._stopped.is_set():
            try:
                served = self.cluster.served()
                break
            except ClusterError as err:
                self.error = err
                failures += 1
                self._stopped.wait(self._backoff.delay(failures))
        else:
            return
        self.error = None
        fresh = self._add_informers(served)
        self._started = True
        for informer in fresh:
            informer.start()
        if not self._informers:
            self._listed()

    def _add_informers(self, served: Mapping[tuple[str, str], str]) -> list[Informer]:
        """Create informers for served kinds that have none yet (not started)."""
        with self._add_lock:
            return self._add_informers_locked(served)

    def _add_informers_locked(self, served: Mapping[tuple[str, str], str]) -> list[Informer]:
        fresh = []
        for res in self._kinds:
            version = served.get((res.group, res.kind))
            if version is None or (res.group, res.kind) in self._informers or self._stopped.is_set():
                continue
            res = res if version == res.version else res.with_version(version)
            informer = Informer(
                self.cluster,
                res,
                self._on_change,
                namespace=self._namespaces.get((res.group, res.kind), "") if res.namespaced else "",
                label_selector=self._selectors.get((res.group, res.kind), ""),
                watch_seconds=self._watch_seconds,
                backoff=self._backoff,
                on_listed=self._listed,
            )
            self._informers[(res.group, res.kind)] = informer
            fresh.append(informer)
        return fresh

    def refresh(self) -> int:
        """Start informers for kinds the cluster began serving (CRDs installed since); returns how many.

        Blocking (one discovery round trip): call it from a thread of its own.
        """
        if not self._started or self._stopped.is_set():
            return 0
        try:
            served = self.cluster.served()
        except ClusterError:
            return 0  # the informers report the cluster's health; the next refresh tries again
        fresh = self._add_informers(served)
        for informer in fresh:
            informer.start()
        return len(fresh)

    def _listed(self) -> None:
        """An informer listed: tell the owner once the whole cache is (again) complete."""
        if self._on_synced is not None and self.synced:
            self._on_synced()

    def stop(self) -> None:
        """Stop every informer."""
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for informer in list(self._informers.values()):
            informer._stopped.set()
            watch = informer._watch
            if watch is not None:
                watch.close()
        for informer in list(self._informers.values()):
            informer.stop()

    @property
    def synced(self) -> bool:
        """Whether every served kind has been listed at least once."""
        return self._started and self.error is None and all(i.synced.is_set() for i in self._informers.values())

    def objects(self, kinds: Iterable[ApiResource] | None = None) -> list[Object]:
        """Cached objects (of ``kinds``, or all)."""
        wanted = None if kinds is None else {(r.group, r.kind) for r in kinds}
        out: list[Object] = []
        for key, informer in sorted(self._informers.items()):
            if wanted is None or key in wanted:
                out.extend(informer.objects())
        return out

    def cached(self, resource: ApiResource) -> list[Object] | None:
        """The cached objects of one kind, or None unless its informer has listed and is healthy.

        What an apply plans from instead of listing again (`read_live(cached=...)`); None sends
        the caller to the API server for that kind.
        """
        informer = self._informers.get((resource.group, resource.kind))
        if informer is None or not informer.synced.is_set() or informer.error is not None:
            return None
        if informer.partial:
            return None  # objects outside its namespace or selector would look absent
        return informer.objects()

    def health(self) -> ClusterError | None:
        """The first error of the cluster's discovery or informers, None when all are healthy."""
        if self.error is not None:
            return self.error
        for _, informer in sorted(self._informers.items()):
            if informer.error is not None:
                return informer.error
        return None

    def failures(self) -> int:
        """The most consecutive failures of any informer (for back-off reporting)."""
        return max([i.failures for i in self._informers.values()] or [0])
