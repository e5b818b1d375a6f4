"""`meshrules demo`: the main job on the bundled scenario, for a first look."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from meshrules.cli.app import app, handles_errors
from meshrules.cli.discover import print_discovery
from meshrules.cli.output import console, print_table
from meshrules.cli.run import run_pipeline
from meshrules.cli.test import print_scenario_tests
from meshrules.cli.trust import print_trust_report, scenario_trust_status
from meshrules.cli.why import print_verdict
from meshrules.pipeline.query import simulate, why
from meshrules.resources import bundled_scenario
from meshrules.sim.why import Query

# A few questions a platform engineer asks of the bundled scenario: one allowed across clusters,
# one denied by enforcement, one denied with a verified nearest miss.
DEMO_QUERIES = (
    Query(
        "cluster-1/bookinfo/productpage-v1",
        "reviews.bookinfo.svc.cluster.local",
        9080,
        "GET",
        "/reviews/0",
        (("end-user", "jason"),),
    ),
    Query("cluster-1/bookinfo/productpage-v1", "cluster-2/bookinfo/ratings", 9080, "GET", "/ratings/0"),
    Query("cluster-2/bookinfo/reviews-v2", "cluster-2/bookinfo/ratings", 9080, "POST", "/ratings/0"),
)


@app.command()
@handles_errors
def demo() -> None:
    """Run meshrules on the bundled three-cluster example (bookinfo on Istio, emojivoto on Linkerd)."""
    path = bundled_scenario("bookinfo-multicluster")
    out = console()
    out.print(f"[bold]meshrules demo[/bold] — scenario {path}\n")
    run = run_pipeline(path)
    analysis, decision, tr = run.analysis, run.decision, run.translation

    out.print("[bold]1. Discovery[/bold]  (meshrules discover <scenario>)")
    print_discovery(analysis.discovery)

    out.print("\n[bold]2. Decisions of the rule set[/bold]  (meshrules rules eval <scenario> --query ...)")
    intent = decision.intent
    print_table(
        "Federation",
        ["DESTINATION", "VISIBLE IN MESH", "AS HOST"],
        [(e.destination, e.mesh, e.host) for e in sorted(intent.federation, key=lambda e: (e.destination, e.mesh))],
    )
    print_table(
        "Access (AccessPolicy → destination)",
        ["POLICY", "DESTINATION", "METHODS", "PATHS", "PORTS"],
        [
            (
                a.policy,
                a.destination,
                ",".join(a.methods) or "*",
                ",".join(a.paths) or "*",
                ",".join(map(str, a.ports)) or "*",
            )
            for a in sorted(intent.access, key=lambda a: (a.policy, a.destination))
        ],
    )

    out.print("\n[bold]3. Translate[/bold]  (meshrules translate <scenario> --out DIR)")
    print_table(
        "Emitted objects",
        ["CLUSTER", "OBJECTS"],
        [
            (cluster, ", ".join(f"{n} {k}" for k, n in sorted(Counter(str(o["kind"]) for o in objs).items())))
            for cluster, objs in tr.objects.items()
        ],
    )
    print_table(
        "Policy status",
        ["POLICY", "STATE", "ERRORS"],
        [
            (
                ref,
                status.state,
                "; ".join(f"{dest}: {e.code} {e.message}" for dest, d in status.destinations.items() for e in d.errors)
                or "-",
            )
            for ref, status in tr.statuses.items()
        ],
    )

    out.print("\n[bold]4. Shared trust[/bold]  (meshrules trust status <scenario>)")
    print_trust_report(scenario_trust_status(analysis))

    out.print("\n[bold]5. Can A reach B, with what config, and why?[/bold]  (meshrules why <scenario> ...)")
    sim = simulate(analysis)
    for query in DEMO_QUERIES:
        headers = "".join(f" --header {k}={v}" for k, v in query.headers)
        out.print(
            f"\n$ meshrules why <scenario> --from {query.source} --to {query.target} --port {query.port} "
            f"--method {query.method} --path {query.path}{headers}"
        )
        print_verdict(why(sim, query))

    out.print("\n[bold]6. Policy tests[/bold]  (meshrules test <scenario>)")
    print_scenario_tests(path)


def _all(values: Iterable[str]) -> str:
    """Values joined with commas; `*` when there are none (the policy does not restrict them)."""
    return ",".join(values) or "*"
