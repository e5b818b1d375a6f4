"""Engine benchmark: a synthetic mesh-shaped program at scale, semi-naive against naive.

Not part of the test suite. Run:

    python benchmarks/bench_engine.py            # L: 10k workloads, 5k destinations, 2k policies
    python benchmarks/bench_engine.py --size M   # a tenth of that

The program has the shapes the default rules have — federation by VirtualMesh membership and
selectors, policy applicability by label selectors, acceptance-order ranking by aggregate,
conflict detection by negation, authorization identities × destinations — plus a recursive
relation (ancestry in a namespace tree, transitive) so that the semi-naive/naive ratio measures
the fixpoint algorithm. It prints the time of each, their ratio, the fact counts, the slowest
strata, and the time to re-evaluate after one AccessPolicy edit, whole and incrementally.
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from meshrules.engine import Facts, Model, Strategy, evaluate, program_from_text

PROGRAM = r"""
relation mesh(mesh: Mesh, type: str)
relation virtual_mesh_member(vm: VirtualMesh, mesh: Mesh)
relation federation_namespace(vm: VirtualMesh, namespace: str)
relation destination(d: Destination, mesh: Mesh, namespace: str, labels: any)
relation workload(w: Workload, mesh: Mesh, namespace: str, labels: any, identity: Identity)
relation namespace_parent(child: str, parent: str)
relation namespace_within(child: str, ancestor: str)
relation federated(d: Destination, mesh: Mesh)
relation traffic_policy(p: Policy, accepted: str)
relation policy_destination_selector(p: Policy, namespace: str, labels: any)
relation policy_source_namespace(p: Policy, namespace: str)
relation policy_sets(p: Policy, field: str, value: str)
relation applies(p: Policy, d: Destination)
relation sets_field(p: Policy, d: Destination, field: str, value: str)
relation acceptance_rank(p: Policy, d: Destination, field: str, rank: int)
relation field_winner(d: Destination, field: str, p: Policy)
relation conflict(loser: Policy, winner: Policy, d: Destination, field: str)
relation unopposed(p: Policy, d: Destination, field: str)
relation access_policy(a: AccessPolicy)
relation access_source_namespace(a: AccessPolicy, namespace: str)
relation access_destination_namespace(a: AccessPolicy, namespace: str)
relation access_path(a: AccessPolicy, path: str)
relation allowed_identity(d: Destination, identity: Identity, path: str)
relation destination_with_access(d: Destination)
relation open_destination(d: Destination)
relation selects_nothing(p: Policy)
relation calls(caller: Destination, callee: Destination)
relation reaches(caller: Destination, callee: Destination)
relation reaches_open(caller: Destination, callee: Destination)

rule namespace-parent-within "a namespace is within its parent":
  namespace_within(C, P) :- namespace_parent(C, P).
rule namespace-within-transitive "within is transitive":
  namespace_within(C, A) :- namespace_within(C, P), namespace_parent(P, A).

rule federate "a destination is visible in every other member mesh of its VirtualMesh in a selected namespace":
  federated(D, M) :-
    destination(D, Home, NS, _),
    virtual_mesh_member(VM, Home),
    federation_namespace(VM, NS),
    virtual_mesh_member(VM, M),
    M != Home.

rule policy-applies "a policy applies to the destinations its selector matches":
  applies(P, D) :-
    policy_destination_selector(P, NS, Selector),
    destination(D, _, NS, Labels),
    labels_match(Selector, Labels).

rule policy-sets-field "an applicable policy sets its fields on the destination":
  sets_field(P, D, F, V) :- applies(P, D), policy_sets(P, F, V).

rule acceptance-rank "policies setting a field on a destination are ranked by acceptance":
  acceptance_rank(P, D, F, N) :-
    sets_field(P, D, F, _),
    traffic_policy(P, T),
    N = count : { sets_field(P2, D, F, _), traffic_policy(P2, T2), T2 < T }.

rule first-accepted-wins "the earliest accepted policy wins a field":
  field_winner(D, F, P) :- acceptance_rank(P, D, F, 0).

