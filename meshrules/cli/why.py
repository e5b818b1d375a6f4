"""`meshrules why <scenario> --from … --to …`: can A reach B, with what config, and why (not)? (API §6)

The answer is printed whether the request is allowed or not (exit 0); bad arguments and unknown
names exit 2. `-o json` prints `Verdict.to_json()` (`docs/schemas/why.schema.json`).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import typer

from meshrules.cli.app import app, handles_errors
from meshrules.cli.output import OutputFormat, dump_json, dump_yaml, print_table, write
from meshrules.cli.query import load_simulation, parse_headers
from meshrules.errors import UsageError
from meshrules.pipeline.query import why as why_query
from meshrules.sim.verdict import Verdict, hop_json
from meshrules.sim.why import Query

# Spec §9: say so on stderr when something takes over a second.
_PROGRESS_AFTER_S = 1.0


@app.command("why")
@handles_errors
def why_command(
    scenario: Path = typer.Argument(..., help="Scenario directory."),
    source: str = typer.Option(..., "--from", help="Caller workload: cluster/namespace/workload."),
    target: str = typer.Option(..., "--to", help="cluster/namespace/service, or a hostname as the caller dials it."),
    port: int | None = typer.Option(None, "--port", help="Port (required when the target has several)."),
    method: str = typer.Option("GET", "--method", help="HTTP method."),
    path: str = typer.Option("/", "--path", help="HTTP path (with query string, if any)."),
    header: list[str] = typer.Option([], "--header", help="Request header name=value (repeatable)."),
    output: OutputFormat = typer.Option(OutputFormat.table, "-o", "--output", help="table, yaml or json."),
    rules: Path | None = typer.Option(None, "--rules", help="Rule directory replacing the default rules."),
    verify: bool = typer.Option(True, "--verify/--no-verify", help="Re-run a denial with its nearest-miss edit."),
) -> None:
    """Answer whether a request from one workload reaches a target, with its configuration and reasons."""
    _check_request(port, method, path)
    query = Query(source, target, port, method.upper(), path, parse_headers(header))
    sim, errors = load_simulation(scenario, rules)
    started = time.perf_counter()
    verdict = why_query(sim, query, verify_miss=verify)
    if time.perf_counter() - started > _PROGRESS_AFTER_S and verdict.nearest_miss is not None:
        typer.echo(
            "info: verified the nearest miss by re-running the pipeline with its edit "
            f"({time.perf_counter() - started:.1f}s; `--no-verify` skips it)",
            err=True,
        )
    if output == OutputFormat.json:
        write(dump_json(verdict.to_json()))
    elif output == OutputFormat.yaml:
        write(dump_yaml([verdict.to_json()]))
    else:
        print_verdict(verdict)
    if errors:
        raise typer.Exit(2)


# RFC 9110 §5.6.2: a method is a token.
_METHOD = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _check_request(port: int | None, method: str, path: str) -> None:
    """Refuse a request no client could send, before loading anything (a typo is not a NO_ROUTE)."""
    if port is not None and not 1 <= port <= 65535:
        raise UsageError(f"`--port {port}` is not a port", code="MR0006", hint="give a port in [1, 65535]")
    if not _METHOD.fullmatch(method):
        raise UsageError(
            f"`--method {method}` is not an HTTP method", code="MR0006", hint="e.g. `--method GET` or `--method POST`"
        )
    if not path.startswith("/"):
        raise UsageError(
            f"`--path {path}` does not start with `/`", code="MR0006", hint="e.g. `--path /reviews/1?page=2`"
        )


def print_verdict(v: Verdict) -> None:
    """The answer for people: verdict line, backends, config, hops, explanation, nearest miss."""
    mark = "ALLOWED" if v.allowed else f"DENIED ({v.code})" if v.code.startswith("DENIED") else v.code
    port = f":{v.port}" if v.port is not None else ""
    write(f"{mark}: {v.source_workload} -> {v.host}{port} {v.method} {v.path}\n")
    if v.reason:
        write(f"  {v.reason}\n")
    if v.causes:
        write(f"  also: {', '.join(v.causes)}\n")
    if v.backends:
        write("\n")
        print_table(
            "Backends",
            ["DESTINATION", "SUBSET", "WEIGHT", "CODE", "WHY"],
            [
                (
                    b.destination,
                    ",".join(f"{k}={val}" for k, val in b.subset) if b.subset else "-",
                    f"{b.weight}%",
                    b.code,
                    b.reason,
                )
                for b in v.backends
            ],
        )
    write("\nConfig\n")
    retries = (
        "-"
        if v.retries is None
        else (
            f"{v.retries.attempts}"
            + (f" (per try {v.retries.per_try_timeout})" if v.retries.per_try_timeout else "")
            + (f" [{v.retries.source}]" if v.retries.source else "")
        )
    )
    write(f"  timeout: {v.timeout or 'none'}\n  retries: {retries}\n  mtls: {'yes' if v.mtls else 'no'}\n")
    if v.fault is not None:
        write(f"  fault: {v.fault.to_json()}\n")
    if v.mirror is not None:
        write(f"  mirror: {v.mirror.destination} {v.mirror.percentage:g}%\n")
    changes = v.header_changes.to_json()
    if any(part[k] for part in changes.values() for k in part):
        write(f"  headers: {changes}\n")
    write("\nHops\n  " + " -> ".join(_hop(h) for h in (hop_json(x) for x in v.hops)) + "\n")
    if v.explanation:
        write("\n")
        print_table(
            "Explanation",
            ["STEP", "RULE", "OBJECTS", "DETAIL"],
            [(s.step, s.rule, "\n".join(s.objects) or "-", s.detail) for s in v.explanation],
        )
    if v.assumptions:
        write(f"\nAssumptions (not modelled): {', '.join(v.assumptions)}\n")
    miss = v.nearest_miss
    if miss is not None:
        where = f" ({miss.location})" if miss.location else ""
        write(f"\nNearest miss: {miss.policy}{where}\n  {miss.field}: {miss.detail}\n")
        for e in miss.edits:
            write(f"  fix: {e.describe()}\n")
        if miss.verified is None:
            write("  not verified\n")
        else:
            again = f" (re-run answers {miss.code_after})" if miss.code_after else ""
            write(f"  verified: {'yes' if miss.verified else 'no'}{again}\n")


def _hop(h: dict[str, object]) -> str:
    where = f"{h['address']}:{h['port']}" if "address" in h else str(h.get("name"))
    return f"{h['kind']} {h['cluster']}/{where}"
