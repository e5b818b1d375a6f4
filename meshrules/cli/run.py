"""The pipeline as commands run it: load and discover, decide with the rules, translate."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from meshrules.cli.scenario import load, with_scenario_rules
from meshrules.pipeline import Analysis
from meshrules.pipeline.rules import Decision, decide
from meshrules.pipeline.translate import Translation, translate


@dataclass(frozen=True)
class Run:
    """Everything one command run computed, and how many input errors loading found."""

    analysis: Analysis
    decision: Decision
    translation: Translation
    input_errors: int


def run_pipeline(scenario: Path, rules: Path | None = None, policies: Path | None = None) -> Run:
    """Load, discover, decide and translate ``scenario`` (input problems are printed, work goes on)."""
    analysis, input_errors = load(scenario, policies)
    (analysis, decision), rule_errors = with_scenario_rules(analysis, lambda a: (a, decide(a, rules_dir=rules)))
    return Run(analysis, decision, translate(analysis, decision.intent), input_errors + rule_errors)
