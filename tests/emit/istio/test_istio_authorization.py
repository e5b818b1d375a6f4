"""AuthorizationPolicies: one ALLOW per destination, one rule per AccessPolicy, in acceptance order.

Reference: https://istio.io/latest/docs/reference/config/security/authorization-policy/ —
`principals` are `<trustDomain>/ns/<ns>/sa/<sa>` and support exact, prefix `abc*`, suffix `*abc`
and presence `*`; `namespaces` are read from the peer identity; `ports` are the workload's ports;
an ALLOW policy without rules matches nothing.
"""

from __future__ import annotations

import pytest

from emit.emit_builders import access_policy, allow, find, spec_of
from emit.istio.world import RATINGS, REVIEWS, emit, world
from meshrules.emit.istio.authorization import CODE_NO_SUCH_PORT, principal, principals_from
from meshrules.emit.istio.topology import IstioTopology
from meshrules.model.intent import IdentityPattern


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (IdentityPattern("td", "ns", "sa"), "td/ns/ns/sa/sa"),
        (IdentityPattern("td", "ns", None), "td/ns/ns/sa/*"),
        (IdentityPattern("td", None, None), "td/*"),
        (IdentityPattern(None, "ns", "sa"), "*/ns/ns/sa/sa"),
        (IdentityPattern(None, None, "sa"), "*/sa/sa"),
        (IdentityPattern(None, None, None), "*"),
        (IdentityPattern("td", "ns", "sa", cluster="c1"), "td/ns/ns/sa/sa"),  # identity cannot tell clusters apart
    ],
)
def test_patterns_need_at_most_one_wildcard(pattern: IdentityPattern, expected: str) -> None:
    assert principal(pattern) == expected


def test_namespace_only_and_trust_domain_with_sa_patterns() -> None:
    topo = IstioTopology(world())
    # Any trust domain in one namespace is Istio's `namespaces` (two `*` are not allowed).
    assert principals_from([IdentityPattern(None, "web", None)], topo.inp.workloads, topo) == [
        {"source": {"namespaces": ["web"]}}
    ]
    # A trust domain and an SA in any namespace: the namespaces where that SA runs, exactly.
    assert principals_from([IdentityPattern("cluster.local", None, "reviews")], topo.inp.workloads, topo) == [
        {"source": {"principals": ["cluster.local/ns/shop/sa/reviews"]}}
    ]
    assert principals_from([IdentityPattern("cluster.local", None, "nobody")], topo.inp.workloads, topo) is None
    assert principals_from([], topo.inp.workloads, topo) == [{"source": {"principals": ["*"]}}]


def test_one_rule_per_access_policy_in_acceptance_order_with_workload_ports() -> None:
    late = access_policy("late", {}, created="02:00")
    early = access_policy("early", {}, created="01:00")
    result = emit(
        [late, early],
        access=(
            allow(late, RATINGS),
            allow(
                early,
                RATINGS,
                [IdentityPattern("cluster.local", "shop", "web")],
                methods=("GET",),
                ports=(80,),
                paths=("/ratings/*",),
            ),
        ),
    )
    spec = spec_of(result.objects, "c1", "AuthorizationPolicy", "ratings")
    # Service port 80 targets the container port named `http`, 9080 on the ratings pods.
    assert spec == {
        "selector": {"matchLabels": {"app": "ratings"}},
        "action": "ALLOW",
        "rules": [
            {
                "from": [{"source": {"principals": ["cluster.local/ns/shop/sa/web"]}}],
                "to": [{"operation": {"paths": ["/ratings/*"], "methods": ["GET"], "ports": ["9080"]}}],
            },
            {"from": [{"source": {"principals": ["*"]}}]},
        ],
    }


def test_a_port_the_service_lacks_allows_nothing() -> None:
    policy = access_policy("wrong-port", {})
    result = emit([policy], access=(allow(policy, REVIEWS, ports=(9999,)),))
    spec = spec_of(result.objects, "c1", "AuthorizationPolicy", "reviews")
    assert spec == {"selector": {"matchLabels": {"app": "reviews"}}, "action": "ALLOW"}  # no rules: allows nothing
    assert [f.code for f in result.findings] == [CODE_NO_SUCH_PORT]


def test_destinations_without_access_rules_get_no_policy() -> None:
    assert find(emit().objects, "c1", "AuthorizationPolicy") == []
