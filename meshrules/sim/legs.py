"""One backend of a routed request, judged from the caller's sidecar to the destination's pods.

`meshrules.sim.why` routes a request on the caller's side (`meshrules.sim.istio.routing` or
`meshrules.sim.linkerd.routing`); each weighted backend of the route is then a *leg* judged here,
in the order the request meets each check (API §6 `PATH_ORDER`):

1. federation — a backend in another cluster needs the rule set's federation edge into the
   caller's mesh (else NOT_FEDERATED, with the intent's blocked reason) and a gateway with an
   address (else NO_GATEWAY_ADDRESS);
2. trust — the destination mesh must accept the caller's trust domain (`acceptedTrustDomains`,
   TRUST_DOMAIN_REJECTED) and the two meshes' published roots must overlap
   (`bundles_overlap`, MTLS_MISMATCH);
3. mTLS — for an Istio destination, DestinationRule TLS against PeerAuthentication
   (`meshrules.sim.istio.mtls`, MTLS_MISMATCH);
4. authorization at each pod the backend may land on: Istio AuthorizationPolicies
   (`meshrules.sim.istio.authz`) or Linkerd's inbound policy (`meshrules.sim.linkerd.policy`).
   A denial is DENIED_EXPLICIT (a DENY), DENIED_ENFORCED (the destination's mesh enforces access
   and no AccessPolicy selects the destination) or DENIED_DEFAULT (ALLOW policies exist for the
   destination, none matched — with or without enforcement). In Linkerd's
   gateway mode the destination sees the gateway's identity: an allow then carries the cause
   GATEWAY_IDENTITY.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from meshrules.discovery.trust_bundle import bundles_overlap
from meshrules.model.discovery import Destination, Mesh, MeshType, Workload
from meshrules.sim.authorization import authorize
from meshrules.sim.call import Call, Leg, target_port
from meshrules.sim.fleet import Fleet
from meshrules.sim.istio.mtls import client_tls, connection, trust_domain_accepted
from meshrules.sim.istio.routing import DestinationRuleChoice
from meshrules.sim.objects import Hop, subset_of
from meshrules.sim.verdict import (
    ALLOWED,
    GATEWAY_IDENTITY,
    MTLS_MISMATCH,
    NO_GATEWAY_ADDRESS,
    NO_HEALTHY_UPSTREAM,
    NOT_FEDERATED,
    TRUST_DOMAIN_REJECTED,
    Backend,
    Step,
    first_code,
)

__all__ = ["judge", "not_federated_reason", "stopped"]


def stopped(
    dest_ref: str,
    subset: tuple[tuple[str, str], ...] | None,
    weight: int,
    code: str,
    reason: str,
    hops: Sequence[Hop] = (),
) -> Leg:
    """A leg that never reaches a pod."""
    return Leg(Backend(dest_ref, subset, weight, False, code, reason, tuple(hops)))


def own_hops(call: Call, hops: Sequence[Hop]) -> list[Hop]:
    """Hops of a (memoised) route with the caller's own proxy named."""
    name = call.caller.controller.name
    return [replace(h, name=name) if h.kind in ("sidecar", "linkerd-proxy") and h.name != name else h for h in hops]


