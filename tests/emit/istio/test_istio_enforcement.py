"""Enforcement: an empty ALLOW policy in the root namespace, allow-all for the mesh's gateways.

Reference: https://istio.io/latest/docs/reference/config/security/authorization-policy/ — a policy
in the root namespace applies to every workload of the mesh; `spec: {}` (ALLOW, no rules) matches
nothing, so requests no other ALLOW policy allows are denied; a rule `{}` matches everything.
"""

from __future__ import annotations

from emit.emit_builders import find, member, spec_of
from emit.istio.world import C1, C2, emit
from meshrules.emit.istio.enforcement import DENY_BY_DEFAULT


def test_enforced_mesh_denies_by_default_and_lets_gateways_through() -> None:
    result = emit(memberships=(member(C1, enforced=True), member(C2)))
    deny = find(result.objects, "c1", "AuthorizationPolicy", DENY_BY_DEFAULT)
    assert len(deny) == 1 and deny[0]["metadata"]["namespace"] == "istio-system" and deny[0]["spec"] == {}
    assert spec_of(result.objects, "c1", "AuthorizationPolicy", "meshrules-allow-istio-eastwestgateway") == {
        "selector": {"matchLabels": {"app": "istio-eastwestgateway", "istio": "eastwestgateway"}},
        "action": "ALLOW",
        "rules": [{}],
    }
    assert find(result.objects, "c2", "AuthorizationPolicy") == []  # c2 does not enforce


def test_mesh_in_no_virtual_mesh_is_not_enforced() -> None:
    assert emit().objects == {}
