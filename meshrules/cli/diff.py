"""`meshrules diff <scenario> --with <policies-dir>`: which (class, destination) answers change, and a witness."""

from __future__ import annotations

from pathlib import Path

import typer

from meshrules.cli.app import app, handles_errors
from meshrules.cli.output import OutputFormat, dump_json, dump_yaml, print_table, write
from meshrules.cli.query import load_simulation
from meshrules.pipeline.query import diff as diff_query


@app.command("diff")
@handles_errors
def diff_command(
    scenario: Path = typer.Argument(..., help="Scenario directory (its policies/ are the \"before\")."),
    other: Path = typer.Option(..., "--with", help="Policies directory to compare with (the \"after\")."),
    output: OutputFormat = typer.Option(OutputFormat.table, "-o", "--output", help="table, yaml or json."),
    rules: Path | None = typer.Option(None, "--rules", help="Rule directory replacing the default rules."),
) -> None:
    """Show which (workload class, destination) answers change when the policies are replaced."""
    before, errors_before = load_simulation(scenario, rules)
    after, errors_after = load_simulation(scenario, rules, policies=other)
    changes, compared = diff_query(before, after)
    body = {"before": str(scenario / "policies"), "after": str(other), "compared": compared,
            "changed": [c.to_json() for c in changes]}
    if output == OutputFormat.json:
        write(dump_json(body))
    elif output == OutputFormat.yaml:
        write(dump_yaml([body]))
    else:
        print_table(f"Changed answers ({len(changes)} of {compared} pairs)",
                    ["SOURCE", "DESTINATION", "BEFORE", "AFTER", "CHANGED", "WITNESS"],
                    [(c.source, c.destination, c.before.code, c.after.code, ", ".join(c.changed_fields()),
                      f"{c.witness.method} {c.witness.path} :{c.witness.port}"
                      + "".join(f" {k}={v}" for k, v in c.witness.headers)) for c in changes])
    if errors_before or errors_after:
        raise typer.Exit(2)
