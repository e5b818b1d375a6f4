"""Applying outputs to a cluster safely: plan (pure) first, then execute the plan.

`plan_apply(desired, live)` decides, object by object, what to do — and that is where the safety
rules live, as data a test can read:

- a desired object that does not exist is created (POST: if someone creates the same name in the
  meantime the API server refuses, so meshrules never writes into a user's object);
- one that exists and carries `meshrules.io/owner: <owner>` is server-side applied (field manager
  `meshrules`) only if it differs — desired fields not as desired, or fields meshrules owns that
  are no longer desired; an unchanged re-apply sends no request;
- one that exists without the label is NOT modified: it is reported (`NOT_OWNED`);
- an owned object of an emitted kind that is no longer desired is deleted (pruned), with its
  resourceVersion as a precondition, so an object changed since it was read is left alone;
- patches of user objects (e.g. the Linkerd export label of a Service) are server-side applied
  without force, and only to objects that exist; fields meshrules patched before but no longer
  wants are given back (`RELEASE`).

`execute(plan, cluster)` performs the writes and reports every outcome; `plan.diff()` is the
per-cluster unified YAML diff `--dry-run` prints.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import yaml

from meshrules.emit.naming import OWNER_LABEL, is_owned
from meshrules.errors import ClusterError
from meshrules.kube import resources as R
from meshrules.kube.cluster import FIELD_MANAGER, Cluster, ConflictError, Object, Unreachable
from meshrules.kube.fields import (
    Path,
    from_fields_v1,
    get_path,
    is_subset,
    leaf_paths,
    managed_paths,
    merge,
    remove_path,
)
from meshrules.kube.live import served_resources
from meshrules.kube.resources import ApiResource, resource_of
from meshrules.model.common import MANAGEMENT_NAMESPACE

# Server-maintained fields left out of comparisons and diffs.
_SERVER_META = ("managedFields", "resourceVersion", "uid", "generation", "creationTimestamp", "selfLink")


class Action(StrEnum):
    """What the plan does with one object."""

    CREATE = "create"
    UPDATE = "update"
    PATCH = "patch"
    DELETE = "delete"
    RELEASE = "release"
    UNCHANGED = "unchanged"
    NOT_OWNED = "not-owned"
    MISSING_TARGET = "missing-target"


WRITES = frozenset({Action.CREATE, Action.UPDATE, Action.PATCH, Action.DELETE, Action.RELEASE})
REPORTED = frozenset({Action.NOT_OWNED, Action.MISSING_TARGET})
# Writes go in this order: new and changed objects first, removals last.
_ORDER = {a: i for i, a in enumerate([Action.CREATE, Action.UPDATE, Action.PATCH, Action.RELEASE, Action.DELETE])}


@dataclass(frozen=True, slots=True, order=True)
class ObjectKey:
    """Which object: group, kind, namespace, name (not the version: one object, several versions)."""

    group: str
    kind: str
    namespace: str
    name: str

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> ObjectKey:
        """The key of a wire-form object."""
        meta = obj.get("metadata") or {}
        res = resource_of(obj)
        api_version = str(obj.get("apiVersion", ""))
        namespaced = res.namespaced if res is not None else bool(meta.get("namespace"))
        namespace = str(meta.get("namespace") or "default") if namespaced else ""
        return cls(R.group_of(api_version), str(obj.get("kind", "")), namespace, str(meta.get("name", "")))

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"


@dataclass(frozen=True, slots=True)
class Change:
    """One planned step: the action, the object, what is desired and what is live."""

    action: Action
    key: ObjectKey
    desired: Mapping[str, Any] | None = None
    live: Mapping[str, Any] | None = None
    message: str = ""
    # Fields meshrules owns through a create or a merge patch (not through apply) that are no
    # longer desired: apply would not remove them, so the update removes them first.
    remove: tuple[Path, ...] = ()

    @property
    def is_write(self) -> bool:
        """Whether executing this change sends a write."""
        return self.action in WRITES


@dataclass(frozen=True)
class ApplyPlan:
    """Everything `execute` will do on one cluster, and everything it will refuse to do."""

    cluster: str
    changes: tuple[Change, ...]
    pruned: bool

    @property
    def writes(self) -> tuple[Change, ...]:
        """The changes that send a request, in execution order."""
        return tuple(sorted((c for c in self.changes if c.is_write), key=lambda c: _ORDER[c.action]))

    @property
    def reported(self) -> tuple[Change, ...]:
        """Objects left alone that a user should know about (not owned, missing patch targets)."""
        return tuple(c for c in self.changes if c.action in REPORTED)

    def count(self, action: Action) -> int:
        """How many changes have ``action``."""
        return sum(1 for c in self.changes if c.action is action)

    def diff(self) -> str:
        """A unified diff of every write (live → result), headed by the cluster and object."""
        parts = []
        for change in self.writes:
            before = _yaml(_display(change.live)) if change.live is not None and change.action != Action.CREATE else ""
            after = "" if change.action == Action.DELETE else _yaml(_display(predict(change)))
            label = f"{self.cluster}/{change.key}"
            lines = difflib.unified_diff(
                before.splitlines(keepends=True),
                after.splitlines(keepends=True),
                fromfile=f"live {label}" if before else "/dev/null",
                tofile=f"{change.action.value} {label}" if after else "/dev/null",
            )
            parts.append("".join(lines))
        return "".join(parts)


def with_owner(obj: Mapping[str, Any], owner: str = MANAGEMENT_NAMESPACE) -> Object:
    """``obj`` carrying the ownership label (every object meshrules writes has it)."""
    meta = dict(obj.get("metadata") or {})
    meta["labels"] = {**(meta.get("labels") or {}), OWNER_LABEL: owner}
    out = {k: v for k, v in obj.items() if k != "status"}
    out["metadata"] = meta
    return out


def up_to_date(desired: Mapping[str, Any], live: Mapping[str, Any]) -> bool:
    """Whether applying ``desired`` onto ``live`` would change nothing.

    Every desired field has its desired value, and meshrules owns no field beyond the desired
    ones (apply would remove those).
    """
    content = {k: v for k, v in desired.items() if k not in ("apiVersion", "kind", "status")}
    if not is_subset(_without_server_meta(content), live):
        return False
    wanted = leaf_paths(desired)
    return all(_covered(p, wanted) for p in managed_paths(live, FIELD_MANAGER))


def plan_apply(
    cluster: str,
    desired: Iterable[Mapping[str, Any]],
    live: Mapping[ObjectKey, Mapping[str, Any]],
    *,
    patches: Iterable[Mapping[str, Any]] = (),
    owner: str = MANAGEMENT_NAMESPACE,
    prune: bool = True,
    prunable: Iterable[ApiResource] = R.EMITTED,
    patchable: Iterable[ApiResource] = R.PATCHED,
) -> ApplyPlan:
    """Decide every step to make ``cluster`` hold ``desired`` (a pure function).

    ``live`` must hold every live object of the ``prunable`` and ``patchable`` kinds and of the
    kinds of ``desired`` (owned or not), keyed by `ObjectKey`. With ``prune`` False nothing is
    deleted or released (the live state of some kind was not read completely).
    """
    changes: list[Change] = []
    wanted: dict[ObjectKey, Object] = {}
    for obj in desired:
        body = with_owner(obj, owner)
        wanted[ObjectKey.of(body)] = body
    # Desired order is kept: callers list what must exist first (a namespace, a ServiceAccount
    # before its token Secret) first.
    for key, body in wanted.items():
        current = live.get(key)
        if current is None:
            changes.append(Change(Action.CREATE, key, body))
        elif not is_owned(current, owner):
            changes.append(
                Change(
                    Action.NOT_OWNED,
                    key,
                    body,
                    current,
                    f"exists without label `{OWNER_LABEL}: {owner}`; meshrules leaves it unchanged",
                )
            )
        elif up_to_date(body, current):
            changes.append(Change(Action.UNCHANGED, key, body, current))
        else:
            changes.append(Change(Action.UPDATE, key, body, current, remove=_stale_update_fields(body, current)))
    patched: set[ObjectKey] = set()
    for patch in patches:
        body = {k: v for k, v in patch.items() if k != "status"}
        key = ObjectKey.of(body)
        patched.add(key)
        current = live.get(key)
        if current is None:
            changes.append(Change(Action.MISSING_TARGET, key, body, None, "the object to patch does not exist"))
        elif up_to_date(body, current):
            changes.append(Change(Action.UNCHANGED, key, body, current))
        else:
            changes.append(Change(Action.PATCH, key, body, current))
    if prune:
        prune_kinds = {(r.group, r.kind) for r in prunable}
        patch_kinds = {(r.group, r.kind) for r in patchable}
        for key, current in sorted(live.items()):
            if key in wanted or key in patched:
                continue
            if (key.group, key.kind) in prune_kinds and is_owned(current, owner):
                changes.append(Change(Action.DELETE, key, None, current))
            elif (
                (key.group, key.kind) in patch_kinds
                and not is_owned(current, owner)
                and managed_paths(current, FIELD_MANAGER)
            ):
                changes.append(Change(Action.RELEASE, key, _release_body(current), current))
    return ApplyPlan(cluster=cluster, changes=tuple(changes), pruned=prune)


def live_index(objects: Iterable[Mapping[str, Any]]) -> dict[ObjectKey, Mapping[str, Any]]:
    """Objects keyed for `plan_apply`."""
    return {ObjectKey.of(o): o for o in objects}


def live_kinds(
    desired: Sequence[Mapping[str, Any]] = (),
    patches: Sequence[Mapping[str, Any]] = (),
) -> list[ApiResource]:
    """The kinds `plan_apply` needs live objects of: the emitted and patched kinds, and every desired kind."""
    kinds: dict[tuple[str, str], ApiResource] = {(r.group, r.kind): r for r in (*R.EMITTED, *R.PATCHED)}
    for obj in (*desired, *patches):
        res = resource_of(obj)
        if res is not None:
            kinds.setdefault((res.group, res.kind), res)
    return list(kinds.values())


# A kind's objects from a cache, or None when the cache cannot vouch for them (not held, not synced).
CachedKind = Callable[[ApiResource], list[Object] | None]


def read_live(
    cluster: Cluster,
    desired: Sequence[Mapping[str, Any]] = (),
    patches: Sequence[Mapping[str, Any]] = (),
    *,
    cached: CachedKind | None = None,
) -> dict[ObjectKey, Mapping[str, Any]]:
    """Every live object `plan_apply` needs: all objects of the emitted, patched and desired kinds.

    With ``cached``, kinds a synced cache holds are taken from it instead of listed. That is safe
    even when the cache lags: every write `execute` makes carries a precondition (create fails on
    an existing object, update and delete on a changed resourceVersion), so a stale plan fails
    with 409 instead of overwriting what it did not see.
    """
    objects: list[Mapping[str, Any]] = []
    for res in served_resources(cluster, live_kinds(desired, patches)):
        held = cached(res) if cached is not None else None
        objects.extend(held if held is not None else cluster.list(res).items)
    return live_index(objects)


# --- execution -----------------------------------------------------------------------------------


@dataclass
class ApplyResult:
    """What executing a plan did: writes done, writes that failed, objects reported and left alone."""

    cluster: str
    done: list[Change] = field(default_factory=list)
    failed: list[tuple[Change, ClusterError]] = field(default_factory=list)
    reported: list[Change] = field(default_factory=list)
    # Objects whose result still differs from what was applied (the API server changed or pruned
    # fields): applying again would not help, so they are reported instead of re-applied forever.
    unsettled: list[Change] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every write succeeded."""
        return not self.failed


