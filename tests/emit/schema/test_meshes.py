"""The real Linkerd and Gateway API CRDs: objects of the kinds meshrules emits, right and wrong.

Istio's CRDs are covered by Istio's own vectors (`test_vectors.py`); these cases do the same for
the Linkerd policy CRDs and the two Gateway API bundles, whose CEL rules (list-uniqueness with
`exists_one`, escaped `__namespace__`, defaults, `duration` on `format: duration` fields) are the
most demanding the validator runs.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from meshrules.emit.schema import Category, CrdRegistry

LINKERD = CrdRegistry.bundled("linkerd")
ISTIO = CrdRegistry.bundled("istio")


def found(reg: CrdRegistry, obj: dict[str, Any]) -> list[str]:
    return [str(v) for v in reg.validate(obj)]


def meta(name: str = "web", ns: str = "emojivoto") -> dict[str, str]:
    return {"name": name, "namespace": ns}


SERVER: dict[str, Any] = {
    "apiVersion": "policy.linkerd.io/v1beta3",
    "kind": "Server",
    "metadata": meta("web-http"),
    "spec": {"podSelector": {"matchLabels": {"app": "web-svc"}}, "port": "http", "proxyProtocol": "HTTP/1"},
}
AUTHORIZATION_POLICY: dict[str, Any] = {
    "apiVersion": "policy.linkerd.io/v1alpha1",
    "kind": "AuthorizationPolicy",
    "metadata": meta("web-authn"),
    "spec": {
        "targetRef": {"group": "policy.linkerd.io", "kind": "Server", "name": "web-http"},
        "requiredAuthenticationRefs": [
            {"group": "policy.linkerd.io", "kind": "MeshTLSAuthentication", "name": "web-clients"}
        ],
    },
}
MESH_TLS: dict[str, Any] = {
    "apiVersion": "policy.linkerd.io/v1alpha1",
    "kind": "MeshTLSAuthentication",
    "metadata": meta("web-clients"),
    "spec": {"identities": ["vote-bot.emojivoto.serviceaccount.identity.linkerd.cluster.local"]},
}
POLICY_ROUTE: dict[str, Any] = {
    "apiVersion": "policy.linkerd.io/v1beta3",
    "kind": "HTTPRoute",
    "metadata": meta("web-route"),
    "spec": {
        "parentRefs": [{"group": "core", "kind": "Service", "name": "web-svc", "port": 80}],
        "rules": [
            {
                "matches": [{"path": {"type": "PathPrefix", "value": "/api"}}],
                "backendRefs": [{"name": "web-svc", "port": 80}],
                "timeouts": {"request": "10s", "backendRequest": "5s"},
            }
        ],
    },
}
GATEWAY_ROUTE: dict[str, Any] = {
    "apiVersion": "gateway.networking.k8s.io/v1",
    "kind": "HTTPRoute",
    "metadata": meta("reviews"),
    "spec": {
        "parentRefs": [{"group": "", "kind": "Service", "name": "reviews", "port": 9080}],
        "rules": [
            {
                "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                "backendRefs": [
                    {"name": "reviews-v1", "port": 9080, "weight": 90},
                    {"name": "reviews-v2", "port": 9080},
                ],
            }
        ],
    },
}


@pytest.mark.parametrize("obj", [SERVER, AUTHORIZATION_POLICY, MESH_TLS, POLICY_ROUTE], ids=lambda o: o["kind"])
def test_linkerd_objects_are_accepted(obj: dict[str, Any]) -> None:
    assert found(LINKERD, obj) == []


@pytest.mark.parametrize("reg", [ISTIO, LINKERD], ids=["gateway-api-1.6", "gateway-api-1.1"])
def test_gateway_api_route_is_accepted_by_both_bundles(reg: CrdRegistry) -> None:
    assert found(reg, GATEWAY_ROUTE) == []


def edit(obj: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of `obj` with the dotted `path` set to `value` (`...` deletes it)."""
    out = copy.deepcopy(obj)
    *parents, last = path.split(".")
    node: Any = out
    for p in parents:
        node = node[int(p)] if p.isdigit() else node[p]
    if value is ...:
        del node[last]
    elif last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value
    return out


