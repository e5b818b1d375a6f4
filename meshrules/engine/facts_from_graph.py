"""Fact extraction: the service graph and its policies as the base relations of ``rules/facts.rules``.

Place: between ``meshrules.graph`` (what was discovered, selectors resolved through indexes)
and evaluation. It decides nothing: it writes down what exists and what each policy says, and
the selections the graph already resolved, so the rules never rescan the fleet. Every fact gets
a *source* an explanation ends at: the policy's ``file:line`` (the line of the field the fact
comes from, when the scenario knows it), or ``cluster/Kind/namespace/name`` of a discovered
object.

Granularity stays linear in the fleet: a TrafficPolicy's sources are its selector list (one
``tp_scope`` fact), never its workloads; an AccessPolicy's sources are its selector entries plus
the identities the graph resolved — nothing is a product of sources and destinations.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from meshrules.engine.facts import Facts
from meshrules.graph import ServiceGraph
from meshrules.model.common import ClusterObjectRef
from meshrules.model.discovery import Destination, Mesh, MeshType, Workload
from meshrules.model.policy import AccessPolicy, Policy, TrafficPolicy, VirtualMesh
from meshrules.model.scenario import Scenario
from meshrules.model.validation import validate_policy


def discovered_source(cluster: str, kind: str, namespace: str, name: str) -> str:
    """``cluster/Kind/namespace/name`` (``cluster/Kind/name`` for cluster-scoped objects)."""
    return f"{cluster}/{kind}/{namespace}/{name}" if namespace else f"{cluster}/{kind}/{name}"


def mesh_config_map(mesh: Mesh) -> str:
    """The ConfigMap holding a mesh's configuration, in the mesh's namespace."""
    if mesh.type == MeshType.LINKERD:
        return "linkerd-config"
    return "istio" if mesh.revision in (None, "", "default") else f"istio-{mesh.revision}"


class _Sources:
    """Where each policy (and each of its fields) was written; `Kind namespace/name` without a scenario."""

    def __init__(self, scenario: Scenario | None) -> None:
        self.scenario = scenario

    def of(self, policy: Policy, path: str = "") -> str:
        if self.scenario is not None:
            found = self.scenario.location_of(policy.ref, path)
            if found is not None:
                return str(found)
        return policy.ref


def extract_facts(graph: ServiceGraph, scenario: Scenario | None = None) -> Facts:
    """The base facts of ``graph`` and its policies (``scenario`` adds file:line sources and namespaces)."""
    facts = Facts()
    sources = _Sources(scenario)
    _clusters(facts, graph, scenario)
    for mesh in graph.meshes.values():
        _mesh(facts, mesh)
    for workload in graph.workloads.values():
        _workload(facts, workload)
    for destination in graph.destinations.values():
        _destination(facts, destination)
    ranked = sorted(graph.policies, key=lambda p: (p.kind, *p.acceptance_key()))
    rank = acceptance_ranks(ranked)
    for policy in ranked:
        facts.add_object(policy.ref, policy)
        if isinstance(policy, VirtualMesh):
            _virtual_mesh(facts, graph, policy, rank[policy.ref], sources)
        elif isinstance(policy, TrafficPolicy):
            _traffic_policy(facts, graph, policy, rank[policy.ref], sources)
        else:
            _access_policy(facts, graph, policy, rank[policy.ref], sources)
    return facts


def acceptance_ranks(policies: Iterable[Policy]) -> dict[str, int]:
    """Each policy's acceptance rank within its kind: 0 is the earliest accepted (spec §3)."""
    rank: dict[str, int] = {}
    per_kind: dict[str, int] = {}
    for policy in sorted(policies, key=lambda p: (p.kind, *p.acceptance_key())):
        rank[policy.ref] = per_kind.get(policy.kind, 0)
        per_kind[policy.kind] = rank[policy.ref] + 1
    return rank


def policy_facts(graph: ServiceGraph, policy: Policy, rank: int, scenario: Scenario | None = None) -> Facts:
    """The base facts of one policy at acceptance ``rank`` (for re-evaluating after an edit)."""
    facts = Facts()
    facts.add_object(policy.ref, policy)
    sources = _Sources(scenario)
    if isinstance(policy, VirtualMesh):
        _virtual_mesh(facts, graph, policy, rank, sources)
    elif isinstance(policy, TrafficPolicy):
        _traffic_policy(facts, graph, policy, rank, sources)
    else:
        _access_policy(facts, graph, policy, rank, sources)
    return facts


