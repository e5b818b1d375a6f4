"""`meshrules snapshot --context CTX --out DIR`: a live cluster as a scenario cluster directory (spec §1.1)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from meshrules.cli.app import app, handles_errors


@app.command("snapshot")
@handles_errors
def snapshot_command(
    context: str | None = typer.Option(None, "--context", help="Kubeconfig context of the cluster (default: current)."),
    out: Path = typer.Option(..., "--out", help="The cluster directory to write: <scenario>/clusters/<name>."),
    kubeconfig: Path | None = typer.Option(
        None, "--kubeconfig", help="Kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)."
    ),
) -> None:
    """Write what meshrules reads of a live cluster (never Secrets) as YAML files."""
    # Imported here: loading the kubernetes client costs every other command a tenth of a second.
    from meshrules.kube.client import KubeCluster
    from meshrules.kube.snapshot import snapshot

    cluster = KubeCluster.from_kubeconfig(context, kubeconfig, name=out.name)
    done = snapshot(cluster, out)
    total = sum(done.counts.values())
    kinds = ", ".join(f"{n} {k}" for k, n in done.counts.items()) or "nothing"
    print(f"wrote {total} objects to {done.directory} ({kinds})", file=sys.stderr)
    for name in done.files:
        print(done.directory / name)