def judge(
    call: Call,
    dest: Destination,
    subset: tuple[tuple[str, str], ...] | None,
    weight: int,
    service_port: int,
    hops: Sequence[Hop],
    *,
    destination_rule: DestinationRuleChoice | None = None,
    subset_name: str | None = None,
    identity_seen: str | None = None,
    protocol: str = "http",
    leg_causes: Sequence[str] = (),
) -> Leg:
    """Judge one routed backend: federation, trust, mTLS, then authorization at each pod."""
    fleet = call.fleet
    ref = f"{dest.cluster}/{dest.namespace}/{dest.service}"
    dest_mesh = fleet.meshes.get(dest.mesh or "")
    hops = own_hops(call, hops)
    leg = Leg(Backend(ref, subset, weight, False, ALLOWED, port=service_port))
    codes: list[str] = []
    reasons: list[str] = []
    # 1. federation
    if dest.cluster != call.caller.cluster:
        problem = _federation(call, dest, dest_mesh, leg)
        if problem is not None:
            code, reason = problem
            leg.backend = Backend(ref, subset, weight, False, code, reason, tuple(hops[:1]), port=service_port)
            return leg
    # 2. trust between meshes
    if dest_mesh is not None and call.mesh is not None and dest_mesh.name != call.mesh.name:
        codes += _trust(call.mesh, dest_mesh, reasons)
    workloads = [
        fleet.workloads[w]
        for w in dest.workloads
        if w in fleet.workloads and subset_of(dict(subset or ()), fleet.workloads[w].pod_labels)
    ]
    path_hops = [h for h in hops if h.kind != "destination"]
    path_hops += [Hop("destination", w.controller.name, cluster=dest.cluster) for w in workloads]
    if not workloads:
        leg.backend = Backend(
            ref,
            subset,
            weight,
            False,
            NO_HEALTHY_UPSTREAM,
            f"no pod of {ref} has the subset labels {dict(subset or ())}",
            tuple(path_hops),
            port=service_port,
        )
        return leg
    mtls_all = True
    identity = identity_seen if identity_seen is not None else call.caller.identity
    causes: list[str] = list(leg_causes)
    for w in workloads:
        # 3. mTLS
        mtls, code, reason = _mtls(call, dest, dest_mesh, w, service_port, destination_rule, subset_name, leg)
        mtls_all = mtls_all and mtls
        if code != ALLOWED:
            codes.append(code)
            reasons.append(reason)
            continue
        # 4. authorization
        code, reason = _authorize(call, dest, dest_mesh, w, service_port, mtls, identity, protocol, leg)
        codes.append(code)
        if code != ALLOWED:
            reasons.append(reason)
    final, others = first_code(codes)
    if final == ALLOWED and identity != call.caller.identity and GATEWAY_IDENTITY in causes:
        reasons.append(f"the destination sees the gateway identity `{identity}`, not the caller's")
    else:
        causes = [c for c in causes if c != GATEWAY_IDENTITY]
    # API §6: the code is the first obstacle along the path; the later ones met on this backend
    # (a method the policy does not allow behind a rejected trust domain) are its causes.
    causes = [*others, *causes]
    leg.backend = Backend(
        ref,
        subset,
        weight,
        final == ALLOWED,
        final,
        "; ".join(dict.fromkeys(reasons)) or f"{ref} allows the request",
        tuple(path_hops),
        mtls_all,
        tuple(causes),
        service_port,
    )
    return leg


def _federation(call: Call, dest: Destination, dest_mesh: Mesh | None, leg: Leg) -> tuple[str, str] | None:
    """NOT_FEDERATED or NO_GATEWAY_ADDRESS for a backend in another cluster, else record the edge."""
    fleet = call.fleet
    caller_mesh = call.caller.mesh
    edge = fleet.edge.get((dest.name, caller_mesh))
    if edge is None:
        return NOT_FEDERATED, not_federated_reason(fleet, dest, caller_mesh)
    leg.cited.add(edge.virtual_mesh)
    gateway = fleet.gateway(dest_mesh) if dest_mesh is not None else None
    member = fleet.membership.get(caller_mesh)
    remote_discovery = (
        dest_mesh is not None
        and dest_mesh.type == MeshType.LINKERD
        and member is not None
        and member.linkerd_mode == "remote-discovery"
    )
    if gateway is None and not remote_discovery:
        detail = f"{dest.name} is federated into {caller_mesh} as `{edge.host}`, but its mesh's gateway has no address"
        problem: tuple[str, str] | None = (
            NO_GATEWAY_ADDRESS,
            f"{fleet.gateway_gap(dest.mesh)}: nothing carries `{edge.host}` there",
        )
    else:
        via = f" through {gateway[0]}:{gateway[1]}" if gateway is not None and not remote_discovery else " pod-to-pod"
        detail = f"{dest.name} is federated into {caller_mesh} as `{edge.host}`{via}"
        problem = None
    if call.explain:
        rule, sources = fleet.derivation(edge.why)
        leg.steps.append(Step("federation", rule, (fleet.cite_policy(edge.virtual_mesh), *sources), detail))
    return problem


