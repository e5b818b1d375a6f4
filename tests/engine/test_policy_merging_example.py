"""A worked example in the shape of spec §3.2: policy merging by specificity, conflicts and acceptance.

It is not the default rule set (that lives in ``rules/``); it shows the language expresses the
decision: the more specific policy wins a field, equally specific ones conflict (the earlier
accepted wins), overlapping ones fall back to acceptance order.
"""

from __future__ import annotations

from meshrules.engine import Facts, evaluate, program_from_text

MERGING = """
relation applies(p: TrafficPolicy, d: Destination)
relation sets(p: TrafficPolicy, field: str)
relation source_selector(p: TrafficPolicy, selector: any)
relation accepted(p: TrafficPolicy, order: int)
relation contends(p: TrafficPolicy, q: TrafficPolicy, d: Destination, field: str)
relation more_specific(p: TrafficPolicy, q: TrafficPolicy)
relation same_scope(p: TrafficPolicy, q: TrafficPolicy)
relation beaten(p: TrafficPolicy, d: Destination, field: str)
relation conflict(later: TrafficPolicy, winner: TrafficPolicy, d: Destination, field: str)
relation effective(p: TrafficPolicy, d: Destination, field: str)

rule contenders "two policies set the same field on a destination":
  contends(P, Q, D, F) :- applies(P, D), applies(Q, D), P != Q, sets(P, F), sets(Q, F).
rule strictly-narrower "a policy selects a strict subset of another's sources":
  more_specific(P, Q) :-
    source_selector(P, SP), source_selector(Q, SQ), P != Q,
    selector_within(SP, SQ), not selector_within(SQ, SP).
rule equally-narrow "two policies select the same sources":
  same_scope(P, Q) :-
    source_selector(P, SP), source_selector(Q, SQ), P != Q,
    selector_within(SP, SQ), selector_within(SQ, SP).
rule narrower-wins "the more specific policy wins a field":
  beaten(P, D, F) :- contends(P, Q, D, F), more_specific(Q, P).
rule earlier-wins "otherwise the earlier accepted policy wins a field":
  beaten(P, D, F) :-
    contends(P, Q, D, F), not more_specific(P, Q), not more_specific(Q, P),
    accepted(P, OP), accepted(Q, OQ), OQ < OP.
rule equal-scope-conflicts "equally specific policies with one field conflict; the later one loses":
  conflict(P, Q, D, F) :- contends(P, Q, D, F), same_scope(P, Q), accepted(P, OP), accepted(Q, OQ), OQ < OP.
rule effective-fields "a field a policy sets and does not lose":
  effective(P, D, F) :- applies(P, D), sets(P, F), not beaten(P, D, F).
"""


def test_policy_merging_example() -> None:
    facts = Facts()
    policies = {
        "all-timeout": ({}, ["requestTimeout", "trafficShift"], 1),
        "shop-timeout": ({"namespaces": ["shop"]}, ["requestTimeout"], 2),
        "shop-retries": ({"namespaces": ["shop"]}, ["retries"], 3),
        "shop-retries-again": ({"namespaces": ["shop"]}, ["retries"], 4),
    }
    for name, (selector, fields, order) in policies.items():
        facts.add("source_selector", (name, selector), source=f"policies/{name}.yaml:5")
        facts.add("accepted", (name, order))
        facts.add("applies", (name, "reviews"))
        for field in fields:
            facts.add("sets", (name, field))
    model = evaluate(program_from_text({"merging.rules": MERGING}), facts)
    assert model.rows("effective") == [
        ("all-timeout", "reviews", "trafficShift"),
        ("shop-retries", "reviews", "retries"),
        ("shop-timeout", "reviews", "requestTimeout"),
    ]
    assert model.rows("conflict") == [("shop-retries-again", "shop-retries", "reviews", "retries")]
    why = model.explain('beaten("all-timeout", "reviews", "requestTimeout")')
    assert why.rule == "narrower-wins"
    assert "policies/shop-timeout.yaml:5" in why.sources()
