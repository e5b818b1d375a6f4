"""`meshrules matrix <scenario> [-o csv|json|table]`: every workload class × destination → code (`GET /`)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import typer

from meshrules.cli.app import app, handles_errors
from meshrules.cli.output import dump_json, print_table, write
from meshrules.cli.query import load_simulation
from meshrules.errors import UsageError
from meshrules.pipeline.query import matrix as matrix_query
from meshrules.sim.matrix import Matrix

_FORMATS = ("table", "csv", "json")


@app.command("matrix")
@handles_errors
def matrix_command(
    scenario: Path = typer.Argument(..., help="Scenario directory."),
    output: str = typer.Option("table", "-o", "--output", help="table, csv or json."),
    rules: Path | None = typer.Option(None, "--rules", help="Rule directory replacing the default rules."),
) -> None:
    """Answer `GET /` from every workload equivalence class to every destination (its first HTTP port)."""
    if output not in _FORMATS:
        raise UsageError(f"`-o {output}` is not supported here", code="MR0006", hint="use table, csv or json")
    sim, errors = load_simulation(scenario, rules)
    result = matrix_query(sim)
    if output == "json":
        write(dump_json(result.to_json()))
    elif output == "csv":
        write(to_csv(result))
    else:
        print_table("Reachability (GET /)", ["SOURCE", "DESTINATION", "PORT", "CODE"],
                    [(c.source, c.destination, c.port, c.code) for c in result.cells])
    if errors:
        raise typer.Exit(2)


def to_csv(result: Matrix) -> str:
    """``source,destination,port,code`` rows, one per cell."""
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\n")
    out.writerow(["source", "destination", "port", "code"])
    for c in result.cells:
        out.writerow([c.source, c.destination, "" if c.port is None else c.port, c.code])
    return buf.getvalue()
