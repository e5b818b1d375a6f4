"""An in-memory Kubernetes API server: objects, resourceVersions, watches and server-side apply.

It models what meshrules relies on, no more: resourceVersions and generations, optimistic
concurrency (409), create/replace/merge-patch/server-side apply with `managedFields` (lists are
atomic), the status subresource, deletion preconditions, namespace cascade, watch history with 410
when compacted (the same history serves the past snapshots paginated lists read), label selectors,
and the service-account token controller. `FakeCluster` serves it to unit tests in process; the
test emulator (`tests/kube/emulator`) serves it over HTTP to the real kubernetes client.
"""

from __future__ import annotations

import base64
import bisect
import builtins
import copy
import itertools
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from meshrules.kube import resources as R
from meshrules.kube.fields import (
    Path,
    from_fields_v1,
    get_path,
    leaf_paths,
    matches_selector,
    merge,
    merge_patch,
    remove_path,
    to_fields_v1,
)
from meshrules.kube.resources import ApiResource

Object = dict[str, Any]
SA_TOKEN_TYPE = "kubernetes.io/service-account-token"
SA_NAME_ANNOTATION = "kubernetes.io/service-account.name"
TOKEN_CONTROLLER = "kube-controller-manager"
# A stand-in cluster CA: the token controller puts it into every token Secret's `ca.crt`.
FAKE_CA_PEM = "-----BEGIN CERTIFICATE-----\nZmFrZSBjbHVzdGVyIENB\n-----END CERTIFICATE-----\n"


