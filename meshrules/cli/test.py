"""`meshrules test <scenario>`: run the scenario's ReachabilityTests (API §7), with coverage and JUnit.

The logic is `meshrules.pipeline.policy_tests` (pure); this module reads files, prints, writes the
JUnit report and picks the exit code: 0 all passed, 1 a test failed (or coverage is below
``--threshold``), 2 an input error (a broken test file, a test naming what the scenario lacks).
``-o json`` follows `docs/schemas/test.schema.json`.
"""

from __future__ import annotations

import contextlib
import io
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer

from meshrules.cli.app import app, handles_errors
from meshrules.cli.output import dump_json, write
from meshrules.cli.scenario import report, with_scenario_rules
from meshrules.cli.why import print_verdict
from meshrules.errors import InputError
from meshrules.kube.scenario import YAML_SUFFIXES, load_scenario
from meshrules.model.documents import parse_documents
from meshrules.model.scenario import PolicyDocuments, Scenario, read_policy_documents
from meshrules.pipeline import analyse
from meshrules.pipeline.policy_tests import (
    ERROR,
    FAILED,
    PASSED,
    Coverage,
    TestResult,
    coverage,
    explain_pair,
    run_test,
)
from meshrules.pipeline.query import Simulation, simulate
from meshrules.sim.verdict import Verdict

__all__ = [
    "Explain",
    "TestOutput",
    "junit_xml",
    "print_scenario_tests",
    "results_json",
    "run_scenario_tests",
    "test_command",
]

# Spec §9: progress on stderr for anything that takes over a second.
_PROGRESS_AFTER_S = 1.0


class TestOutput(StrEnum):
    """`-o` choices of `meshrules test`."""

    table = "table"
    json = "json"


class Explain(StrEnum):
    """`--explain`: the `why` explanation for failing tests only, or for every test."""

    fails = "fails"
    full = "full"


def load_tests_dir(scenario: Scenario, directory: Path) -> Scenario:
    """``scenario`` with its tests replaced by the ReachabilityTests of ``directory``'s YAML files."""
    if not directory.is_dir():
        raise InputError(
            f"tests directory `{directory}` is not a directory",
            code="MR0004",
            hint="give a directory of ReachabilityTest YAML files",
        )
    out = PolicyDocuments()
    for file in sorted(p for p in directory.iterdir() if p.is_file() and p.suffix in YAML_SUFFIXES):
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read test file `{file}`", code="MR0003") from exc
        docs, diags = parse_documents(text, str(file))
        out.diagnostics.extend(diags)
        read_policy_documents(docs, into=out)
    sources = {k: v for k, v in scenario.sources.items() if not k.startswith("ReachabilityTest ")}
    sources.update({k: v for k, v in out.sources.items() if k.startswith("ReachabilityTest ")})
    return replace(
        scenario,
        tests=tuple(sorted(out.tests, key=lambda t: t.metadata.name)),
        sources=sources,
        diagnostics=(*scenario.diagnostics, *out.diagnostics),
    )


def run_scenario_tests(
    path: Path, tests_dir: Path | None = None, rules: Path | None = None
) -> tuple[Simulation, list[TestResult], list[float], int]:
    """Load ``path`` (its tests, or ``tests_dir``'s), run every test; return the simulation, the
    results, each test's seconds and the number of input errors loading found (printed to stderr)."""
    scenario = load_scenario(path)
    if tests_dir is not None:
        scenario = load_tests_dir(scenario, tests_dir)
    analysis = analyse(scenario)
    input_errors = report(analysis.diagnostics)
    sim, rule_errors = with_scenario_rules(analysis, lambda a: simulate(a, rules))
    input_errors += rule_errors
    results: list[TestResult] = []
    seconds: list[float] = []
    for test in sorted(scenario.tests, key=lambda t: (t.metadata.namespace or "", t.metadata.name)):
        started = time.perf_counter()
        results.append(run_test(sim, test))
        seconds.append(time.perf_counter() - started)
    return sim, results, seconds, input_errors


