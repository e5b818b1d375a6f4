"""`Decision`: explaining intent items, and updating after an edit agrees with deciding again."""

from __future__ import annotations

from meshrules.engine.facts import Facts
from meshrules.engine.facts_from_graph import acceptance_ranks, policy_facts
from meshrules.graph import build_graph
from meshrules.kube.scenario import load_scenario
from meshrules.model.policy import AccessPolicy
from meshrules.pipeline import Analysis, analyse
from meshrules.pipeline.rules import decide, decide_with, load_rules
from meshrules.resources import bundled_scenario


def test_an_incremental_update_after_an_access_policy_edit_equals_deciding_again() -> None:
    analysis = analyse(load_scenario(bundled_scenario("bookinfo-multicluster")))
    before = decide(analysis)
    target = next(p for p in analysis.scenario.policies if p.ref == "AccessPolicy bookinfo/reviews-reads-ratings")
    assert isinstance(target, AccessPolicy)
    edited = target.model_copy(update={"spec": target.spec.model_copy(update={"allowed_methods": ["GET", "HEAD"]})})
    policies = [edited if p.ref == target.ref else p for p in analysis.scenario.policies]
    graph = build_graph(analysis.discovery, policies)

    removed = Facts()
    for relation, row in before.facts:
        if row and row[0] == target.ref:
            removed.add(relation, row)
    added = policy_facts(graph, edited, acceptance_ranks(policies)[target.ref], analysis.scenario)
    updated = before.update(graph, added=added, removed=removed, scenario=analysis.scenario)

    again = decide_with(Analysis(analysis.scenario, analysis.discovery, graph), load_rules())
    assert updated.intent == again.intent
    (rule,) = [r for r in updated.intent.access if r.policy == target.ref]
    assert rule.methods == ("GET", "HEAD")
    assert updated.intent.federation is before.intent.federation  # untouched parts are shared, not re-read
    assert updated.model.stats.reevaluated_strata < len(updated.model.program.strata)