rule later-conflicts "a later policy setting another value conflicts":
  conflict(P, W, D, F) :-
    field_winner(D, F, W), sets_field(P, D, F, V), sets_field(W, D, F, V2), V != V2.

rule unopposed-field "a field no other policy contests":
  unopposed(P, D, F) :- sets_field(P, D, F, _), not conflict(P, _, D, F), not conflict(_, P, D, F).

rule selects-nothing "a policy that applies nowhere":
  selects_nothing(P) :- traffic_policy(P, _), not applies(P, _).

rule access-allows "an access policy allows identities of its source namespaces (and those within)":
  allowed_identity(D, I, Path) :-
    access_destination_namespace(A, DNS),
    destination(D, _, DNS, _),
    access_source_namespace(A, SNS),
    namespace_within(WNS, SNS),
    workload(_, _, WNS, _, I),
    access_path(A, Path).

rule destination-with-access "a destination some access policy selects":
  destination_with_access(D) :- access_destination_namespace(_, NS), destination(D, _, NS, _).

rule open-destination "a destination no access policy selects":
  open_destination(D) :- destination(D, _, _, _), not destination_with_access(D).

rule calls-reach "a destination reaches what it calls":
  reaches(A, B) :- calls(A, B).
rule reach-transitive "and what those reach":
  reaches(A, C) :- reaches(A, B), calls(B, C).
rule reaches-open "a destination reaches an open destination":
  reaches_open(A, B) :- reaches(A, B), open_destination(B).