# --- discovered ------------------------------------------------------------------------------------


def _clusters(facts: Facts, graph: ServiceGraph, scenario: Scenario | None) -> None:
    snapshots = {c.name: c for c in scenario.clusters} if scenario is not None else {}
    for cluster in graph.discovery.clusters:
        snapshot = snapshots.get(cluster.name)
        if snapshot is not None and snapshot.config is not None:
            where = str(snapshot.config.location)
        else:
            where = discovered_source(cluster.name, "KubernetesCluster", "", cluster.name)
        facts.add("cluster", (cluster.name, cluster.cluster_domain), source=where)
        if snapshot is None:
            continue
        # A namespace exists when its Namespace object is in the snapshot; snapshots taken
        # without Namespace objects still show the namespaces their objects live in.
        declared = {o.name for o in snapshot.objects if o.kind == "Namespace"}
        for ns in sorted(declared):
            facts.add(
                "namespace_in_cluster", (cluster.name, ns), source=discovered_source(cluster.name, "Namespace", "", ns)
            )
        for obj in snapshot.objects:
            if obj.namespace and obj.namespace not in declared:
                facts.add(
                    "namespace_in_cluster",
                    (cluster.name, obj.namespace),
                    source=discovered_source(cluster.name, obj.kind, obj.namespace, obj.name),
                )
    for mesh in graph.meshes.values():
        # Live graphs have no snapshot: a mesh's and its workloads' namespaces exist for sure.
        facts.add("namespace_in_cluster", (mesh.cluster, mesh.namespace), source=_mesh_source(mesh))
    for w in graph.workloads.values():
        facts.add("namespace_in_cluster", (w.cluster, w.namespace), source=_workload_source(w))


def _mesh_source(mesh: Mesh) -> str:
    return discovered_source(mesh.cluster, "Deployment", mesh.namespace, mesh.control_plane)


def _mesh(facts: Facts, mesh: Mesh) -> None:
    where = _mesh_source(mesh)
    facts.add("mesh", (mesh.name, mesh.type.value, mesh.cluster, mesh.namespace, mesh.trust_domain), source=where)
    config = mesh_config_map(mesh)
    config_source = discovered_source(mesh.cluster, "ConfigMap", mesh.namespace, config)
    facts.add("mesh_config", (mesh.name, config), source=config_source)
    for domain in mesh.accepted_trust_domains:
        facts.add("mesh_accepts", (mesh.name, domain), source=config_source)
    for domain in mesh.trust_domain_aliases:
        facts.add("mesh_alias", (mesh.name, domain), source=config_source)
    facts.add("mesh_dns_capture", (mesh.name, mesh.dns_capture), source=config_source)
    roots = "istio-ca-root-cert" if mesh.type == MeshType.ISTIO else "linkerd-identity-trust-roots"
    for fingerprint in mesh.trust_roots:
        facts.add(
            "mesh_root",
            (mesh.name, fingerprint),
            source=discovered_source(mesh.cluster, "ConfigMap", mesh.namespace, roots),
        )
    for gw in mesh.gateways:
        gid = f"{mesh.name}/{gw.service}"
        gw_source = discovered_source(mesh.cluster, "Service", gw.namespace, gw.service)
        facts.add("gateway", (gid, mesh.name, gw.kind.value, gw.namespace, gw.service), source=gw_source)
        if gw.address:
            facts.add("gateway_address", (gid, gw.address, gw.port or 0), source=gw_source)
    facts.add_object(mesh.name, mesh)


def _workload_source(w: Workload) -> str:
    return discovered_source(w.cluster, w.controller.kind, w.namespace, w.controller.name)


def _workload(facts: Facts, w: Workload) -> None:
    where = _workload_source(w)
    facts.add("workload", (w.name, w.mesh, w.cluster, w.namespace, w.identity), source=where)
    facts.add("workload_labels", (w.name, w.pod_labels), source=where)
    if w.identity:
        facts.add(
            "identity",
            (w.identity, w.cluster, w.namespace, w.service_account, w.mesh),
            source=discovered_source(w.cluster, "ServiceAccount", w.namespace, w.service_account),
        )
    facts.add_object(w.name, w)


