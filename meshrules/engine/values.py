"""Runtime values of facts: strings, integers, booleans, and frozen records for ``any`` columns.

Facts are plain tuples of these values, so relations are sets of tuples and joins are dict
look-ups. Values in ``any`` columns (label maps, selectors, lists) are frozen on the way in:
``FrozenMap`` for mappings, tuples for lists, ``frozenset`` for sets, so every fact is hashable.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from typing import Any, TypeAlias

Value: TypeAlias = Any  # str | int | bool | FrozenMap | tuple | frozenset, kept open for built-ins
Row: TypeAlias = tuple[Value, ...]


class FrozenMap(Mapping[str, Any]):
    """An immutable, hashable mapping (a label map, a selector, a record read from YAML)."""

    __slots__ = ("_data", "_hash")

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        self._data: dict[str, Any] = dict(data or {})
        self._hash: int | None = None

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(frozenset(self._data.items()))
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FrozenMap):
            return self._data == other._data
        if isinstance(other, Mapping):
            return self._data == dict(other)
        return NotImplemented

    def __repr__(self) -> str:
        items = ", ".join(f"{k!r}: {self._data[k]!r}" for k in sorted(self._data, key=str))
        return "{" + items + "}"


def freeze(value: Any) -> Any:
    """A hashable equivalent of ``value``: mappings, lists and sets frozen, deeply; strings interned."""
    if isinstance(value, str):
        return sys.intern(value)
    if isinstance(value, (bool, int, float, FrozenMap)) or value is None:
        return value
    if isinstance(value, Mapping):
        return FrozenMap({str(k): freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    if isinstance(value, (set, frozenset)):
        return frozenset(freeze(v) for v in value)
    return value


_TYPE_ORDER = {bool: 0, int: 1, float: 1, str: 2}


def sort_key(value: Value) -> tuple[Any, ...]:
    """A total order over values of mixed types, so answers print in a stable order."""
    kind = _TYPE_ORDER.get(type(value))
    if kind is not None:
        return (kind, value)
    if isinstance(value, tuple):
        return (3, tuple(sort_key(v) for v in value))
    if isinstance(value, frozenset):
        return (4, tuple(sorted(sort_key(v) for v in value)))
    if isinstance(value, Mapping):
        return (5, tuple(sorted((str(k), sort_key(v)) for k, v in value.items())))
    return (6, repr(value))


def row_key(row: Row) -> tuple[Any, ...]:
    """``sort_key`` of each value of a row."""
    return tuple(sort_key(v) for v in row)


def show(value: Value) -> str:
    """A value as rule text: strings quoted, booleans as ``true``/``false``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    if isinstance(value, (tuple, frozenset)):
        items = value if isinstance(value, tuple) else sorted(value, key=sort_key)
        return "[" + ", ".join(show(v) for v in items) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {show(value[k])}" for k in sorted(value, key=str)) + "}"
    return repr(value)


def show_fact(relation: str, row: Row) -> str:
    """``relation("a", 1)``: a fact as rule text."""
    return f"{relation}({', '.join(show(v) for v in row)})"


def to_json(value: Value) -> Any:
    """A value as JSON data: records become objects, collections sorted lists."""
    if isinstance(value, Mapping):
        return {str(k): to_json(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, tuple):
        return [to_json(v) for v in value]
    if isinstance(value, frozenset):
        return [to_json(v) for v in sorted(value, key=sort_key)]
    return value