def execute(plan: ApplyPlan, cluster: Cluster) -> ApplyResult:
    """Perform the plan's writes in order; one object's failure does not stop the others.

    An unreachable cluster stops the execution (every other write would fail the same way).
    """
    result = ApplyResult(cluster=plan.cluster, reported=list(plan.reported))
    for change in plan.writes:
        try:
            returned = _perform(change, cluster)
        except Unreachable as err:
            result.failed.append((change, err))
            break
        except ClusterError as err:
            result.failed.append((change, err))
            continue
        result.done.append(change)
        if returned is not None and change.desired is not None and not up_to_date(change.desired, returned):
            result.unsettled.append(change)
    return result


def apply_outputs(
    cluster: Cluster,
    desired: Sequence[Mapping[str, Any]],
    patches: Sequence[Mapping[str, Any]] = (),
    *,
    owner: str = MANAGEMENT_NAMESPACE,
    dry_run: bool = False,
) -> tuple[ApplyPlan, ApplyResult | None]:
    """Read what is live, plan, and (unless ``dry_run``) execute: the one-shot `meshrules apply` step."""
    live = read_live(cluster, desired, patches)
    plan = plan_apply(cluster.name, desired, live, patches=patches, owner=owner)
    return plan, None if dry_run else execute(plan, cluster)


