"""One relation's facts during and after evaluation, with hash indexes on bound columns.

Facts are tuples; each maps to its *provenance stamp* ``(height, rule)``: the evaluation round
that first derived it and the index of the rule that did (``BASE`` for base facts). That pair is
all the engine stores per fact; ``provenance.explain`` rebuilds one derivation from it on demand
by finding body facts of a lower height, which keeps evaluation fast and memory per fact small.

An index maps the values of some columns to the list of facts with those values. Indexes are
built when a join plan first asks for them and then kept up to date as rounds add facts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from operator import itemgetter
from typing import Any

from meshrules.engine.values import Row

Stamp = tuple[int, int]
BASE: Stamp = (0, -1)
# The value of an empty index bucket, shared so misses allocate nothing.
EMPTY: tuple[Row, ...] = ()


def key_getter(columns: tuple[int, ...]) -> Callable[[Row], Any]:
    """A function from a row to its index key: the value for one column, a tuple for several."""
    if not columns:
        return lambda row: ()
    return itemgetter(*columns)


class RelationStore:
    """The facts of one relation and their indexes."""

    __slots__ = ("arity", "facts", "indexes", "name")

    def __init__(self, name: str, arity: int, facts: dict[Row, Stamp] | None = None) -> None:
        self.name = name
        self.arity = arity
        self.facts: dict[Row, Stamp] = facts if facts is not None else {}
        self.indexes: dict[tuple[int, ...], tuple[Callable[[Row], Any], dict[Any, list[Row]]]] = {}

    def __len__(self) -> int:
        return len(self.facts)

    def index(self, columns: tuple[int, ...]) -> dict[Any, list[Row]]:
        """The index on ``columns`` (built now if missing, then maintained by ``merge``)."""
        found = self.indexes.get(columns)
        if found is not None:
            return found[1]
        getter = key_getter(columns)
        index: dict[Any, list[Row]] = {}
        for row in self.facts:
            key = getter(row)
            bucket = index.get(key)
            if bucket is None:
                index[key] = [row]
            else:
                bucket.append(row)
        self.indexes[columns] = (getter, index)
        return index

    def merge(self, new: dict[Row, Stamp]) -> list[Row]:
        """Add the facts of ``new`` (none of them already here); return them as a list."""
        rows = list(new)
        self.facts.update(new)
        for getter, index in self.indexes.values():
            for row in rows:
                key = getter(row)
                bucket = index.get(key)
                if bucket is None:
                    index[key] = [row]
                else:
                    bucket.append(row)
        return rows

    def fresh_copy(self, rows: Iterable[Row] = ()) -> RelationStore:
        """An empty store of the same relation holding ``rows`` as base facts."""
        return RelationStore(self.name, self.arity, dict.fromkeys(rows, BASE))
