"""What the emitters read: discovered state, the policies, the rule set's intent, existing config."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from meshrules.model.common import MANAGEMENT_NAMESPACE
from meshrules.model.discovery import Destination, KubernetesCluster, Mesh, Workload
from meshrules.model.intent import Intent
from meshrules.model.policy import Policy
from meshrules.model.source import KubeObject


@dataclass(frozen=True)
class EmitInput:
    """Everything an emitter needs; emitters decide nothing the `intent` already decided.

    `existing` holds, per cluster, the mesh config objects already in that cluster (Istio and
    Linkerd kinds, user-owned or meshrules-owned) so emitters can report — never overwrite — a
    user's VirtualService, DestinationRule or ServiceProfile for the same host.
    """

    clusters: tuple[KubernetesCluster, ...]
    meshes: tuple[Mesh, ...]
    workloads: tuple[Workload, ...]
    destinations: tuple[Destination, ...]
    policies: tuple[Policy, ...]
    intent: Intent
    existing: Mapping[str, tuple[KubeObject, ...]] = field(default_factory=dict)
    owner: str = MANAGEMENT_NAMESPACE

    @cached_property
    def cluster_by_name(self) -> Mapping[str, KubernetesCluster]:
        """Clusters by name."""
        return {c.name: c for c in self.clusters}

    @cached_property
    def mesh_by_name(self) -> Mapping[str, Mesh]:
        """Meshes by name."""
        return {m.name: m for m in self.meshes}

    @cached_property
    def workload_by_name(self) -> Mapping[str, Workload]:
        """Workloads by name."""
        return {w.name: w for w in self.workloads}

    @cached_property
    def destination_by_name(self) -> Mapping[str, Destination]:
        """Destinations by name."""
        return {d.name: d for d in self.destinations}

    @cached_property
    def policy_by_ref(self) -> Mapping[str, Policy]:
        """Policies by `Kind namespace/name`."""
        return {p.ref: p for p in self.policies}
