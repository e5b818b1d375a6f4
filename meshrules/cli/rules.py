"""`meshrules rules`: check a rule set, query what it concludes for a scenario, explain a conclusion.

    meshrules rules check [DIR]                                  static checks (default: the shipped rules/)
    meshrules rules eval SCENARIO --query 'federated(D, M)' [-o table|json|yaml] [--rules DIR]
    meshrules rules explain SCENARIO 'federated("a", "b")' [-o table|json|yaml] [--rules DIR]

`check` prints every error of every file with its line and a caret, and exits 2 when there is
one. `eval` and `explain` decide the scenario with the default rules plus its `policies/*.rules`
(or with `--rules DIR` instead of the defaults) and print answers, or the derivation tree down to
the policy lines and cluster objects the conclusion rests on.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from meshrules.cli.app import handles_errors
from meshrules.cli.output import OutputFormat, dump_json, dump_yaml, print_table, write
from meshrules.cli.scenario import load, with_scenario_rules
from meshrules.dsl import render_diagnostics
from meshrules.engine.values import show
from meshrules.errors import RuleError
from meshrules.pipeline.rules import Decision, decide, load_rules
from meshrules.resources import default_rules_dir

rules_app = typer.Typer(
    name="rules",
    help="Check the rule set, query its conclusions for a scenario, explain one.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_RULES_OPTION = typer.Option(None, "--rules", help="Rule directory to use instead of the default rule set.")
_OUTPUT_OPTION = typer.Option(OutputFormat.table, "-o", "--output", help="table, yaml or json.")


@rules_app.command("check")
@handles_errors
def check_command(
    directory: Path | None = typer.Argument(None, help="Rule directory (default: the shipped rule set)."),
) -> None:
    """Parse and check every rule file of a directory; report all errors with their line and a caret."""
    target = directory if directory is not None else default_rules_dir()
    try:
        program = load_rules(target)
    except RuleError as err:
        print(render_diagnostics(err.diagnostics), file=sys.stderr)
        errors = sum(1 for d in err.diagnostics if d.severity.value == "error")
        print(f"{target}: {errors} error{'s' if errors != 1 else ''}", file=sys.stderr)
        raise typer.Exit(2) from None
    if program.warnings:
        print(render_diagnostics(program.warnings, program.sources), file=sys.stderr)
    write(
        f"{target}: ok — {len(program.files)} files, {len(program.relations)} relations, "
        f"{len(program.rules)} rules, {len(program.strata)} strata\n"
    )


def _decide(scenario: Path, rules: Path | None) -> tuple[Decision, int]:
    analysis, errors = load(scenario)
    decision, rule_errors = with_scenario_rules(analysis, lambda a: decide(a, rules))
    return decision, errors + rule_errors


@rules_app.command("eval")
@handles_errors
def eval_command(
    scenario: Path = typer.Argument(..., help="Scenario directory (clusters/, policies/)."),
    query: str = typer.Option(..., "--query", "-q", help="A rule body, e.g. 'federated(D, M)'."),
    rules: Path | None = _RULES_OPTION,
    output: OutputFormat = _OUTPUT_OPTION,
) -> None:
    """Answer a query over what the rules conclude for a scenario."""
    decision, errors = _decide(scenario, rules)
    answer = decision.model.query(query)
    if output == OutputFormat.json:
        write(dump_json({"query": query, "variables": list(answer.variables), "answers": answer.as_dicts()}))
    elif output == OutputFormat.yaml:
        write(dump_yaml([{"query": query, "variables": list(answer.variables), "answers": answer.as_dicts()}]))
    elif answer.variables:
        print_table(f"{len(answer)} answer{'s' if len(answer) != 1 else ''}", answer.variables, _shown(answer.rows))
    else:
        write("true\n" if answer else "false\n")
    if errors:
        raise typer.Exit(2)


def _shown(rows: tuple[tuple[object, ...], ...]) -> list[list[str]]:
    return [[v if isinstance(v, str) else show(v) for v in row] for row in rows]


@rules_app.command("explain")
@handles_errors
def explain_command(
    scenario: Path = typer.Argument(..., help="Scenario directory (clusters/, policies/)."),
    fact: str = typer.Argument(..., help='A fact, e.g. \'federated("reviews-bookinfo-cluster-2", "istiod-...")\'.'),
    rules: Path | None = _RULES_OPTION,
    output: OutputFormat = _OUTPUT_OPTION,
) -> None:
    """Print why a fact holds: the rules, the facts they used, down to policy lines and cluster objects."""
    decision, errors = _decide(scenario, rules)
    derivation = decision.explain(fact)
    if output == OutputFormat.json:
        write(dump_json(derivation.to_json()))
    elif output == OutputFormat.yaml:
        write(dump_yaml([derivation.to_json()]))
    else:
        write(derivation.render() + "\n")
    if errors:
        raise typer.Exit(2)


__all__ = ["rules_app"]