"""

SIZES = {
    "S": {"workloads": 300, "destinations": 150, "policies": 60, "access": 30, "namespaces": 40},
    "M": {"workloads": 1000, "destinations": 500, "policies": 200, "access": 100, "namespaces": 120},
    "L": {"workloads": 10000, "destinations": 5000, "policies": 2000, "access": 1000, "namespaces": 1000},
}


# Destinations per call chain: the depth of the recursive relation, and so the number of rounds.
CHAIN = 50


def synthetic_facts(size: str, seed: int = 7) -> Facts:
    """Base facts shaped like a multi-cluster mesh of the given size."""
    n = SIZES[size]
    rng = random.Random(seed)
    facts = Facts()
    meshes = [f"istiod-istio-system-cluster-{i}" for i in range(1, 11)]
    for m in meshes:
        facts.add("mesh", (m, "istio"))
    for vm, members in (("vm-a", meshes[:5]), ("vm-b", meshes[5:])):
        for m in members:
            facts.add("virtual_mesh_member", (vm, m), source=f"policies/{vm}.yaml:8")
    namespaces = [f"ns-{i}" for i in range(n["namespaces"])]
    for i, ns in enumerate(namespaces[1:], start=1):
        facts.add("namespace_parent", (ns, namespaces[(i - 1) // 3]))
    for vm in ("vm-a", "vm-b"):
        for ns in rng.sample(namespaces, len(namespaces) // 2):
            facts.add("federation_namespace", (vm, ns))
    apps = [f"app-{i}" for i in range(200)]
    for i in range(n["destinations"]):
        mesh = meshes[i % len(meshes)]
        ns = namespaces[i % len(namespaces)]
        labels = {"app": apps[i % len(apps)], "tier": rng.choice(["front", "back", "data"])}
        facts.add("destination", (f"svc-{i}-{ns}", mesh, ns, labels), source=f"{mesh}/Service/{ns}/svc-{i}")
    # Call chains of CHAIN destinations each (plus random forward calls): a deep transitive closure.
    for i in range(n["destinations"]):
        group_end = (i // CHAIN + 1) * CHAIN
        if i + 1 < group_end:
            facts.add(
                "calls",
                (f"svc-{i}-{namespaces[i % len(namespaces)]}", f"svc-{i + 1}-{namespaces[(i + 1) % len(namespaces)]}"),
            )
        j = i + rng.randrange(2, 10)
        if j < min(group_end, n["destinations"]):
            facts.add(
                "calls", (f"svc-{i}-{namespaces[i % len(namespaces)]}", f"svc-{j}-{namespaces[j % len(namespaces)]}")
            )
    for i in range(n["workloads"]):
        mesh = meshes[i % len(meshes)]
        ns = namespaces[i % len(namespaces)]
        labels = {"app": apps[i % len(apps)], "version": f"v{i % 3}"}
        identity = f"spiffe://cluster.local/ns/{ns}/sa/sa-{i % 50}"
        facts.add("workload", (f"wl-{i}", mesh, ns, labels, identity), source=f"{mesh}/Deployment/{ns}/wl-{i}")
    fields = ["requestTimeout", "retries", "trafficShift", "faultInjection"]
    for i in range(n["policies"]):
        p = f"tp-{i}"
        facts.add(
            "traffic_policy",
            (p, f"2026-01-{1 + i % 28:02d}T{i % 24:02d}:00:{i % 60:02d}Z"),
            source=f"policies/tp.yaml:{i}",
        )
        ns = namespaces[rng.randrange(len(namespaces))]
        facts.add("policy_destination_selector", (p, ns, {"app": apps[rng.randrange(len(apps))]} if i % 4 else {}))
        for field in rng.sample(fields, 2):
            facts.add("policy_sets", (p, field, f"value-{rng.randrange(3)}"))
    for i in range(n["access"]):
        a = f"ap-{i}"
        facts.add("access_policy", (a,), source=f"policies/access.yaml:{i}")
        facts.add("access_destination_namespace", (a, namespaces[rng.randrange(len(namespaces))]))
        facts.add("access_source_namespace", (a, namespaces[rng.randrange(len(namespaces))]))
        facts.add("access_path", (a, f"/api/{i % 7}/*"))
    return facts


def timed(label: str, fn: object) -> tuple[float, Model]:
    started = time.perf_counter()
    result = fn()  # type: ignore[operator]
    seconds = time.perf_counter() - started
    print(f"{label:<42} {seconds:8.2f} s")
    return seconds, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(SIZES), default="L")
    parser.add_argument("--skip-naive", action="store_true", help="time only the semi-naive evaluation")
    args = parser.parse_args()

    program = program_from_text({"bench.rules": PROGRAM})
    facts = synthetic_facts(args.size)
    print(f"size {args.size}: {len(facts)} base facts")
    semi_s, model = timed("semi-naive evaluation", lambda: evaluate(program, facts))
    print(f"  derived facts: {model.stats.derived_facts}, rounds: {model.stats.rounds}")
    for stratum in sorted(model.stats.strata, key=lambda s: -s.seconds)[:5]:
        print(
            f"  {stratum.seconds:6.2f} s  {','.join(stratum.relations)} ({stratum.rounds} rounds, +{stratum.new_facts})"
        )
    if not args.skip_naive:
        naive_s, naive = timed("naive evaluation", lambda: evaluate(program, facts, strategy=Strategy.NAIVE))
        assert all(model.rows(r) == naive.rows(r) for r in model.relations()), "naive and semi-naive disagree"
        print(f"naive / semi-naive ratio                   {naive_s / semi_s:8.2f}")

    edited = facts.copy()
    victim = ("access_path", ("ap-0", "/api/0/*"))
    edited.discard(*victim)
    edited.add("access_path", ("ap-0", "/api/edited/*"))
    whole_s, whole = timed("re-evaluate after one AccessPolicy edit", lambda: evaluate(program, edited))
    removed = Facts.from_rows({victim[0]: [victim[1]]})
    added = Facts.from_rows({"access_path": [("ap-0", "/api/edited/*")]})
    inc_s, updated = timed("  incrementally (Model.update)", lambda: model.update(added=added, removed=removed))
    assert all(whole.rows(r) == updated.rows(r) for r in whole.relations()), "incremental and whole disagree"
    print(f"  whole / incremental ratio                  {whole_s / inc_s:8.2f}")
    print(f"  strata re-evaluated: {updated.stats.reevaluated_strata} of {len(program.strata)}")

    started = time.perf_counter()
    fact = next(iter(model.rows("conflict")), None)
    if fact is not None:
        derivation = model.explain(("conflict", fact))
        print(
            f"explain one conflict ({len(list(derivation.walk()))} nodes)       {time.perf_counter() - started:8.3f} s"
        )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS                                    {rss:8.0f} MiB")


if __name__ == "__main__":
    main()