@app.command("test")
@handles_errors
def test_command(
    scenario: Path = typer.Argument(..., help="Scenario directory."),
    tests: Path | None = typer.Option(
        None, "--tests", help="Directory of ReachabilityTests (default: <scenario>/tests)."
    ),
    junit: Path | None = typer.Option(None, "--junit", help="Write a JUnit XML report to FILE."),
    output: TestOutput = typer.Option(TestOutput.table, "-o", "--output", help="table or json."),
    show_coverage: bool = typer.Option(
        False, "--coverage", help="Report which policies, rules and edges the tests used."
    ),
    threshold: float | None = typer.Option(
        None, "--threshold", min=0, max=100, help="Fail (exit 1) when coverage is below PCT percent."
    ),
    explain: Explain = typer.Option(
        Explain.fails, "--explain", help="`fails`: explain failing tests; `full`: every test."
    ),
    rules: Path | None = typer.Option(None, "--rules", help="Rule directory replacing the default rules."),
) -> None:
    """Run every ReachabilityTest; exit 1 when one fails, 2 on input errors."""
    started = time.perf_counter()
    sim, results, seconds, input_errors = run_scenario_tests(scenario, tests, rules)
    elapsed = time.perf_counter() - started
    if elapsed > _PROGRESS_AFTER_S:
        typer.echo(f"info: ran {len(results)} tests of `{scenario}` in {elapsed:.1f}s", err=True)
    if not results:
        where = tests if tests is not None else scenario / "tests"
        typer.echo(f"info: no ReachabilityTests in `{where}`", err=True)
    cov = coverage(sim, results) if show_coverage or threshold is not None else None
    if output == TestOutput.json:
        write(dump_json(results_json(results, cov, threshold)))
    else:
        print_results(sim, results, explain)
        if cov is not None:
            print_coverage(cov)
    if junit is not None:
        write_junit(junit, junit_xml(results, seconds, suite=scenario.name or str(scenario)))
    if input_errors or any(r.status == ERROR for r in results):
        raise typer.Exit(2)
    if any(r.status == FAILED for r in results):
        raise typer.Exit(1)
    if cov is not None and threshold is not None and cov.percent < threshold:
        typer.echo(f"error: coverage {cov.percent:.1f}% is below the threshold {threshold:g}%", err=True)
        raise typer.Exit(1)


def write_junit(path: Path, text: str) -> None:
    """Write the JUnit report; a path that cannot be written is the user's to fix, not a meshrules bug."""
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        reason = "it is a directory" if path.is_dir() else (exc.strerror or type(exc).__name__).lower()
        raise InputError(
            f"cannot write `--junit {path}`: {reason}",
            code="MR0008",
            hint="give a file path in an existing directory you can write to (the results above still stand)",
        ) from exc


def print_scenario_tests(path: Path, rules: Path | None = None) -> bool:
    """Run and print ``path``'s own tests as `meshrules test` does (for `meshrules demo`); True when all pass."""
    sim, results, _, _ = run_scenario_tests(path, None, rules)
    print_results(sim, results, Explain.fails)
    return all(r.status == PASSED for r in results)


# ================================================================================================
# Printing
# ================================================================================================


def failure_text(result: TestResult) -> str:
    """What a failing test says, without the explanation (also the JUnit failure body).

    ::

        cluster-1/bookinfo/productpage-v1 -> reviews.bookinfo.svc.cluster.local:9080 GET /reviews/0
        code: expected ALLOWED, got DENIED_ENFORCED
    """
    if result.status == ERROR:
        return result.error
    pair = result.failure
    if pair is None:
        return ""
    v = pair.verdict
    port = f":{v.port}" if v.port is not None else ""
    lines = []
    if result.universal:
        others = f" (class of {pair.members} workloads)" if pair.members > 1 else ""
        lines.append(
            f"counterexample: {pair.source}{others} -> {pair.target}; "
            f"{result.failing_pairs} of {len(result.pairs)} pairs fail"
        )
    lines.append(f"{pair.source} -> {v.host}{port} {v.method} {v.path}")
    lines += [m.line() for m in pair.mismatches]
    return "\n".join(lines)


