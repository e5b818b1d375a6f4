"""Prometheus metrics of the controller and its health endpoint.

Each controller has its own registry (tests run several in one process). The HTTP endpoint
serves `/metrics` (Prometheus text format), `/healthz` (the controller's threads are alive) and
`/readyz` (the management cluster's caches are synced). It binds 127.0.0.1 unless told otherwise;
in a pod, `--health-address 0.0.0.0:8080` lets the kubelet probe it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    """The controller's metrics, in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.reconcile_duration = Histogram(
            "meshrules_reconcile_duration_seconds",
            "Time to read caches, translate and hand outputs to the cluster workers.",
            registry=self.registry,
        )
        self.reconciles = Counter("meshrules_reconciles_total", "Reconciles run.", registry=self.registry)
        self.translations = Counter(
            "meshrules_translations_total",
            "Translations run, per path: how much of the previous translation each reused "
            "(full; unchanged, update, redecide, reemit, each prefixed `rediscover-` when cluster inputs "
            "moved but discovered the same).",
            ["path"],
            registry=self.registry,
        )
        self.errors = Counter(
            "meshrules_reconcile_errors_total",
            "Failed reads, translations or writes, per cluster (`management` for the management cluster).",
            ["cluster"],
            registry=self.registry,
        )
        self.applied = Counter(
            "meshrules_objects_applied_total",
            "Objects written, per cluster and action (create, update, patch, delete, release, status).",
            ["cluster", "action"],
            registry=self.registry,
        )
        self.cluster_up = Gauge(
            "meshrules_cluster_up",
            "1 when the cluster's API server answers, else 0.",
            ["cluster"],
            registry=self.registry,
        )
        self.leader = Gauge("meshrules_leader", "1 while this replica holds the leader Lease.", registry=self.registry)

    def text(self) -> bytes:
        """The metrics in the Prometheus text format."""
        return bytes(generate_latest(self.registry))


class HealthServer:
    """`/metrics`, `/healthz` and `/readyz` on ``host:port`` (port 0: an ephemeral one)."""

    def __init__(
        self,
        metrics: Metrics,
        alive: Callable[[], bool],
        ready: Callable[[], bool],
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        handler = _handler(metrics, alive, ready)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)

    def start(self) -> HealthServer:
        """Start serving."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _handler(metrics: Metrics, alive: Callable[[], bool], ready: Callable[[], bool]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                self._send(200, metrics.text(), CONTENT_TYPE_LATEST)
            elif self.path == "/healthz":
                ok = alive()
                self._send(200 if ok else 500, b"ok\n" if ok else b"stalled\n")
            elif self.path == "/readyz":
                ok = ready()
                self._send(200 if ok else 503, b"ready\n" if ok else b"not ready\n")
            else:
                self._send(404, b"not found\n")

        def _send(self, code: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Probes every few seconds would flood the log."""

    return Handler
