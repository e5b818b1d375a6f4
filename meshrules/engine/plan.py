"""Join order: in which order a rule body runs, chosen greedily from what is bound and how big relations are.

The plan runs, at each step, the cheapest literal that is ready (``dsl.binding`` says which are):

1. tests that bind nothing — comparisons, ``not``, fully bound built-ins and membership checks —
   because they only shrink the work;
2. assignments (``X = Y``) and aggregates, which bind one value;
3. built-ins that compute values;
4. relation atoms, smallest estimated match first: a relation of ``n`` facts with ``k`` of its
   ``a`` columns bound is estimated at ``n ** (1 - k/a)`` matches per look-up.

In a semi-naive round the changed ("delta") atom always goes first: it is small, and every
derivation of the round must use it. Ties keep the written order, so plans are deterministic.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from meshrules.dsl import ast
from meshrules.dsl.binding import literal_binds, literal_ready, term_bound
from meshrules.dsl.signatures import BuiltinSignature
from meshrules.errors import InternalError

# Score classes of the greedy choice (lower runs first).
_TEST, _ASSIGN, _COMPUTE, _JOIN = 0, 1, 2, 3


@dataclass(frozen=True, slots=True)
class Step:
    """One literal of a plan and the variables bound before it runs."""

    literal: ast.Literal
    bound: frozenset[str]
    delta: bool = False
    groups: tuple[str, ...] = ()  # for an aggregate: the variables it shares with its rule


def plan_body(
    body: tuple[ast.Literal, ...],
    bound: frozenset[str],
    builtins: Mapping[str, BuiltinSignature],
    size: Callable[[str], int],
    delta: int | None = None,
    outer: set[str] | None = None,
) -> list[Step]:
    """Order ``body`` for evaluation with ``bound`` variables already bound.

    ``delta`` is the position of the atom that reads only last round's new facts; ``outer``
    holds the variables of the rule outside this body (it decides aggregate groups).
    """
    groups: dict[int, list[str]] = {}
    for i, lit in enumerate(body):
        if isinstance(lit, ast.Aggregate):
            others = set(outer or ())
            for j, other in enumerate(body):
                if j != i:
                    others |= (
                        {other.result.name} if isinstance(other, ast.Aggregate) else set(ast.literal_variables(other))
                    )
            groups[i] = ast.aggregate_groups(lit, others)

    steps: list[Step] = []
    now = set(bound)
    pending = list(range(len(body)))
    if delta is not None:
        steps.append(Step(body[delta], frozenset(now), delta=True))
        now |= literal_binds(body[delta])
        pending.remove(delta)
    while pending:
        best: tuple[tuple[int, float, int], int] | None = None
        for i in pending:
            lit = body[i]
            if not literal_ready(lit, now, builtins, groups.get(i)):
                continue
            score = (*_score(lit, now, builtins, size), i)
            if best is None or score < best[0]:
                best = (score, i)
        if best is None:
            raise InternalError(
                "no literal of a checked rule body can run",
                hint="the range-restriction check and the planner disagree; this is a bug",
            )
        i = best[1]
        steps.append(Step(body[i], frozenset(now), groups=tuple(groups.get(i, ()))))
        now |= literal_binds(body[i])
        pending.remove(i)
    return steps


def _score(
    literal: ast.Literal, bound: set[str], builtins: Mapping[str, BuiltinSignature], size: Callable[[str], int]
) -> tuple[int, float]:
    if isinstance(literal, (ast.Negation, ast.Comparison)):
        if isinstance(literal, ast.Comparison) and not literal_binds(literal) <= bound:
            return _ASSIGN, 0.0
        return _TEST, 0.0
    if isinstance(literal, ast.Aggregate):
        return _ASSIGN, 0.0
    binds_new = not literal_binds(literal) <= bound
    if literal.predicate in builtins:
        return (_COMPUTE if binds_new else _TEST), 0.0
    if not binds_new and all(term_bound(t, bound) for t in literal.args):
        return _TEST, 0.0
    arity = len(literal.args)
    n = max(size(literal.predicate), 1)
    if arity == 0:
        return _TEST, 0.0
    k = sum(1 for t in literal.args if term_bound(t, bound))
    return _JOIN, float(n) ** (1.0 - k / arity)
