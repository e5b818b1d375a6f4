"""`emit_istio`: an `EmitInput` to the Istio resources of every cluster with an Istio mesh (spec §4).

Place: the entry point of ``meshrules.emit.istio``. It builds the topology (where things go),
plans the routes (what Istio can realise given the clusters' existing config), then asks each
renderer for its drafts and names them all at once:

    topology.py          meshes, destinations, federated hosts and their data paths
    existing.py          user-owned Istio config already in the clusters
    plan.py              route tables minus what user config or reachability rules out
    destination_rule.py  per-destination DestinationRules (mTLS, outlier detection, subsets)
    virtual_service.py   VirtualServices in every cluster whose callers have routes
    authorization.py     one ALLOW AuthorizationPolicy per destination with AccessPolicies
    enforcement.py       deny-by-default and gateway allowances of enforced meshes
    federation.py        both sides of every federated host
    subsets.py           which subsets routes use, and their names
    ports.py             Service ports as Istio sees them (protocols, workload ports)
    objects.py           final names (collision-free) and sorted output

The output depends only on the input's content, never on its order: everything is iterated in
sorted order and names are decided over all drafts of a cluster at once.
"""

from __future__ import annotations

from collections.abc import Iterable

from meshrules.emit.input import EmitInput
from meshrules.emit.istio.authorization import authorization_drafts
from meshrules.emit.istio.destination_rule import local_destination_rule_drafts
from meshrules.emit.istio.enforcement import enforcement_drafts
from meshrules.emit.istio.existing import ExistingConfig
from meshrules.emit.istio.federation import federation_drafts
from meshrules.emit.istio.objects import Draft, finalize
from meshrules.emit.istio.plan import plan_routes
from meshrules.emit.istio.subsets import used_subsets
from meshrules.emit.istio.topology import IstioTopology
from meshrules.emit.istio.virtual_service import virtual_service_drafts
from meshrules.emit.naming import AddressBook
from meshrules.emit.output import EmitResult
from meshrules.errors import Diagnostic
from meshrules.model.intent import PolicyStatusEntry


def emit_istio(inp: EmitInput) -> EmitResult:
    """The Istio objects per cluster, the INVALID statuses Istio adds, and findings."""
    topo = IstioTopology(inp)
    existing = ExistingConfig(inp.existing, {c.name: c.cluster_domain for c in inp.clusters}, inp.owner)
    plan = plan_routes(topo, existing)
    subsets = used_subsets(plan.tables.values())
    addresses = AddressBook.for_hosts(f.host for f in topo.federated.values())
    findings: list[Diagnostic] = [*topo.findings, *plan.findings]
    drafts: list[Draft] = []
    drafts += local_destination_rule_drafts(topo, plan, subsets, existing, findings)
    drafts += virtual_service_drafts(topo, plan)
    authz, authz_findings = authorization_drafts(topo)
    drafts += authz
    findings += authz_findings
    drafts += enforcement_drafts(topo)
    federated, federation_findings = federation_drafts(topo, subsets, addresses, existing)
    drafts += federated
    findings += federation_findings
    return EmitResult(
        objects=finalize(drafts, existing, inp.owner),
        statuses=_sorted_statuses(plan.statuses),
        findings=_sorted_findings(findings),
    )


def _sorted_statuses(statuses: Iterable[PolicyStatusEntry]) -> tuple[PolicyStatusEntry, ...]:
    unique = {(s.policy, s.destination or "", s.code, s.field, s.message): s for s in statuses}
    return tuple(unique[k] for k in sorted(unique))


def _sorted_findings(findings: Iterable[Diagnostic]) -> tuple[Diagnostic, ...]:
    unique = {(f.code, f.object, f.message, str(f.location)): f for f in findings}
    return tuple(sorted(unique.values(), key=lambda f: (*f.sort_key(), str(f.location))))