TIMEOUTS = {"request": "10s", "backendRequest": "1m"}
REFUSED = [
    # Server: exactly one of podSelector and externalWorkloadSelector; a port.
    (LINKERD, edit(SERVER, "spec.externalWorkloadSelector", {"matchLabels": {"a": "b"}}), "one and only one schema"),
    (LINKERD, edit(SERVER, "spec.port", ...), "spec.port: Required value"),
    (LINKERD, edit(SERVER, "spec.port", 8.5), "spec.port in body must be of type integer or string"),
    # AuthorizationPolicy and MeshTLSAuthentication
    (LINKERD, edit(AUTHORIZATION_POLICY, "spec.requiredAuthenticationRefs", ...), "Required value"),
    (
        LINKERD,
        edit(AUTHORIZATION_POLICY, "spec.targetRef.kind", "server/x"),
        "spec.targetRef.kind in body should match",
    ),
    (LINKERD, edit(MESH_TLS, "spec.identities", []), "should have at least 1 items"),
    (LINKERD, edit(MESH_TLS, "spec.identityRefs", [{"kind": "ServiceAccount", "name": "x"}]), "oneOf"),
    # policy.linkerd.io HTTPRoute: timeouts are `format: duration`.
    (LINKERD, edit(POLICY_ROUTE, "spec.rules.0.timeouts.request", "10 parsecs"), "must be of type duration"),
    # Gateway API: a backend timeout longer than the request timeout (CEL on durations).
    (ISTIO, edit(GATEWAY_ROUTE, "spec.rules.0.timeouts", TIMEOUTS), "backendRequest timeout cannot be longer"),
    (LINKERD, edit(GATEWAY_ROUTE, "spec.rules.0.timeouts", TIMEOUTS), "backendRequest timeout cannot be longer"),
    # Gateway API HTTPRoute, either bundle: CEL rules.
    (ISTIO, edit(GATEWAY_ROUTE, "spec.rules.0.matches.0.path.value", "api"), "must be an absolute path"),
    (LINKERD, edit(GATEWAY_ROUTE, "spec.rules.0.matches.0.path.value", "api"), "must be an absolute path"),
    (ISTIO, edit(GATEWAY_ROUTE, "spec.rules.0.backendRefs.0.port", ...), "Must have port for Service reference"),
    (
        ISTIO,
        edit(GATEWAY_ROUTE, "spec.parentRefs", [{"group": "", "kind": "Service", "name": "reviews", "port": 9080}] * 2),
        "sectionName or port must be unique when parentRefs includes 2 or more references to the same parent",
    ),
    (
        ISTIO,
        edit(GATEWAY_ROUTE, "spec.rules.0.filters", [{"type": "RequestHeaderModifier"}]),
        "filter.requestHeaderModifier must be specified for RequestHeaderModifier filter.type",
    ),
]


@pytest.mark.parametrize(("reg", "obj", "error"), REFUSED, ids=lambda x: x if isinstance(x, str) else "")
def test_broken_objects_are_refused(reg: CrdRegistry, obj: dict[str, Any], error: str) -> None:
    violations = reg.validate(obj)
    assert any(v.category in (Category.SCHEMA, Category.CEL) for v in violations)
    assert any(error in str(v) for v in violations), [str(v) for v in violations]


def test_each_cluster_gets_its_own_gateway_api_version() -> None:
    # Istio vendors Gateway API 1.6 (with the CORS filter); Linkerd vendors 1.1, which has none.
    cors = {"type": "CORS", "cors": {"allowOrigins": ["https://example.com"]}}
    route = edit(GATEWAY_ROUTE, "spec.rules.0.filters", [cors])
    assert found(ISTIO, route) == []
    refused = LINKERD.validate(route)
    assert any('Unsupported value: "CORS"' in str(v) for v in refused)
    assert any(v.category is Category.PRUNED and v.path.endswith(".cors") for v in refused)


def test_gateway_api_defaults_feed_the_rules() -> None:
    # parentRefs[].group and .kind default to gateway.networking.k8s.io / Gateway; the uniqueness
    # rule reads them unguarded (`p1.group == p2.group`), so without the defaults it would fail to
    # evaluate; with them, two refs that differ only by an explicit default are duplicates.
    refs = [{"name": "gw"}, {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw"}]
    violations = found(ISTIO, edit(GATEWAY_ROUTE, "spec.parentRefs", refs))
    assert violations == [
        'spec.parentRefs: Invalid value: "array": sectionName or port must be unique when parentRefs includes 2 '
        "or more references to the same parent"
    ]