class StoreError(Exception):
    """An API error status the store answers with (404, 409, 410, 422 …)."""

    def __init__(self, status: int, reason: str, message: str, causes: Iterable[Mapping[str, str]] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.causes = [dict(c) for c in causes]

    def body(self) -> Object:
        """The `Status` object a real API server sends."""
        status: Object = {
            "apiVersion": "v1",
            "kind": "Status",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.status,
        }
        if self.causes:
            status["details"] = {"causes": self.causes}
        return status


def _not_found(res: ApiResource, name: str) -> StoreError:
    return StoreError(404, "NotFound", f'{res.plural}.{res.group or "core"} "{name}" not found')


def _conflict(res: ApiResource, name: str, why: str) -> StoreError:
    return StoreError(409, "Conflict", f'Operation cannot be fulfilled on {res.plural} "{name}": {why}')


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One change, kept for watches that resume from an older resourceVersion."""

    rv: int
    key: tuple[str, str]  # (group, kind)
    type: str
    object: Object
    previous: Object | None


@dataclass
class MemoryApiServer:
    """The state of one emulated cluster; every method is thread-safe."""

    resources: tuple[ApiResource, ...] = R.ALL
    # Events kept per kind for resuming watches; older resourceVersions answer 410 Gone.
    history: int = 10_000
    token_controller: bool = True
    ca_pem: str = FAKE_CA_PEM
    _objects: dict[tuple[str, str, str, str], Object] = field(default_factory=dict, init=False)
    _events: dict[tuple[str, str], builtins.list[StoredEvent]] = field(default_factory=dict, init=False)
    _compacted: dict[tuple[str, str], int] = field(default_factory=dict, init=False)
    _rv: int = field(default=0, init=False)
    _uids: Iterator[int] = field(default_factory=lambda: itertools.count(1), init=False)
    _cond: threading.Condition = field(default_factory=threading.Condition, init=False)
    # Issued service-account tokens → `namespace/name` of their ServiceAccount.
    tokens: dict[str, str] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self._by_kind = {(r.group, r.kind): r for r in self.resources}
        self._by_plural = {(r.group, r.plural): r for r in self.resources}

    # --- lookups -----------------------------------------------------------------------------

    def resource(self, group: str, plural: str) -> ApiResource | None:
        """The served resource with this group and plural."""
        return self._by_plural.get((group, plural))

    def serve(self, res: ApiResource) -> None:
        """Start serving ``res`` (a CRD was installed)."""
        with self._cond:
            if not self.serves(res):
                self.resources = (*self.resources, res)
                self._by_kind[(res.group, res.kind)] = res
                self._by_plural[(res.group, res.plural)] = res

    def serves(self, res: ApiResource) -> bool:
        """Whether this server serves ``res``'s group and kind."""
        return (res.group, res.kind) in self._by_kind

    @property
    def resource_version(self) -> str:
        """The current resourceVersion of the whole store."""
        with self._cond:
            return str(self._rv)

    def objects(self, res: ApiResource | None = None) -> list[Object]:
        """Copies of every stored object (of ``res``), sorted by kind, namespace, name."""
        with self._cond:
            items = [
                copy.deepcopy(o)
                for (g, k, _, _), o in sorted(self._objects.items())
                if res is None or (g, k) == (res.group, res.kind)
            ]
        return items

    # --- reads -------------------------------------------------------------------------------

    def get(self, res: ApiResource, namespace: str, name: str) -> Object:
        """The object; 404 when absent."""
        with self._cond:
            obj = self._objects.get(self._key(res, namespace, name))
            if obj is None:
                raise _not_found(res, name)
            return self._out(res, obj)

    def list(self, res: ApiResource, namespace: str = "", label_selector: str = "") -> tuple[list[Object], str]:
        """Matching objects and the store's resourceVersion."""
        self._check_served(res)
        with self._cond:
            items = [
                self._out(res, obj)
                for (g, k, ns, _), obj in sorted(self._objects.items())
                if (g, k) == (res.group, res.kind)
                and (not namespace or ns == namespace)
                and (not label_selector or matches_selector(_labels(obj), label_selector))
            ]
            return items, str(self._rv)

    def list_at(
        self, res: ApiResource, resource_version: int, namespace: str = "", label_selector: str = ""
    ) -> builtins.list[Object]:
        """Matching objects as they were at ``resource_version``: the consistent snapshot etcd serves
        the later pages of a paginated list from. Raises 410 once history no longer reaches back.
        """
        self._check_served(res)
        kind = (res.group, res.kind)
        with self._cond:
            if resource_version < self._compacted.get(kind, 0):
                raise StoreError(410, "Expired", f"too old resource version: {resource_version}")
            state = {(ns, name): obj for (g, k, ns, name), obj in self._objects.items() if (g, k) == kind}
            # Undo, newest first, every change made since: what was added goes, the rest comes back.
            events = self._events.get(kind, [])
            for ev in reversed(events[bisect.bisect_right(events, resource_version, key=lambda e: e.rv) :]):
                meta = ev.object["metadata"]
                key = (str(meta.get("namespace") or ""), str(meta["name"]))
                if ev.type == "ADDED" or ev.previous is None:
                    state.pop(key, None)
                else:
                    state[key] = ev.previous
            return [
                self._out(res, obj)
                for (ns, _), obj in sorted(state.items())
                if (not namespace or ns == namespace)
                and (not label_selector or matches_selector(_labels(obj), label_selector))
            ]

    def wait_events(
        self,
        res: ApiResource,
        after: int,
        namespace: str,
        label_selector: str,
        deadline: float,
        stopped: Callable[[], bool],
    ) -> tuple[builtins.list[tuple[str, Object]], int]:
        """Events of ``res`` after resourceVersion ``after`` (waiting until one comes or ``deadline``),
        and the resourceVersion up to which the history was scanned (a safe bookmark).

        Raises 410 when ``after`` is older than the history kept.
        """
        self._check_served(res)
        key = (res.group, res.kind)
        with self._cond:
            while True:
                if after < self._compacted.get(key, 0):
                    raise StoreError(410, "Expired", f"too old resource version: {after} ({self._compacted[key]})")
                events = self._events.get(key, [])
                start = bisect.bisect_right(events, after, key=lambda e: e.rv)
                out = []
                for ev in events[start:]:
                    meta = ev.object.get("metadata") or {}
                    if namespace and meta.get("namespace") != namespace:
                        continue
                    typ = _selected_type(ev, label_selector)
                    if typ:
                        out.append((typ, self._out(res, ev.object)))
                scanned = self._rv
                if out:
                    return out, scanned
                remaining = deadline - time.monotonic()
                if remaining <= 0 or stopped():
                    return [], scanned
                self._cond.wait(min(remaining, 0.5))

    def wake(self) -> None:
        """Wake every waiting watch (to notice it was stopped)."""
        with self._cond:
            self._cond.notify_all()

    # --- writes ------------------------------------------------------------------------------

    def create(self, res: ApiResource, namespace: str, body: Mapping[str, Any], manager: str) -> Object:
        """Create; 409 AlreadyExists when the name is taken."""
        self._check_served(res)
        obj = copy.deepcopy(dict(body))
        meta = obj.setdefault("metadata", {})
        name = meta.get("name")
        if not isinstance(name, str) or not name:
            raise StoreError(422, "Invalid", f"{res.kind} is invalid: metadata.name: Required value")
        namespace = self._namespace(res, namespace or meta.get("namespace", ""))
        with self._cond:
            key = self._key(res, namespace, name)
            if key in self._objects:
                raise StoreError(409, "AlreadyExists", f'{res.plural} "{name}" already exists')
            self._require_namespace(res, namespace)
            if res.status:
                obj.pop("status", None)
            new = self._stamp_new(res, namespace, obj)
            self._own_update(new, None, manager, res, "")
            self._store(res, key, "ADDED", new, None)
            if self.token_controller:
                self._issue_token(res, key, new)
            return self._out(res, self._objects[key])

    def replace(
        self, res: ApiResource, namespace: str, name: str, body: Mapping[str, Any], manager: str, subresource: str = ""
    ) -> Object:
        """PUT; 409 when `metadata.resourceVersion` is stale, 404 when absent."""
        with self._cond:
            key, live = self._live(res, namespace, name)
            self._check_rv(res, name, live, body)
            new = self._merge_sub(res, live, dict(body), subresource, replace=True)
            return self._commit_update(res, key, live, new, manager, subresource)

    def merge_patch(
        self, res: ApiResource, namespace: str, name: str, patch: Mapping[str, Any], manager: str, subresource: str = ""
    ) -> Object:
        """JSON merge patch (also used for strategic merge patches: maps merge, lists replace)."""
        with self._cond:
            key, live = self._live(res, namespace, name)
            self._check_rv(res, name, live, patch)
            patched = merge_patch(live, patch)
            new = self._merge_sub(res, live, patched, subresource, replace=True)
            return self._commit_update(res, key, live, new, manager, subresource)

    def apply(
        self,
        res: ApiResource,
        namespace: str,
        name: str,
        body: Mapping[str, Any],
        manager: str,
        force: bool,
        subresource: str = "",
    ) -> Object:
        """Server-side apply: create or merge; fields owned by other managers conflict unless ``force``."""
        self._check_served(res)
        config = copy.deepcopy(dict(body))
        meta = config.get("metadata") or {}
        if meta.get("name") not in (None, name):
            raise StoreError(400, "BadRequest", "the name of the object does not match the name in the URL")
        namespace = self._namespace(res, namespace or meta.get("namespace", ""))
        with self._cond:
            key = self._key(res, namespace, name)
            live = self._objects.get(key)
            if live is None:
                if subresource:
                    raise _not_found(res, name)
                if meta.get("resourceVersion"):
                    raise _conflict(
                        res,
                        name,
                        "the object has been modified; please apply your changes to the latest version and try again",
                    )
                self._require_namespace(res, namespace)
                config.setdefault("metadata", {})["name"] = name
                part = _part(res, config, subresource)
                new = self._stamp_new(res, namespace, part)
                _set_entry(new, manager, "Apply", res, "", leaf_paths(_strip_meta(part)))
                self._store(res, key, "ADDED", new, None)
                if self.token_controller:
                    self._issue_token(res, key, new)
                return self._out(res, self._objects[key])
            self._check_rv(res, name, live, config)
            part = _part(res, config, subresource)
            new = _server_side_apply(res, name, live, part, manager, force, subresource)
            changed = _content(new) != _content(live)
            if not changed and _entries(new) == _entries(live):
                return self._out(res, live)
            return self._commit(res, key, live, new)

    def delete(
        self, res: ApiResource, namespace: str, name: str, preconditions: Mapping[str, Any] | None = None
    ) -> Object:
        """Delete (namespaces cascade to their objects); 404 when absent, 409 when a precondition fails."""
        with self._cond:
            key, live = self._live(res, namespace, name)
            pre = preconditions or {}
            meta = live["metadata"]
            if pre.get("uid") and pre["uid"] != meta.get("uid"):
                raise _conflict(res, name, "Precondition failed: UID in precondition does not match the object")
            if pre.get("resourceVersion") and pre["resourceVersion"] != meta.get("resourceVersion"):
                raise _conflict(
                    res,
                    name,
                    "the object has been modified; please apply your changes to the latest version and try again",
                )
            self._remove(res, key)
            if res.kind == "Namespace":
                for other in [k for k in self._objects if k[2] == name]:
                    self._remove(self._by_kind[(other[0], other[1])], other)
            if res.kind == "ServiceAccount":
                self._revoke_tokens(namespace, name)
            return self._out(res, live)

    # --- internals -------------------------------------------------------------------------------

    def _check_served(self, res: ApiResource) -> None:
        if not self.serves(res):
            raise StoreError(
                404, "NotFound", f"the server could not find the requested resource ({res.plural}.{res.group})"
            )

    def _key(self, res: ApiResource, namespace: str, name: str) -> tuple[str, str, str, str]:
        return (res.group, res.kind, namespace if res.namespaced else "", name)

    def _namespace(self, res: ApiResource, namespace: str) -> str:
        if not res.namespaced:
            return ""
        return namespace or "default"

    def _require_namespace(self, res: ApiResource, namespace: str) -> None:
        if res.namespaced and self.serves(R.NAMESPACE) and self._key(R.NAMESPACE, "", namespace) not in self._objects:
            raise StoreError(404, "NotFound", f'namespaces "{namespace}" not found')

    def _live(self, res: ApiResource, namespace: str, name: str) -> tuple[tuple[str, str, str, str], Object]:
        self._check_served(res)
        key = self._key(res, self._namespace(res, namespace), name)
        live = self._objects.get(key)
        if live is None:
            raise _not_found(res, name)
        return key, live

    def _check_rv(self, res: ApiResource, name: str, live: Object, body: Mapping[str, Any]) -> None:
        want = (body.get("metadata") or {}).get("resourceVersion")
        if want and want != live["metadata"]["resourceVersion"]:
            raise _conflict(
                res, name, "the object has been modified; please apply your changes to the latest version and try again"
            )

    def _merge_sub(self, res: ApiResource, live: Object, body: Object, subresource: str, replace: bool) -> Object:
        """The object a write produces: status writes change only `.status`, others never touch it."""
        if subresource == "status":
            new = copy.deepcopy(live)
            if "status" in body:
                new["status"] = copy.deepcopy(body["status"])
            else:
                new.pop("status", None)
            return new
        new = copy.deepcopy(body)
        new["metadata"] = {
            **{k: v for k, v in live["metadata"].items() if k in _SERVER_META},
            **{k: v for k, v in (body.get("metadata") or {}).items() if k not in _SERVER_META},
        }
        new["apiVersion"], new["kind"] = live["apiVersion"], live["kind"]
        if res.status:
            if "status" in live:
                new["status"] = copy.deepcopy(live["status"])
            else:
                new.pop("status", None)
        return new

    def _commit_update(
        self,
        res: ApiResource,
        key: tuple[str, str, str, str],
        live: Object,
        new: Object,
        manager: str,
        subresource: str,
    ) -> Object:
        self._own_update(new, live, manager, res, subresource)
        if _content(new) == _content(live) and _entries(new) == _entries(live):
            return self._out(res, live)
        return self._commit(res, key, live, new)

    def _commit(self, res: ApiResource, key: tuple[str, str, str, str], live: Object, new: Object) -> Object:
        if _spec_part(new) != _spec_part(live):
            new["metadata"]["generation"] = int(live["metadata"].get("generation", 1)) + 1
        self._store(res, key, "MODIFIED", new, live)
        return self._out(res, self._objects[key])

    def _stamp_new(self, res: ApiResource, namespace: str, obj: Object) -> Object:
        meta = obj.setdefault("metadata", {})
        for server_field in ("resourceVersion", "managedFields", "deletionTimestamp"):
            meta.pop(server_field, None)
        if res.namespaced:
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        meta["uid"] = f"00000000-0000-4000-8000-{next(self._uids):012d}"
        meta["generation"] = 1
        meta["creationTimestamp"] = _now()
        obj["apiVersion"], obj["kind"] = res.api_version, res.kind
        return obj

    def _own_update(self, new: Object, live: Object | None, manager: str, res: ApiResource, subresource: str) -> None:
        """Record an Update (create, PUT, merge patch): ``manager`` takes every field it changed."""
        entries = copy.deepcopy(_entries(live)) if live is not None else []
        old_paths = leaf_paths(_strip_meta(live)) if live is not None else set()
        new_paths = leaf_paths(_strip_meta(new))
        changed = {p for p in new_paths if live is None or get_path(live, p) != get_path(new, p)}
        gone = old_paths - new_paths
        kept = []
        mine: set[Path] = set()
        for entry in entries:
            paths = from_fields_v1(entry.get("fieldsV1") or {})
            paths = {p for p in paths if not _touches(p, gone) and not _touches(p, changed)}
            if (
                entry.get("manager") == manager
                and entry.get("operation") == "Update"
                and (entry.get("subresource") or "") == subresource
            ):
                mine |= paths
                continue
            if paths:
                kept.append(
                    _entry(
                        entry["manager"],
                        entry["operation"],
                        entry.get("apiVersion", res.api_version),
                        paths,
                        entry.get("subresource", ""),
                    )
                )
        mine |= changed
        if mine:
            kept.append(_entry(manager, "Update", res.api_version, mine, subresource))
        new.setdefault("metadata", {})["managedFields"] = sorted(kept, key=_entry_key)

    def _store(
        self, res: ApiResource, key: tuple[str, str, str, str], typ: str, obj: Object, previous: Object | None
    ) -> None:
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        _omit_empty(obj)
        self._objects[key] = obj
        self._event(key, typ, obj, previous)

    def _remove(self, res: ApiResource, key: tuple[str, str, str, str]) -> None:
        live = self._objects.pop(key)
        self._rv += 1
        gone = copy.deepcopy(live)
        gone["metadata"]["resourceVersion"] = str(self._rv)
        self._event(key, "DELETED", gone, live)

    def _event(self, key: tuple[str, str, str, str], typ: str, obj: Object, previous: Object | None) -> None:
        kind = (key[0], key[1])
        events = self._events.setdefault(kind, [])
        events.append(StoredEvent(self._rv, kind, typ, copy.deepcopy(obj), copy.deepcopy(previous)))
        # Compact in batches (amortised O(1) per event): resuming from before the cut answers 410.
        if len(events) > self.history + self.history // 2:
            cut = len(events) - self.history
            self._compacted[kind] = events[cut - 1].rv
            del events[:cut]
        self._cond.notify_all()

    def _out(self, res: ApiResource, obj: Object) -> Object:
        out = copy.deepcopy(obj)
        out["apiVersion"] = res.api_version
        return out

    # --- the token controller ----------------------------------------------------------------

    def _issue_token(self, res: ApiResource, key: tuple[str, str, str, str], obj: Object) -> None:
        """Fill service-account token Secrets, as kube-controller-manager does (whichever comes first)."""
        if res.kind == "ServiceAccount":
            namespace, sa = obj["metadata"]["namespace"], obj["metadata"]["name"]
            for skey, secret in list(self._objects.items()):
                annotations = secret["metadata"].get("annotations") or {}
                if skey[:3] == ("", "Secret", namespace) and annotations.get(SA_NAME_ANNOTATION) == sa:
                    self._issue_token(R.SECRET, skey, secret)
            return
        secret = obj
        if res.kind != "Secret" or secret.get("type") != SA_TOKEN_TYPE or (secret.get("data") or {}).get("token"):
            return
        sa = (secret["metadata"].get("annotations") or {}).get(SA_NAME_ANNOTATION)
        namespace = secret["metadata"]["namespace"]
        if not sa or self._key(R.SERVICE_ACCOUNT, namespace, sa) not in self._objects:
            return
        token = "sa-" + secrets.token_urlsafe(24)
        self.tokens[token] = f"{namespace}/{sa}"
        new = copy.deepcopy(secret)
        new["data"] = {
            **(new.get("data") or {}),
            "token": _b64(token),
            "ca.crt": _b64(self.ca_pem),
            "namespace": _b64(namespace),
        }
        self._own_update(new, secret, TOKEN_CONTROLLER, res, "")
        self._store(res, key, "MODIFIED", new, secret)

    def _revoke_tokens(self, namespace: str, sa: str) -> None:
        for key, obj in list(self._objects.items()):
            for_sa = (obj["metadata"].get("annotations") or {}).get(SA_NAME_ANNOTATION) == sa
            if key[:2] == ("", "Secret") and key[2] == namespace and obj.get("type") == SA_TOKEN_TYPE and for_sa:
                self._remove(R.SECRET, key)
        for token, owner in list(self.tokens.items()):
            if owner == f"{namespace}/{sa}":
                del self.tokens[token]


# Metadata the server keeps whatever a client sends.
_SERVER_META = frozenset(
    {"uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "namespace", "name"}
)


def _server_side_apply(
    res: ApiResource, name: str, live: Object, config: Object, manager: str, force: bool, subresource: str
) -> Object:
    """The object after ``manager`` applies ``config`` onto ``live`` (spec or status part)."""
    applied = leaf_paths(_strip_meta(config))
    entries = _entries(live)
    conflicts: list[tuple[str, Path]] = []
    others: list[tuple[Object, set[Path]]] = []
    previous: set[Path] = set()
    for entry in entries:
        paths = from_fields_v1(entry.get("fieldsV1") or {})
        same_sub = (entry.get("subresource") or "") == subresource
        if entry.get("manager") == manager and entry.get("operation") == "Apply" and same_sub:
            previous = paths
            continue
        if same_sub:
            # As in kube-apiserver, a conflict is the same field path set to a different value.
            for owned in paths & applied:
                if get_path(live, owned) != get_path(config, owned):
                    conflicts.append((str(entry.get("manager")), owned))
        others.append((entry, paths))
    if conflicts and not force:
        causes = [
            {
                "type": "FieldManagerConflict",
                "message": f'conflict with "{m}": .{".".join(p)}',
                "field": "." + ".".join(p),
            }
            for m, p in sorted(set(conflicts))
        ]
        raise StoreError(
            409,
            "Conflict",
            f"Apply failed with {len(causes)} conflict(s): " + "; ".join(c["message"] for c in causes),
            causes,
        )
    lost = {p for _, p in conflicts}
    still_owned = set().union(*(p - lost for _, p in others)) if others else set()
    new = copy.deepcopy(live)
    for path in sorted(previous - applied, key=len, reverse=True):
        if not any(_overlap(path, other) for other in still_owned):
            remove_path(new, path)
    new = merge(new, _strip_server_meta(config))
    kept_entries = []
    for entry, paths in others:
        remaining = paths - lost if force else paths
        if remaining:
            kept_entries.append(
                _entry(
                    entry["manager"],
                    entry["operation"],
                    entry.get("apiVersion", res.api_version),
                    remaining,
                    entry.get("subresource", ""),
                )
            )
    if applied:
        kept_entries.append(_entry(manager, "Apply", res.api_version, applied, subresource))
    new["metadata"]["managedFields"] = sorted(kept_entries, key=_entry_key)
    return _omit_empty(new)


def _part(res: ApiResource, config: Object, subresource: str) -> Object:
    """What a write through the main resource or the status subresource may change."""
    if subresource == "status":
        meta = config.get("metadata") or {}
        return {"metadata": {"name": meta.get("name")}, "status": config.get("status", {})}
    if res.status:
        return {k: v for k, v in config.items() if k != "status"}
    return config


def _omit_empty(obj: Object) -> Object:
    """Drop empty metadata maps and lists, as Go's `omitempty` does on a real server."""
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        for optional in ("managedFields", "labels", "annotations", "finalizers", "ownerReferences"):
            if optional in meta and not meta[optional]:
                del meta[optional]
    return obj


def _strip_meta(obj: Mapping[str, Any]) -> Object:
    return {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}


def _strip_server_meta(config: Mapping[str, Any]) -> Object:
    out = {k: v for k, v in config.items() if k not in ("apiVersion", "kind")}
    if isinstance(out.get("metadata"), Mapping):
        out["metadata"] = {k: v for k, v in out["metadata"].items() if k not in _SERVER_META}
    return out


def _set_entry(obj: Object, manager: str, operation: str, res: ApiResource, subresource: str, paths: set[Path]) -> None:
    obj["metadata"]["managedFields"] = (
        [_entry(manager, operation, res.api_version, paths, subresource)] if paths else []
    )


def _entry(manager: str, operation: str, api_version: str, paths: set[Path], subresource: str = "") -> Object:
    entry: Object = {
        "manager": manager,
        "operation": operation,
        "apiVersion": api_version,
        "time": _now(),
        "fieldsType": "FieldsV1",
        "fieldsV1": to_fields_v1(paths),
    }
    if subresource:
        entry["subresource"] = subresource
    return entry


def _entry_key(entry: Mapping[str, Any]) -> tuple[str, str, str]:
    return (str(entry.get("manager")), str(entry.get("operation")), str(entry.get("subresource", "")))


def _entries(obj: Mapping[str, Any] | None) -> list[Object]:
    if obj is None:
        return []
    entries = (obj.get("metadata") or {}).get("managedFields") or []
    # Timestamps aside: two entries are the same when manager, operation and fields are.
    return [{k: v for k, v in e.items() if k != "time"} for e in entries]


def _content(obj: Mapping[str, Any]) -> Object:
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in ("managedFields", "resourceVersion")}
    return {**obj, "metadata": meta}


def _spec_part(obj: Mapping[str, Any]) -> Object:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


def _overlap(a: Path, b: Path) -> bool:
    shorter, longer = (a, b) if len(a) <= len(b) else (b, a)
    return longer[: len(shorter)] == shorter


def _touches(path: Path, paths: set[Path]) -> bool:
    return path in paths or any(_overlap(path, p) for p in paths)


def _labels(obj: Mapping[str, Any]) -> Mapping[str, str]:
    return (obj.get("metadata") or {}).get("labels") or {}


def _selected_type(ev: StoredEvent, label_selector: str) -> str:
    """The event type a watcher with ``label_selector`` sees (objects entering or leaving the set)."""
    if not label_selector:
        return ev.type
    now = matches_selector(_labels(ev.object), label_selector)
    before = ev.previous is not None and matches_selector(_labels(ev.previous), label_selector)
    if ev.type == "DELETED":
        return "DELETED" if before or now else ""
    if now and not before:
        return "ADDED"
    if before and not now:
        return "DELETED"
    return ev.type if now else ""


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()
