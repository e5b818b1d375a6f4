"""`meshrules check <scenario>`: every finding, with a stable code, severity, object and place."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from pathlib import Path

import typer

from meshrules.cli.app import app, handles_errors
from meshrules.cli.output import OutputFormat, dump_json, print_table, write
from meshrules.cli.run import run_pipeline
from meshrules.errors import Diagnostic, Location, Severity, UsageError
from meshrules.model.intent import PolicyStatusEntry
from meshrules.model.scenario import Scenario
from meshrules.pipeline.invariants import invariants


@app.command()
@handles_errors
def check(
    scenario: Path = typer.Argument(..., help="Scenario directory."),
    output: OutputFormat = typer.Option(OutputFormat.table, "-o", "--output", help="table, yaml or json."),
    suppress: list[str] = typer.Option(
        [], "--suppress", help="CODE=GLOB: hide findings with CODE whose object or file matches GLOB."
    ),
    rules: Path | None = typer.Option(None, "--rules", help="Rule directory replacing the default rules."),
    with_invariants: bool = typer.Option(
        False, "--invariants", help="Also run the built-in invariant analyses (MR1001+, with witnesses)."
    ),
) -> None:
    """List every finding; exit 1 when any is an error, 2 when the input itself is broken."""
    suppressions = [_parse_suppression(s) for s in suppress]
    result = run_pipeline(scenario, rules)
    findings = [
        *result.analysis.diagnostics,
        *result.decision.findings,
        *result.translation.findings,
        *status_findings(result.analysis.scenario, result.translation.status_entries),
        *(invariants(result.analysis, result.decision, result.translation) if with_invariants else ()),
    ]
    shown = sorted({_key(f): f for f in findings if not _suppressed(f, suppressions)}.values(), key=_order)
    if output == OutputFormat.json or output == OutputFormat.yaml:
        write(dump_json(findings_json(shown)))
    else:
        print_table(
            "Findings",
            ["CODE", "SEVERITY", "OBJECT", "WHERE", "MESSAGE"],
            [(f.code, f.severity.value, f.object or "-", str(f.location or "-"), _message(f)) for f in shown],
        )
        counts = _counts(shown)
        typer.echo(
            f"{_count(counts['error'], 'error')}, {_count(counts['warning'], 'warning')}, "
            f"{_count(counts['info'], 'note')}",
            err=True,
        )
    if result.input_errors:
        raise typer.Exit(2)
    if any(f.severity == Severity.ERROR for f in shown):
        raise typer.Exit(1)


def status_findings(scenario: Scenario, entries: Iterable[PolicyStatusEntry]) -> list[Diagnostic]:
    """Policy status errors as findings, located at the policy field in its file."""
    out = []
    for e in entries:
        where = f" for destination `{e.destination}`" if e.destination else ""
        out.append(
            Diagnostic(
                code=e.code,
                message=f"{e.message}{where}",
                severity=Severity.ERROR,
                location=scenario.location_of(e.policy, e.field) or Location(),
                field=e.field,
                object=e.policy,
            )
        )
    return out


def findings_json(findings: Sequence[Diagnostic]) -> dict[str, object]:
    """The published JSON shape of `check -o json` (docs/schemas/check.schema.json)."""
    items = []
    for f in findings:
        loc = f.location or Location()
        items.append(
            {
                "code": f.code,
                "severity": f.severity.value,
                "message": f.message,
                "hint": f.hint,
                "object": f.object,
                "field": f.field,
                "location": {"file": loc.file, "line": loc.line} if loc.file else {"object": str(loc)},
                "related": list(f.related),
            }
        )
    return {"findings": items, "summary": _counts(findings)}


def _counts(findings: Sequence[Diagnostic]) -> dict[str, int]:
    return {s.value: sum(1 for f in findings if f.severity == s) for s in Severity}


def _message(f: Diagnostic) -> str:
    return f.message + (f" ({f.hint})" if f.hint else "")


def _key(f: Diagnostic) -> tuple[str, str, str, str]:
    return (f.code, f.object, str(f.location or ""), f.message)


def _order(f: Diagnostic) -> tuple[int, tuple[str, int, int, str, str, str]]:
    rank = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}[f.severity]
    return (rank, f.sort_key())


def _parse_suppression(text: str) -> tuple[str, str]:
    code, sep, glob = text.partition("=")
    if not sep or not code.startswith("MR") or not glob:
        raise UsageError(
            f"`--suppress {text}` is not CODE=GLOB", code="MR0006", hint="e.g. `--suppress 'MR0110=*eastwest*'`"
        )
    return code, glob


def _suppressed(f: Diagnostic, suppressions: Sequence[tuple[str, str]]) -> bool:
    targets = (f.object, str(f.location or ""))
    return any(f.code == code and any(fnmatch.fnmatch(t, glob) for t in targets) for code, glob in suppressions)


def _count(n: int, noun: str) -> str:
    """`1 error`, `2 errors`."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
