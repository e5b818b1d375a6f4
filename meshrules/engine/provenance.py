"""Why a fact holds: one derivation per fact, as a tree from the rule down to base facts and their sources.

Evaluation stamps each derived fact with the round (height) and rule that first produced it
(``store.py``). ``explain`` turns a stamp back into a derivation: it matches the rule's body
with the head bound to the fact, accepting only premises of a lower height, so the first match
is a derivation the evaluator could have made and the tree is finite. The premises are explained
the same way, down to base facts, whose *source* (``policies/access.yaml:12``,
``cluster-1/Deployment/bookinfo/productpage-v1``) names the user object behind them.

A ``Derivation`` is data: render it as text (``render``), as JSON (``to_json``), or walk it.
Shared premises are shared nodes, so a tree is a DAG in memory and each node is rendered once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from meshrules.dsl import ast
from meshrules.dsl.program import Program
from meshrules.engine.solve import Solver, unify
from meshrules.engine.store import BASE, RelationStore
from meshrules.engine.values import Row, show_fact, to_json
from meshrules.errors import InternalError, Location


@dataclass(frozen=True, slots=True)
class Derivation:
    """How one fact was concluded.

    A base fact has no ``rule`` and may have a ``source``. A derived fact names its ``rule``
    (with the rule's one-line ``description`` and ``location``), the ``premises`` (derivations
    of the facts the rule's body matched, aggregate groups included) and the ``conditions``
    that held (negations, comparisons, built-ins and aggregate values, with values filled in).
    """

    relation: str
    row: Row
    rule: str = ""
    description: str = ""
    location: Location | None = None
    source: str | None = None
    premises: tuple[Derivation, ...] = ()
    conditions: tuple[str, ...] = ()

    @property
    def is_base(self) -> bool:
        """Whether this is a base fact (given, not derived)."""
        return not self.rule

    @property
    def fact(self) -> str:
        """The fact as rule text: ``federated("reviews-bookinfo-cluster-2", "istiod-...")``."""
        return show_fact(self.relation, self.row)

    def walk(self) -> Iterator[Derivation]:
        """Every distinct node, this one first, depth first."""
        seen: set[int] = set()
        stack: list[Derivation] = [self]
        while stack:
            node = stack.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            yield node
            stack.extend(reversed(node.premises))

    def sources(self) -> list[str]:
        """The sources of every base fact the derivation rests on, sorted."""
        return sorted({n.source for n in self.walk() if n.is_base and n.source})

    def rules(self) -> list[str]:
        """Names of the rules used, sorted."""
        return sorted({n.rule for n in self.walk() if n.rule})

    def render(self) -> str:
        """The derivation as an indented tree; a premise already shown is referred to, not repeated."""
        lines: list[str] = []
        shown: set[int] = set()
        stack: list[tuple[Derivation, str, str]] = [(self, "", "")]
        while stack:
            node, first_prefix, prefix = stack.pop()
            if node.is_base:
                origin = f"  [{node.source}]" if node.source else "  [base fact]"
                lines.append(f"{first_prefix}{node.fact}{origin}")
                continue
            if id(node) in shown:
                lines.append(f"{first_prefix}{node.fact}  (derived above)")
                continue
            shown.add(id(node))
            where = f" ({node.location})" if node.location is not None and str(node.location) else ""
            lines.append(f"{first_prefix}{node.fact}")
            lines.append(f"{prefix}  by rule {node.rule}: {node.description}{where}")
            for condition in node.conditions:
                lines.append(f"{prefix}  where {condition}")
            children: list[tuple[Derivation, str, str]] = []
            for i, premise in enumerate(node.premises):
                last = i == len(node.premises) - 1
                children.append(
                    (premise, prefix + ("  └─ " if last else "  ├─ "), prefix + ("     " if last else "  │  "))
                )
            stack.extend(reversed(children))
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready data: fact, rule, description, location, source, conditions, premises."""
        data: dict[str, Any] = {
            "fact": self.fact,
            "relation": self.relation,
            "values": [to_json(v) for v in self.row],
        }
        if self.is_base:
            data["source"] = self.source
            return data
        data["rule"] = self.rule
        data["description"] = self.description
        data["location"] = str(self.location) if self.location is not None else None
        data["conditions"] = list(self.conditions)
        data["premises"] = [p.to_json() for p in self.premises]
        return data


def explain(
    program: Program,
    stores: Mapping[str, RelationStore],
    solver: Solver,
    sources: Mapping[str, Mapping[Row, str]],
    relation: str,
    row: Row,
) -> Derivation:
    """The derivation of a fact of the model (``KeyError`` when the fact does not hold)."""
    if row not in stores[relation].facts:
        raise KeyError(show_fact(relation, row))
    done: dict[tuple[str, Row], Derivation] = {}
    expanded: dict[tuple[str, Row], tuple[int, tuple[tuple[str, Row], ...], tuple[str, ...]]] = {}
    # Iterative post-order: long recursive chains (a path of a thousand hops) need no deep stack.
    stack: list[tuple[str, Row]] = [(relation, row)]
    while stack:
        fact = stack[-1]
        if fact in done:
            stack.pop()
            continue
        name, values = fact
        stamp = stores[name].facts[values]
        if stamp == BASE:
            done[fact] = Derivation(name, values, source=sources.get(name, {}).get(values))
            stack.pop()
            continue
        if fact not in expanded:
            expanded[fact] = _one_derivation(program, solver, name, values, stamp)
            stack.extend(p for p in expanded[fact][1] if p not in done)
            continue
        rule_index, premises, conditions = expanded[fact]
        rule = program.rules[rule_index]
        done[fact] = Derivation(
            name,
            values,
            rule=rule.name,
            description=rule.description,
            location=rule.span.location() if rule.span.file else None,
            premises=tuple(done[p] for p in premises),
            conditions=conditions,
        )
        stack.pop()
    return done[(relation, row)]


def _one_derivation(
    program: Program, solver: Solver, relation: str, row: Row, stamp: tuple[int, int]
) -> tuple[int, tuple[tuple[str, Row], ...], tuple[str, ...]]:
    height, rule_index = stamp
    rule = program.rules[rule_index]
    env = unify(rule.head.args, row, {})
    if env is not None:
        head_vars = set(ast.term_variables(rule.head.args))
        for solution in solver.solve(rule.body, env, below=height, outer=head_vars):
            return rule_index, solution.premises, solution.conditions
    raise InternalError(
        f"no derivation of {show_fact(relation, row)} by rule `{rule.name}` below height {height}",
        hint="the evaluator and the explainer disagree; this is a bug",
    )
