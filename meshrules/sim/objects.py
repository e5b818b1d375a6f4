"""Reading raw Kubernetes, Istio and Linkerd objects the way the mesh control planes read them.

The simulator's evaluators (``meshrules.sim.istio.routing``, ``.mtls``, ``meshrules.sim.linkerd``)
take objects as plain mappings, exactly as YAML gives them: nothing is validated up front, a
missing or ill-typed field reads as absent. This module holds what they all need to read such
objects: metadata access, the order in which a control plane accepts objects, de-duplication,
Kubernetes label selectors and duration strings.

Nothing here knows a mesh; each evaluator documents which order its mesh uses. The one shared
answer shape, :class:`Hop` (a step on a request's path), lives here too so that Istio and Linkerd
answers describe paths alike.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from meshrules.model.common import duration_ms

__all__ = [
    "Hop",
    "Obj",
    "annotations_of",
    "as_list",
    "as_map",
    "creation_key",
    "dedupe",
    "first_int",
    "group_of",
    "join",
    "kind_of",
    "labels_of",
    "name_of",
    "namespace_of",
    "object_key",
    "parse_duration_ms",
    "selector_matches",
    "sorted_pairs",
    "spec",
    "str_list",
    "subset_of",
]

Obj = Mapping[str, Any]

# A creation time later than any real one: objects without a timestamp sort as the newest, which is
# what API §3 prescribes ("a policy without a timestamp counts as newer than every policy with one").
_NEWEST = float("inf")
# Go's time.ParseDuration units; Envoy/protobuf durations (`1.5s`) are a subset.
_GO_DURATION = re.compile(r"^(?:\d+(?:\.\d+)?(?:h|m|s|ms|us|µs|ns))+$")


@dataclass(frozen=True, slots=True)
class Hop:
    """One step on a request's path.

    ``kind`` is ``sidecar`` / ``linkerd-proxy`` (the caller's proxy), ``eastwest-gateway``,
    ``linkerd-gateway``, ``destination`` or ``external``; ``identity`` is the identity the next hop
    sees when it differs from the caller's (Linkerd's gateway mode).
    """

    kind: str
    name: str
    address: str | None = None
    port: int | None = None
    cluster: str = ""
    identity: str | None = None


def as_map(value: Any) -> Mapping[str, Any]:
    """``value`` when it is a mapping, else an empty one (tolerant reading of user objects)."""
    return value if isinstance(value, Mapping) else {}


def as_list(value: Any) -> list[Any]:
    """``value`` when it is a list, else an empty list (a lone scalar is not promoted)."""
    return list(value) if isinstance(value, list | tuple) else []


def _meta(obj: Obj) -> Mapping[str, Any]:
    return as_map(obj.get("metadata"))


def spec(obj: Obj) -> Mapping[str, Any]:
    """The object's ``spec`` (empty when missing)."""
    return as_map(obj.get("spec"))


def name_of(obj: Obj) -> str:
    """``metadata.name``."""
    return str(_meta(obj).get("name") or "")


def namespace_of(obj: Obj, default: str = "default") -> str:
    """``metadata.namespace``; Kubernetes puts namespaced objects without one in ``default``."""
    return str(_meta(obj).get("namespace") or default)


def kind_of(obj: Obj) -> str:
    """``kind``."""
    return str(obj.get("kind") or "")


def group_of(obj: Obj) -> str:
    """The API group of ``apiVersion`` (``""`` for the core group)."""
    api_version = str(obj.get("apiVersion") or "")
    return api_version.rpartition("/")[0] if "/" in api_version else ""


def _str_map(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in as_map(value).items() if v is not None}


def labels_of(obj: Obj) -> dict[str, str]:
    """``metadata.labels`` as strings."""
    return _str_map(_meta(obj).get("labels"))


def annotations_of(obj: Obj) -> dict[str, str]:
    """``metadata.annotations`` as strings."""
    return _str_map(_meta(obj).get("annotations"))


def object_key(obj: Obj) -> str:
    """``namespace/name``, how answers name an object."""
    return f"{namespace_of(obj)}/{name_of(obj)}"


