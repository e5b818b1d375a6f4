"""Loading a scenario for a command: diagnostics go to stderr, one line each, and work goes on."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

from meshrules.errors import Diagnostic, InputError, RuleError, Severity
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


T = TypeVar("T")


def with_scenario_rules(analysis: Analysis, run: Callable[[Analysis], T]) -> tuple[T, int]:
    """``run(analysis)``; when the scenario's own `policies/*.rules` do not check, report their errors
    and run again without them, so one broken rule file does not stop the command.

    Returns the result and the number of rule errors reported. A rule set broken outside the
    scenario's files (`--rules DIR`, the shipped rules) still raises: nothing sound can be decided.
    """
    try:
        return run(analysis), 0
    except RuleError as err:
        own = {rule_file.path for rule_file in analysis.scenario.rule_files}
        errors = [d for d in err.diagnostics if d.severity == Severity.ERROR]
        if not own or not errors or any(d.location is None or d.location.file not in own for d in errors):
            raise
        count = report(err.diagnostics)
        print(
            f"info: left out the scenario's rule files ({', '.join(sorted(own))}); the shipped rules decided the rest",
            file=sys.stderr,
        )
        return run(replace(analysis, scenario=replace(analysis.scenario, rule_files=()))), count
