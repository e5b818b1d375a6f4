"""What the rule set's access decisions say about one request, read straight from the `Intent`.

The simulator judges a request over the *emitted resources* (AuthorizationPolicies, Servers, …);
this module judges it over the *intent* (`AccessRule`s, enforcement), which is what the rule set
decided. `why` uses it to name the AccessPolicy behind an answer and to find the nearest miss;
the differential property tests use it as the oracle the simulator must agree with.

An AccessRule allows a request when its sources match the caller (an empty list: any
authenticated identity) and the method, path (Istio path semantics: exact, `x*`, `*x`, `*`) and
Service port are among its lists (an empty list: any).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from meshrules.engine.builtins import path_matches
from meshrules.model.discovery import Destination, Mesh, MeshType, Workload
from meshrules.model.intent import AccessRule, IdentityPattern
from meshrules.sim.fleet import Fleet
from meshrules.sim.mirrors import gateway_identity
from meshrules.sim.verdict import (
    ALLOWED,
    DENIED_DEFAULT,
    DENIED_ENFORCED,
    NOT_FEDERATED,
    TRUST_DOMAIN_REJECTED,
)

__all__ = ["AccessMiss", "RuleCheck", "check_rule", "closest", "identity_matches", "intent_allows", "intent_code"]


@dataclass(frozen=True, slots=True)
class AccessMiss:
    """A field of an AccessPolicy that excluded the request (wire name) and why."""

    field: str  # spec.sourceSelector | spec.allowedMethods | spec.allowedPaths | spec.allowedPorts
    detail: str


@dataclass(frozen=True, slots=True)
class RuleCheck:
    """One AccessRule against one request: the fields that excluded it (none: it allows)."""

    rule: AccessRule
    misses: tuple[AccessMiss, ...]

    @property
    def allows(self) -> bool:
        """Whether the rule allows the request."""
        return not self.misses


def identity_matches(pattern: IdentityPattern, caller: Workload, mesh: Mesh | None) -> bool:
    """Whether ``caller`` (running in ``mesh``) is one of the identities ``pattern`` stands for."""
    if pattern.trust_domain is not None and (mesh is None or mesh.trust_domain != pattern.trust_domain):
        return False
    if pattern.namespace is not None and pattern.namespace != caller.namespace:
        return False
    if pattern.service_account is not None and pattern.service_account != caller.service_account:
        return False
    return pattern.cluster is None or pattern.cluster == caller.cluster


def check_rule(
    rule: AccessRule, caller: Workload, mesh: Mesh | None, method: str, path: str, port: int | None
) -> RuleCheck:
    """Which fields of ``rule`` exclude the request (sources first, then methods, paths, ports)."""
    misses: list[AccessMiss] = []
    if rule.sources and not any(identity_matches(p, caller, mesh) for p in rule.sources):
        misses.append(AccessMiss("spec.sourceSelector", f"identity `{caller.identity}` is not among its sources"))
    if rule.methods and method not in rule.methods:
        misses.append(AccessMiss("spec.allowedMethods", f"method `{method}` is not in {list(rule.methods)}"))
    bare = path.partition("?")[0]
    if rule.paths and not any(path_matches(p, bare) for p in rule.paths):
        misses.append(AccessMiss("spec.allowedPaths", f"path `{bare}` matches none of {list(rule.paths)}"))
    if rule.ports and (port is None or port not in rule.ports):
        misses.append(AccessMiss("spec.allowedPorts", f"port {port} is not in {list(rule.ports)}"))
    return RuleCheck(rule, tuple(misses))


def intent_allows(
    rules: Sequence[AccessRule],
    caller: Workload,
    mesh: Mesh | None,
    method: str,
    path: str,
    port: int | None,
    *,
    enforced: bool,
) -> tuple[bool, tuple[RuleCheck, ...]]:
    """The intent's answer at one destination: allowed, and every rule's check.

    A destination without AccessRules allows everything unless its mesh is ENFORCED; with rules,
    only what one of them allows (spec §3.3, both modes).
    """
    checks = tuple(check_rule(r, caller, mesh, method, path, port) for r in rules)
    if not checks:
        return not enforced, checks
    return any(c.allows for c in checks), checks


def closest(checks: Iterable[RuleCheck]) -> RuleCheck | None:
    """The check with the fewest excluding fields (ties: the first, i.e. the earliest accepted)."""
    best: RuleCheck | None = None
    for c in checks:
        if best is None or len(c.misses) < len(best.misses):
            best = c
    return best


def intent_code(fleet: Fleet, caller: Workload, dest: Destination, method: str, path: str, port: int | None) -> str:
    """The rule set's own answer for one request to one destination (the oracle `why` must agree with).

    Federation (no edge into the caller's mesh: NOT_FEDERATED; a gap: its code), trust rejections,
    then access: the AccessRules at the destination, read with the identity the destination sees —
    in Linkerd's gateway mode the remote gateway's (`AccessRule.gateway_identities`).
    """
    mesh = fleet.meshes.get(caller.mesh)
    dest_mesh = fleet.meshes.get(dest.mesh or "")
    if dest.cluster != caller.cluster:
        if (dest.name, caller.mesh) not in fleet.edge:
            return NOT_FEDERATED
        gap = fleet.gaps.get((dest.name, caller.mesh))
        if gap is not None:
            return gap.code
    if any(t.mesh == dest.mesh and t.caller == caller.mesh for t in fleet.intent.trust_rejections):
        return TRUST_DOMAIN_REJECTED
    rules = fleet.access.get(dest.name, ())
    enforced = fleet.enforced(dest.mesh)
    member = fleet.membership.get(caller.mesh)
    gateway_mode = (dest_mesh is not None and dest_mesh.type == MeshType.LINKERD and dest.cluster != caller.cluster
                    and (member is None or member.linkerd_mode != "remote-discovery"))
    if gateway_mode and dest_mesh is not None:
        seen = gateway_identity(dest_mesh)
        ops = [check_rule(replace(r, sources=()), caller, mesh, method, path, port) for r in rules
               if not r.sources or seen in r.gateway_identities]
        allowed = any(c.allows for c in ops) if rules else not enforced
    else:
        allowed, _ = intent_allows(rules, caller, mesh, method, path, port, enforced=enforced)
    if allowed:
        return ALLOWED
    # Enforcement is the reason only where no AccessPolicy selects the destination (spec §6).
    return DENIED_ENFORCED if enforced and not rules else DENIED_DEFAULT
