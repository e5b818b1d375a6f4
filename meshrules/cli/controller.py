"""`meshrules controller`: run the reconciler until SIGTERM or Ctrl-C (spec §8).

In a pod it uses the pod's service account (no kubeconfig) and must bind its health endpoint to
the pod address (`--health-address 0.0.0.0:8080`) for the kubelet's probes; elsewhere the
default, 127.0.0.1, keeps the endpoint private.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
from pathlib import Path
from types import FrameType

import typer

from meshrules.cli.app import app, handles_errors
from meshrules.errors import UsageError
from meshrules.model.common import MANAGEMENT_NAMESPACE


@app.command("controller")
@handles_errors
def controller_command(
    context: str | None = typer.Option(
        None, "--context", help="Management cluster context (default: in-cluster, or current)."
    ),
    kubeconfig: Path | None = typer.Option(
        None, "--kubeconfig", help="Kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)."
    ),
    namespace: str = typer.Option(MANAGEMENT_NAMESPACE, "--namespace", help="The management namespace."),
    identity: str | None = typer.Option(
        None, "--identity", help="This replica's name in the Lease (default: host name)."
    ),
    health_address: str = typer.Option(
        "127.0.0.1:8080", "--health-address", help="HOST:PORT of /metrics, /healthz, /readyz."
    ),
    lease_seconds: float = typer.Option(15.0, "--lease-seconds", help="How long the leader Lease is valid."),
    debounce: float = typer.Option(0.5, "--debounce", help="Quiet seconds before reconciling a burst of changes."),
) -> None:
    """Watch the management and registered clusters; reconcile discovery, outputs and statuses."""
    # Imported here: loading the kubernetes client costs every other command a tenth of a second.
    from meshrules.kube.client import KubeCluster
    from meshrules.kube.controller import Controller, ControllerSettings
    from meshrules.kube.leader import LeaseTiming
    from meshrules.kube.metrics import HealthServer, Metrics
    from meshrules.kube.translation import default_translate

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    host, _, port = health_address.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"`{health_address}` is not HOST:PORT", code="MR0002", hint="for example 127.0.0.1:8080")
    settings = ControllerSettings(
        namespace=namespace,
        identity=identity or socket.gethostname(),
        debounce=debounce,
        # client-go's proportions: renew deadline 2/3 of the lease, a retry every 2/15 of it.
        lease=LeaseTiming(lease=lease_seconds, renew_deadline=lease_seconds * 2 / 3, retry=lease_seconds * 2 / 15),
    )
    management = KubeCluster.from_kubeconfig(context, kubeconfig, name="management", identity=settings.identity)

    def connect(name: str, text: str) -> KubeCluster:
        return KubeCluster.from_kubeconfig_text(text, name=name, identity=settings.identity)

    metrics = Metrics()
    controller = Controller(management, default_translate(metrics), connect, settings, metrics)
    health = HealthServer(controller.metrics, controller.alive, controller.ready, host, int(port)).start()
    done = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    controller.start()
    logging.getLogger(__name__).info("controller %s started; health on %s:%s", settings.identity, host, health.port)
    try:
        done.wait()
    finally:
        controller.stop(release=True)
        health.stop()
