"""`describe`: one workload, destination or policy — what applies, what it emits, who reaches what.

Pure over a `Fleet` plus the policies' statuses (spec §3.4). Reachability is read from the
matrix of equivalence classes (`meshrules.sim.matrix`): *outbound* is the row of the workload's
class, *inbound* the column of a destination (or of the destinations a workload backs).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from meshrules.errors import QueryError, UsageError
from meshrules.model.common import PolicyStatus
from meshrules.model.discovery import Destination, Workload
from meshrules.model.policy import AccessPolicy, Policy, TrafficPolicy
from meshrules.sim.access import identity_matches
from meshrules.sim.classes import WorkloadClass, class_key, relevant_label_keys, workload_classes
from meshrules.sim.fleet import Fleet
from meshrules.sim.matrix import Cell, default_port, destination_ref, reachability_matrix

__all__ = ["KINDS", "describe"]

KINDS = ("workload", "destination", "policy")


def describe(
    fleet: Fleet,
    kind: str,
    name: str,
    statuses: Mapping[str, PolicyStatus],
    patches: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
) -> dict[str, Any]:
    """The description of one object (`docs/schemas/describe.schema.json`).

    ``patches`` (cluster → server-side-apply patches of user objects, e.g. Linkerd's export label)
    are listed among what a destination emits, as `Service namespace/name (patch)`.
    """
    if kind == "workload":
        return _workload(fleet, _find_workload(fleet, name), statuses)
    if kind == "destination":
        return _destination(fleet, _find_destination(fleet, name), statuses, patches or {})
    if kind == "policy":
        return _policy(fleet, _find_policy(fleet, name), statuses)
    raise UsageError(f"cannot describe `{kind}`", hint="describe one of: " + ", ".join(KINDS))


# --- finding the object -------------------------------------------------------------------------


def _find_workload(fleet: Fleet, name: str) -> Workload:
    found = fleet.workload_by_ref.get(name) or fleet.workloads.get(name)
    if found is None:
        raise QueryError(
            f"no workload `{name}`",
            hint="name it `cluster/namespace/controller` or by its discovery name; `meshrules discover` lists them",
        )
    return found


def _find_destination(fleet: Fleet, name: str) -> Destination:
    found = fleet.destination_by_ref.get(name) or fleet.destinations.get(name)
    if found is None:
        raise QueryError(
            f"no destination `{name}`",
            hint="name it `cluster/namespace/service` or by its discovery name; `meshrules discover` lists them",
        )
    return found


def _find_policy(fleet: Fleet, name: str) -> Policy:
    if name in fleet.policy_by_ref:
        return fleet.policy_by_ref[name]
    matches = [p for p in fleet.policies if name in (f"{p.namespace}/{p.name}", p.name)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise UsageError(
            f"`{name}` names several policies: " + ", ".join(p.ref for p in matches),
            hint="write it as `Kind namespace/name`",
        )
    raise QueryError(f"no policy `{name}`", hint="name it `Kind namespace/name`, `namespace/name` or `name`")


# --- pieces ---------------------------------------------------------------------------------------


def _class_of(fleet: Fleet, classes: list[WorkloadClass], w: Workload) -> WorkloadClass:
    keys = relevant_label_keys((o for objs in fleet.objects.values() for o in objs), fleet.policies)
    key = class_key(w, keys)
    return next(c for c in classes if (c.cluster, c.mesh, c.namespace, c.identity, c.labels) == key)


def _emits(fleet: Fleet, parent: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for cluster in sorted(fleet.objects):
        for obj in fleet.mesh_objects(cluster):
            if obj.emitted and parent in obj.parents:
                out[cluster].append(obj.ref)
    return {c: sorted(v) for c, v in out.items()}


def _with_patches(emits: dict[str, list[str]], cluster: str, patched: list[str]) -> dict[str, list[str]]:
    if not patched:
        return emits
    out = dict(emits)
    out[cluster] = sorted({*out.get(cluster, []), *patched})
    return dict(sorted(out.items()))


def _errors(
    statuses: Mapping[str, PolicyStatus], destination: str | None = None, policy: str | None = None
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for ref, status in sorted(statuses.items()):
        if policy is not None and ref != policy:
            continue
        if destination is None:
            out += [
                {"policy": ref, "destination": None, "code": e.code, "field": e.field, "message": e.message}
                for e in status.errors
            ]
        for dname, dstatus in sorted(status.destinations.items()):
            if destination is None or dname == destination:
                out += [
                    {"policy": ref, "destination": dname, "code": e.code, "field": e.field, "message": e.message}
                    for e in dstatus.errors
                ]
    return out


def _applied(fleet: Fleet, ref: str, role: str) -> dict[str, Any]:
    return {"policy": ref, "location": fleet.locate(ref), "role": role}


def _cells(cells: list[Cell]) -> list[dict[str, Any]]:
    return [c.to_json() for c in sorted(cells, key=lambda c: (c.source, c.destination))]


# --- the three kinds --------------------------------------------------------------------------------


def _workload(fleet: Fleet, w: Workload, statuses: Mapping[str, PolicyStatus]) -> dict[str, Any]:
    classes = workload_classes(fleet)
    own = _class_of(fleet, classes, w)
    mesh = fleet.meshes.get(w.mesh)
    applies: list[dict[str, Any]] = []
    for p in fleet.policies:
        if isinstance(p, TrafficPolicy) and _selects_source(p, w):
            applies.append(_applied(fleet, p.ref, "source"))
    for rule in fleet.intent.access:
        if any(identity_matches(s, w, mesh) for s in rule.sources) or not rule.sources:
            entry = _applied(fleet, rule.policy, "allowed-caller")
            if entry not in applies:
                applies.append(entry)
    member = fleet.membership.get(w.mesh)
    if member is not None and member.virtual_mesh is not None:
        applies.append(_applied(fleet, member.virtual_mesh, "mesh-member"))
    backs = [d for d in fleet.destinations.values() if w.name in d.workloads]
    outbound = reachability_matrix(fleet, [own]).cells
    inbound = reachability_matrix(fleet, classes, backs).cells if backs else ()
    emits: dict[str, list[str]] = defaultdict(list)
    for d in backs:
        for cluster, refs in _emits(fleet, f"Destination meshrules-system/{d.name}").items():
            emits[cluster] += refs
    return {
        "kind": "workload",
        "name": f"{w.cluster}/{w.namespace}/{w.controller.name}",
        "object": {
            "cluster": w.cluster,
            "namespace": w.namespace,
            "mesh": w.mesh,
            "identity": w.identity,
            "serviceAccount": w.service_account,
            "labels": dict(w.pod_labels),
            "destinations": sorted(destination_ref(d) for d in backs),
            "class": own.to_json(),
        },
        "applies": sorted(applies, key=lambda a: (a["role"], a["policy"])),
        "emits": {c: sorted(set(v)) for c, v in sorted(emits.items())},
        "outbound": _cells(list(outbound)),
        "inbound": _cells(list(inbound)),
        "errors": [],
    }


def _selects_source(p: TrafficPolicy, w: Workload) -> bool:
    return bool(p.spec.source_selector) and any(
        (not s.clusters or w.cluster in s.clusters)
        and (not s.namespaces or w.namespace in s.namespaces)
        and all(w.pod_labels.get(k) == v for k, v in s.labels.items())
        for s in p.spec.source_selector
    )


def _patched(d: Destination, patches: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[str]:
    """The patches of D's own Service (the user keeps owning it; meshrules owns only the patched fields)."""
    return [
        f"Service {d.namespace}/{d.service} (patch)"
        for patch in patches.get(d.cluster, ())
        if patch.get("kind") == "Service"
        and (patch.get("metadata", {}).get("namespace"), patch.get("metadata", {}).get("name"))
        == (d.namespace, d.service)
    ]


def _destination(
    fleet: Fleet,
    d: Destination,
    statuses: Mapping[str, PolicyStatus],
    patches: Mapping[str, Sequence[Mapping[str, Any]]],
) -> dict[str, Any]:
    applies = [_applied(fleet, a.policy, "traffic") for a in fleet.traffic.get(d.name, ())]
    applies += [_applied(fleet, r.policy, "access") for r in fleet.access.get(d.name, ())]
    member = fleet.membership.get(d.mesh or "")
    if member is not None and member.virtual_mesh is not None:
        applies.append(_applied(fleet, member.virtual_mesh, "mesh-member"))
    federation = [{"mesh": e.mesh, "host": e.host} for e in fleet.intent.federation if e.destination == d.name]
    blocked = [
        {"mesh": b.mesh, "reason": b.reason.value, "message": b.message}
        for b in fleet.intent.blocked
        if b.destination == d.name
    ]
    classes = workload_classes(fleet)
    inbound = reachability_matrix(fleet, classes, [d]).cells
    return {
        "kind": "destination",
        "name": destination_ref(d),
        "object": {
            "cluster": d.cluster,
            "namespace": d.namespace,
            "service": d.service,
            "mesh": d.mesh,
            "ports": [p.port for p in d.ports],
            "defaultPort": default_port(d),
            "host": d.local_fqdn,
            "workloads": list(d.workloads),
            "subsets": {k: list(v) for k, v in d.subsets.items()},
            "federatedAs": federation,
            "notFederated": blocked,
        },
        "applies": sorted(applies, key=lambda a: (a["role"], a["policy"])),
        "emits": _with_patches(
            _emits(fleet, f"Destination meshrules-system/{d.name}"), d.cluster, _patched(d, patches)
        ),
        "outbound": [],
        "inbound": _cells(list(inbound)),
        "errors": _errors(statuses, destination=d.name),
    }


def _policy(fleet: Fleet, p: Policy, statuses: Mapping[str, PolicyStatus]) -> dict[str, Any]:
    status = statuses.get(p.ref)
    obj: dict[str, Any] = {
        "kind": p.kind,
        "namespace": p.namespace,
        "name": p.name,
        "location": fleet.locate(p.ref),
        "state": status.state if status is not None else None,
    }
    inbound: list[Cell] = []
    if isinstance(p, AccessPolicy):
        dests = sorted({r.destination for r in fleet.intent.access if r.policy == p.ref})
        obj["destinations"] = dests
        chosen = [fleet.destinations[n] for n in dests if n in fleet.destinations]
        inbound = list(reachability_matrix(fleet, None, chosen).cells) if chosen else []
    elif isinstance(p, TrafficPolicy):
        obj["destinations"] = sorted({a.destination for a in fleet.intent.traffic if a.policy == p.ref})
        obj["fields"] = sorted({f for a in fleet.intent.traffic if a.policy == p.ref for f in a.fields})
    else:
        obj["meshes"] = sorted(m.mesh for m in fleet.intent.memberships if m.virtual_mesh == p.ref)
        obj["federated"] = sorted(
            f"{e.destination} -> {e.mesh}" for e in fleet.intent.federation if e.virtual_mesh == p.ref
        )
    if status is not None:
        obj["status"] = status.model_dump(mode="json", by_alias=True, exclude_none=True)
    return {
        "kind": "policy",
        "name": p.ref,
        "object": obj,
        "applies": [],
        "emits": _emits(fleet, f"{p.kind} {p.namespace}/{p.name}"),
        "outbound": [],
        "inbound": _cells(inbound),
        "errors": _errors(statuses, policy=p.ref),
    }
