"""AuthorizationPolicies: one ALLOW policy per destination, one rule per AccessPolicy (spec §3.3, §4).

Place: rendered by `emit_istio` from ``intent.access``. Istio authorizes at the destination's
workloads (https://istio.io/latest/docs/reference/config/security/authorization-policy/), so a
policy selects the pods of the destination's Service (`selector.matchLabels` = the Service's
selector) in its namespace, and its ports are the workloads' container ports behind the Service
ports the AccessPolicy names.

Principals are SPIFFE identities without `spiffe://` (`<trustDomain>/ns/<ns>/sa/<sa>`). Istio
accepts exact values and one `*` at the start or the end of a value, so an `IdentityPattern`
renders as:

====================================  ===========================================================
trust domain, namespace, SA            ``td/ns/ns/sa/sa``
trust domain, namespace                ``td/ns/ns/sa/*``
trust domain                           ``td/*``
namespace, SA (any trust domain)       ``*/ns/ns/sa/sa``
SA (any trust domain and namespace)    ``*/sa/sa``
namespace (any trust domain)           ``source.namespaces: [ns]`` (Istio reads it from the principal)
trust domain, SA (any namespace)       one exact principal per namespace where a workload runs as
                                       that SA in a mesh of that trust domain (two `*` are not
                                       allowed; a broader pattern would allow more than asked)
nothing                                ``*`` (any authenticated identity)
====================================  ===========================================================

A cluster in a pattern cannot be told apart by identity when meshes share a trust domain; the
rule set warns about that (`check`), the policy allows by identity.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from meshrules.emit.istio.objects import Draft
from meshrules.emit.istio.ports import workload_ports
from meshrules.emit.istio.topology import API_SECURITY, IstioTopology, policy_parent
from meshrules.emit.naming import object_name
from meshrules.errors import Diagnostic, Location, Severity
from meshrules.model.discovery import Destination, Workload
from meshrules.model.intent import AccessRule, IdentityPattern
from meshrules.model.policy import AccessPolicy

CODE_NO_SUCH_PORT = "MR0331"
CODE_NO_SELECTOR = "MR0332"


def authorization_drafts(topo: IstioTopology) -> tuple[list[Draft], list[Diagnostic]]:
    """One ALLOW AuthorizationPolicy per Istio destination that AccessPolicies select."""
    by_dest: dict[str, list[AccessRule]] = defaultdict(list)
    for rule in topo.inp.intent.access:
        if rule.destination in topo.destinations:
            by_dest[rule.destination].append(rule)
    drafts: list[Draft] = []
    findings: list[Diagnostic] = []
    for name in sorted(by_dest):
        dest = topo.destinations[name]
        rules = sorted(by_dest[name], key=lambda r: _acceptance(topo, r.policy))
        if not dest.selector:
            findings.append(_no_selector(dest, rules))
            continue
        workloads = [topo.inp.workload_by_name[w] for w in dest.workloads if w in topo.inp.workload_by_name]
        rendered: list[dict[str, Any]] = []
        for rule in rules:
            spec_rule, finding = _rule(topo, dest, rule, workloads)
            if finding is not None:
                findings.append(finding)
            if spec_rule is not None:
                rendered.append(spec_rule)
        spec: dict[str, Any] = {"selector": {"matchLabels": dict(sorted(dest.selector.items()))}, "action": "ALLOW"}
        if rendered:
            # Without rules an ALLOW policy matches nothing: the destination denies everything.
            spec["rules"] = rendered
        parents = [topo.parent("Destination", dest.name), *(policy_parent(r.policy) for r in rules)]
        drafts.append(
            Draft(
                dest.cluster,
                API_SECURITY,
                "AuthorizationPolicy",
                dest.namespace,
                object_name(dest.service),
                f"allow/{dest.name}",
                spec,
                parents,
            )
        )
    return drafts, findings


def _acceptance(topo: IstioTopology, ref: str) -> tuple[Any, ...]:
    policy = topo.inp.policy_by_ref.get(ref)
    if isinstance(policy, AccessPolicy):
        return (*policy.acceptance_key(), ref)
    return (2, ref)


def _rule(
    topo: IstioTopology, dest: Destination, rule: AccessRule, workloads: Sequence[Workload]
) -> tuple[dict[str, Any] | None, Diagnostic | None]:
    sources = principals_from(rule.sources, topo.inp.workloads, topo)
    if sources is None:
        return None, None  # its sources match no identity that exists: the rule allows nobody
    out: dict[str, Any] = {"from": sources}
    operation: dict[str, Any] = {}
    if rule.paths:
        operation["paths"] = list(rule.paths)
    if rule.methods:
        operation["methods"] = list(rule.methods)
    if rule.ports:
        ports = sorted({p for service_port in rule.ports for p in workload_ports(dest, service_port, workloads)})
        if not ports:
            # Allowing only ports the Service does not have allows nothing: the rule is left out
            # rather than emitted without ports, which would allow every port.
            return None, _no_such_port(dest, rule)
        operation["ports"] = [str(p) for p in ports]
    if operation:
        out["to"] = [{"operation": operation}]
    return out, None


def principals_from(
    sources: Iterable[IdentityPattern], workloads: Iterable[Workload], topo: IstioTopology
) -> list[dict[str, Any]] | None:
    """The `from` clauses of a rule for ``sources`` (empty: any authenticated identity).

    None when the sources stand for no identity at all (the rule must then be left out: an
    empty `from` would match every caller).
    """
    principals: set[str] = set()
    namespaces: set[str] = set()
    patterns = list(sources)
    if not patterns:
        return [{"source": {"principals": ["*"]}}]
    for p in patterns:
        if p.trust_domain is None and p.namespace is not None and p.service_account is None:
            namespaces.add(p.namespace)
        elif p.trust_domain is not None and p.namespace is None and p.service_account is not None:
            principals.update(_enumerate(p.trust_domain, p.service_account, workloads, topo))
        else:
            principals.add(principal(p))
    out: list[dict[str, Any]] = []
    if principals:
        out.append({"source": {"principals": sorted(principals)}})
    if namespaces:
        out.append({"source": {"namespaces": sorted(namespaces)}})
    return out or None


def principal(p: IdentityPattern) -> str:
    """An Istio principal for a pattern that needs at most one `*` (see the module table)."""
    td, ns, sa = p.trust_domain, p.namespace, p.service_account
    if td is not None:
        if ns is None:
            return f"{td}/*"
        return f"{td}/ns/{ns}/sa/{sa}" if sa is not None else f"{td}/ns/{ns}/sa/*"
    if ns is not None:
        return f"*/ns/{ns}/sa/{sa}"
    return f"*/sa/{sa}" if sa is not None else "*"


def _enumerate(trust_domain: str, service_account: str, workloads: Iterable[Workload], topo: IstioTopology) -> set[str]:
    out: set[str] = set()
    for w in workloads:
        mesh = topo.meshes.get(w.mesh)
        if w.service_account == service_account and mesh is not None and mesh.trust_domain == trust_domain:
            out.add(f"{trust_domain}/ns/{w.namespace}/sa/{service_account}")
    return out


def _no_such_port(dest: Destination, rule: AccessRule) -> Diagnostic:
    ports = ", ".join(f"`{p}`" for p in rule.ports)
    return Diagnostic(
        code=CODE_NO_SUCH_PORT,
        severity=Severity.WARNING,
        message=f"`{rule.policy}` allows ports {ports} of `{dest.name}`, which has none of them: it allows nothing",
        hint="list Service ports (`allowedPorts` are the Service's ports, not the containers')",
        location=Location(cluster=dest.cluster, kind="Service", namespace=dest.namespace, name=dest.service),
        object=rule.policy,
    )


def _no_selector(dest: Destination, rules: Sequence[AccessRule]) -> Diagnostic:
    return Diagnostic(
        code=CODE_NO_SELECTOR,
        severity=Severity.ERROR,
        message=f"`{dest.name}` has no pod selector: an AuthorizationPolicy for it would cover its whole namespace",
        hint="give the Service a selector, or leave it out of the AccessPolicies' destination selectors",
        location=Location(cluster=dest.cluster, kind="Service", namespace=dest.namespace, name=dest.service),
        object=f"Destination {dest.name}",
        related=tuple(sorted({r.policy for r in rules})),
    )
