"""Evaluation by example: recursion, negation, aggregates, facts in and errors out."""

from __future__ import annotations

import pytest

from meshrules.dsl.diagnostics import EVALUATION_FAILED, FACT_MISMATCH
from meshrules.engine import Facts, Strategy, evaluate, program_from_text
from meshrules.errors import InputError, RuleError

POLICIES = """
relation policy(p: Policy, accepted: str)
relation sets(p: Policy, destination: Destination, field: str)
relation rank(p: Policy, destination: Destination, field: str, rank: int)
relation winner(destination: Destination, field: str, p: Policy)
relation earliest(destination: Destination, accepted: str)
relation contenders(destination: Destination, field: str, n: int)
relation weights(destination: Destination, total: int)
relation weight(p: Policy, w: int)
relation all_fields(destination: Destination, fields: any)
relation quiet(destination: Destination)
relation destination(d: Destination)

rule acceptance-rank "policies setting a field are ranked by acceptance: 0 is the earliest":
  rank(P, D, F, N) :-
    sets(P, D, F),
    policy(P, T),
    N = count : { sets(P2, D, F), policy(P2, T2), T2 < T }.
rule first-wins "the earliest accepted policy wins a field": winner(D, F, P) :- rank(P, D, F, 0).
rule earliest-acceptance "the earliest acceptance among a destination's policies":
  earliest(D, T) :- destination(D), T = min A : { sets(P, D, _), policy(P, A) }.
rule contenders-per-field "how many policies set a field":
  contenders(D, F, N) :- sets(_, D, F), N = count P : { sets(P, D, F) }.
rule total-weight "the sum of weights of a destination's policies":
  weights(D, W) :- destination(D), W = sum X : { sets(P, D, _), weight(P, X) }.
rule fields-set "the set of fields set on a destination":
  all_fields(D, S) :- destination(D), S = set F : { sets(_, D, F) }.
rule no-policy "a destination no policy touches":
  quiet(D) :- destination(D), N = count : { sets(_, D, _) }, N = 0.
"""


def policy_facts() -> Facts:
    facts = Facts()
    for p, t in [("tp-a", "2026-01-01"), ("tp-b", "2026-01-02"), ("tp-c", "2026-01-03")]:
        facts.add("policy", (p, t), source=f"policies/{p}.yaml:3")
    for p, d, f in [
        ("tp-b", "reviews", "timeout"),
        ("tp-a", "reviews", "timeout"),
        ("tp-c", "reviews", "retries"),
        ("tp-c", "reviews", "timeout"),
        ("tp-b", "ratings", "retries"),
    ]:
        facts.add("sets", (p, d, f))
    for p, w in [("tp-a", 10), ("tp-b", 20), ("tp-c", 70)]:
        facts.add("weight", (p, w))
    for d in ("reviews", "ratings", "details"):
        facts.add("destination", (d,), source=f"cluster-1/Service/bookinfo/{d}")
    return facts


@pytest.mark.parametrize("strategy", list(Strategy))
def test_policies_ranked_by_acceptance(strategy: Strategy) -> None:
    model = evaluate(program_from_text({"p.rules": POLICIES}), policy_facts(), strategy=strategy)
    assert model.rows("rank") == [
        ("tp-a", "reviews", "timeout", 0),
        ("tp-b", "ratings", "retries", 0),
        ("tp-b", "reviews", "timeout", 1),
        ("tp-c", "reviews", "retries", 0),
        ("tp-c", "reviews", "timeout", 2),
    ]
    assert model.rows("winner") == [
        ("ratings", "retries", "tp-b"),
        ("reviews", "retries", "tp-c"),
        ("reviews", "timeout", "tp-a"),
    ]


def test_aggregates() -> None:
    model = evaluate(program_from_text({"p.rules": POLICIES}), policy_facts())
    # min over an empty group has no value: `details` gets no `earliest` fact.
    assert model.rows("earliest") == [("ratings", "2026-01-02"), ("reviews", "2026-01-01")]
    assert model.rows("contenders") == [("ratings", "retries", 1), ("reviews", "retries", 1), ("reviews", "timeout", 3)]
    # sum over distinct bindings of the named variables: `_` tells none apart, so tp-c, which
    # sets two fields on reviews, counts once.
    assert model.rows("weights") == [("details", 0), ("ratings", 20), ("reviews", 100)]
    assert dict(model.rows("all_fields")) == {
        "details": frozenset(),
        "ratings": frozenset({"retries"}),
        "reviews": frozenset({"timeout", "retries"}),
    }
    assert model.rows("quiet") == [("details",)]