def _timestamp(obj: Obj) -> float:
    raw = _meta(obj).get("creationTimestamp")
    if isinstance(raw, datetime):  # PyYAML turns unquoted RFC 3339 values into datetimes
        return raw.timestamp()
    if isinstance(raw, str) and raw:
        try:
            return datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return _NEWEST
    return _NEWEST


def creation_key(obj: Obj, *, name_first: bool = False) -> tuple[float, str, str]:
    """Sort key for "the oldest wins": creation time, then a stable tie-break.

    Istio breaks ties by name, then namespace (``name_first=True``); the Gateway API and API §3
    by ``namespace/name``. A missing timestamp sorts as the newest.
    """
    if name_first:
        return (_timestamp(obj), name_of(obj), namespace_of(obj))
    return (_timestamp(obj), namespace_of(obj), name_of(obj))


def dedupe(objects: Iterable[Obj]) -> list[Obj]:
    """One object per (group, kind, namespace, name), independent of input order.

    A snapshot may hold the same object twice (two files, a ``List`` and its items). When the
    copies differ, the one with the smallest canonical JSON wins, so the choice never depends on
    file order.
    """
    chosen: dict[tuple[str, str, str, str], tuple[str, Obj]] = {}
    for obj in objects:
        if not isinstance(obj, Mapping):
            continue
        key = (group_of(obj), kind_of(obj), namespace_of(obj), name_of(obj))
        canon = json.dumps(obj, sort_keys=True, default=str)
        best = chosen.get(key)
        if best is None or canon < best[0]:
            chosen[key] = (canon, obj)
    return [obj for _, obj in (chosen[k] for k in sorted(chosen))]


def selector_matches(selector: Any, labels_: Mapping[str, str]) -> bool:
    """Whether a Kubernetes LabelSelector (``matchLabels`` + ``matchExpressions``) selects ``labels_``.

    The two parts are ANDed; an empty selector selects everything (the LabelSelector rule). An
    unknown operator selects nothing, as the API server would have refused the object.
    """
    sel = as_map(selector)
    for key, value in as_map(sel.get("matchLabels")).items():
        if labels_.get(str(key)) != str(value):
            return False
    for expr in as_list(sel.get("matchExpressions")):
        e = as_map(expr)
        key = str(e.get("key") or "")
        op = str(e.get("operator") or "")
        values = {str(v) for v in as_list(e.get("values"))}
        present = key in labels_
        if op == "In":
            ok = present and labels_[key] in values
        elif op == "NotIn":
            ok = not present or labels_[key] not in values
        elif op == "Exists":
            ok = present
        elif op == "DoesNotExist":
            ok = not present
        else:
            ok = False
        if not ok:
            return False
    return True


def parse_duration_ms(value: Any) -> float | None:
    """Milliseconds of a Go/protobuf duration (``250ms``, ``1.5s``, ``1m30s``); None if unreadable."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) * 1000.0  # a bare number in a duration field means seconds
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not _GO_DURATION.match(text):
        return None
    try:
        return duration_ms(text)
    except ValueError:
        return None


def subset_of(wanted: Mapping[str, str], labels_: Mapping[str, str]) -> bool:
    """Whether every ``wanted`` label is in ``labels_`` with the same value (Istio selector rule)."""
    return all(labels_.get(k) == v for k, v in wanted.items())


def str_list(value: Any) -> list[str]:
    """A list of strings from a YAML list (non-strings dropped)."""
    return [str(v) for v in as_list(value) if isinstance(v, str | int)]


def first_int(*values: Any) -> int | None:
    """The first value that is an int (not a bool), or a digit string, else None."""
    for value in values:
        if isinstance(value, bool):
            continue
        if isinstance(value, int):
            return value
        if isinstance(value, str) and value.isdigit():
            return int(value)
    return None


def sorted_pairs(mapping: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """A label map as sorted pairs (hashable, deterministic)."""
    return tuple(sorted(mapping.items()))


def join(parts: Sequence[str]) -> str:
    """``a, b and c`` for messages."""
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]
