"""The engine's entry points: load a checked program, evaluate it over facts, get a ``Model``.

program = load_program(["rules/"], extra=["scenario/policies/extra.rules"])
facts = Facts()
facts.add("destination", ("reviews-bookinfo-cluster-2",), source="cluster-2/Service/bookinfo/reviews")
model = evaluate(program, facts)
model.query("federated(D, M)")
print(model.explain('federated("reviews-bookinfo-cluster-2", "istiod-istio-system-cluster-1")').render())
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

from meshrules.dsl import loader
from meshrules.dsl.program import Program
from meshrules.engine.builtins import BuiltinRegistry, standard_builtins
from meshrules.engine.facts import Facts
from meshrules.engine.fixpoint import Strategy, ingest, run_strata
from meshrules.engine.model import EvaluationStats, Model
from meshrules.engine.store import BASE
from meshrules.errors import InternalError


def load_program(
    paths: Iterable[str | Path],
    extra: Iterable[str | Path] = (),
    builtins: BuiltinRegistry | None = None,
) -> Program:
    """Parse and check the rule files of ``paths`` (directories or files) and ``extra`` files.

    ``paths`` is the default rule set or the directory ``--rules DIR`` names; ``extra`` holds a
    scenario's ``policies/*.rules``. Raises ``RuleError`` with every diagnostic of every file.
    """
    registry = builtins if builtins is not None else standard_builtins()
    return loader.load_program(paths, registry.signatures(), extra=extra)


def program_from_text(texts: dict[str, str], builtins: BuiltinRegistry | None = None) -> Program:
    """Parse and check rule files given as ``{file name: text}`` (includes resolved among them)."""
    registry = builtins if builtins is not None else standard_builtins()
    return loader.program_from_text(texts, registry.signatures())


def evaluate(
    program: Program,
    facts: Facts,
    builtins: BuiltinRegistry | None = None,
    strategy: Strategy | str = Strategy.SEMINAIVE,
) -> Model:
    """Every fact that follows from ``facts`` under ``program``.

    ``builtins`` must hold every built-in the program was checked against (the standard set by
    default). Facts of relations the program does not declare are ignored and listed in
    ``Model.stats.ignored_relations``. Raises ``InputError`` when a fact does not fit its
    relation, and ``RuleError`` when a built-in fails on the values it meets.
    """
    started = time.perf_counter()
    registry = builtins if builtins is not None else standard_builtins()
    missing = sorted(set(program.builtins) - set(registry.signatures()))
    if missing:
        raise InternalError(
            f"the program was checked with built-ins the evaluator lacks: {', '.join(missing)}",
            hint="pass the same BuiltinRegistry to load_program and evaluate",
        )
    stores, sources, ignored = ingest(program, facts)
    base = sum(len(s) for s in stores.values())
    height, stats = run_strata(program, stores, registry, facts.objects, program.strata, 0, Strategy(strategy))
    derived = sum(1 for s in stores.values() for stamp in s.facts.values() if stamp is not BASE)
    return Model(
        program,
        registry,
        stores,
        sources,
        dict(facts.objects),
        height,
        EvaluationStats(
            seconds=time.perf_counter() - started,
            strategy=Strategy(strategy),
            strata=tuple(stats),
            base_facts=base,
            derived_facts=derived,
            ignored_relations=ignored,
            reevaluated_strata=len(program.strata),
        ),
    )