def test_transitive_closure_and_negation() -> None:
    program = program_from_text(
        {
            "g.rules": """
relation edge(a: Node, b: Node)
relation reach(a: Node, b: Node)
relation node(n: Node)
relation cut_off(a: Node, b: Node)
rule step "an edge reaches": reach(A, B) :- edge(A, B).
rule hop "reach then an edge reaches": reach(A, C) :- reach(A, B), edge(B, C).
rule source "a node starts an edge": node(A) :- edge(A, _).
rule target "a node ends an edge": node(B) :- edge(_, B).
rule cut "no path": cut_off(A, B) :- node(A), node(B), A != B, not reach(A, B).
"""
        }
    )
    facts = Facts.from_rows({"edge": [(str(i), str(i + 1)) for i in range(30)]})
    semi = evaluate(program, facts)
    naive = evaluate(program, facts, strategy="naive")
    assert semi.count("reach") == 30 * 31 // 2
    assert semi.rows("reach") == naive.rows("reach")
    assert semi.count("cut_off") == 31 * 30 - 30 * 31 // 2
    # One round per path length and one that finds nothing new, either way; semi-naive rounds
    # only join the paths new in the previous round.
    assert [s.rounds for s in semi.stats.strata if s.relations == ("reach",)] == [31]
    assert [s.rounds for s in naive.stats.strata if s.relations == ("reach",)] == [31]


def test_bodies_too_deep_to_compile_still_evaluate() -> None:
    body = ", ".join(f"link(X{i}, X{i + 1})" for i in range(22))
    program = program_from_text(
        {
            "d.rules": "relation link(a: str, b: str)\nrelation far(a: str, b: str)\n"
            f'rule far-link "twenty-two links": far(X0, X22) :- {body}.\n'
        }
    )
    model = evaluate(program, Facts.from_rows({"link": [(f"n{i}", f"n{i + 1}") for i in range(25)]}))
    assert model.rows("far") == [("n0", "n22"), ("n1", "n23"), ("n2", "n24"), ("n3", "n25")]
    assert model.explain(("far", ("n0", "n22"))).rule == "far-link"


def test_constants_and_repeated_variables_in_atoms() -> None:
    program = program_from_text(
        {
            "c.rules": """
relation pair(a: str, b: str)
relation self_loop(a: str)
relation to_b(a: str)
rule loops "a pair of a node with itself": self_loop(A) :- pair(A, A).
rule into-b "a pair ending in b": to_b(A) :- pair(A, "b").
"""
        }
    )
    model = evaluate(program, Facts.from_rows({"pair": [("a", "a"), ("a", "b"), ("c", "b"), ("c", "d")]}))
    assert model.rows("self_loop") == [("a",)]
    assert model.rows("to_b") == [("a",), ("c",)]


def test_facts_of_undeclared_relations_are_ignored_and_reported() -> None:
    program = program_from_text({"p.rules": POLICIES})
    facts = policy_facts()
    facts.add("mesh", ("istiod-istio-system-cluster-1",))
    model = evaluate(program, facts)
    assert model.stats.ignored_relations == ("mesh",)


def test_fact_with_the_wrong_number_of_values() -> None:
    facts = Facts.from_rows({"destination": [("reviews", "extra")]})
    with pytest.raises(InputError) as caught:
        evaluate(program_from_text({"p.rules": POLICIES}), facts)
    assert caught.value.code == FACT_MISMATCH
    assert caught.value.message == "a fact of `destination` has 2 values but the relation has 1 columns"


def test_fact_with_a_value_of_the_wrong_type() -> None:
    facts = Facts.from_rows({"weight": [("tp-a", "ten")]})
    with pytest.raises(InputError) as caught:
        evaluate(program_from_text({"p.rules": POLICIES}), facts)
    assert caught.value.message == "a fact of `weight` has `'ten'` in column `w`, which holds int"


def test_a_failing_comparison_is_reported_with_its_rule() -> None:
    program = program_from_text(
        {
            "p.rules": "relation v(x: any)\nrelation small(x: any)\n"
            'rule small-values "below ten": small(X) :- v(X), X < 10.\n'
        }
    )
    with pytest.raises(RuleError) as caught:
        evaluate(program, Facts.from_rows({"v": [("text",)]}))
    assert caught.value.code == EVALUATION_FAILED
    assert caught.value.message.startswith("rule `small-values` failed while evaluating: TypeError")
    assert str(caught.value.location) == "p.rules:3:1"


def test_update_reevaluates_only_affected_strata() -> None:
    program = program_from_text({"p.rules": POLICIES})
    model = evaluate(program, policy_facts())
    updated = model.update(
        added=Facts.from_rows({"weight": [("tp-a", 15)]}), removed=Facts.from_rows({"weight": [("tp-a", 10)]})
    )
    assert ("reviews", 105) in updated.rows("weights")
    assert updated.stats.reevaluated_strata == 1
    assert model.rows("weights") == [("details", 0), ("ratings", 20), ("reviews", 100)]
    assert updated.rows("rank") == model.rows("rank")
