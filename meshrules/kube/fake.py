"""`FakeCluster`: the `Cluster` interface over an in-memory API server, for unit tests.

It behaves like `KubeCluster` talking to an API server — same objects, same errors — without a
socket: `MemoryApiServer` holds the state, so a test can seed objects, run registration, apply
or the controller, and inspect what was written (`writes` counts every write call).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from meshrules.kube import resources as R
from meshrules.kube.cluster import FIELD_MANAGER, ApiError, Object, ObjectList, WatchEvent, api_error
from meshrules.kube.memory import MemoryApiServer, StoreError
from meshrules.kube.resources import ApiResource, resource_of


class FakeCluster:
    """A `Cluster` backed by a `MemoryApiServer` (a fresh one unless given)."""

    def __init__(
        self,
        name: str = "fake",
        server: MemoryApiServer | None = None,
        *,
        manager: str = FIELD_MANAGER,
    ) -> None:
        self._name = name
        self.server = server if server is not None else MemoryApiServer()
        self.manager = manager
        self.writes: list[tuple[str, str, str, str]] = []  # (verb, kind, namespace, name)
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        """The cluster name used in messages."""
        return self._name

    def seed(self, objects: Iterable[Mapping[str, Any]], manager: str = "kubectl") -> None:
        """Create ``objects`` as a user would (namespaces first); not counted in `writes`."""
        for obj in sorted(objects, key=lambda o: o.get("kind") != "Namespace"):
            res = _resource(obj)
            meta = obj.get("metadata") or {}
            if res.namespaced and not meta.get("namespace"):
                obj = {**obj, "metadata": {**meta, "namespace": "default"}}
            self.server.create(res, str((obj.get("metadata") or {}).get("namespace", "")), obj, manager)

    def served(self) -> dict[tuple[str, str], str]:
        """Every kind of the registry that the memory server serves, at the registry's version."""
        return {(r.group, r.kind): r.version for r in R.ALL if self.server.serves(r)}

    def get(self, resource: ApiResource, name: str, namespace: str = "") -> Object | None:
        """The object, or None."""
        try:
            return self.server.get(resource, namespace, name)
        except StoreError as err:
            if err.status == 404:
                return None
            raise self._error(err, "get", resource, namespace, name) from err

    def list(self, resource: ApiResource, namespace: str = "", label_selector: str = "") -> ObjectList:
        """Matching objects with the list resourceVersion."""
        try:
            items, rv = self.server.list(resource, namespace, label_selector)
        except StoreError as err:
            raise self._error(err, "list", resource, namespace, "") from err
        return ObjectList(tuple(items), rv)

    def watch(
        self,
        resource: ApiResource,
        resource_version: str,
        namespace: str = "",
        label_selector: str = "",
        timeout_seconds: float = 60.0,
    ) -> _FakeWatch:
        """Events after ``resource_version`` until the timeout or `close()`."""
        return _FakeWatch(self, resource, resource_version, namespace, label_selector, timeout_seconds)

    def create(self, obj: Mapping[str, Any]) -> Object:
        """Create ``obj``."""
        res, namespace, name = _coords(obj)
        return self._write(
            "create", res, namespace, name, lambda: self.server.create(res, namespace, obj, self.manager)
        )

    def replace(self, obj: Mapping[str, Any]) -> Object:
        """Replace ``obj`` (optimistic concurrency through its resourceVersion)."""
        res, namespace, name = _coords(obj)
        return self._write(
            "replace", res, namespace, name, lambda: self.server.replace(res, namespace, name, obj, self.manager)
        )

    def apply(self, obj: Mapping[str, Any], *, force: bool = False, subresource: str = "") -> Object:
        """Server-side apply ``obj`` as field manager `meshrules`."""
        res, namespace, name = _coords(obj)
        return self._write(
            "apply",
            res,
            namespace,
            name,
            lambda: self.server.apply(res, namespace, name, obj, self.manager, force, subresource),
        )

    def delete(self, resource: ApiResource, name: str, namespace: str = "", *, resource_version: str = "") -> bool:
        """Delete; False when already gone."""
        with self._lock:
            self.writes.append(("delete", resource.kind, namespace, name))
        try:
            self.server.delete(
                resource, namespace, name, {"resourceVersion": resource_version} if resource_version else None
            )
        except StoreError as err:
            if err.status == 404:
                return False
            raise self._error(err, "delete", resource, namespace, name) from err
        return True

    def _write(self, verb: str, res: ApiResource, namespace: str, name: str, call: Any) -> Object:
        with self._lock:
            self.writes.append((verb, res.kind, namespace, name))
        try:
            result: Object = call()
        except StoreError as err:
            raise self._error(err, verb, res, namespace, name) from err
        return result

    def _error(self, err: StoreError, verb: str, res: ApiResource, namespace: str, name: str) -> ApiError:
        return api_error(
            err.status,
            err.reason,
            err.message,
            cluster=self._name,
            verb=verb,
            resource=res,
            namespace=namespace,
            name=name,
        )


class _FakeWatch:
    """A watch on the memory server; iterating blocks until events come, the timeout, or `close()`."""

    def __init__(
        self,
        cluster: FakeCluster,
        resource: ApiResource,
        resource_version: str,
        namespace: str,
        label_selector: str,
        timeout_seconds: float,
    ) -> None:
        self._cluster = cluster
        self._res = resource
        self._rv = int(resource_version or 0)
        self._namespace = namespace
        self._selector = label_selector
        self._deadline = time.monotonic() + timeout_seconds
        self._closed = threading.Event()

    def __iter__(self) -> Iterator[WatchEvent]:
        server = self._cluster.server
        while not self._closed.is_set() and time.monotonic() < self._deadline:
            try:
                events, _ = server.wait_events(
                    self._res, self._rv, self._namespace, self._selector, self._deadline, self._closed.is_set
                )
            except StoreError as err:
                raise self._cluster._error(err, "watch", self._res, self._namespace, "") from err
            for typ, obj in events:
                event = WatchEvent(typ, obj)
                self._rv = max(self._rv, int(event.resource_version or 0))
                yield event
                if self._closed.is_set():
                    return

    def close(self) -> None:
        """End the watch."""
        self._closed.set()
        self._cluster.server.wake()


def _resource(obj: Mapping[str, Any]) -> ApiResource:
    res = resource_of(obj)
    if res is None:
        raise ValueError(f"unknown kind `{obj.get('apiVersion')} {obj.get('kind')}`")
    return res


def _coords(obj: Mapping[str, Any]) -> tuple[ApiResource, str, str]:
    res = _resource(obj)
    meta = obj.get("metadata") or {}
    namespace = str(meta.get("namespace") or ("default" if res.namespaced else ""))
    return res, namespace, str(meta.get("name", ""))
