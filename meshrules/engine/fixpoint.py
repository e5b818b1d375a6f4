"""Bottom-up evaluation to a fixpoint, stratum by stratum: semi-naive, or naive for comparison.

Strata (``Program.strata``) run in dependency order, so when a stratum starts every relation
it negates or aggregates over is complete. Inside a stratum:

- **semi-naive** (the default): one round of every rule over whole relations, then, while the
  last round found something new, one round of each rule's *delta variants* — the rule with one
  recursive atom reading only the facts new in the last round. Each derivation is found in the
  first round all its premises exist, and not again;
- **naive**: every rule over whole relations, round after round, until a round adds nothing.
  Same compiled joins, so the ratio of the two measures the algorithm, not the code.

Every round gets the next *height*; a fact is stamped ``(height, rule)`` when first derived.
Base facts are at height 0, so any fact's premises are strictly lower — what ``explain`` relies on.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from meshrules.dsl import ast
from meshrules.dsl.diagnostics import EVALUATION_FAILED, FACT_MISMATCH
from meshrules.dsl.program import Program, Stratum
from meshrules.engine.builtins import BuiltinRegistry
from meshrules.engine.compiler import CompiledRule, RuleCompiler
from meshrules.engine.facts import Facts
from meshrules.engine.store import BASE, RelationStore, Stamp
from meshrules.engine.values import Row, freeze, show_fact
from meshrules.errors import InputError, RuleError


class Strategy(StrEnum):
    """How a stratum reaches its fixpoint."""

    SEMINAIVE = "seminaive"
    NAIVE = "naive"


@dataclass(frozen=True, slots=True)
class StratumStats:
    """What one stratum's evaluation cost."""

    index: int
    relations: tuple[str, ...]
    rounds: int
    new_facts: int
    seconds: float


# Ingestion ----------------------------------------------------------------------------------------


def _column_converter(type_name: str, relation: str, column: str) -> Callable[[Any], Any]:
    def mismatch(value: Any, expected: str) -> InputError:
        return InputError(
            f"a fact of `{relation}` has `{value!r}` in column `{column}`, which holds {expected}",
            code=FACT_MISMATCH,
            hint="the facts handed to the engine do not match the relation declaration",
        )

    if type_name == "int":

        def to_int(value: Any) -> Any:
            if type(value) is not int:
                raise mismatch(value, "int")
            return value

        return to_int
    if type_name == "bool":

        def to_bool(value: Any) -> Any:
            if type(value) is not bool:
                raise mismatch(value, "bool")
            return value

        return to_bool
    if type_name == "any":
        return freeze

    def to_str(value: Any) -> Any:
        if type(value) is not str:
            raise mismatch(value, "a string")
        return sys.intern(value)

    return to_str


def ingest(
    program: Program, facts: Facts
) -> tuple[dict[str, RelationStore], dict[str, dict[Row, str]], tuple[str, ...]]:
    """Stores for every declared relation, filled with the base facts, checked and interned.

    Returns the stores, the source of each base fact that has one, and the relations of
    ``facts`` that the program does not declare (ignored: a replaced rule set may not need
    every relation the extractor produces).
    """
    stores = {name: RelationStore(name, decl.arity) for name, decl in program.relations.items()}
    sources: dict[str, dict[Row, str]] = {}
    ignored: list[str] = []
    for relation in facts.relations():
        decl = program.relations.get(relation)
        if decl is None:
            ignored.append(relation)
            continue
        convert = [_column_converter(c.type, relation, c.name) for c in decl.columns]
        target = stores[relation].facts
        relation_sources: dict[Row, str] = {}
        for row, source in facts.rows(relation).items():
            if len(row) != decl.arity:
                raise InputError(
                    f"a fact of `{relation}` has {len(row)} values but the relation has {decl.arity} columns",
                    code=FACT_MISMATCH,
                    hint=f"the fact is {show_fact(relation, row)}",
                )
            converted = tuple(c(v) for c, v in zip(convert, row, strict=True))
            target[converted] = BASE
            if source is not None:
                relation_sources[converted] = source
        if relation_sources:
            sources[relation] = relation_sources
    return stores, sources, tuple(ignored)