def _perform(change: Change, cluster: Cluster) -> Object | None:
    action = change.action
    live_rv = str(((change.live or {}).get("metadata") or {}).get("resourceVersion", ""))
    if action is Action.CREATE:
        assert change.desired is not None
        return cluster.create(change.desired)
    if action is Action.DELETE:
        res = _resource(change)
        cluster.delete(res, change.key.name, change.key.namespace, resource_version=live_rv)
        return None
    assert change.desired is not None
    body = _with_rv(change.desired, live_rv)
    if change.remove:
        # Fields only a create gave meshrules (an Update, not an Apply): apply would keep them, so
        # a replace removes them first, then the apply continues from the new resourceVersion.
        patched = cluster.replace(_without_paths(change.live or {}, change.remove, live_rv))
        body = _with_rv(change.desired, str(patched["metadata"]["resourceVersion"]))
    # Owned objects are meshrules' to set (force); user objects are patched only where nobody else
    # set the field (no force: a user's explicit value wins and is reported as a conflict).
    return cluster.apply(body, force=action is Action.UPDATE)


def _resource(change: Change) -> ApiResource:
    source = change.live or change.desired or {}
    res = resource_of(source)
    if res is None:
        raise ConflictError(f"unknown kind `{change.key.kind}`", code="MR0802")
    return res


