"""Deciding a scenario: facts from the graph, the rule set evaluated, its conclusions read as an `Intent`.

Place: the last step of the engine. ``decide`` runs fact extraction (``facts_from_graph``),
evaluates a checked program with the mesh built-ins (``mesh_builtins``), and reads the derived
relations into ``meshrules.model.intent.Intent`` (``intent_reading``) — the contract the emitters
and the simulator read. A ``Decision`` keeps the model, so every intent item's ``why`` handle
expands into the full derivation tree down to user objects, and an edit re-evaluates only what it
reaches (``Decision.update``).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from meshrules.dsl.program import Program
from meshrules.engine.builtins import BuiltinRegistry
from meshrules.engine.evaluate import evaluate
from meshrules.engine.facts import Facts
from meshrules.engine.facts_from_graph import extract_facts
from meshrules.engine.intent_reading import read_intent
from meshrules.engine.mesh_builtins import mesh_builtins
from meshrules.engine.model import Model
from meshrules.engine.provenance import Derivation as Explanation
from meshrules.engine.values import Row
from meshrules.errors import Diagnostic
from meshrules.graph import ServiceGraph
from meshrules.model.intent import Derivation, Intent
from meshrules.model.scenario import Scenario


@dataclass(frozen=True)
class Decision:
    """What the rule set decided for a scenario, and how to explain it.

    ``intent`` is the typed contract for emitters and the simulator; ``model`` every fact that
    holds (query it, or ``explain`` one); ``facts`` the base facts it was evaluated from (to
    re-evaluate after an edit with ``model.update``).
    """

    intent: Intent
    model: Model
    facts: Facts

    @property
    def findings(self) -> tuple[Diagnostic, ...]:
        """The rule set's findings, sorted by location (also ``intent.findings``)."""
        return self.intent.findings

    def update(
        self,
        graph: ServiceGraph,
        added: Facts | None = None,
        removed: Facts | None = None,
        scenario: Scenario | None = None,
    ) -> Decision:
        """The decision after base facts change (an edited policy: its old facts out, its new facts in).

        Only the strata the change reaches are re-evaluated (``Model.update``), and only the parts of
        the intent whose relations changed are read again; ``graph`` is the graph after the edit.
        """
        with gc_paused():
            model = self.model.update(added=added, removed=removed)
            facts = self.facts.copy()
            for relation, row in removed or ():
                facts.discard(relation, row)
            for relation, row in added or ():
                facts.add(relation, row, (added or Facts()).source(relation, row))
            for entity, obj in (added.objects if added is not None else {}).items():
                facts.add_object(entity, obj)
            intent = read_intent(model, graph, scenario, previous=(self.model, self.intent))
        return Decision(intent, model, facts)

    def explain(self, fact: str | tuple[str, Row] | Derivation) -> Explanation:
        """The derivation tree of a fact: rule text, ``(relation, row)`` or an intent item's ``why``."""
        if isinstance(fact, Derivation):
            return self.model.explain((fact.relation, fact.args))
        return self.model.explain(fact)


def decide(
    graph: ServiceGraph,
    program: Program,
    scenario: Scenario | None = None,
    builtins: BuiltinRegistry | None = None,
) -> Decision:
    """Evaluate ``program`` over the facts of ``graph`` and read its conclusions as an ``Intent``.

    ``program`` must have been checked against ``builtins`` (``mesh_builtins()`` by default).
    ``scenario`` gives policies their file:line sources and clusters their namespaces.
    """
    registry = builtins if builtins is not None else mesh_builtins()
    with gc_paused():
        facts = extract_facts(graph, scenario)
        model = evaluate(program, facts, builtins=registry)
        return Decision(read_intent(model, graph, scenario), model, facts)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building large acyclic data (facts, indexes, intent).

    Deciding an L fleet allocates ~10⁶ tuples and records, none in a cycle; each collection would
    rescan the whole growing heap and doubles the time. Reference counting still frees everything.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


__all__ = ["Decision", "decide", "gc_paused", "read_intent"]
