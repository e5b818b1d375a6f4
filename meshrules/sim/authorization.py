"""Authorization at a destination pod, per mesh, as one step of a `why` leg.

Istio: the destination cluster's AuthorizationPolicies (emitted and existing) compiled by
`meshrules.sim.istio.authz`, evaluated for the destination workload with the peer identity the
pod sees (none over plaintext). Linkerd: the destination cluster's Servers and policies
(`meshrules.sim.linkerd.policy`) for the destination pod and port. The evaluator's code maps onto
API §6: a default denial where the destination's mesh enforces access and no AccessPolicy selects
the destination is DENIED_ENFORCED; where AccessPolicies select it, DENIED_DEFAULT.

The step cites the mesh objects that decided and, through their `meshrules.io/parents`, the
AccessPolicies behind them, each with the rule that derived its access (`AccessRule.why`) and
where it was written.
"""

from __future__ import annotations

from meshrules.model.discovery import Destination, Mesh, MeshType, Workload
from meshrules.model.intent import Derivation
from meshrules.sim.access import check_rule
from meshrules.sim.call import Call, Denial, Leg, caller_request, enforce
from meshrules.sim.fleet import Fleet, MeshObject
from meshrules.sim.istio.authz import AuthzDecision
from meshrules.sim.linkerd.policy import PolicyDecision
from meshrules.sim.verdict import ALLOWED, DENIED_DEFAULT, DENIED_ENFORCED, DENIED_EXPLICIT, Step

__all__ = ["authorize"]

_DEFAULT_RULE = {"istio": "istio/authorization-policy", "linkerd": "linkerd/inbound-policy"}


def authorize(call: Call, dest: Destination, dest_mesh: Mesh | None, w: Workload, service_port: int,
              port: int | None, mtls: bool, identity: str, protocol: str, leg: Leg) -> tuple[str, str]:
    """Decide the request at pod ``w`` of ``dest``; return the code and the reason."""
    if dest_mesh is not None and dest_mesh.type == MeshType.LINKERD:
        return _linkerd(call, dest, w, service_port, port, mtls, identity, protocol, leg)
    return _istio(call, dest, dest_mesh, w, service_port, port, mtls, identity, protocol, leg)


def _istio(call: Call, dest: Destination, dest_mesh: Mesh | None, w: Workload, service_port: int, port: int | None,
           mtls: bool, identity: str, protocol: str, leg: Leg) -> tuple[str, str]:
    fleet = call.fleet
    principal = identity.removeprefix("spiffe://") if mtls else None
    root = dest_mesh.root_namespace if dest_mesh is not None else None
    # The decision depends on the caller only through what the policies can see of its principal.
    seen = fleet.principal_classes(dest.cluster, dest_mesh).key(principal)
    key = ("istio", dest.cluster, root, w.name, seen, port, protocol, call.host, call.method, call.path,
           call.headers)
    decision: AuthzDecision | None = fleet.authz_memo.get(key)
    if decision is None:
        request = caller_request(call, principal=principal, dest=dest, workload=w, port=port, protocol=protocol)
        decision = fleet.istio_authz(dest.cluster, dest_mesh).evaluate(request)
        fleet.authz_memo[key] = decision
    leg.assumptions.extend(decision.assumptions)
    code = enforce(fleet, dest, decision.code)
    reason = f"{dest.cluster}/{w.controller.name}: {decision.reason}"
    if not mtls and decision.code != ALLOWED:
        reason += " (the request arrives over plaintext, so it carries no peer identity)"
    if call.explain:
        deciding: list[MeshObject] = []
        for applied in decision.applied:
            obj = fleet.mesh_object(dest.cluster, "AuthorizationPolicy", applied)
            if obj is not None:
                leg.cited.update(obj.policies)
                if applied == decision.policy or (not decision.allowed and decision.code != DENIED_EXPLICIT):
                    deciding.append(obj)
        _step(call, dest, code, reason, deciding, service_port, "istio", leg)
    if code != ALLOWED:
        leg.denial = Denial(dest, w, code, service_port, port, principal, decision.policy, decision.rule,
                            decision.misses, "istio")
    return code, reason