def print_results(sim: Simulation, results: Sequence[TestResult], explain: Explain) -> None:
    """``PASS|FAIL|ERROR name (file:line)``, failures with expected vs actual and the `why`."""
    by_name = {
        f"{t.metadata.namespace or 'meshrules-system'}/{t.metadata.name}": t for t in sim.analysis.scenario.tests
    }
    for r in results:
        mark = {PASSED: "PASS", FAILED: "FAIL", ERROR: "ERROR"}[r.status]
        where = f" ({r.location})" if r.location else ""
        scope = f" [{len(r.pairs)} pairs, {r.workloads} workloads]" if r.universal and r.pairs else ""
        write(f"{mark} {r.name}{where}{scope}\n")
        text = failure_text(r)
        if text:
            write("".join(f"  {line}\n" for line in text.splitlines()))
        verdict = r.failure.verdict if r.failure is not None else None
        if verdict is None and explain == Explain.full and r.pairs and r.name in by_name:
            verdict = explain_pair(sim, by_name[r.name], r.pairs[0])
        if verdict is not None:
            write("  why:\n" + _indented(verdict) + "\n")
    counts = {s: sum(1 for r in results if r.status == s) for s in (PASSED, FAILED, ERROR)}
    write(f"{counts[PASSED]} passed, {counts[FAILED]} failed, {counts[ERROR]} errors\n")


def _indented(verdict: Verdict) -> str:
    """`print_verdict`'s text, indented under its test (it writes to stdout; capture it here)."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        print_verdict(verdict)
    return "".join(f"    {line}".rstrip() + "\n" for line in buffer.getvalue().splitlines())


def print_coverage(cov: Coverage) -> None:
    """Items covered, rules, and the policies no test exercised."""
    write(
        f"\nCoverage: {cov.percent:.1f}% ({len(cov.covered)} of {len(cov.items)} policy items and federation edges)\n"
    )
    for item in cov.items:
        write(f"  {'+' if item in cov.covered else '-'} {item}\n")
    write(
        f"Rules: {cov.rule_percent:.1f}% ({len(cov.covered_rules)} of {len(cov.rules)} rules in the derivations used)\n"
    )
    if cov.covered_rules:
        write("  " + ", ".join(sorted(cov.covered_rules)) + "\n")
    if cov.unexercised_policies:
        write("Policies never exercised:\n" + "".join(f"  {p}\n" for p in cov.unexercised_policies))


def results_json(results: Sequence[TestResult], cov: Coverage | None, threshold: float | None) -> dict[str, Any]:
    """The published JSON of `meshrules test -o json` (docs/schemas/test.schema.json)."""
    out: dict[str, Any] = {
        "tests": [{**r.to_json(), "message": failure_text(r) or None} for r in results],
        "summary": {s: sum(1 for r in results if r.status == s) for s in (PASSED, FAILED, ERROR)},
        "coverage": None if cov is None else cov.to_json(),
        "threshold": threshold,
    }
    return out


# ================================================================================================
# JUnit
# ================================================================================================


def junit_xml(results: Sequence[TestResult], seconds: Sequence[float], suite: str) -> str:
    """The JUnit XML CI tools read: ``testsuites > testsuite > testcase > failure|error``.

    One testsuite (the scenario) with ``tests``, ``failures``, ``errors``, ``skipped`` and ``time``
    counts, repeated on ``testsuites``; one testcase per ReachabilityTest, ``classname`` the test
    file, ``name`` ``namespace/name``; a failure's ``message`` is its first mismatch line and its
    text the whole failure (`failure_text`).
    """
    total = f"{sum(seconds):.3f}"
    failures = sum(1 for r in results if r.status == FAILED)
    errors = sum(1 for r in results if r.status == ERROR)
    counts = {"tests": str(len(results)), "failures": str(failures), "errors": str(errors), "time": total}
    root = ET.Element("testsuites", {"name": "meshrules", **counts})
    ts = ET.SubElement(root, "testsuite", {"name": suite, **counts, "skipped": "0"})
    for r, secs in zip(results, seconds, strict=True):
        file = r.location.rsplit(":", 1)[0] if r.location else ""
        attrs = {"name": r.name, "classname": file or "meshrules", "time": f"{secs:.3f}"}
        if file:
            attrs["file"] = file
        case = ET.SubElement(ts, "testcase", attrs)
        text = failure_text(r)
        if r.status == FAILED:
            first = r.failure.mismatches[0].line() if r.failure is not None and r.failure.mismatches else text
            ET.SubElement(case, "failure", {"message": first, "type": "ReachabilityTestFailure"}).text = text
        elif r.status == ERROR:
            ET.SubElement(
                case, "error", {"message": text.splitlines()[0] if text else "", "type": "InputError"}
            ).text = text
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


# Pytest collects names starting with `test`/`Test` from modules that import them; these are not tests.
test_command.__test__ = False  # type: ignore[attr-defined]
TestOutput.__test__ = False  # type: ignore[attr-defined]
