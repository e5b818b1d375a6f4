"""AccessPolicies as MeshTLSAuthentication + AuthorizationPolicy (+ inbound HTTPRoutes), per Linkerd's docs.

Linkerd reference ("Authorization Policy"): an AuthorizationPolicy targeting a Server "applies to
all traffic to the Server", one targeting an HTTPRoute to the traffic matching it; all its
`requiredAuthenticationRefs` must match; MeshTLSAuthentication `identities` take exact identities,
`*.`-prefixed suffixes and `*` for every meshed client. Booksapp's per-route example authorizes the
probe route with a NetworkAuthentication of `0.0.0.0/0` and `::/0`.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from meshrules.emit.linkerd import emit_linkerd
from meshrules.emit.linkerd.probes import PROBE_PATHS
from meshrules.emit.schema import validate
from meshrules.model.intent import IdentityPattern, Intent

from .builders import (
    access_policy,
    allow,
    destination,
    emit_input,
    linkerd_mesh,
    load,
    member,
    named,
    objects,
    port,
    sa,
    without_metadata,
    workload,
)
from .linkerd_model import Request, inbound_allows

C = "cluster-3"
MESH = linkerd_mesh(C)
WEB = workload("web", C)
API = workload("api", C, ports=((8080, "http"), (9090, "admin")))
API_SVC = destination("api", C, workloads=[API], ports=[port(80), port(9090, "admin", 9090)])
WEB_ID = "web.shop.serviceaccount.identity.linkerd.cluster.local"
GATEWAY_ID = "linkerd-gateway.linkerd-multicluster.serviceaccount.identity.linkerd.cluster.local"


def run(*rules, policies=(), enforced=False, **kw):  # type: ignore[no-untyped-def]
    intent = Intent(access=tuple(rules), memberships=(member(MESH, enforced=enforced),))
    return emit_linkerd(
        emit_input(meshes=[MESH], workloads=[WEB, API], destinations=[API_SVC], policies=policies, intent=intent, **kw)
    )


def test_whole_server_grant_is_a_meshtls_authentication_and_a_server_policy() -> None:
    p = access_policy("web-calls-api")
    result = run(allow(p, API_SVC, sa("web"), ports=(80,)), policies=[p])
    assert [without_metadata(o) for o in objects(result, C) if o["kind"] != "Server"] == load(f"""
        - apiVersion: policy.linkerd.io/v1alpha1
          kind: AuthorizationPolicy
          metadata: {{name: api-http-web-calls-api, namespace: shop}}
          spec:
            requiredAuthenticationRefs:
            - {{group: policy.linkerd.io, kind: MeshTLSAuthentication, name: api-http-web-calls-api}}
            targetRef: {{group: policy.linkerd.io, kind: Server, name: api-http}}
        - apiVersion: policy.linkerd.io/v1alpha1
          kind: MeshTLSAuthentication
          metadata: {{name: api-http-web-calls-api, namespace: shop}}
          spec:
            identities: [{WEB_ID}]
    """)
    # allowedPorts are Service ports: port 80 reaches container port 8080 (Server `api-http`);
    # the admin port gets a Server (deny) and no authorization.
    assert {s["metadata"]["name"]: s["spec"]["port"] for s in objects(result, C, "Server")} == {
        "api-http": 8080,
        "api-admin": 9090,
    }


def test_empty_sources_mean_any_meshed_client() -> None:
    p = access_policy("anyone")
    result = run(allow(p, API_SVC), policies=[p])
    assert {tuple(o["spec"]["identities"]) for o in objects(result, C, "MeshTLSAuthentication")} == {("*",)}


def test_identity_patterns_in_linkerd_format() -> None:
    # Namespace wildcard as a `*.` suffix; a service account in any namespace spelled out from the
    # discovered workloads running as it (Linkerd has no wildcard in the middle).
    other = workload("web", C, "other")
    p = access_policy("patterns")
    rule = allow(
        p,
        API_SVC,
        IdentityPattern(namespace="ops"),
        IdentityPattern(service_account="web"),
        IdentityPattern(trust_domain="cluster.local"),
    )
    result = emit_linkerd(
        emit_input(
            meshes=[MESH],
            workloads=[WEB, API, other],
            destinations=[API_SVC],
            policies=[p],
            intent=Intent(access=(rule,)),
        )
    )
    ids = named(result, C, "MeshTLSAuthentication", "api-http-patterns")["spec"]["identities"]
    assert ids == [
        "*.ops.serviceaccount.identity.linkerd.cluster.local",
        "*.serviceaccount.identity.linkerd.cluster.local",
        "web.other.serviceaccount.identity.linkerd.cluster.local",
        WEB_ID,
    ]


def test_gateway_identity_is_authorized_on_exactly_the_allowed_routes() -> None:
    # Gateway mode: callers in cluster-1 reach `api` through this cluster's linkerd-gateway, and the
    # destination sees the gateway's identity, not theirs (Linkerd multicluster reference). Their own
    # identity must not be authorized: it would admit the same service account of cluster-3.
    p = access_policy("remote-web-reads")
    rule = allow(p, API_SVC, sa("web", cluster="cluster-1"), methods=("GET",), gateway_identities=(GATEWAY_ID,))
    result = run(rule, policies=[p])
    assert named(result, C, "MeshTLSAuthentication", "api-http-remote-web-reads")["spec"]["identities"] == [GATEWAY_ID]
    objs = objects(result, C)
    assert inbound_allows(objs, "api-http", GATEWAY_ID, Request("GET", "/x")) == {True}
    assert inbound_allows(objs, "api-http", GATEWAY_ID, Request("POST", "/x")) == {False}
    assert inbound_allows(objs, "api-http", WEB_ID, Request("GET", "/x")) == {False}


def test_remote_discovery_keeps_the_callers_identity() -> None:
    remote = linkerd_mesh("cluster-1", trust_domain="one.example")
    p = access_policy("remote-web")
    intent = Intent(
        access=(allow(p, API_SVC, sa("web", cluster="cluster-1")),),
        memberships=(member(MESH, mode="remote-discovery"), member(remote, mode="remote-discovery")),
    )
    result = emit_linkerd(
        emit_input(meshes=[MESH, remote], workloads=[API], destinations=[API_SVC], policies=[p], intent=intent)
    )
    assert named(result, C, "MeshTLSAuthentication", "api-http-remote-web")["spec"]["identities"] == [
        "web.shop.serviceaccount.identity.linkerd.one.example"
    ]


def test_method_and_path_restrictions_are_inbound_routes_with_probes_kept() -> None:
    p = access_policy("web-reads-api")
    result = run(allow(p, API_SVC, sa("web"), ports=(80,), methods=("GET",), paths=("/api/*",)), policies=[p])
    routes = {o["metadata"]["name"]: without_metadata(o) for o in objects(result, C, "HTTPRoute")}
    assert routes["api-http-web-reads-api"] == load("""
        apiVersion: policy.linkerd.io/v1beta3
        kind: HTTPRoute
        metadata: {name: api-http-web-reads-api, namespace: shop}
        spec:
          parentRefs: [{group: policy.linkerd.io, kind: Server, name: api-http}]
          rules:
          - matches:
            - {method: GET, path: {type: PathPrefix, value: /api}}
    """)
    probe_route = routes["api-http-probes"]
    assert sorted(m["path"]["value"] for m in probe_route["spec"]["rules"][0]["matches"]) == sorted(PROBE_PATHS)
    assert without_metadata(named(result, C, "AuthorizationPolicy", "api-http-probes-kubelet")) == load("""
        apiVersion: policy.linkerd.io/v1alpha1
        kind: AuthorizationPolicy
        metadata: {name: api-http-probes-kubelet, namespace: shop}
        spec:
          requiredAuthenticationRefs:
          - {group: policy.linkerd.io, kind: NetworkAuthentication, name: kubelet-probes}
          targetRef: {group: policy.linkerd.io, kind: HTTPRoute, name: api-http-probes}
    """)
    assert named(result, C, "NetworkAuthentication", "kubelet-probes")["spec"] == {
        "networks": [{"cidr": "0.0.0.0/0"}, {"cidr": "::/0"}]
    }
    objs = objects(result, C)
    assert inbound_allows(objs, "api-http", WEB_ID, Request("GET", "/api/v1")) == {True}
    assert inbound_allows(objs, "api-http", WEB_ID, Request("POST", "/api/v1")) == {False}
    assert inbound_allows(objs, "api-http", WEB_ID, Request("GET", "/other")) == {False}
    assert inbound_allows(objs, "api-http", None, Request("GET", "/healthz")) == {True}
    assert sorted((f.code, f.message) for f in result.findings) == [
        ("MR0420", "Linkerd matches `/api/*` per path segment, so it also allows `/api`"),
        (
            "MR0424",
            "routes attach to Server `shop/api-http` in `cluster-3`: the kubelet may probe only the "
            "conventional health paths there",
        ),
    ]


def test_discovered_probes_are_authorized_exactly_on_their_port_without_mr0424() -> None:
    # The workload probes `/status/live` on 8080 (the Server's port `http`) and `/metrics-ready` on
    # the admin port: the probe route of `api-http` holds exactly the first, and no finding assumes.
    api = workload(
        "api", C, ports=((8080, "http"), (9090, "admin")), probes=((8080, "/status/live"), (9090, "/metrics-ready"))
    )
    svc = destination("api", C, workloads=[api], ports=[port(80, target="http"), port(9090, "admin", 9090)])
    p = access_policy("web-reads-api")
    intent = Intent(
        access=(allow(p, svc, sa("web"), ports=(80,), methods=("GET",), paths=("/api/*",)),),
        memberships=(member(MESH),),
    )
    result = emit_linkerd(
        emit_input(meshes=[MESH], workloads=[WEB, api], destinations=[svc], policies=[p], intent=intent)
    )
    routes = {o["metadata"]["name"]: o for o in objects(result, C, "HTTPRoute")}
    probe_route = routes["api-http-probes"]
    assert probe_route["spec"]["rules"][0]["matches"] == [
        {"method": "GET", "path": {"type": "Exact", "value": "/status/live"}}
    ]
    objs = objects(result, C)
    assert all(validate(o) == [] for o in objs)  # against the real Linkerd CRDs
    assert inbound_allows(objs, "api-http", None, Request("GET", "/status/live")) == {True}
    assert inbound_allows(objs, "api-http", None, Request("GET", "/healthz")) == {False}
    assert "MR0424" not in [f.code for f in result.findings]


def test_workloads_without_probes_on_the_port_get_no_probe_route() -> None:
    api = workload("api", C, probes=())
    svc = destination("api", C, workloads=[api], ports=[port(80)])
    p = access_policy("web-reads-api")
    intent = Intent(access=(allow(p, svc, sa("web"), methods=("GET",)),), memberships=(member(MESH),))
    result = emit_linkerd(
        emit_input(meshes=[MESH], workloads=[WEB, api], destinations=[svc], policies=[p], intent=intent)
    )
    assert sorted(o["metadata"]["name"] for o in objects(result, C, "HTTPRoute")) == ["api-http-web-reads-api"]
    assert objects(result, C, "NetworkAuthentication") == []
    assert "MR0424" not in [f.code for f in result.findings]


def test_probe_path_inside_an_allowed_prefix_stays_allowed_for_the_policy() -> None:
    p = access_policy("web-reads-all")
    result = run(allow(p, API_SVC, sa("web"), ports=(80,), methods=("GET",)), policies=[p])
    objs = objects(result, C)
    # GET /healthz lands on the probe route, which also carries the policy that allows it.
    assert inbound_allows(objs, "api-http", WEB_ID, Request("GET", "/healthz")) == {True}
    assert inbound_allows(objs, "api-http", None, Request("GET", "/healthz")) == {True}
    assert inbound_allows(objs, "api-http", None, Request("GET", "/secret")) == {False}


def test_whole_server_grant_next_to_a_restricted_one_gets_a_catch_all_route() -> None:
    # Once routes attach to a Server, a request matching none is refused: the unrestricted policy
    # needs a route for everything else.
    admin, reader = access_policy("admin-all"), access_policy("web-reads")
    result = run(
        allow(admin, API_SVC, sa("admin"), ports=(80,)),
        allow(reader, API_SVC, sa("web"), ports=(80,), methods=("GET",)),
        policies=[admin, reader],
    )
    assert named(result, C, "HTTPRoute", "api-http-all")["spec"]["rules"] == [
        {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}]}
    ]
    objs = objects(result, C)
    admin_id = "admin.shop.serviceaccount.identity.linkerd.cluster.local"
    assert inbound_allows(objs, "api-http", admin_id, Request("DELETE", "/x")) == {True}
    assert inbound_allows(objs, "api-http", admin_id, Request("GET", "/x")) == {True}
    assert inbound_allows(objs, "api-http", WEB_ID, Request("DELETE", "/x")) == {False}


def test_restriction_on_an_opaque_port_grants_nothing_and_says_so() -> None:
    db = workload("db", C, ports=((5432, "tcp-pg"),))
    db_svc = destination("db", C, workloads=[db], ports=[port(5432, "tcp-pg", 5432)])
    p = access_policy("web-gets-db")
    intent = Intent(access=(allow(p, db_svc, sa("web"), methods=("GET",)),))
    result = emit_linkerd(emit_input(meshes=[MESH], workloads=[db], destinations=[db_svc], policies=[p], intent=intent))
    assert objects(result, C, "AuthorizationPolicy") == []
    assert [f.code for f in result.findings] == ["MR0422"]


def test_grpc_server_with_routes_is_declared_http2() -> None:
    # Since edge-24.7.1 a `gRPC` Server is served with GRPCRoutes only (linkerd2 #13507).
    grpc = workload("emoji", C, ports=((8080, "grpc"),))
    svc = destination("emoji", C, workloads=[grpc], ports=[port(8080, "grpc", 8080)])
    p = access_policy("web-lists")
    intent = Intent(access=(allow(p, svc, sa("web"), paths=("/emojivoto.v1.EmojiService/ListAll",)),))
    result = emit_linkerd(emit_input(meshes=[MESH], workloads=[grpc], destinations=[svc], policies=[p], intent=intent))
    assert named(result, C, "Server", "emoji-grpc")["spec"]["proxyProtocol"] == "HTTP/2"


# --- property: Linkerd decides exactly as the AccessPolicies allow ---------------------------------

_PATHS = ("/a", "/a/b", "/a/*", "/a/b/*", "/c/*", "*")
_REQUEST_PATHS = ("/", "/a", "/a/", "/a/b", "/a/b/c", "/ab", "/c", "/c/d", "/healthz")
_ID = "{}.shop.serviceaccount.identity.linkerd.cluster.local"


def _allows_linkerd_paths(paths: tuple[str, ...], methods: tuple[str, ...], request: Request) -> bool:
    """What a rule allows with Linkerd's segment-wise prefix (the documented approximation)."""
    if methods and request.method not in methods:
        return False
    if not paths:
        return True
    trimmed = request.path.rstrip("/")
    for p in paths:
        if p == "*" or (p.endswith("*") and (trimmed == p[:-1].rstrip("/") or trimmed.startswith(p[:-1]))):
            return True
        if p == request.path:
            return True
    return False


