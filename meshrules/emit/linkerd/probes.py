"""Keeping kubelet probes working on Servers that have inbound HTTPRoutes.

Linkerd authorizes a pod's HTTP probe paths by itself — from the policy controller's probe networks
— on ports without a Server and on Servers without HTTPRoutes; "when a route is configured for the
Server, the probe routes are no longer authorized by default" (linkerd2 #8945 / PR #9008). meshrules
attaches routes to a Server only for method or path restrictions, and then adds what Linkerd's own
booksapp example does ("Configuring Per-Route Authorization Policy"): a route for the probe paths
(`GET`, exact paths) authorized by a `NetworkAuthentication` of every network, the default of the
policy controller's `probeNetworks` (`0.0.0.0/0`, `::/0`).

Gap: discovery does not read the probes of pod templates (`Workload` has container ports only), so
the probe paths are Kubernetes' and Linkerd's conventional health paths (`PROBE_PATHS`), on every
Server that gets routes, and a finding says so. A workload probing another path fails its probes
until that path is allowed by an AccessPolicy (or discovery learns probe paths: then
`probe_paths` is the one place to change).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from meshrules.emit.linkerd.operations import Operation, PathMatch

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


def probe_paths() -> tuple[str, ...]:
    """The probe paths to authorize on a Server with routes (see the module docstring's gap)."""
    return PROBE_PATHS


def probe_operations() -> tuple[Operation, ...]:
    """The kubelet's probe requests: `GET` on each probe path."""
    return tuple(Operation(PathMatch("exact", p), "GET") for p in probe_paths())


def network_authentication(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The NetworkAuthentication that admits probes from the probe networks."""
    return {
        "apiVersion": NETWORK_AUTHENTICATION_API_VERSION,
        "kind": "NetworkAuthentication",
        "metadata": dict(metadata),
        "spec": {"networks": [{"cidr": cidr} for cidr in PROBE_NETWORKS]},
    }
