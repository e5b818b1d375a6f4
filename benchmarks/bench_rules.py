"""The default rule set on a generated fleet: evaluation time, memory, naive ratio, re-evaluation after an edit.

Not part of the test suite. Run:

    python benchmarks/bench_rules.py              # L: 50 clusters, 10k workloads, 5k destinations, 2k policies
    python benchmarks/bench_rules.py --size M

The scenario is generated once (benchmarks/out/<size>-seed<seed>, reused when complete). Loading and
discovery are timed but are not the rules' cost. Reported:

- facts: extraction of the base facts from the service graph;
- evaluate: semi-naive evaluation of rules/ (the budget: ≤ 10 s and ≤ 2 GiB at L);
- intent: reading the derived relations into the `Intent`;
- naive: the same program evaluated naively, and the naive/semi-naive ratio;
- one AccessPolicy edit: re-deciding whole (facts + evaluate + intent) against incrementally
  (`Decision.update`: the policy's facts swapped with `Model.update`, only the changed parts of
  the intent read again), and a check that both agree;
- peak RSS of the process (loading and discovery included) and the fact counts.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from run import ensure_scenario  # noqa: E402

from meshrules.engine import Facts, Strategy, evaluate  # noqa: E402
from meshrules.engine.facts_from_graph import acceptance_ranks, extract_facts, policy_facts  # noqa: E402
from meshrules.engine.intent import Decision, decide, gc_paused, read_intent  # noqa: E402
from meshrules.engine.mesh_builtins import mesh_builtins  # noqa: E402
from meshrules.graph import build_graph  # noqa: E402
from meshrules.kube.scenario import load_scenario  # noqa: E402
from meshrules.model.common import IdentitySelector  # noqa: E402
from meshrules.model.intent import Intent  # noqa: E402
from meshrules.model.policy import AccessPolicy, Policy  # noqa: E402
from meshrules.pipeline import analyse  # noqa: E402
from meshrules.pipeline.rules import load_rules  # noqa: E402


def _timed(label: str, seconds: float, note: str = "") -> None:
    print(f"{label:<44} {seconds:7.2f} s  {note}".rstrip())


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _edited(policy: AccessPolicy) -> AccessPolicy:
    """The policy with one more allowed method and one more namespace of callers."""
    spec = policy.spec.model_copy(
        update={
            "allowed_methods": [*policy.spec.allowed_methods, "PATCH"],
            "source_selector": [*policy.spec.source_selector, IdentitySelector(namespaces=["ads"])],
        }
    )
    return policy.model_copy(update={"spec": spec})


def _own_facts(facts: Facts, ref: str) -> Facts:
    """The base facts whose first column is the policy ``ref`` (what its extraction wrote)."""
    out = Facts()
    for relation in facts.relations():
        for row, source in facts.rows(relation).items():
            if row and row[0] == ref:
                out.add(relation, row, source)
    return out


def _decisions(intent: Intent) -> tuple[Any, ...]:
    return (intent.federation, intent.traffic, intent.precedence, intent.access, intent.statuses, intent.findings)


def run(size: str, seed: int, out: Path) -> int:
    path = ensure_scenario(size, seed, out)
    started = time.perf_counter()
    analysis = analyse(load_scenario(path))
    _timed("load + discover + graph (not the rules)", time.perf_counter() - started)
    graph, scenario = analysis.graph, analysis.scenario
    registry = mesh_builtins()

    started = time.perf_counter()
    program = load_rules(builtins=registry)
    _timed(
        "load and check rules/",
        time.perf_counter() - started,
        f"{len(program.rules)} rules, {len(program.strata)} strata",
    )

    # The stages as `decide` runs them (with the cyclic GC paused, see `gc_paused`).
    with gc_paused():
        started = time.perf_counter()
        facts = extract_facts(graph, scenario)
        facts_s = time.perf_counter() - started
        started = time.perf_counter()
        model = evaluate(program, facts, builtins=registry)
        eval_s = time.perf_counter() - started
        started = time.perf_counter()
        intent = read_intent(model, graph, scenario)
        intent_s = time.perf_counter() - started
    _timed("facts from the graph", facts_s, f"{len(facts)} base facts")
    _timed("evaluate (semi-naive)", eval_s, f"{model.stats.derived_facts} derived facts, {model.stats.rounds} rounds")
    for stratum in sorted(model.stats.strata, key=lambda s: -s.seconds)[:5]:
        print(f"    {stratum.seconds:6.2f} s  {', '.join(stratum.relations)} (+{stratum.new_facts})")
    _timed("intent from the model", intent_s)
    _timed("decide = facts + evaluate + intent", facts_s + eval_s + intent_s)
    print(
        f"    {len(intent.federation)} federation edges, {len(intent.traffic)} traffic applications, "
        f"{len(intent.precedence)} precedences, {len(intent.access)} access rules, {len(intent.statuses)} status "
        f"errors, {len(intent.findings)} findings"
    )
    peak = _peak_mib()

    with gc_paused():
        started = time.perf_counter()
        naive = evaluate(program, facts, builtins=registry, strategy=Strategy.NAIVE)
        naive_s = time.perf_counter() - started
    assert naive.stats.derived_facts == model.stats.derived_facts
    _timed("evaluate (naive)", naive_s, f"naive / semi-naive = {naive_s / eval_s:.2f}")
    del naive

    _edit(analysis.graph.policies, graph, scenario, program, registry, Decision(intent, model, facts))

    counts = {name: model.count(name) for name in model.relations()}
    top = sorted(counts.items(), key=lambda kv: -kv[1])[:8]
    print("largest relations: " + ", ".join(f"{name} {n}" for name, n in top))
    print(f"peak RSS after the first decision {peak:.0f} MiB; at the end {_peak_mib():.0f} MiB")
    return 0


def _edit(
    policies: tuple[Policy, ...],
    graph: Any,
    scenario: Any,
    program: Any,
    registry: Any,
    decision: Decision,
) -> None:
    target = next(p for p in policies if isinstance(p, AccessPolicy))
    edited = _edited(target)
    new_policies = [edited if p.ref == target.ref else p for p in policies]
    started = time.perf_counter()
    new_graph = build_graph(graph.discovery, new_policies)
    _timed(f"one AccessPolicy edit ({target.ref}): graph", time.perf_counter() - started, "(upstream of the rules)")

    started = time.perf_counter()
    whole = decide(new_graph, program, scenario, registry)
    whole_s = time.perf_counter() - started
    _timed("  re-decide whole", whole_s)

    started = time.perf_counter()
    rank = acceptance_ranks(new_policies)[target.ref]
    added = policy_facts(new_graph, edited, rank, scenario)
    removed = _own_facts(decision.facts, target.ref)
    incremental = decision.update(new_graph, added=added, removed=removed, scenario=scenario)
    incremental_s = time.perf_counter() - started
    stats = incremental.model.stats
    _timed(
        "  re-decide incrementally (Decision.update)",
        incremental_s,
        f"whole / incremental = {whole_s / incremental_s:.1f}; {stats.reevaluated_strata} of "
        f"{len(program.strata)} strata re-evaluated in {stats.seconds:.2f} s",
    )
    assert _decisions(whole.intent) == _decisions(incremental.intent), "incremental and whole disagree"
    assert whole.model.count("access_rule") == incremental.model.count("access_rule")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark at one size."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="L", choices=["S", "M", "L"])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=HERE / "out")
    args = parser.parse_args(argv)
    return run(args.size, args.seed, args.out)


if __name__ == "__main__":
    raise SystemExit(main())