rules_strategy = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c"]),
        st.lists(st.sampled_from(_PATHS), max_size=2, unique=True).map(tuple),
        st.lists(st.sampled_from(["GET", "POST"]), max_size=1, unique=True).map(tuple),
    ),
    min_size=1,
    max_size=4,
)


@given(rules_strategy)
def test_linkerd_allows_exactly_what_some_access_policy_allows(specs: list) -> None:  # type: ignore[type-arg]
    policies, rules = [], []
    for i, (who, paths, methods) in enumerate(specs):
        p = access_policy(f"p{i}")
        policies.append(p)
        rules.append(allow(p, API_SVC, sa(who), ports=(80,), paths=paths, methods=methods))
    result = run(*rules, policies=policies)
    objs = objects(result, C)
    assert all(validate(o) == [] for o in objs)
    overlap_warned = any(f.code == "MR0421" for f in result.findings)
    for who in ("a", "b", "c"):
        for method in ("GET", "POST", "PUT"):
            for path in _REQUEST_PATHS:
                request = Request(method, path)
                expected = any(w == who and _allows_linkerd_paths(ps, ms, request) for w, ps, ms in specs)
                decided = inbound_allows(objs, "api-http", _ID.format(who), request)
                if overlap_warned:
                    assert expected in decided or decided == {False}
                else:
                    assert decided == {expected}, (who, request)


def test_callers_of_this_cluster_do_not_include_its_gateway() -> None:
    # "Any caller in cluster-3" as a trust-domain suffix would match cluster-3's linkerd-gateway,
    # which carries remote callers: the namespaces of cluster-3's workloads are named instead.
    p = access_policy("local-only")
    result = run(allow(p, API_SVC, IdentityPattern(cluster=C)), policies=[p])
    ids = named(result, C, "MeshTLSAuthentication", "api-http-local-only")["spec"]["identities"]
    assert ids == ["*.shop.serviceaccount.identity.linkerd.cluster.local"]
    objs = objects(result, C)
    assert inbound_allows(objs, "api-http", GATEWAY_ID, Request("GET", "/")) == {False}
    assert inbound_allows(objs, "api-http", WEB_ID, Request("GET", "/")) == {True}
