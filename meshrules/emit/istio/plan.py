"""Which policies Istio can realise where: route tables after what the clusters already hold.

Place: between the topology and the renderers of `emit_istio`. The route model gives each
destination its table; three things can still make a policy unusable at a destination, each an
INVALID status there (and the policy then contributes nothing there, spec §3.4):

* `MR0315` — a backend or mirror of its routes is not reachable from a cluster whose callers use
  those routes (not local there and not federated into that cluster's mesh with a data path);
* `MR0320` — a user-owned VirtualService already routes the destination's host in a cluster
  where meshrules would write one: every policy routing the destination is INVALID there;
* `MR0321` — a user-owned DestinationRule holds the host whose mTLS/outlier settings or subset
  the policy needs (a subset the user's rule already defines, with the same labels, is fine).

Excluding a policy changes the tables, which can change what is needed, so the plan repeats
until nothing new is excluded (exclusions only grow, so it ends).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

from meshrules.emit.istio.existing import (
    CODE_USER_DESTINATION_RULE,
    CODE_USER_VIRTUAL_SERVICE,
    ExistingConfig,
    conflict_finding,
    subset_defined,
)
from meshrules.emit.istio.subsets import subset_key
from meshrules.emit.istio.topology import IstioTopology
from meshrules.emit.routes import DestinationConfig, RouteTable, destination_configs, route_tables
from meshrules.errors import Diagnostic
from meshrules.model.intent import PolicyStatusEntry

CODE_UNREACHABLE_BACKEND = "MR0315"


@dataclass
class RoutePlan:
    """Route tables and destination settings of the Istio destinations, with what was excluded."""

    tables: dict[str, RouteTable]
    configs: dict[str, DestinationConfig]
    # (destination, caller cluster) → the table as callers there see it; only tables with routes.
    views: dict[tuple[str, str], RouteTable] = field(default_factory=dict)
    statuses: list[PolicyStatusEntry] = field(default_factory=list)
    findings: list[Diagnostic] = field(default_factory=list)


def plan_routes(topo: IstioTopology, existing: ExistingConfig) -> RoutePlan:
    """Route tables with every policy Istio cannot realise excluded, and why."""
    exclude: dict[str, set[str]] = defaultdict(set)
    statuses: dict[tuple[str, str], PolicyStatusEntry] = {}
    findings: dict[tuple[str, str, str], Diagnostic] = {}
    names = sorted(topo.destinations)
    while True:
        tables = route_tables(topo.inp, exclude, names)
        configs = destination_configs(topo.inp, exclude, names)
        views = {
            (name, cluster): table.for_cluster(cluster)
            for name, table in tables.items()
            if table.has_policy_routes
            for cluster in topo.caller_clusters(name)
        }
        new = False
        for entry, finding in _conflicts(topo, existing, tables, views, configs):
            if finding is not None:
                findings.setdefault((finding.code, finding.object, finding.message), finding)
            if entry.destination is not None and entry.policy not in exclude[entry.destination]:
                exclude[entry.destination].add(entry.policy)
                statuses.setdefault((entry.policy, entry.destination), entry)
                new = True
        if not new:
            break
    table_statuses = [s for n in names for s in tables[n].statuses]
    return RoutePlan(tables, configs, views, [*statuses.values(), *table_statuses], list(findings.values()))


Conflict = tuple[PolicyStatusEntry, Diagnostic | None]


def _conflicts(
    topo: IstioTopology,
    existing: ExistingConfig,
    tables: dict[str, RouteTable],
    views: dict[tuple[str, str], RouteTable],
    configs: dict[str, DestinationConfig],
) -> Iterator[Conflict]:
    for (name, cluster), view in views.items():
        yield from _backend_conflicts(topo, existing, name, cluster, view)
        yield from _virtual_service_conflicts(topo, existing, name, cluster, view, tables[name])
    for name in tables:
        yield from _destination_rule_conflicts(topo, existing, name, configs[name])


def _backend_conflicts(
    topo: IstioTopology, existing: ExistingConfig, name: str, cluster: str, view: RouteTable
) -> Iterator[Conflict]:
    """Backends callers in ``cluster`` cannot reach, or whose subset a user DestinationRule lacks."""
    mesh = topo.mesh_of_cluster(cluster)
    for route in view.routes:
        shift, mirror = route.config.traffic_shift, route.config.mirror
        # (target, subset, policy, the field that names the target)
        targets = (
            [(b.destination, b.subset, shift.policy, "spec.policy.trafficShift.destinations") for b in shift.value]
            if shift
            else []
        )
        if mirror is not None:
            targets.append((mirror.value.destination, (), mirror.policy, "spec.policy.mirror.service"))
        for target, subset, policy, field_path in targets:
            target_host = topo.host_of(target, cluster)
            if target_host is None:
                message = (
                    f"it sends traffic for `{name}` to `{target}`, which callers in cluster `{cluster}` "
                    f"cannot reach (not federated into `{mesh.name if mesh else cluster}`)"
                )
                yield _entry(policy, name, CODE_UNREACHABLE_BACKEND, field_path, message), None
                continue
            user = existing.for_host(cluster, "DestinationRule", target_host) if subset else None
            subset_label = subset_key(subset)
            if user is None or subset_defined(user, subset_label, dict(subset)):
                continue
            message = (
                f"its subset `{subset_label}` of `{target}` needs a DestinationRule subset, but user-owned "
                f"DestinationRule `{user.namespace}/{user.name}` holds host `{target_host}` in cluster "
                f"`{cluster}` without it"
            )
            consequence = "meshrules emits no DestinationRule for it; policies needing subsets it lacks are INVALID"
            yield (
                _entry(policy, name, CODE_USER_DESTINATION_RULE, "spec.policy.trafficShift", message),
                conflict_finding(CODE_USER_DESTINATION_RULE, user, target_host, consequence),
            )


def _virtual_service_conflicts(
    topo: IstioTopology, existing: ExistingConfig, name: str, cluster: str, view: RouteTable, table: RouteTable
) -> Iterator[Conflict]:
    """A user VirtualService for the host meshrules would route in ``cluster``."""
    host = topo.host_of(name, cluster)
    user = existing.for_host(cluster, "VirtualService", host) if host and view.has_policy_routes else None
    if user is None or host is None:
        return
    consequence = f"meshrules emits no VirtualService for it, and the policies routing `{name}` are INVALID there"
    finding = conflict_finding(CODE_USER_VIRTUAL_SERVICE, user, host, consequence)
    message = (
        f"user-owned VirtualService `{user.namespace}/{user.name}` already routes host `{host}` in cluster "
        f"`{cluster}`; meshrules does not write a second one"
    )
    for policy in table.policies:
        yield _entry(policy, name, CODE_USER_VIRTUAL_SERVICE, "spec.policy", message), finding


def _destination_rule_conflicts(
    topo: IstioTopology, existing: ExistingConfig, name: str, config: DestinationConfig
) -> Iterator[Conflict]:
    """A user DestinationRule for the local host whose mTLS or outlier detection policies set."""
    dest = topo.destinations[name]
    providers = [
        (p.policy, wire)
        for p, wire in ((config.mtls, "mtls"), (config.outlier_detection, "outlierDetection"))
        if p is not None
    ]
    user = existing.for_host(dest.cluster, "DestinationRule", dest.local_fqdn) if providers else None
    if user is None:
        return
    finding = conflict_finding(
        CODE_USER_DESTINATION_RULE, user, dest.local_fqdn, "meshrules emits no DestinationRule for it"
    )
    message = (
        f"user-owned DestinationRule `{user.namespace}/{user.name}` already configures host `{dest.local_fqdn}` "
        f"in cluster `{dest.cluster}`; meshrules does not write a second one"
    )
    for policy, wire in providers:
        yield _entry(policy, name, CODE_USER_DESTINATION_RULE, f"spec.policy.{wire}", message), finding


def _entry(policy: str, destination: str, code: str, field_path: str, message: str) -> PolicyStatusEntry:
    return PolicyStatusEntry(policy=policy, code=code, message=message, field=field_path, destination=destination)