def not_federated_reason(fleet: Fleet, dest: Destination, mesh: str) -> str:
    """Why ``dest`` is not visible in ``mesh``: the rule set's blocked reason, or no common VirtualMesh."""
    blocked = fleet.blocked.get((dest.name, mesh))
    if blocked is not None:
        return f"{blocked.reason.value}: {blocked.message}"
    a, b = fleet.membership.get(mesh), fleet.membership.get(dest.mesh or "")
    if a is None or b is None or a.virtual_mesh is None or a.virtual_mesh != b.virtual_mesh:
        return f"NO_VIRTUAL_MESH: {dest.mesh} and {mesh} are not members of one VirtualMesh, so nothing federates them"
    return f"{dest.name} is not federated into {mesh}"


def _trust(caller_mesh: Mesh, dest_mesh: Mesh, reasons: list[str]) -> list[str]:
    codes: list[str] = []
    if dest_mesh.type == MeshType.ISTIO:
        decision = trust_domain_accepted(
            caller_mesh.trust_domain, dest_mesh.accepted_trust_domains, destination_trust_domain=dest_mesh.trust_domain
        )
        if not decision.accepted:
            codes.append(TRUST_DOMAIN_REJECTED)
            reasons.append(f"{dest_mesh.name}: {decision.reason}")
    if (
        caller_mesh.trust_roots
        and dest_mesh.trust_roots
        and not bundles_overlap(caller_mesh.trust_roots, dest_mesh.trust_roots)
    ):
        codes.append(MTLS_MISMATCH)
        reasons.append(
            f"the trust roots of {caller_mesh.name} and {dest_mesh.name} share no certificate: "
            "neither can verify the other's identities"
        )
    return codes


def _mtls(
    call: Call,
    dest: Destination,
    dest_mesh: Mesh | None,
    w: Workload,
    service_port: int,
    choice: DestinationRuleChoice | None,
    subset_name: str | None,
    leg: Leg,
) -> tuple[bool, str, str]:
    """Whether the connection to pod ``w`` is mTLS, and whether it succeeds."""
    fleet = call.fleet
    caller_istio = call.mesh is not None and call.mesh.type == MeshType.ISTIO
    dest_istio = dest_mesh is not None and dest_mesh.type == MeshType.ISTIO
    if not caller_istio:
        # Linkerd meshes identities automatically between meshed pods; a pod outside Linkerd gets plaintext.
        meshed = dest_mesh is not None and dest_mesh.type == MeshType.LINKERD
        return meshed, ALLOWED, ""
    client = client_tls(choice, service_port, subset_name, client_meshed=True)
    server = None
    if dest_istio:
        server = fleet.peer_authentications(dest.cluster, dest_mesh).server_mode(
            w.namespace, w.pod_labels, target_port(dest, service_port, w)
        )
    decision = connection(client, server, server_meshed=dest_istio)
    leg.assumptions.extend(decision.assumptions)
    if not call.explain:
        return decision.mtls, decision.code, decision.reason
    objects = []
    for ref in decision.objects:
        kind, _, key = ref.partition(" ")
        cluster = dest.cluster if kind == "PeerAuthentication" else call.caller.cluster
        obj = fleet.mesh_object(cluster, kind, key)
        if obj is not None:
            objects.append(obj.cite())
            leg.cited.update(obj.policies)
    if decision.objects or not decision.ok:
        leg.steps.append(Step("mtls", "istio/mtls", tuple(objects), decision.reason))
    return decision.mtls, decision.code, decision.reason


def _authorize(
    call: Call,
    dest: Destination,
    dest_mesh: Mesh | None,
    w: Workload,
    service_port: int,
    mtls: bool,
    identity: str,
    protocol: str,
    leg: Leg,
) -> tuple[str, str]:
    return authorize(
        call, dest, dest_mesh, w, service_port, target_port(dest, service_port, w), mtls, identity, protocol, leg
    )