def _destination(facts: Facts, d: Destination) -> None:
    if d.mesh is None:
        return  # not in a mesh (finding MR0131 of discovery): no policy can act on it
    where = discovered_source(d.cluster, "Service", d.namespace, d.service)
    facts.add("destination", (d.name, d.mesh, d.cluster, d.namespace, d.service), source=where)
    facts.add("destination_labels", (d.name, d.labels), source=where)
    for port in d.ports:
        facts.add("destination_port", (d.name, port.port, port.name or ""), source=where)
    for w in d.workloads:
        facts.add("destination_workload", (d.name, w), source=where)
    facts.add_object(d.name, d)


# --- policies --------------------------------------------------------------------------------------


def _created(policy: Policy) -> str:
    ts = policy.metadata.creation_timestamp
    return ts.isoformat() if ts is not None else ""


def _spec_errors(facts: Facts, relation: str, policy: Policy, sources: _Sources) -> None:
    for err in validate_policy(policy):
        facts.add(relation, (policy.ref, err.code, err.field, err.message), source=sources.of(policy, err.field))


def _virtual_mesh(facts: Facts, graph: ServiceGraph, vm: VirtualMesh, rank: int, sources: _Sources) -> None:
    ref, spec = vm.ref, vm.spec
    facts.add("virtual_mesh", (ref, rank, _created(vm)), source=sources.of(vm))
    _spec_errors(facts, "vm_spec_error", vm, sources)
    for i, mesh_ref in enumerate(spec.meshes):
        where = sources.of(vm, f"spec.meshes[{i}]")
        facts.add("vm_names_mesh", (ref, i, mesh_ref.name), source=where)
        if mesh_ref.name in graph.meshes:
            facts.add("vm_member", (ref, mesh_ref.name), source=where)
    if spec.trust is None:
        trust, trust_field = "unmanaged", "spec"
    elif spec.trust.shared is not None:
        trust, trust_field = "shared", "spec.trust.shared"
    else:
        trust, trust_field = "limited", "spec.trust.limited"
    facts.add("vm_trust", (ref, trust), source=sources.of(vm, trust_field))
    facts.add(
        "vm_enforcement",
        (ref, spec.access_policy_enforcement.value),
        source=sources.of(vm, "spec.accessPolicyEnforcement"),
    )
    fed = spec.federation
    facts.add("vm_hostname_suffix", (ref, fed.hostname_suffix), source=sources.of(vm, "spec.federation.hostnameSuffix"))
    facts.add("vm_linkerd_mode", (ref, fed.linkerd.mode.value), source=sources.of(vm, "spec.federation.linkerd"))
    if not fed.selectors:
        # Omitted (or empty, as an empty selector list is everywhere else): everything, everywhere.
        facts.add("vm_federates_all", (ref,), source=sources.of(vm, "spec.federation"))
        return
    for i, selector in enumerate(fed.selectors):
        where = sources.of(vm, f"spec.federation.selectors[{i}]")
        for d in sorted(graph.select_destinations(selector.destinations)):
            facts.add("vm_selector_destination", (ref, i, d), source=where)
        if not selector.meshes:
            facts.add("vm_selector_any_mesh", (ref, i), source=where)
        for j, mesh_ref in enumerate(selector.meshes):
            if mesh_ref.name in graph.meshes:
                facts.add(
                    "vm_selector_mesh",
                    (ref, i, mesh_ref.name),
                    source=sources.of(vm, f"spec.federation.selectors[{i}].meshes[{j}]"),
                )


def _wire(items: Iterable[Any]) -> list[dict[str, Any]]:
    return [item.to_wire() for item in items]


def _backend(ref: ClusterObjectRef) -> tuple[str, str, str]:
    return (ref.cluster or "", ref.namespace or "", ref.name)


def _comparable(field: str, value: Any) -> Any:
    """A field's value as the conflict rule compares it: a weighted split is a set of backends.

    Two equally specific policies listing the same backends in another order set the same
    `trafficShift` (Envoy's weighted clusters have no order), so they must not conflict (§3.2).
    """
    if field == "trafficShift" and isinstance(value, Mapping) and isinstance(value.get("destinations"), list):
        backends = sorted(value["destinations"], key=lambda b: json.dumps(b, sort_keys=True))
        return {**value, "destinations": backends}
    return value


