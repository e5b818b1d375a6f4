"""meshrules.testing — a test kit for property tests of mesh policy (extra ``meshrules[testing]``).

It sits above every other layer and is used by our own tests and, later, by users' (issue 8):

- ``topology``: a deterministic generator of multi-cluster scenarios (Kubernetes objects per cluster,
  VirtualMeshes, TrafficPolicies, AccessPolicies) as plain dicts; pure, no I/O, no Hypothesis.
- ``strategies``: Hypothesis strategies drawing topologies, selectors, valid and invalid policies
  and requests in the spec's wire format.
- ``helpers``: ``load_scenario`` and ``why`` (a `Verdict` per question) for users' property tests
  (docs/testing.md); the pipeline runs once per scenario object.

The strategies are imported on first use, so the generator works where Hypothesis is not installed
(``benchmarks/generate.py``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from meshrules.testing.helpers import load_scenario, why
from meshrules.testing.topology import (
    MANAGEMENT_NAMESPACE,
    GeneratedService,
    GeneratedWorkload,
    KubeObject,
    Topology,
    TopologyParams,
    generate_topology,
    mesh_name,
)

if TYPE_CHECKING:
    from meshrules.testing.strategies import (
        InvalidPolicy,
        Request,
        access_policies,
        destination_selectors,
        durations,
        identity_selectors,
        invalid_policies,
        label_maps,
        requests,
        topologies,
        topology_params,
        traffic_policies,
        workload_selectors,
    )

_STRATEGY_NAMES = frozenset(
    {
        "InvalidPolicy",
        "Request",
        "access_policies",
        "destination_selectors",
        "durations",
        "identity_selectors",
        "invalid_policies",
        "label_maps",
        "requests",
        "topologies",
        "topology_params",
        "traffic_policies",
        "workload_selectors",
    }
)

__all__ = [
    "MANAGEMENT_NAMESPACE",
    "GeneratedService",
    "GeneratedWorkload",
    "InvalidPolicy",
    "KubeObject",
    "Request",
    "Topology",
    "TopologyParams",
    "access_policies",
    "destination_selectors",
    "durations",
    "generate_topology",
    "identity_selectors",
    "invalid_policies",
    "label_maps",
    "load_scenario",
    "mesh_name",
    "requests",
    "topologies",
    "topology_params",
    "traffic_policies",
    "why",
    "workload_selectors",
]


def __getattr__(name: str) -> Any:
    """Import the Hypothesis strategies when one of them is first asked for."""
    if name in _STRATEGY_NAMES:
        value = getattr(importlib.import_module("meshrules.testing.strategies"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
