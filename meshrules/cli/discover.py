"""`meshrules discover <scenario>`: what meshrules found in each cluster."""

from __future__ import annotations

from pathlib import Path

import typer

from meshrules.cli.app import app, handles_errors
from meshrules.cli.output import OutputFormat, dump_json, dump_yaml, print_table, write
from meshrules.cli.scenario import load
from meshrules.discovery import Discovery


@app.command()
@handles_errors
def discover(
    scenario: Path = typer.Argument(..., help="Scenario directory (clusters/, policies/)."),
    output: OutputFormat = typer.Option(OutputFormat.table, "-o", "--output", help="table, yaml or json."),
) -> None:
    """Discover clusters, meshes, gateways, workloads, identities and destinations."""
    analysis, errors = load(scenario)
    found = analysis.discovery
    if output == OutputFormat.yaml:
        write(dump_yaml(found.objects()))
    elif output == OutputFormat.json:
        write(dump_json({"apiVersion": "v1", "kind": "List", "items": found.objects()}))
    else:
        print_discovery(found)
    if errors:
        raise typer.Exit(2)


def print_discovery(found: Discovery) -> None:
    """The human view of a discovery: one table per kind."""
    print_table(
        "Clusters",
        ["NAME", "DOMAIN", "REGION"],
        [(c.name, c.cluster_domain, c.region or "-") for c in found.clusters],
    )
    print_table(
        "Meshes",
        ["NAME", "TYPE", "CLUSTER", "VERSION", "TRUST DOMAIN", "DNS CAPTURE", "GATEWAYS"],
        [
            (
                m.name,
                m.type.value,
                m.cluster,
                m.version or "-",
                m.trust_domain,
                "yes" if m.dns_capture else "no",
                ", ".join(f"{g.kind.value} {g.address or '<no address>'}:{g.port or '-'}" for g in m.gateways) or "-",
            )
            for m in found.meshes
        ],
    )
    print_table(
        "Workloads",
        ["NAME", "CLUSTER", "NAMESPACE", "CONTROLLER", "MESH", "IDENTITY"],
        [
            (w.name, w.cluster, w.namespace, f"{w.controller.kind}/{w.controller.name}", w.mesh, w.identity)
            for w in found.workloads
        ],
    )
    print_table(
        "Destinations",
        ["NAME", "FQDN", "PORTS", "WORKLOADS", "SUBSETS"],
        [
            (
                d.name,
                d.local_fqdn,
                ",".join(str(p.port) for p in d.ports),
                len(d.workloads),
                "; ".join(f"{k}={','.join(v)}" for k, v in d.subsets.items()) or "-",
            )
            for d in found.destinations
        ],
    )
