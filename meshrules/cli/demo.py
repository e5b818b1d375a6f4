"""`meshrules demo`: the main job on the bundled scenario, for a first look."""

from __future__ import annotations

from meshrules.cli.app import app, handles_errors
from meshrules.cli.discover import print_discovery
from meshrules.cli.output import console
from meshrules.cli.scenario import load
from meshrules.cli.trust import print_trust_report, scenario_trust_status
from meshrules.resources import bundled_scenario


@app.command()
@handles_errors
def demo() -> None:
    """Run meshrules on the bundled three-cluster example (bookinfo on Istio, emojivoto on Linkerd)."""
    path = bundled_scenario("bookinfo-multicluster")
    out = console()
    out.print(f"[bold]meshrules demo[/bold] — scenario {path}\n")
    out.print("[bold]1. Discovery[/bold]  (meshrules discover <scenario>)")
    analysis, _ = load(path)
    print_discovery(analysis.discovery)
    graph = analysis.graph
    out.print("\n[bold]2. Policies and what they select[/bold]")
    for policy in analysis.scenario.policies:
        sel = graph.selection(policy)
        picked = sorted(sel.meshes) if sel.meshes else sorted(sel.destinations)
        out.print(f"  {policy.ref}: {', '.join(picked) or '(nothing)'}")
    out.print("\n[bold]3. Shared trust[/bold]  (meshrules trust status <scenario>)")
    print_trust_report(scenario_trust_status(analysis))
