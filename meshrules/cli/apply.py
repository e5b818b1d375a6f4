"""`meshrules apply <scenario-or-policies> --context CTX [--dry-run]`: one shot, no controller (spec §8).

Policies (and rules) come from the files; clusters are the ones registered in the management
cluster, read live. `--dry-run` prints a unified diff per cluster and writes nothing. Exit 1 when
something was left alone (an object meshrules does not own, a missing patch target), failed,
or a cluster could not be read.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import typer

from meshrules.cli.app import app, handles_errors
from meshrules.cli.output import print_table, write
from meshrules.cli.scenario import report
from meshrules.errors import InputError
from meshrules.kube.apply import Action
from meshrules.kube.oneshot import OneShot, apply_once
from meshrules.kube.scenario import load_scenario
from meshrules.kube.translation import default_translate
from meshrules.model.common import MANAGEMENT_NAMESPACE
from meshrules.model.scenario import Scenario


@app.command("apply")
@handles_errors
def apply_command(
    path: Path = typer.Argument(
        ..., help="A scenario (its policies/ are used), a policies directory, or one policy file."
    ),
    context: str | None = typer.Option(None, "--context", help="Context of the management cluster (default: current)."),
    kubeconfig: Path | None = typer.Option(
        None, "--kubeconfig", help="Kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the per-cluster diff; write nothing."),
    namespace: str = typer.Option(MANAGEMENT_NAMESPACE, "--namespace", help="The management namespace."),
) -> None:
    """Discover the registered clusters, translate the policies, apply the outputs (or print the diff)."""
    # Imported here: loading the kubernetes client costs every other command a tenth of a second.
    from meshrules.kube.client import KubeCluster

    scenario = _load_policies(path)
    if report(scenario.diagnostics):
        raise typer.Exit(2)
    management = KubeCluster.from_kubeconfig(context, kubeconfig, name="management")

    def connect(name: str, text: str) -> KubeCluster:
        return KubeCluster.from_kubeconfig_text(text, name=name)

    done = apply_once(management, scenario, connect, default_translate(), dry_run=dry_run, owner=namespace)
    raise typer.Exit(_print(done, dry_run))


def _load_policies(path: Path) -> Scenario:
    if path.is_dir() and ((path / "policies").is_dir() or (path / "clusters").is_dir()):
        return load_scenario(path)
    if path.is_dir():
        return load_scenario(path, policies_dir=path)
    if path.is_file():
        with tempfile.TemporaryDirectory(prefix="meshrules-apply-") as tmp:
            shutil.copy(path, Path(tmp) / path.name)
            return load_scenario(tmp, policies_dir=tmp)
    raise InputError(
        f"`{path}` does not exist",
        code="MR0004",
        hint="give a scenario directory, a directory of policy files, or one policy file",
    )


def _print(done: OneShot, dry_run: bool) -> int:
    """Print diffs or results and what was left alone; return the exit code."""
    problems = 0
    if done.translation.outputs is None:
        print("info: outputs are not translated yet (discovery only): nothing to apply", file=sys.stderr)
    rows = []
    for outcome in done.clusters:
        if outcome.error is not None:
            print(f"error: {outcome.error}", file=sys.stderr)
            problems += 1
            continue
        plan = outcome.plan
        if plan is None:
            continue
        if dry_run:
            write(plan.diff())
        for change in plan.reported:
            print(f"warning: {outcome.name}: {change.key}: {change.message}", file=sys.stderr)
            problems += 1
        result = outcome.result
        if result is not None:
            for change, err in result.failed:
                print(f"error: {outcome.name}: {change.key}: {err}", file=sys.stderr)
                problems += 1
        counts = {a: plan.count(a) for a in (Action.CREATE, Action.UPDATE, Action.PATCH, Action.DELETE, Action.RELEASE)}
        rows.append(
            (
                outcome.name,
                *(counts[a] for a in counts),
                plan.count(Action.UNCHANGED),
                len(plan.reported),
                "" if plan.pruned else "no (a cluster could not be read)",
            )
        )
    title = "Planned (dry run)" if dry_run else "Applied"
    if rows:
        print_table(
            title,
            ["CLUSTER", "CREATE", "UPDATE", "PATCH", "DELETE", "RELEASE", "UNCHANGED", "LEFT ALONE", "PRUNED"],
            rows,
        )
    for ref, status in sorted(done.translation.statuses.items()):
        print(f"{ref}: {status.get('state', '-')}", file=sys.stderr)
    return 1 if problems else 0
