"""`meshrules describe <scenario> workload|destination|policy NAME`: what applies, emits, reaches, fails."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import typer

from meshrules.cli.app import app, handles_errors
from meshrules.cli.output import OutputFormat, dump_json, dump_yaml, print_table, write
from meshrules.cli.query import load_simulation
from meshrules.pipeline.query import describe as describe_query


@app.command("describe")
@handles_errors
def describe_command(
    scenario: Path = typer.Argument(..., help="Scenario directory."),
    kind: str = typer.Argument(..., help="workload, destination or policy."),
    name: str = typer.Argument(..., help="cluster/namespace/name, a discovery name, or `Kind namespace/name`."),
    output: OutputFormat = typer.Option(OutputFormat.table, "-o", "--output", help="table, yaml or json."),
    rules: Path | None = typer.Option(None, "--rules", help="Rule directory replacing the default rules."),
) -> None:
    """Describe one workload, destination or policy: what applies, what it emits, reachability, errors."""
    sim, errors = load_simulation(scenario, rules)
    found = describe_query(sim, kind, name)
    if output == OutputFormat.json:
        write(dump_json(found))
    elif output == OutputFormat.yaml:
        write(dump_yaml([found]))
    else:
        print_description(found)
    if errors:
        raise typer.Exit(2)


def _value(value: Any) -> str:
    """A field as people read it (`k=v` pairs, lists joined), not Python's repr."""
    if isinstance(value, Mapping):
        members = value.get("members")
        if "name" in value and isinstance(members, Sequence):  # a workload class
            return f"{value['name']} ({len(members)} workload{'' if len(members) == 1 else 's'})"
        return ", ".join(f"{k}={_joined(v, '|')}" for k, v in value.items()) or "-"
    return _joined(value, ", ")


def _joined(value: Any, sep: str) -> str:
    if isinstance(value, Sequence) and not isinstance(value, str):
        if any(isinstance(v, Mapping) for v in value):
            sep = "; "  # items that are themselves `k=v, …` lists
        return sep.join(_value(v) for v in value) or "-"
    return _value(value) if isinstance(value, Mapping) else str(value)


def print_description(d: Mapping[str, Any]) -> None:
    """The description for people."""
    write(f"{d['kind']} {d['name']}\n")
    for key, value in d["object"].items():
        if key != "status":
            write(f"  {key}: {_value(value)}\n")
    if d["applies"]:
        write("\n")
        print_table("Applies", ["ROLE", "POLICY", "WHERE"], [(a["role"], a["policy"], a["location"] or "-")
                                                             for a in d["applies"]])
    if d["emits"]:
        write("\nEmits\n")
        for cluster, refs in d["emits"].items():
            write(f"  {cluster}: {', '.join(refs)}\n")
    for title, cells in (("Outbound", d["outbound"]), ("Inbound", d["inbound"])):
        if cells:
            write("\n")
            _cells(title, cells)
    if d["errors"]:
        write("\n")
        print_table("Errors", ["POLICY", "DESTINATION", "CODE", "FIELD", "MESSAGE"], [
            (e["policy"], e["destination"] or "-", e["code"], e["field"] or "-", e["message"]) for e in d["errors"]])


def _cells(title: str, cells: Sequence[Mapping[str, Any]]) -> None:
    print_table(f"{title} (GET /)", ["SOURCE", "DESTINATION", "PORT", "CODE"],
                [(c["source"], c["destination"], c["port"], c["code"]) for c in cells])
