"""The engine's input: base facts by relation, each with an optional source, and the object table.

Fact extraction (discovery and policies → facts) fills a ``Facts``; ``evaluate`` reads it. A
*source* is an opaque string naming where a base fact came from — ``policies/access.yaml:12``
or ``cluster-1/Deployment/bookinfo/productpage-v1`` — and is what an explanation's leaves show,
so a derivation reaches the user's objects. The *object table* maps entity ids (the strings in
entity-typed columns) to the objects behind them, so the ``field`` built-in can read
``field(P, "spec.policy.requestTimeout", T)`` from the policy whose id is ``P``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from meshrules.engine.values import Row, freeze

_PLAIN = frozenset({str, int, bool})


def _hashable(row: Row) -> Row:
    """The row with mappings, lists and sets frozen (rows of plain values pass through untouched)."""
    for value in row:
        if type(value) not in _PLAIN:
            return tuple(freeze(v) for v in row)
    return row


class Facts:
    """Base facts: relation name → rows (tuples), each row with an optional source reference.

    Adding a row twice keeps the first source unless the second call gives one and the first
    did not. Order of addition never changes a model.
    """

    __slots__ = ("_objects", "_rows")

    def __init__(self) -> None:
        self._rows: dict[str, dict[Row, str | None]] = {}
        self._objects: dict[str, Any] = {}

    @classmethod
    def from_rows(cls, rows: Mapping[str, Iterable[Row]]) -> Facts:
        """Facts from ``{relation: rows}`` without sources."""
        facts = cls()
        for relation, relation_rows in rows.items():
            facts.extend(relation, relation_rows)
        return facts

    def add(self, relation: str, row: Row, source: str | None = None) -> None:
        """Add one fact, ``row`` being the tuple of its column values (mappings and lists are frozen)."""
        row = _hashable(tuple(row))
        rows = self._rows.setdefault(relation, {})
        if rows.get(row) is None:
            rows[row] = source

    def extend(self, relation: str, rows: Iterable[Row], source: str | None = None) -> None:
        """Add many facts of one relation, all with the same source (or none)."""
        target = self._rows.setdefault(relation, {})
        for row in rows:
            row = _hashable(tuple(row))
            if target.get(row) is None:
                target[row] = source

    def discard(self, relation: str, row: Row) -> None:
        """Remove a fact if present."""
        self._rows.get(relation, {}).pop(_hashable(tuple(row)), None)

    def add_object(self, entity: str, obj: Any) -> None:
        """Make ``obj`` the object behind entity id ``entity`` (read by the ``field`` built-in)."""
        self._objects[entity] = obj

    @property
    def objects(self) -> Mapping[str, Any]:
        """Entity id → object."""
        return self._objects

    def relations(self) -> list[str]:
        """Relations that have at least one fact, sorted."""
        return sorted(name for name, rows in self._rows.items() if rows)

    def rows(self, relation: str) -> Mapping[Row, str | None]:
        """Row → source of one relation (empty when it has no facts)."""
        return self._rows.get(relation, {})

    def source(self, relation: str, row: Row) -> str | None:
        """The source reference of one fact, if it has one."""
        return self._rows.get(relation, {}).get(row)

    def __contains__(self, fact: object) -> bool:
        if not isinstance(fact, tuple) or len(fact) != 2:
            return False
        relation, row = fact
        return row in self._rows.get(relation, {})

    def __iter__(self) -> Iterator[tuple[str, Row]]:
        for relation in self.relations():
            for row in self._rows[relation]:
                yield relation, row

    def __len__(self) -> int:
        return sum(len(rows) for rows in self._rows.values())

    def copy(self) -> Facts:
        """An independent copy (objects shared, rows copied)."""
        other = Facts()
        other._rows = {name: dict(rows) for name, rows in self._rows.items()}
        other._objects = dict(self._objects)
        return other
