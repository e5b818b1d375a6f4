"""`meshrules agent`: the registered cluster's end of the CSR exchange, run until SIGTERM or Ctrl-C.

The logic is `meshrules.kube.agent`; this module parses options, connects, and runs the loop (or
one pass with `--once`). In a pod it uses the pod's service account and binds its health endpoint
to the pod address (`--health-address 0.0.0.0:8080`, as `deploy/agent` does). Nothing it prints
or logs holds key material: outcomes name meshes, phases and root fingerprints.
"""

from __future__ import annotations

import logging
import signal
import socket
from pathlib import Path
from types import FrameType

import typer

from meshrules.cli.app import app, handles_errors
from meshrules.errors import UsageError

# Kept in step with `meshrules.kube.agent` (not imported here: loading the kubernetes client costs
# every other command a tenth of a second).
_DEFAULT_NAMESPACES = ["istio-system", "linkerd"]


@app.command("agent")
@handles_errors
def agent_command(
    mesh: list[str] = typer.Option(
        [], "--mesh", help="Serve only this mesh's requests (repeatable; default: every request found)."
    ),
    namespace: list[str] = typer.Option(
        _DEFAULT_NAMESPACES, "--namespace", help="Mesh namespaces to look for requests in (repeatable)."
    ),
    context: str | None = typer.Option(None, "--context", help="Cluster context (default: in-cluster, or current)."),
    kubeconfig: Path | None = typer.Option(
        None, "--kubeconfig", help="Kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)."
    ),
    interval: float = typer.Option(10.0, "--interval", help="Seconds between passes (1 to 300)."),
    once: bool = typer.Option(False, "--once", help="Run one pass, print what it did, and exit."),
    identity: str | None = typer.Option(None, "--identity", help="This agent's name in requests (default: host name)."),
    health_address: str | None = typer.Option(
        None, "--health-address", help="HOST:PORT of /healthz and /readyz (default: none)."
    ),
) -> None:
    """Generate mesh intermediate keys here, send their CSRs, install the signed chains."""
    from meshrules.kube.agent import MAX_INTERVAL, MIN_INTERVAL, AgentLoop, AgentOutcome, agent_step
    from meshrules.kube.client import KubeCluster
    from meshrules.kube.metrics import HealthServer, Metrics

    if not MIN_INTERVAL <= interval <= MAX_INTERVAL:
        raise UsageError(
            f"`--interval {interval:g}` is out of range",
            code="MR0002",
            hint=f"use {MIN_INTERVAL:g} to {MAX_INTERVAL:g} seconds",
        )
    host, port = "", ""
    if health_address is not None:
        host, _, port = health_address.rpartition(":")
        if not host or not port.isdigit():
            raise UsageError(f"`{health_address}` is not HOST:PORT", code="MR0002", hint="for example 127.0.0.1:8080")
    name = identity or socket.gethostname()
    cluster = KubeCluster.from_kubeconfig(context, kubeconfig, name=context or "local", identity=name)

    def show(outcomes: tuple[AgentOutcome, ...]) -> None:
        for o in outcomes:
            print(f"{o.namespace}/{o.mesh}: {o.action.value}" + (f" ({o.detail})" if o.detail else ""))

    if once:
        # Errors of the one pass reach the user (one line, an exit code) instead of a back-off.
        show(agent_step(cluster, namespaces=tuple(namespace), meshes=tuple(mesh)))
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    loop = AgentLoop(cluster, namespaces=tuple(namespace), meshes=tuple(mesh), interval=interval)

    def stop(signum: int, frame: FrameType | None) -> None:
        loop.stop.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    health = HealthServer(Metrics(), loop.alive, loop.ready, host, int(port)).start() if health_address else None
    logging.getLogger(__name__).info("agent %s started; namespaces %s", name, ", ".join(namespace))
    try:
        loop.run()
    finally:
        if health is not None:
            health.stop()
