"""Field paths of objects, the managedFields notation, and label selectors — pure functions.

Server-side apply tracks which field manager owns which fields (`metadata.managedFields`, in the
`FieldsV1` notation: `{"f:spec": {"f:hosts": {}}}`). Apply planning reads that to know whether
re-applying would change anything, and the in-memory fake writes it. Lists count as one field
(atomic), as they are for CRDs without list-type markers — all the mesh kinds meshrules emits.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from typing import Any

Path = tuple[str, ...]

# Server-maintained metadata is never owned by a field manager.
_UNTRACKED_META = frozenset(
    {
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "managedFields",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
    }
)
_UNTRACKED_TOP = frozenset({"apiVersion", "kind"})


def leaf_paths(obj: Mapping[str, Any]) -> set[Path]:
    """The paths of every field ``obj`` sets; maps are walked, lists and scalars are leaves."""
    out: set[Path] = set()
    for key, value in obj.items():
        if key in _UNTRACKED_TOP:
            continue
        if key == "metadata" and isinstance(value, Mapping):
            for mkey, mvalue in value.items():
                if mkey not in _UNTRACKED_META:
                    _walk(mvalue, ("metadata", mkey), out)
            continue
        _walk(value, (key,), out)
    return out


def _walk(value: Any, path: Path, out: set[Path]) -> None:
    if isinstance(value, Mapping) and value:
        for key, child in value.items():
            _walk(child, (*path, str(key)), out)
    else:
        out.add(path)


def to_fields_v1(paths: Iterable[Path]) -> dict[str, Any]:
    """Paths in the `FieldsV1` notation of `managedFields`."""
    root: dict[str, Any] = {}
    for path in sorted(paths):
        node = root
        for part in path:
            node = node.setdefault(f"f:{part}", {})
    return root


def from_fields_v1(fields: Mapping[str, Any], prefix: Path = ()) -> set[Path]:
    """Paths of a `FieldsV1` tree; a list owned by key (`k:`, `v:`, `i:`) counts as the whole list."""
    out: set[Path] = set()
    children = [k for k in fields if k != "."]
    if not children:
        if prefix:
            out.add(prefix)
        return out
    for key in children:
        if not key.startswith("f:"):
            # An associative-list entry: we treat lists as one field.
            if prefix:
                out.add(prefix)
            continue
        value = fields[key]
        out |= from_fields_v1(value if isinstance(value, Mapping) else {}, (*prefix, key[2:]))
    return out


def managed_paths(obj: Mapping[str, Any], manager: str, subresource: str = "") -> set[Path]:
    """The paths ``manager`` owns in ``obj`` (any operation), per its managedFields."""
    meta = obj.get("metadata") or {}
    out: set[Path] = set()
    for entry in meta.get("managedFields") or ():
        if entry.get("manager") == manager and (entry.get("subresource") or "") == subresource:
            out |= from_fields_v1(entry.get("fieldsV1") or {})
    return out


def get_path(obj: Mapping[str, Any], path: Path) -> tuple[bool, Any]:
    """``(found, value)`` at ``path``."""
    node: Any = obj
    for part in path:
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def remove_path(obj: dict[str, Any], path: Path) -> None:
    """Delete the field at ``path`` (and maps it leaves empty); absent paths are ignored."""
    parents: list[tuple[dict[str, Any], str]] = []
    node: Any = obj
    for part in path[:-1]:
        if not isinstance(node, dict) or part not in node:
            return
        parents.append((node, part))
        node = node[part]
    if isinstance(node, dict):
        node.pop(path[-1], None)
        # Maps emptied by the removal go too (as they do on a real API server).
        for parent, key in reversed(parents):
            child = parent.get(key)
            if isinstance(child, dict) and not child and key not in ("metadata",):
                del parent[key]
            else:
                break


def merge(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """``overlay`` merged into ``base``: maps recursively, everything else replaced (apply semantics)."""
    out = copy.deepcopy(dict(base))
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def merge_patch(base: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """JSON merge patch (RFC 7386): maps merge, `null` deletes, everything else replaces."""
    out = copy.deepcopy(dict(base))
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping):
            current = out.get(key)
            out[key] = merge_patch(current if isinstance(current, Mapping) else {}, value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def is_subset(want: Any, have: Any) -> bool:
    """Whether every field ``want`` sets has that value in ``have`` (maps may hold more)."""
    if isinstance(want, Mapping):
        if not isinstance(have, Mapping):
            return False
        return all(k in have and is_subset(v, have[k]) for k, v in want.items())
    return bool(want == have)


# --- label selectors ----------------------------------------------------------------------------

_SET_TERM = re.compile(r"^\s*([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


def matches_selector(labels: Mapping[str, str], selector: str) -> bool:
    """Whether ``labels`` match a label selector string (`a=b,c!=d,e,!f,g in (x,y)`)."""
    return all(_term_matches(labels, term) for term in split_selector(selector))


def split_selector(selector: str) -> list[str]:
    """The terms of a selector, splitting on commas outside parentheses."""
    terms, depth, current = [], 0, ""
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += char
    terms.append(current)
    return [t.strip() for t in terms if t.strip()]


def _term_matches(labels: Mapping[str, str], term: str) -> bool:
    found = _SET_TERM.match(term)
    if found:
        key, op, values = found.groups()
        allowed = {v.strip() for v in values.split(",") if v.strip()}
        return (labels.get(key) in allowed) if op == "in" else (labels.get(key) not in allowed)
    if "!=" in term:
        key, value = (p.strip() for p in term.split("!=", 1))
        return labels.get(key) != value
    if "=" in term:
        key, value = (p.strip() for p in term.replace("==", "=").split("=", 1))
        return labels.get(key) == value
    if term.startswith("!"):
        return term[1:].strip() not in labels
    return term in labels


def selector(labels: Mapping[str, str]) -> str:
    """The equality selector for ``labels`` (`a=b,c=d`, sorted)."""
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
