"""What an aggregate computes from the bindings of its body, shared by every evaluator.

An aggregate ``R = f T : { body }`` is evaluated per binding of its *group* variables (those it
shares with the rest of the rule). The body's other variables are *local*. The engine collects
the set of distinct ``(T, local...)`` tuples and reduces it here, so the compiled evaluator, the
interpretive solver and the explanation all agree on the answer by construction.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from meshrules.dsl import ast


class _NoValue:
    """The answer of ``min``/``max`` over an empty group: the literal fails."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NO_VALUE"


NO_VALUE: Any = _NoValue()


def aggregate_locals(literal: ast.Aggregate, groups: Iterable[str]) -> tuple[str, ...]:
    """The aggregate's local variables, in order of first use: those not shared with its rule."""
    shared = set(groups)
    names: list[str] = []
    for inner in literal.body:
        names += ast.literal_variables(inner)
    if literal.target is not None:
        names += ast.term_variables([literal.target])
    return tuple(n for n in dict.fromkeys(names) if n not in shared)


def reduce_aggregate(function: str, has_target: bool, rows: set[tuple[Any, ...]]) -> Any:
    """The value of ``function`` over distinct ``(target, local...)`` rows (``NO_VALUE`` if none).

    ``count`` without a target counts distinct local bindings; with one, distinct target values.
    ``sum`` adds the target over distinct local bindings. ``min``/``max`` pick the extreme
    target. ``set`` is the frozenset of target values.
    """
    if function == "count":
        return len({r[0] for r in rows}) if has_target else len(rows)
    if function == "sum":
        return sum(r[0] for r in rows)
    if function == "set":
        return frozenset(r[0] for r in rows)
    if not rows:
        return NO_VALUE
    values = [r[0] for r in rows]
    return min(values) if function == "min" else max(values)
