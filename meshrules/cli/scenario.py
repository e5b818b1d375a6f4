"""Loading a scenario for a command: diagnostics go to stderr, one line each, and work goes on."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

from meshrules.errors import Diagnostic, InputError, Severity
from meshrules.kube.scenario import load_scenario
from meshrules.pipeline import Analysis, analyse


def report(diagnostics: Iterable[Diagnostic]) -> int:
    """Print findings to stderr as `severity: file:line: field: message (hint)`; return the error count."""
    errors = 0
    for diag in diagnostics:
        print(f"{diag.severity.value}: {diag}", file=sys.stderr)
        errors += diag.severity == Severity.ERROR
    return errors


def load(path: Path, policies: Path | None = None) -> tuple[Analysis, int]:
    """Load and discover a scenario, reporting every problem; return the analysis and the error count."""
    if policies is not None and not policies.is_dir():
        # A mistyped `--with` must not read as "no policies at all" (every answer would change).
        raise InputError(
            f"policies directory `{policies}` is not a directory",
            code="MR0004",
            hint="give a directory of policy YAML files (and optional `*.rules`), like a scenario's `policies/`",
        )
    analysis = analyse(load_scenario(path, policies_dir=policies))
    scenario = analysis.scenario
    errors = report(analysis.diagnostics)
    if scenario.skipped:
        skipped = ", ".join(f"{n} {k}" for k, n in scenario.skipped.items())
        print(f"info: skipped objects of kinds meshrules does not read: {skipped}", file=sys.stderr)
    return analysis, errors