def _with_rv(obj: Mapping[str, Any], rv: str) -> Object:
    meta = dict(obj.get("metadata") or {})
    if rv:
        meta["resourceVersion"] = rv
    return {**obj, "metadata": meta}


def _without_paths(live: Mapping[str, Any], paths: Iterable[Path], rv: str) -> Object:
    out = json.loads(json.dumps(live))
    for path in paths:
        remove_path(out, path)
    out["metadata"]["resourceVersion"] = rv
    return dict(out)


def _stale_update_fields(desired: Mapping[str, Any], live: Mapping[str, Any]) -> tuple[Path, ...]:
    wanted = leaf_paths(desired)
    applied = _apply_paths(live)
    stale = [
        p
        for p in managed_paths(live, FIELD_MANAGER)
        if not _covered(p, wanted) and p not in applied and get_path(live, p)[0]
    ]
    return tuple(sorted(stale))


def _apply_paths(live: Mapping[str, Any]) -> set[Path]:
    meta = live.get("metadata") or {}
    out: set[Path] = set()
    for entry in meta.get("managedFields") or ():
        if entry.get("manager") == FIELD_MANAGER and entry.get("operation") == "Apply" and not entry.get("subresource"):
            out |= from_fields_v1(entry.get("fieldsV1") or {})
    return out


def _covered(path: Path, wanted: set[Path]) -> bool:
    """Whether ``path`` is one of ``wanted`` or inside/around one of them."""
    return any(path[: len(w)] == w or w[: len(path)] == path for w in wanted)


def _release_body(live: Mapping[str, Any]) -> Object:
    meta = live.get("metadata") or {}
    out_meta: Object = {"name": meta.get("name")}
    if meta.get("namespace"):
        out_meta["namespace"] = meta["namespace"]
    return {"apiVersion": live.get("apiVersion"), "kind": live.get("kind"), "metadata": out_meta}


def predict(change: Change) -> Mapping[str, Any]:
    """The object as it will be after ``change`` (what `--dry-run` shows)."""
    if change.action is Action.CREATE:
        return change.desired or {}
    live = json.loads(json.dumps(change.live or {}))
    wanted = leaf_paths(change.desired or {})
    for path in managed_paths(live, FIELD_MANAGER):
        if not _covered(path, wanted):
            remove_path(live, path)
    if change.action is Action.RELEASE:
        return dict(live)
    return merge(live, _without_server_meta({k: v for k, v in (change.desired or {}).items() if k != "status"}))


def _without_server_meta(obj: Mapping[str, Any]) -> Object:
    out = dict(obj)
    if isinstance(out.get("metadata"), Mapping):
        out["metadata"] = {k: v for k, v in out["metadata"].items() if k not in _SERVER_META}
    return out


def _display(obj: Mapping[str, Any] | None) -> Object:
    if obj is None:
        return {}
    out = _without_server_meta(obj)
    out.pop("status", None)
    if out.get("kind") == "Secret":
        # INVARIANT: a diff never shows Secret data; a digest still tells whether a value changes.
        for key in ("data", "stringData"):
            if isinstance(out.get(key), Mapping):
                out[key] = {
                    k: f"<redacted {hashlib.sha256(str(v).encode()).hexdigest()[:8]}>" for k, v in out[key].items()
                }
    return out


def _yaml(obj: Mapping[str, Any]) -> str:
    return yaml.safe_dump(json.loads(json.dumps(obj)), sort_keys=True, default_flow_style=False)


def digest(obj: Mapping[str, Any]) -> str:
    """A stable digest of an object (to remember a desired state that did not settle)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]