# Evaluation ---------------------------------------------------------------------------------------


def run_strata(
    program: Program,
    stores: Mapping[str, RelationStore],
    builtins: BuiltinRegistry,
    objects: Mapping[str, Any],
    strata: Iterable[Stratum],
    height: int,
    strategy: Strategy = Strategy.SEMINAIVE,
) -> tuple[int, list[StratumStats]]:
    """Evaluate ``strata`` in order over ``stores`` (filled in place); return the last height used."""
    rule_index = {id(rule): i for i, rule in enumerate(program.rules)}
    stats: list[StratumStats] = []
    for stratum in strata:
        started = time.perf_counter()
        pending: dict[str, dict[Row, Stamp]] = {name: {} for name in stratum.relations}
        compiler = RuleCompiler(stores, builtins, objects, pending)
        recursive = frozenset(stratum.relations) if stratum.recursive else frozenset()
        compiled = [compiler.compile_rule(rule, rule_index[id(rule)], recursive) for rule in stratum.rules]
        before = sum(len(stores[name]) for name in stratum.relations)
        if strategy is Strategy.SEMINAIVE:
            height, rounds = _seminaive(compiled, stores, pending, height, stratum.recursive)
        else:
            height, rounds = _naive(compiled, stores, pending, height)
        after = sum(len(stores[name]) for name in stratum.relations)
        stats.append(
            StratumStats(stratum.index, stratum.relations, rounds, after - before, time.perf_counter() - started)
        )
    return height, stats


def _run(
    compiled: CompiledRule, fn: Callable[[list[Row] | None, Stamp], None], rows: list[Row] | None, stamp: Stamp
) -> None:
    try:
        fn(rows, stamp)
    except (RuleError, InputError):
        raise
    except Exception as exc:
        # A built-in or a comparison met values it cannot handle (e.g. `<` between a string and
        # an integer in an `any` column): report the rule, not a traceback.
        rule = compiled.rule
        raise RuleError(
            f"rule `{rule.name}` failed while evaluating: {exc.__class__.__name__}: {exc}",
            code=EVALUATION_FAILED,
            location=rule.span.location(),
            hint="check the types of the values its built-ins and comparisons receive",
        ) from exc


def _merge(stores: Mapping[str, RelationStore], pending: Mapping[str, dict[Row, Stamp]]) -> dict[str, list[Row]]:
    delta: dict[str, list[Row]] = {}
    for name, new in pending.items():
        if new:
            delta[name] = stores[name].merge(new)
            new.clear()
    return delta


def _seminaive(
    compiled: list[CompiledRule],
    stores: Mapping[str, RelationStore],
    pending: Mapping[str, dict[Row, Stamp]],
    height: int,
    recursive: bool,
) -> tuple[int, int]:
    height += 1
    for rule in compiled:
        _run(rule, rule.full, None, (height, rule.index))
    delta = _merge(stores, pending)
    rounds = 1
    while recursive and delta:
        height += 1
        rounds += 1
        for rule in compiled:
            stamp = (height, rule.index)
            for relation, fn in rule.deltas:
                rows = delta.get(relation)
                if rows:
                    _run(rule, fn, rows, stamp)
        delta = _merge(stores, pending)
    return height, rounds


def _naive(
    compiled: list[CompiledRule],
    stores: Mapping[str, RelationStore],
    pending: Mapping[str, dict[Row, Stamp]],
    height: int,
) -> tuple[int, int]:
    rounds = 0
    while True:
        height += 1
        rounds += 1
        for rule in compiled:
            _run(rule, rule.full, None, (height, rule.index))
        if not _merge(stores, pending):
            return height, rounds


def affected_relations(
    program: Program, changed: Iterable[str], objects_changed: bool, builtins: BuiltinRegistry
) -> frozenset[str]:
    """Relations whose facts may change when the base facts of ``changed`` do (or the object table)."""
    seeds = set(changed)
    if objects_changed:
        readers = {b.name for b in builtins if b.uses_objects}
        for rule in program.rules:
            if any(a.predicate in readers for lit in rule.body for a in ast.literal_atoms(lit)):
                seeds.add(rule.head.predicate)
    return program.downstream(seeds)
