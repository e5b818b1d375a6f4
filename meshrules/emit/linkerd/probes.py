"""Keeping kubelet probes working on Servers that have inbound HTTPRoutes.

Linkerd authorizes a pod's HTTP probe paths by itself — from the policy controller's probe networks
— on ports without a Server and on Servers without HTTPRoutes; "when a route is configured for the
Server, the probe routes are no longer authorized by default" (linkerd2 #8945 / PR #9008). meshrules
attaches routes to a Server only for method or path restrictions, and then adds what Linkerd's own
booksapp example does ("Configuring Per-Route Authorization Policy"): a route for the probe paths
(`GET`, exact paths) authorized by a `NetworkAuthentication` of every network, the default of the
policy controller's `probeNetworks` (`0.0.0.0/0`, `::/0`).

The probe paths are those discovery read from the `httpGet` liveness, readiness and startup probes
of the Server's workloads on the Server's port (`Workload.probes`) — exactly those, and no probe
route when none probes that port. Only where a workload's probes are unknown (`probes` None: a
Workload discovery did not make) are Kubernetes' and Linkerd's conventional health paths
(`PROBE_PATHS`) authorized, and a finding says so (MR0424).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from meshrules.emit.linkerd.operations import Operation, PathMatch
from meshrules.model.discovery import Workload

NETWORK_AUTHENTICATION_API_VERSION = "policy.linkerd.io/v1alpha1"
KUBELET_NAME = "kubelet-probes"
# Linkerd's default `policyController.probeNetworks`: probes may come from any node address.
PROBE_NETWORKS = ("0.0.0.0/0", "::/0")
# Conventional health endpoints: Kubernetes components (`/healthz`, `/livez`, `/readyz`), the
# Linkerd proxy and many frameworks (`/live`, `/ready`, `/health`), Linkerd's booksapp (`/ping`).
PROBE_PATHS = ("/health", "/healthz", "/live", "/livez", "/ping", "/ready", "/readyz")
# The grant key under which probe operations travel with AccessPolicy grants; not a policy name
# (policies are `AccessPolicy ns/name`), so it never collides.
KUBELET = "kubelet"


def probe_paths(workloads: Iterable[Workload], port: int | str) -> tuple[str, ...] | None:
    """The HTTP probe paths of ``workloads`` on pod port ``port`` (a number, or a container port's
    name), sorted; None when some workload's probes are unknown."""
    paths: set[str] = set()
    for w in workloads:
        if w.probes is None:
            return None
        number = port if isinstance(port, int) else next((p.container_port for p in w.ports if p.name == port), None)
        paths.update(p.path for p in w.probes if p.port == number)
    return tuple(sorted(paths))


def probe_operations(paths: Iterable[str]) -> tuple[Operation, ...]:
    """The kubelet's probe requests: `GET` on each probe path (the query is not part of the match)."""
    exact = {"/" + p.partition("?")[0].lstrip("/") for p in paths}
    return tuple(Operation(PathMatch("exact", p), "GET") for p in sorted(exact))


def network_authentication(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The NetworkAuthentication that admits probes from the probe networks."""
    return {
        "apiVersion": NETWORK_AUTHENTICATION_API_VERSION,
        "kind": "NetworkAuthentication",
        "metadata": dict(metadata),
        "spec": {"networks": [{"cidr": cidr} for cidr in PROBE_NETWORKS]},
    }