def _linkerd(call: Call, dest: Destination, w: Workload, service_port: int, port: int | None, mtls: bool,
             identity: str, protocol: str, leg: Leg) -> tuple[str, str]:
    fleet = call.fleet
    principal = identity if mtls else None
    seen = fleet.linkerd_identity_classes(dest.cluster).key(principal)
    key = ("linkerd", dest.cluster, w.name, seen, port, protocol, call.host, call.method, call.path, call.headers)
    decision: PolicyDecision | None = fleet.authz_memo.get(key)
    if decision is None:
        request = caller_request(call, principal=principal, dest=dest, workload=w, port=port, protocol=protocol)
        decision = fleet.linkerd_policy(dest.cluster).evaluate(fleet.pod(w), request)
        fleet.authz_memo[key] = decision
    # Linkerd cannot know pod addresses offline; the networks of an authorization are assumed to
    # cover the caller (what emitted policies ask: all networks), so this note is not news per answer.
    leg.assumptions.extend(a for a in decision.assumptions if a != "SOURCE_IP_UNKNOWN")
    code = enforce(fleet, dest, decision.code)
    reason = f"{dest.cluster}/{w.controller.name}: {decision.reason}"
    if call.explain:
        deciding: list[MeshObject] = []
        for ref in (decision.server, decision.authorization or "", decision.route or ""):
            kind, _, name = ref.partition(" ")
            obj = fleet.mesh_object(dest.cluster, kind, name) if name else None
            if obj is not None:
                leg.cited.update(obj.policies)
                deciding.append(obj)
        for ref in decision.considered:
            kind, _, name = ref.partition(" ")
            obj = fleet.mesh_object(dest.cluster, kind, name) if name else None
            if obj is not None:
                leg.cited.update(obj.policies)
        _step(call, dest, code, reason, deciding, service_port, "linkerd", leg)
    if code != ALLOWED:
        leg.denial = Denial(dest, w, code, service_port, port, principal, None, None, (), "linkerd")
    return code, reason


def _step(call: Call, dest: Destination, code: str, reason: str, deciding: list[MeshObject], service_port: int,
          mesh_type: str, leg: Leg) -> None:
    """The authorization step: the AccessPolicies (with their rules) and mesh objects that decided."""
    fleet = call.fleet
    rules_here = fleet.access.get(dest.name, ())
    checks = [check_rule(r, call.caller, call.mesh, call.method, call.path, service_port) for r in rules_here]
    rules: list[str] = []
    objects: list[str] = []
    if code == ALLOWED:
        allowing = [c.rule for c in checks if c.allows]
        if not allowing:
            # Allowed by what an AccessPolicy emitted for someone else (a gateway identity): cite it.
            behind = {p for obj in deciding for p in obj.policies}
            allowing = [r for r in rules_here if r.policy in behind]
        for r in allowing:
            rule, sources = fleet.derivation(r.why)
            rules.append(rule)
            objects += [fleet.cite_policy(r.policy), *sources]
            leg.cited.add(r.policy)
    else:
        # Every AccessPolicy at the destination shaped the denial: their ALLOW rules are what denies
        # everything else (DENIED_DEFAULT, whatever the enforcement).
        for c in checks:
            leg.cited.add(c.rule.policy)
            if code == DENIED_DEFAULT:
                objects.append(fleet.cite_policy(c.rule.policy))
        if code == DENIED_ENFORCED:
            member = fleet.membership.get(dest.mesh or "")
            if member is not None and member.virtual_mesh is not None:
                rule, sources = fleet.derivation(_enforcement(fleet, dest.mesh or "") or member.why)
                rules.append(rule or "access-enforcement")
                objects += [fleet.cite_policy(member.virtual_mesh), *sources]
                leg.cited.add(member.virtual_mesh)
    rule_names = ", ".join(dict.fromkeys(r for r in rules if r)) or _DEFAULT_RULE[mesh_type]
    leg.steps.append(Step("authorization", rule_names,
                          tuple(dict.fromkeys([*objects, *(o.cite() for o in deciding)])), reason))


def _enforcement(fleet: Fleet, mesh: str) -> Derivation | None:
    """The rule set's own `enforced(mesh)` fact, when its model has one (the default rules do)."""
    model = fleet.model
    if model is None or "enforced" not in model.relations() or not model.contains("enforced", (mesh,)):
        return None
    return Derivation("access-enforcement", "enforced", (mesh,))
