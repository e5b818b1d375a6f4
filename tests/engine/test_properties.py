"""Properties of evaluation on random programs and random facts; each test names its invariant."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from meshrules.dsl import ast
from meshrules.dsl.program import Program
from meshrules.engine import Derivation, Facts, Model, Strategy, evaluate, program_from_text
from tests.engine.oracle import Oracle
from tests.engine.programs import RandomProgram, random_facts, random_programs, to_facts

FactList = list[tuple[str, tuple[str, ...]]]


def as_sets(model: Model) -> dict[str, set[tuple[Any, ...]]]:
    return {name: set(model.rows(name)) for name in model.relations()}


def base_sets(facts: FactList) -> dict[str, set[tuple[Any, ...]]]:
    out: dict[str, set[tuple[Any, ...]]] = {}
    for rel, row in facts:
        out.setdefault(rel, set()).add(row)
    return out


@given(random_programs(), random_facts())
def test_seminaive_equals_naive_fixpoint(program: RandomProgram, facts: FactList) -> None:
    checked = program_from_text({"p.rules": program.text()})
    semi = evaluate(checked, to_facts(facts))
    naive = evaluate(checked, to_facts(facts), strategy=Strategy.NAIVE)
    assert as_sets(semi) == as_sets(naive)
    # And both equal the brute-force oracle, which shares no evaluation code with them.
    assert as_sets(semi) == Oracle(checked).model(base_sets(facts))


@given(random_programs(), random_facts(), st.randoms(use_true_random=False))
def test_rule_order_and_fact_order_do_not_change_the_model(program: RandomProgram, facts: FactList, rng: Any) -> None:
    checked = program_from_text({"p.rules": program.text()})
    rules = list(program.rules)
    rng.shuffle(rules)
    shuffled_facts = list(facts)
    rng.shuffle(shuffled_facts)
    reordered = program_from_text({"p.rules": program.text(tuple(rules))})
    assert as_sets(evaluate(checked, to_facts(facts))) == as_sets(evaluate(reordered, to_facts(shuffled_facts)))


class _Recheck(Oracle):
    """Matches a rule's positive atoms against one derivation's premises only; the rest against the model."""

    def __init__(self, program: Program, premises: set[tuple[str, tuple[Any, ...]]]) -> None:
        super().__init__(program)
        self.premises = premises
        self.plain = Oracle(program)

    def literal(
        self, literal: ast.Literal, env: dict[str, Any], model: dict[str, set[tuple[Any, ...]]], groups: list[str]
    ) -> Iterator[dict[str, Any]]:
        if isinstance(literal, ast.Atom) and literal.predicate not in self.builtins:
            restricted = {literal.predicate: {row for rel, row in self.premises if rel == literal.predicate}}
            yield from self.atom(literal, env, restricted)
        else:
            yield from self.plain.literal(literal, env, model, groups)


def recheck(derivation: Derivation, program: Program, model: dict[str, set[tuple[Any, ...]]], facts: Facts) -> None:
    """Every node holds; base nodes are given facts with their source; each step is an instance of its rule."""
    for node in derivation.walk():
        assert node.row in model[node.relation]
        if node.is_base:
            assert (node.relation, node.row) in facts
            assert node.source == facts.source(node.relation, node.row)
            continue
        rule = program.rule(node.rule)
        assert node.description == rule.description
        premises = {(p.relation, p.row) for p in node.premises}
        assert all(row in model[rel] for rel, row in premises)
        head_env: dict[str, Any] = {}
        for term, value in zip(rule.head.args, node.row, strict=True):
            if isinstance(term, ast.Constant):
                assert term.value == value
            elif term.name in head_env:
                assert head_env[term.name] == value
            else:
                head_env[term.name] = value
        checker = _Recheck(program, premises)
        outer = set(ast.term_variables(rule.head.args))
        assert any(True for _ in checker.solve(rule.body, head_env, model, outer)), (
            f"{node.fact} is not an instance of rule {rule.name} with premises {sorted(premises)}"
        )


@given(random_programs(), random_facts())
def test_every_provenance_tree_rechecks(program: RandomProgram, facts: FactList) -> None:
    checked = program_from_text({"p.rules": program.text()})
    given_facts = to_facts(facts)
    model = evaluate(checked, given_facts)
    sets = as_sets(model)
    for relation in model.relations():
        for row in model.rows(relation)[:10]:
            recheck(model.explain((relation, row)), checked, sets, given_facts)


@given(random_programs(monotone=True), random_facts(), random_facts())
def test_adding_facts_never_removes_a_conclusion(program: RandomProgram, facts: FactList, more: FactList) -> None:
    checked = program_from_text({"p.rules": program.text()})
    before = as_sets(evaluate(checked, to_facts(facts)))
    after = as_sets(evaluate(checked, to_facts(facts + more)))
    assert all(before[name] <= after[name] for name in before)


@given(random_programs(), random_facts(), random_facts(), st.data())
def test_incremental_update_equals_evaluation_from_scratch(
    program: RandomProgram, facts: FactList, more: FactList, data: st.DataObject
) -> None:
    checked = program_from_text({"p.rules": program.text()})
    removed = data.draw(st.lists(st.sampled_from(facts), unique=True)) if facts else []
    model = evaluate(checked, to_facts(facts))
    updated = model.update(added=to_facts(more), removed=to_facts(removed))
    expected_facts = [f for f in facts if f not in removed] + more
    assert as_sets(updated) == as_sets(evaluate(checked, to_facts(expected_facts)))
    # The old model is unchanged.
    assert as_sets(model) == as_sets(evaluate(checked, to_facts(facts)))
