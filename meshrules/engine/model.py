"""The result of evaluation: every fact that holds, queries over them, and why each holds.

A ``Model`` is immutable from the outside. It answers:

- ``rows("federated")`` — the facts of one relation, sorted;
- ``query('federated(D, M), M != "istiod-istio-system-cluster-1"')`` — bindings of a body;
- ``explain('federated("reviews-bookinfo-cluster-2", "istiod-istio-system-cluster-1")')`` —
  the derivation tree (``provenance.Derivation``);
- ``update(added=..., removed=...)`` — a new model after base facts change, re-evaluating only
  the strata downstream of the change.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from meshrules.dsl import ast
from meshrules.dsl.checks import check_query
from meshrules.dsl.parser import parse_query
from meshrules.dsl.program import Program
from meshrules.engine.builtins import BuiltinRegistry
from meshrules.engine.facts import Facts
from meshrules.engine.fixpoint import Strategy, StratumStats, affected_relations, ingest, run_strata
from meshrules.engine.provenance import Derivation, explain
from meshrules.engine.solve import Solver
from meshrules.engine.store import BASE, RelationStore
from meshrules.engine.values import Row, row_key, show_fact, to_json
from meshrules.errors import QueryError, RuleError

QUERY_INVALID = "MR0530"


@dataclass(frozen=True, slots=True)
class Answer:
    """The answers of a query: one row of values per distinct binding of ``variables``, sorted."""

    variables: tuple[str, ...]
    rows: tuple[Row, ...]

    def __len__(self) -> int:
        return len(self.rows)

    def __bool__(self) -> bool:
        return bool(self.rows)

    def as_dicts(self) -> list[dict[str, Any]]:
        """Each answer as ``{variable: value}`` with JSON-ready values."""
        return [{v: to_json(x) for v, x in zip(self.variables, row, strict=True)} for row in self.rows]


@dataclass(frozen=True, slots=True)
class EvaluationStats:
    """What an evaluation cost, stratum by stratum."""

    seconds: float
    strategy: Strategy
    strata: tuple[StratumStats, ...] = ()
    base_facts: int = 0
    derived_facts: int = 0
    ignored_relations: tuple[str, ...] = ()
    reevaluated_strata: int = 0
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def rounds(self) -> int:
        """Rounds summed over strata."""
        return sum(s.rounds for s in self.strata)


class Model:
    """Every fact that holds under a program and its base facts; see the module docstring."""

    def __init__(
        self,
        program: Program,
        builtins: BuiltinRegistry,
        stores: dict[str, RelationStore],
        sources: dict[str, dict[Row, str]],
        objects: Mapping[str, Any],
        height: int,
        stats: EvaluationStats,
    ) -> None:
        self.program = program
        self.builtins = builtins
        self._stores = stores
        self._sources = sources
        self._objects = objects
        self._height = height
        self.stats = stats
        self._solver = Solver(stores, builtins, objects)

    # Facts ---------------------------------------------------------------------------------------

    def relations(self) -> list[str]:
        """Every declared relation, sorted."""
        return sorted(self._stores)

    def rows(self, relation: str) -> list[Row]:
        """The facts of ``relation``, sorted (``QueryError`` for an undeclared relation)."""
        return sorted(self._store(relation).facts, key=row_key)

    def count(self, relation: str) -> int:
        """How many facts ``relation`` has."""
        return len(self._store(relation))

    def contains(self, relation: str, row: Row) -> bool:
        """Whether the fact holds."""
        store = self._stores.get(relation)
        return store is not None and tuple(row) in store.facts

    def __contains__(self, fact: object) -> bool:
        if not isinstance(fact, tuple) or len(fact) != 2 or not isinstance(fact[0], str):
            return False
        return self.contains(fact[0], tuple(fact[1]))

    def __iter__(self) -> Iterator[tuple[str, Row]]:
        for relation in self.relations():
            for row in self.rows(relation):
                yield relation, row

    def is_base(self, relation: str, row: Row) -> bool:
        """Whether the fact was given rather than derived."""
        return self._store(relation).facts.get(tuple(row)) == BASE

    def source(self, relation: str, row: Row) -> str | None:
        """The source reference of a base fact, if it had one."""
        return self._sources.get(relation, {}).get(tuple(row))

    def _store(self, relation: str) -> RelationStore:
        store = self._stores.get(relation)
        if store is None:
            raise QueryError(
                f"no relation `{relation}`",
                code=QUERY_INVALID,
                hint="relations are declared in the rule files; `meshrules rules check` lists them",
            )
        return store

    # Queries ----------------------------------------------------------------------------------------

    def query(self, text: str) -> Answer:
        """Answer a query written like a rule body: ``federated(D, M), M != "mesh-a"``.

        Raises ``QueryError`` when the query does not parse or names something that does not
        exist, with the diagnostics of the rule checks.
        """
        body = self._parse(text)
        variables: list[str] = []
        for literal in body:
            variables += (
                ast.literal_variables(literal) if not isinstance(literal, ast.Aggregate) else [literal.result.name]
            )
        names = tuple(dict.fromkeys(v for v in variables if not v.startswith("_")))
        found = {tuple(s.env[n] for n in names) for s in self._solver.solve(body, {})}
        return Answer(names, tuple(sorted(found, key=row_key)))

    def _parse(self, text: str) -> tuple[ast.Literal, ...]:
        try:
            body = parse_query(text)
        except RuleError as exc:
            raise QueryError(
                f"the query `{text}` does not parse: {exc.diagnostics[0].message if exc.diagnostics else exc.message}",
                code=QUERY_INVALID,
                hint=exc.diagnostics[0].hint if exc.diagnostics else "",
                diagnostics=exc.diagnostics,
            ) from exc
        problems = check_query(body, self.program.relations, self.builtins.signatures())
        if problems:
            raise QueryError(
                f"the query `{text}` is invalid: {problems[0].message}",
                code=QUERY_INVALID,
                hint=problems[0].hint,
                diagnostics=tuple(problems),
            )
        return body

    # Provenance -------------------------------------------------------------------------------------

    def explain(self, fact: str | tuple[str, Row]) -> Derivation:
        """The derivation of a fact given as text (``federated("a", "b")``) or ``(relation, row)``.

        Raises ``QueryError`` when the fact does not hold.
        """
        if isinstance(fact, str):
            relation, row = self._parse_fact(fact)
        else:
            relation, row = fact[0], tuple(fact[1])
        store = self._store(relation)
        if row not in store.facts:
            raise QueryError(
                f"`{show_fact(relation, row)}` does not hold",
                code=QUERY_INVALID,
                hint=f"query `{relation}(...)` with variables to see the facts that do",
            )
        return explain(self.program, self._stores, self._solver, self._sources, relation, row)

    def _parse_fact(self, text: str) -> tuple[str, Row]:
        body = self._parse(text)
        if (
            len(body) != 1
            or not isinstance(body[0], ast.Atom)
            or any(not isinstance(t, ast.Constant) for t in body[0].args)
        ):
            raise QueryError(
                f"`{text}` is not a fact",
                code=QUERY_INVALID,
                hint='write one relation with a value in every column: `federated("a", "b")`',
            )
        atom = body[0]
        return atom.predicate, tuple(t.value for t in atom.args if isinstance(t, ast.Constant))

    # Change -----------------------------------------------------------------------------------------

    def update(self, added: Facts | None = None, removed: Facts | None = None) -> Model:
        """A new model with base facts ``removed`` and then ``added``, re-evaluating only what they affect.

        Strata that neither read a changed relation (directly or through other strata) nor use
        the object table when ``added`` brings objects are shared with this model unchanged.
        Sources and objects of ``added`` join those of this model. This model is left as it was.
        """
        import time

        started = time.perf_counter()
        added = added or Facts()
        removed = removed or Facts()
        additions, add_sources, ignored = ingest(self.program, added)
        removals, _, _ = ingest(self.program, removed)
        changed: set[str] = set()
        for name, store in additions.items():
            if any(row not in self._stores[name].facts or self._stores[name].facts[row] != BASE for row in store.facts):
                changed.add(name)
        for name, store in removals.items():
            if any(self._stores[name].facts.get(row) == BASE for row in store.facts):
                changed.add(name)
        objects = dict(self._objects)
        objects.update(added.objects)
        affected = affected_relations(self.program, changed, bool(added.objects), self.builtins)

        stores = dict(self._stores)
        sources = {name: dict(rows) for name, rows in self._sources.items()}
        for name in affected:
            old = self._stores[name]
            # Removals first, then additions: a fact both removed and added stays.
            base = [row for row, stamp in old.facts.items() if stamp == BASE and row not in removals[name].facts]
            base += list(additions[name].facts)
            stores[name] = old.fresh_copy(base)
            for row in removals[name].facts:
                sources.get(name, {}).pop(row, None)
            for row, source in add_sources.get(name, {}).items():
                sources.setdefault(name, {})[row] = source
        strata = [s for s in self.program.strata if affected.intersection(s.relations)]
        height, stats = run_strata(
            self.program, stores, self.builtins, objects, strata, self._height, self.stats.strategy
        )
        derived = sum(1 for s in stores.values() for stamp in s.facts.values() if stamp != BASE)
        base_count = sum(len(s) for s in stores.values()) - derived
        return Model(
            self.program,
            self.builtins,
            stores,
            sources,
            objects,
            height,
            EvaluationStats(
                seconds=time.perf_counter() - started,
                strategy=self.stats.strategy,
                strata=tuple(stats),
                base_facts=base_count,
                derived_facts=derived,
                ignored_relations=ignored,
                reevaluated_strata=len(strata),
            ),
        )
