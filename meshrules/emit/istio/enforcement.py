"""Enforcement: deny by default in a member mesh, except through its gateways (spec §3.1, §4).

Place: rendered by `emit_istio` for every Istio mesh whose membership is `enforced`. An
AuthorizationPolicy with an empty spec in the root namespace applies to every workload of the
mesh and, being an ALLOW policy that matches nothing, denies every request no other ALLOW policy
allows (https://istio.io/latest/docs/reference/config/security/authorization-policy/, "allow-nothing"
and "root namespace"). Gateways are workloads too: each gets an ALLOW policy with one empty rule
(matches everything) so ingress and east-west traffic still flows; the destinations behind them
decide.
"""

from __future__ import annotations

from typing import Any

from meshrules.emit.istio.objects import Draft
from meshrules.emit.istio.topology import API_SECURITY, IstioTopology, policy_parent
from meshrules.emit.naming import object_name

DENY_BY_DEFAULT = "meshrules-deny-by-default"


def enforcement_drafts(topo: IstioTopology) -> list[Draft]:
    """Deny-by-default plus gateway allowances for every enforced Istio member mesh."""
    drafts: list[Draft] = []
    for name, mesh in sorted(topo.meshes.items()):
        membership = topo.memberships.get(name)
        if membership is None or not membership.enforced:
            continue
        parents = [topo.parent("Mesh", name)]
        if membership.virtual_mesh:
            parents.append(policy_parent(membership.virtual_mesh))
        root = topo.root_namespace(mesh)
        drafts.append(
            Draft(mesh.cluster, API_SECURITY, "AuthorizationPolicy", root, DENY_BY_DEFAULT, f"deny/{root}", {}, parents)
        )
        for gateway in sorted(mesh.gateways, key=lambda g: (g.namespace, g.service)):
            if not gateway.workload_labels:
                continue  # no labels to select the gateway pods by: a policy would cover the namespace
            spec: dict[str, Any] = {
                "selector": {"matchLabels": dict(sorted(gateway.workload_labels.items()))},
                "action": "ALLOW",
                "rules": [{}],
            }
            drafts.append(
                Draft(
                    mesh.cluster,
                    API_SECURITY,
                    "AuthorizationPolicy",
                    gateway.namespace,
                    object_name("meshrules-allow", gateway.service),
                    f"gateway/{gateway.namespace}/{gateway.service}",
                    spec,
                    parents,
                )
            )
    return drafts