def _traffic_policy(facts: Facts, graph: ServiceGraph, tp: TrafficPolicy, rank: int, sources: _Sources) -> None:
    ref, spec = tp.ref, tp.spec
    facts.add("traffic_policy", (ref, rank, _created(tp)), source=sources.of(tp))
    _spec_errors(facts, "tp_spec_error", tp, sources)
    selection = graph.selection(tp)
    where = sources.of(tp, "spec.destinationSelector")
    for d in sorted(selection.destinations):
        facts.add("tp_selects_destination", (ref, d), source=where)
    facts.add(
        "tp_scope",
        (ref, _wire(spec.source_selector), _wire(spec.http_request_matchers)),
        source=sources.of(tp, "spec.sourceSelector" if spec.source_selector else "spec"),
    )
    settings = spec.policy.to_wire()
    for name, value in settings.items():
        facts.add("tp_sets", (ref, name, _comparable(name, value)), source=sources.of(tp, f"spec.policy.{name}"))
    shift = spec.policy.traffic_shift
    if shift is not None:
        for i, backend in enumerate(shift.destinations):
            path = f"spec.policy.trafficShift.destinations[{i}]"
            facts.add(
                "tp_backend",
                (ref, "trafficShift", path, *_backend(backend.service), backend.subset),
                source=sources.of(tp, path),
            )
            if backend.port is not None:
                facts.add("tp_backend_port", (ref, path, backend.port), source=sources.of(tp, f"{path}.port"))
    mirror = spec.policy.mirror
    if mirror is not None:
        facts.add(
            "tp_backend",
            (ref, "mirror", "spec.policy.mirror", *_backend(mirror.service), {}),
            source=sources.of(tp, "spec.policy.mirror"),
        )
        if mirror.port is not None:
            facts.add(
                "tp_backend_port",
                (ref, "spec.policy.mirror", mirror.port),
                source=sources.of(tp, "spec.policy.mirror.port"),
            )


def _access_policy(facts: Facts, graph: ServiceGraph, ap: AccessPolicy, rank: int, sources: _Sources) -> None:
    ref, spec = ap.ref, ap.spec
    facts.add("access_policy", (ref, rank, _created(ap)), source=sources.of(ap))
    _spec_errors(facts, "ap_spec_error", ap, sources)
    selection = graph.selection(ap)
    where = sources.of(ap, "spec.destinationSelector")
    for d in sorted(selection.destinations):
        facts.add("ap_selects_destination", (ref, d), source=where)
    if not spec.source_selector:
        facts.add("ap_any_source", (ref,), source=sources.of(ap, "spec"))
    else:
        source_where = sources.of(ap, "spec.sourceSelector")
        for identity in sorted(selection.identities):
            facts.add("ap_source_identity", (ref, identity), source=source_where)
        for cluster in sorted(selection.identity_clusters):
            facts.add("ap_source_cluster", (ref, cluster), source=source_where)
    for i, selector in enumerate(spec.source_selector):
        entry = sources.of(ap, f"spec.sourceSelector[{i}]")
        if selector.service_accounts:
            for account in selector.service_accounts:
                facts.add("ap_source_account", (ref, *_backend(account)), source=entry)
            continue
        for cluster in selector.clusters or [""]:
            for namespace in selector.namespaces or [""]:
                facts.add("ap_source_scope", (ref, cluster, namespace), source=entry)
    for i, path in enumerate(spec.allowed_paths):
        facts.add("ap_path", (ref, path), source=sources.of(ap, f"spec.allowedPaths[{i}]"))
    for i, method in enumerate(spec.allowed_methods):
        facts.add("ap_method", (ref, method), source=sources.of(ap, f"spec.allowedMethods[{i}]"))
    for i, port in enumerate(spec.allowed_ports):
        facts.add("ap_port", (ref, port), source=sources.of(ap, f"spec.allowedPorts[{i}]"))


def fact_counts(facts: Facts) -> Mapping[str, int]:
    """How many facts each relation has, sorted by relation (for benchmarks and `rules eval`)."""
    return {name: len(facts.rows(name)) for name in facts.relations()}


__all__ = [
    "acceptance_ranks",
    "discovered_source",
    "extract_facts",
    "fact_counts",
    "mesh_config_map",
    "policy_facts",
]
