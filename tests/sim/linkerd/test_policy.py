"""Linkerd inbound authorization, one test per documented rule (``meshrules.sim.linkerd.policy``).

Objects: emojivoto (``samples/emojivoto.yml``) with its upstream policy (``sim/linkerd/
emojivoto-policy.yml``: Servers and ServerAuthorizations), the viz extension's policies
(``viz_install_default.golden.yaml``), the multicluster gateway's (``linkerd-control-plane/
multicluster_install_default.golden.yaml``) and the control plane's ``linkerd-config``. Each docstring
quotes the rule and its page on linkerd.io.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from meshrules.sim.linkerd.policy import (
    ALLOWED,
    DENIED_DEFAULT,
    LinkerdConfig,
    compile_policy,
    service_account_identity,
)
from meshrules.sim.request import Request

UPSTREAM = Path(__file__).resolve().parents[2] / "fixtures" / "upstream"
SIM = UPSTREAM / "sim" / "linkerd"
NS = "emojivoto"
WEB_ID = service_account_identity("web", NS)
BOT_ID = service_account_identity("vote-bot", NS)
IN_CLUSTER = "10.42.0.7"
OUTSIDE = "203.0.113.5"


def load(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def app() -> list[dict[str, Any]]:
    return load(UPSTREAM / "samples" / "emojivoto.yml")


def deployment(name: str, objs: Iterable[dict[str, Any]] | None = None) -> dict[str, Any]:
    return next(d for d in (objs or app()) if d["kind"] == "Deployment" and d["metadata"]["name"] == name)


def with_probe(dep: dict[str, Any], path: str = "/ping", port: int | str = 8080) -> dict[str, Any]:
    dep = copy.deepcopy(dep)
    dep["spec"]["template"]["spec"]["containers"][0]["readinessProbe"] = {"httpGet": {"path": path, "port": port}}
    return dep


def annotate(obj: dict[str, Any], **annotations: str) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    target = obj["spec"]["template"]["metadata"] if obj["kind"] == "Deployment" else obj["metadata"]
    target.setdefault("annotations", {}).update({k.replace("_", "-").replace("--", "/"): v
                                                 for k, v in annotations.items()})
    return obj


def req(port: int, principal: str | None = WEB_ID, ip: str | None = IN_CLUSTER, path: str = "/",
        method: str = "GET", tcp: bool = False) -> Request:
    if tcp:
        return Request.tcp(source_principal=principal, source_ip=ip, destination_port=port)
    return Request.http(source_principal=principal, source_ip=ip, destination_port=port, path=path, method=method)


def server(name: str, ns: str, selector: dict[str, str], port: int | str, ts: str | None = None,
           **spec: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": ns}
    if ts:
        meta["creationTimestamp"] = ts
    return {"apiVersion": "policy.linkerd.io/v1beta3", "kind": "Server", "metadata": meta,
            "spec": {"podSelector": {"matchLabels": selector}, "port": port, **spec}}


def authz(name: str, ns: str, target_kind: str, target: str, *refs: tuple[str, str]) -> dict[str, Any]:
    group = {"kind": target_kind, "name": target}
    if target_kind != "Namespace":
        group["group"] = "policy.linkerd.io"
    return {"apiVersion": "policy.linkerd.io/v1alpha1", "kind": "AuthorizationPolicy",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"targetRef": group,
                     "requiredAuthenticationRefs": [
                         {"kind": k, "name": n, **({"group": "policy.linkerd.io"} if k != "ServiceAccount" else {})}
                         for k, n in refs]}}


def mtls_authn(name: str, ns: str, *identities: str) -> dict[str, Any]:
    return {"apiVersion": "policy.linkerd.io/v1alpha1", "kind": "MeshTLSAuthentication",
            "metadata": {"name": name, "namespace": ns}, "spec": {"identities": list(identities)}}


def net_authn(name: str, ns: str, *networks: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "policy.linkerd.io/v1alpha1", "kind": "NetworkAuthentication",
            "metadata": {"name": name, "namespace": ns}, "spec": {"networks": list(networks)}}


def route(name: str, ns: str, server_name: str, *matches: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "policy.linkerd.io/v1beta3", "kind": "HTTPRoute", "metadata": {"name": name, "namespace": ns},
            "spec": {"parentRefs": [{"name": server_name, "kind": "Server", "group": "policy.linkerd.io"}],
                     "rules": [{"matches": list(matches)}]}}


# ================================================================================================
# default policies
# ================================================================================================


def test_all_unauthenticated_is_the_default() -> None:
    """"`all-unauthenticated`: allow all traffic. This is the default." — Authorization Policy reference,
    default policies (https://linkerd.io/2-edge/reference/authorization-policy/); the control plane's
    linkerd-config says ``defaultInboundPolicy: all-unauthenticated``."""
    objs = app() + load(UPSTREAM / "linkerd-control-plane" / "install_default.golden.yaml")
    p = compile_policy(objs)
    assert p.config.default_policy == "all-unauthenticated"
    d = p.evaluate(deployment("web"), req(8080, principal=None, ip=OUTSIDE))
    assert (d.allowed, d.code, d.server) == (True, ALLOWED, "default:all-unauthenticated")


def test_all_authenticated_requires_a_meshed_client_from_anywhere() -> None:
    """"`all-authenticated`: allow traffic from meshed clients in the same or from a different cluster
    (with multi-cluster)." — Authorization Policy reference."""
    p = compile_policy(app(), config=LinkerdConfig(default_policy="all-authenticated"))
    assert p.evaluate(deployment("web"), req(8080, ip=OUTSIDE)).allowed
    d = p.evaluate(deployment("web"), req(8080, principal=None))
    assert (d.allowed, d.code, d.status) == (False, DENIED_DEFAULT, 403)
    assert d.misses[0].field == "authentication"


def test_cluster_authenticated_requires_meshed_clients_in_the_cluster_networks() -> None:
    """"`cluster-authenticated`: allow traffic from meshed clients in the same cluster." — Authorization
    Policy reference; the cluster is linkerd-config's ``clusterNetworks``."""
    p = compile_policy(app(), config=LinkerdConfig(default_policy="cluster-authenticated"))
    assert p.evaluate(deployment("web"), req(8080)).allowed
    assert not p.evaluate(deployment("web"), req(8080, ip=OUTSIDE)).allowed
    assert not p.evaluate(deployment("web"), req(8080, principal=None)).allowed


def test_cluster_unauthenticated_allows_any_client_in_the_cluster() -> None:
    """"`cluster-unauthenticated`: allow traffic from both meshed and non-meshed clients in the same
    cluster." — Authorization Policy reference."""
    p = compile_policy(app(), config=LinkerdConfig(default_policy="cluster-unauthenticated"))
    assert p.evaluate(deployment("web"), req(8080, principal=None)).allowed
    assert not p.evaluate(deployment("web"), req(8080, principal=None, ip=OUTSIDE)).allowed


def test_deny_denies_but_probes_stay_authorized() -> None:
    """"`deny`: all traffic are denied." (reference) and "Linkerd automatically authorizes probes to pods.
    These default authorizations apply only when no Server is configured for a port, or when a Server is
    configured but no HTTPRoutes are configured for that Server." — Authorization Policy feature, default
    authorizations (https://linkerd.io/2-edge/features/server-policy/)."""
    web = with_probe(deployment("web"))
    p = compile_policy(app(), config=LinkerdConfig(default_policy="deny"))
    assert not p.evaluate(web, req(8080, path="/api/list")).allowed
    probe = p.evaluate(web, req(8080, principal=None, ip="192.168.1.1", path="/ping"))
    assert (probe.allowed, probe.route, probe.authorization) == (True, "probe", "default:probe")
    assert not p.evaluate(web, req(8080, path="/ping", method="POST")).allowed


def test_audit_allows_and_flags() -> None:
    """"`audit`: Same as `all-unauthenticated` but requests get flagged in logs and metrics." —
    Authorization Policy reference."""
    p = compile_policy(app(), config=LinkerdConfig(default_policy="audit"))
    d = p.evaluate(deployment("web"), req(8080, principal=None, ip=OUTSIDE))
    assert (d.allowed, d.code, d.outcome, d.audit) == (True, ALLOWED, "audit", True)


def test_annotations_override_the_cluster_default_pod_first() -> None:
    """"This cluster-wide default can be overridden for specific resources by setting the annotation
    `config.linkerd.io/default-inbound-policy` on either a pod spec or its namespace." — Authorization
    Policy reference."""
    ns = annotate(next(o for o in app() if o["kind"] == "Namespace"),
                  **{"config.linkerd.io/default-inbound-policy": "deny"})
    objs = [o for o in app() if o["kind"] != "Namespace"] + [ns]
    p = compile_policy(objs)
    d = p.evaluate(deployment("web"), req(8080))
    assert not d.allowed and "namespace emojivoto" in d.default_policy_source
    pod = annotate(deployment("web"), **{"config.linkerd.io/default-inbound-policy": "all-authenticated"})
    d = p.evaluate(pod, req(8080))
    assert d.allowed and d.default_policy == "all-authenticated" and "on the pod" in d.default_policy_source


# ================================================================================================
# Servers and authorizations
# ================================================================================================


def emoji_policy(*extra: dict[str, Any]) -> Any:
    return compile_policy(app() + load(SIM / "emojivoto-policy.yml") + list(extra))


def test_a_server_denies_what_nothing_authorizes() -> None:
    """"When a Server resource is present, all traffic to the port on its pods will be denied unless
    explicitly authorized or audit mode is enabled" — Authorization Policy reference, Server; emojivoto's
    ``voting-grpc`` Server admits only the ``web`` service account (ServerAuthorization internal-grpc)."""
    p = emoji_policy()
    ok = p.evaluate(deployment("voting"), req(8080, path="/emojivoto.v1.VotingService/VoteDoughnut", method="POST"))
    assert (ok.allowed, ok.server, ok.authorization) == (True, "Server emojivoto/voting-grpc",
                                                         "ServerAuthorization emojivoto/internal-grpc")
    bot = p.evaluate(deployment("voting"), req(8080, principal=BOT_ID, method="POST"))
    assert (bot.allowed, bot.code, bot.status) == (False, DENIED_DEFAULT, 403)
    assert any(m.field == "identities" for m in bot.misses)


def test_server_ports_are_numbers_or_container_port_names() -> None:
    """"`port`: A port name or number. Only ports in a pod spec's `ports` are considered." — Authorization
    Policy reference, Server spec; emojivoto's Servers name ports ``grpc``, ``http`` and ``prom``."""
    p = emoji_policy(server("web-num", NS, {"app": "web-svc"}, 9999))
    assert p.evaluate(deployment("web"), req(8080)).server == "Server emojivoto/web-http"
    assert p.evaluate(deployment("emoji"), req(8801, principal=None)).server == "Server emojivoto/prom"
    assert p.evaluate(deployment("web"), req(9999)).server == "Server emojivoto/web-num"
    assert p.evaluate(deployment("web"), req(7000)).server.startswith("default:")


def test_server_access_policy_applies_to_unauthorized_traffic() -> None:
    """"`accessPolicy` declares the policy applied to traffic not matching any associated authorization
    policies (defaults to `deny`)." — Authorization Policy reference, Server spec."""
    lenient = server("web", NS, {"app": "web-svc"}, "http", accessPolicy="all-authenticated")
    p = compile_policy([*app(), lenient])
    allowed_by = p.evaluate(deployment("web"), req(8080)).authorization
    assert allowed_by == "Server emojivoto/web accessPolicy all-authenticated"
    assert not p.evaluate(deployment("web"), req(8080, principal=None)).allowed
    audit = compile_policy([*app(), server("web", NS, {"app": "web-svc"}, "http", accessPolicy="audit")])
    assert audit.evaluate(deployment("web"), req(8080, principal=None)).outcome == "audit"


def test_server_authorization_clients() -> None:
    """ServerAuthorization ``client``: "`unauthenticated`: A boolean value that authorizes unauthenticated
    clients"; ``meshTLS.serviceAccounts``: "A list of authorized client serviceAccounts"; ``networks``
    "Limits the client IP addresses to which this authorization applies" — Authorization Policy
    reference, ServerAuthorization; emojivoto's ``web-public`` allows 0.0.0.0/0 and ::/0."""
    p = emoji_policy()
    anyone = p.evaluate(deployment("web"), req(8080, principal=None, ip=OUTSIDE))
    assert anyone.allowed and anyone.authorization == "ServerAuthorization emojivoto/web-public"


def test_authorization_policy_with_mesh_tls_identity_refs() -> None:
    """"An AuthorizationPolicy which authorizes clients that satisfy the ... authentication" and
    MeshTLSAuthentication ``identityRefs``: "A list of targetRefs to ServiceAccounts to authenticate." —
    Authorization Policy reference; the viz extension authorizes ``web`` on the metrics-api Server."""
    objs = load(SIM / "viz_install_default.golden.yaml")
    p = compile_policy(objs)
    metrics_api = deployment("metrics-api", objs)
    web = service_account_identity("web", "linkerd-viz")
    port = 8085
    ok = p.evaluate(metrics_api, req(port, principal=web))
    assert (ok.allowed, ok.authorization) == (True, "AuthorizationPolicy linkerd-viz/metrics-api")
    assert not p.evaluate(metrics_api, req(port, principal=service_account_identity("tap", "linkerd-viz"))).allowed


def test_authorization_policy_with_a_service_account_ref() -> None:
    """"An AuthorizationPolicy which authorizes the `webapp` ServiceAccount to send to the `authors`
    Server" (``requiredAuthenticationRefs: [{kind: ServiceAccount}]``) — Authorization Policy reference;
    the grafana sample authorizes ServiceAccount grafana/grafana on prometheus-admin."""
    objs = load(SIM / "viz_install_default.golden.yaml") + load(SIM / "authzpolicy-grafana.yaml")
    p = compile_policy(objs)
    prom = deployment("prometheus", objs)
    grafana = service_account_identity("grafana", "grafana")
    d = p.evaluate(prom, req(9090, principal=grafana))
    assert d.allowed and d.authorization == "AuthorizationPolicy linkerd-viz/grafana"


def test_all_required_authentications_must_match() -> None:
    """"requiredAuthenticationRefs: A list of TargetRefs representing the required authentications. In
    the case of multiple entries, all authentications must match." — Authorization Policy reference; the
    multicluster gateway requires any meshed identity and the source-cluster networks."""
    objs = load(UPSTREAM / "linkerd-control-plane" / "multicluster_install_default.golden.yaml")
    gateway = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "gw", "namespace": "linkerd-multicluster",
                                                               "labels": {"app": "linkerd-gateway"}},
               "spec": {"containers": [{"name": "linkerd-proxy", "ports": [{"name": "linkerd-proxy",
                                                                            "containerPort": 4143}]}]}}
    p = compile_policy(objs)
    meshed = p.evaluate(gateway, req(4143, principal=WEB_ID, ip=OUTSIDE, tcp=True))
    assert meshed.allowed and meshed.authorization == "AuthorizationPolicy linkerd-multicluster/linkerd-gateway"
    plain = p.evaluate(gateway, req(4143, principal=None, ip=OUTSIDE, tcp=True))
    assert (plain.allowed, plain.status) == (False, None)  # TCP: the connection is refused
    narrow = [o for o in objs if o["metadata"].get("name") != "source-cluster"] + [
        net_authn("source-cluster", "linkerd-multicluster", {"cidr": "10.0.0.0/8"})]
    assert not compile_policy(narrow).evaluate(gateway, req(4143, principal=WEB_ID, ip=OUTSIDE, tcp=True)).allowed


def test_network_authentication_cidr_and_except() -> None:
    """NetworkAuthentication ``networks``: "`cidr`: A subnet in CIDR notation to authenticate. `except`: A
    list of subnets in CIDR notation to exclude from the authentication." — Authorization Policy
    reference."""
    objs = [*app(), server("web", NS, {"app": "web-svc"}, "http"),
            net_authn("pods", NS, {"cidr": "10.0.0.0/8", "except": ["10.9.0.0/16"]}),
            authz("web-pods", NS, "Server", "web", ("NetworkAuthentication", "pods"))]
    p = compile_policy(objs)
    assert p.evaluate(deployment("web"), req(8080, principal=None, ip="10.1.2.3")).allowed
    assert not p.evaluate(deployment("web"), req(8080, principal=None, ip="10.9.2.3")).allowed
    assert not p.evaluate(deployment("web"), req(8080, principal=None, ip=OUTSIDE)).allowed


def test_a_namespace_target_covers_every_server_in_the_namespace() -> None:
    """"A namespace (`kind: Namespace`), indicating that the AuthorizationPolicy applies to all traffic to
    all Servers and HTTPRoutes defined in the namespace. This may only be the namespace of the
    AuthorizationPolicy." — Authorization Policy reference, targetRef."""
    objs = [*app(), server("web", NS, {"app": "web-svc"}, "http"), server("voting", NS, {"app": "voting-svc"}, "grpc"),
            authz("ns-bot", NS, "Namespace", NS, ("ServiceAccount", "vote-bot")),
            authz("elsewhere", NS, "Namespace", "other", ("ServiceAccount", "web"))]
    p = compile_policy(objs)
    assert p.evaluate(deployment("web"), req(8080, principal=BOT_ID)).allowed
    assert p.evaluate(deployment("voting"), req(8080, principal=BOT_ID, method="POST")).allowed
    assert not p.evaluate(deployment("web"), req(8080)).allowed  # the other-namespace target is refused
    assert any(d.code == "MR0921" for d in p.diagnostics)


def test_mesh_tls_identity_wildcards() -> None:
    """MeshTLSAuthentication ``identities``: "The `*` prefix can be used to match all identities in a
    domain. An identity string of `*` indicates that all meshed clients are authorized." — Authorization
    Policy reference."""
    suffix = "*.emojivoto.serviceaccount.identity.linkerd.cluster.local"
    objs = [*app(), server("web", NS, {"app": "web-svc"}, "http"), mtls_authn("ns-ids", NS, suffix),
            authz("ns-ids", NS, "Server", "web", ("MeshTLSAuthentication", "ns-ids"))]
    p = compile_policy(objs)
    assert p.evaluate(deployment("web"), req(8080, principal=BOT_ID)).allowed
    assert not p.evaluate(deployment("web"), req(8080, principal=service_account_identity("x", "other"))).allowed
    star = [*app(), server("web", NS, {"app": "web-svc"}, "http"), mtls_authn("all", NS, "*"),
            authz("all", NS, "Server", "web", ("MeshTLSAuthentication", "all"))]
    anyone_meshed = req(8080, principal="x.y.serviceaccount.identity.a.b")
    assert compile_policy(star).evaluate(deployment("web"), anyone_meshed).allowed


def test_identity_refs_without_a_name_cover_the_whole_namespace() -> None:
    """MeshTLSAuthentication ``identityRefs[].name``: "Name is the name of the referent. When unspecified,
    this refers to all resources of the specified Group and Kind in the specified namespace." — Linkerd
    policy CRD (meshtls-authentication.yaml); a ``Namespace`` ref names every identity of that namespace
    (policy controller ``namespace_identity``)."""
    by_sa = {"apiVersion": "policy.linkerd.io/v1alpha1", "kind": "MeshTLSAuthentication",
             "metadata": {"name": "ns-sas", "namespace": NS},
             "spec": {"identityRefs": [{"kind": "ServiceAccount"}, {"kind": "Namespace", "name": "ops"}]}}
    objs = [*app(), server("web", NS, {"app": "web-svc"}, "http"), by_sa,
            authz("ns-sas", NS, "Server", "web", ("MeshTLSAuthentication", "ns-sas"))]
    p = compile_policy(objs)
    assert p.evaluate(deployment("web"), req(8080, principal=BOT_ID)).allowed
    assert p.evaluate(deployment("web"), req(8080, principal=service_account_identity("any", "ops"))).allowed
    assert not p.evaluate(deployment("web"), req(8080, principal=service_account_identity("x", "dev"))).allowed


def test_a_policy_referring_to_a_missing_authentication_is_ignored() -> None:
    """The policy controller refuses an AuthorizationPolicy whose authentication does not exist ("could not
    find MeshTLSAuthentication ...; Illegal AuthorizationPolicy; ignoring", policy-controller index), so
    it authorizes nothing."""
    objs = [*app(), server("web", NS, {"app": "web-svc"}, "http"),
            authz("broken", NS, "Server", "web", ("MeshTLSAuthentication", "missing"))]
    d = compile_policy(objs).evaluate(deployment("web"), req(8080))
    assert not d.allowed and any("invalid" in i for i in d.ignored)


def test_overlapping_servers_the_oldest_wins() -> None:
    """"multiple Server instances must not overlap: they must not select the same pod/port pairs. Linkerd
    ships with an admission controller that prevents overlapping Servers from being created." —
    Authorization Policy reference, Server."""
    old = server("old", NS, {"app": "web-svc"}, "http", ts="2024-01-01T00:00:00Z", accessPolicy="all-unauthenticated")
    new = server("new", NS, {"app": "web-svc"}, 8080, ts="2024-05-01T00:00:00Z")
    d = compile_policy([*app(), new, old]).evaluate(deployment("web"), req(8080))
    assert d.server == "Server emojivoto/old" and any("Server emojivoto/new" in i for i in d.ignored)


def test_localhost_is_always_authorized() -> None:
    """The proxy always authorizes its own pod's traffic ("Always permit traffic from localhost",
    linkerd2-proxy ``server-policy``)."""
    p = compile_policy([*app(), server("web", NS, {"app": "web-svc"}, "http")])
    assert p.evaluate(deployment("web"), req(8080, principal=None, ip="127.0.0.1")).authorization == "default:localhost"


def test_tcp_denials_refuse_the_connection() -> None:
    """"Any traffic that is known to be HTTP (including HTTP/2 and gRPC) that is denied by policy will
    result in the proxy returning an HTTP 403. All other traffic will be denied at the TCP level, i.e. by
    refusing the connection." — Authorization Policy feature, policy rejections."""
    p = compile_policy([*app(), server("web", NS, {"app": "web-svc"}, "http", proxyProtocol="opaque")])
    d = p.evaluate(deployment("web"), req(8080))
    assert (d.allowed, d.protocol, d.status) == (False, "tcp", None)


# ================================================================================================
# routes
# ================================================================================================


def routed(*extra: dict[str, Any]) -> Any:
    base = [server("web", NS, {"app": "web-svc"}, "http"),
            route("api-read", NS, "web", {"path": {"type": "PathPrefix", "value": "/api/"}, "method": "GET"}),
            mtls_authn("readers", NS, WEB_ID, BOT_ID),
            authz("api-read", NS, "HTTPRoute", "api-read", ("MeshTLSAuthentication", "readers"))]
    return compile_policy(app() + base + list(extra))


def test_a_request_matching_no_route_of_the_server_gets_404() -> None:
    """"The route we created to authorize GET requests does not match PUT or DELETE requests, so the
    authors proxy rejects those requests with a 404 error." — Configuring Per-Route Authorization Policy
    (https://linkerd.io/2-edge/tasks/configuring-per-route-policy/)."""
    d = routed().evaluate(deployment("web"), req(8080, path="/api/vote", method="DELETE"))
    assert (d.allowed, d.code, d.outcome, d.status) == (False, DENIED_DEFAULT, "no-route", 404)
    assert d.route_misses and d.route_misses[0].field.endswith(".method")


def test_route_authorization_policies_authorize_the_route() -> None:
    """"AuthorizationPolicies may target HTTPRoute resources, thereby authorizing traffic to that HTTPRoute
    only rather than to the entire Server." — Authorization Policy reference, HTTPRoute."""
    d = routed().evaluate(with_probe(deployment("web")), req(8080, principal=BOT_ID, path="/api/list"))
    assert d.allowed and d.route == "HTTPRoute emojivoto/api-read (policy.linkerd.io)"
    other = routed().evaluate(deployment("web"), req(8080, principal=service_account_identity("x", NS),
                                                     path="/api/list"))
    assert (other.allowed, other.status) == (False, 403)


def test_server_level_policies_also_authorize_requests_on_routes() -> None:
    """A Server target means "the AuthorizationPolicy applies to all traffic to the Server" — Authorization
    Policy reference, targetRef — including requests on its routes (the proxy checks the route's and the
    server's authorizations together)."""
    p = routed(mtls_authn("ops", NS, service_account_identity("ops", NS)),
               authz("ops", NS, "Server", "web", ("MeshTLSAuthentication", "ops")))
    d = p.evaluate(deployment("web"), req(8080, principal=service_account_identity("ops", NS), path="/api/list"))
    assert d.allowed and d.authorization == "AuthorizationPolicy emojivoto/ops"


def test_probes_are_not_authorized_once_routes_are_attached() -> None:
    """"If any HTTPRoute matches the Server, these automatic authorizations are not created and you must
    explicitly create them for health and readiness probes." — Authorization Policy feature, default
    authorizations."""
    web = with_probe(deployment("web"), "/ping")
    d = routed().evaluate(web, req(8080, principal=None, path="/ping"))
    assert (d.allowed, d.outcome) == (False, "no-route")
    bare = compile_policy([*app(), server("web", NS, {"app": "web-svc"}, "http")])
    probe = bare.evaluate(web, req(8080, principal=None, path="/ping"))
    assert probe.allowed and probe.route == "probe"


def test_route_precedence_follows_the_gateway_api() -> None:
    """"A given HTTP request can only match one HTTPRoute. If multiple HTTPRoutes are present that match a
    request, one will be picked according to the Gateway API rules of precedence." — Authorization Policy
    reference, HTTPRoute (an Exact path beats a PathPrefix)."""
    exact = route("exact", NS, "web", {"path": {"type": "Exact", "value": "/api/list"}})
    p = routed(exact, authz("exact", NS, "HTTPRoute", "exact", ("ServiceAccount", "web")))
    d = p.evaluate(deployment("web"), req(8080, principal=BOT_ID, path="/api/list"))
    assert d.route == "HTTPRoute emojivoto/exact (policy.linkerd.io)" and not d.allowed


# ================================================================================================
# properties
# ================================================================================================

PRINCIPALS = [WEB_ID, BOT_ID, None, service_account_identity("x", "other"), ""]
IPS = [IN_CLUSTER, OUTSIDE, "127.0.0.1", None]
REQUESTS = st.builds(
    lambda port, principal, ip, path, method, tcp: req(port, principal, ip, path, method, tcp),
    st.sampled_from([8080, 8801, 9999]), st.sampled_from(PRINCIPALS), st.sampled_from(IPS),
    st.sampled_from(["/", "/api/list", "/ping"]), st.sampled_from(["GET", "POST"]), st.booleans())
NEW_SERVERS = st.builds(
    lambda name, sel, port, proto, access: server(name, NS, sel, port, ts="2030-01-01T00:00:00Z",
                                                  proxyProtocol=proto, **({"accessPolicy": access} if access else {})),
    st.sampled_from(["added-a", "added-b"]),
    st.sampled_from([{"app": "web-svc"}, {"app": "voting-svc"}, {}]),
    st.sampled_from([8080, "http", "grpc", "prom", 9999]),
    st.sampled_from(["unknown", "HTTP/1", "opaque"]),
    st.sampled_from([None, "deny"]))


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(["all-unauthenticated", "all-authenticated", "cluster-authenticated", "deny"]),
       st.booleans(), NEW_SERVERS, st.lists(REQUESTS, min_size=1, max_size=6))
def test_adding_a_server_never_allows_more(default: str, with_policy: bool, added: dict[str, Any],
                                           requests: list[Request]) -> None:
    """"When a Server resource is present, all traffic to the port on its pods will be denied unless
    explicitly authorized" (reference): a newly created Server (access policy ``deny``, the default)
    only ever takes access away."""
    base = app() + (load(SIM / "emojivoto-policy.yml") if with_policy else [])
    for obj in base:  # everything already there is older than the Server being added
        obj["metadata"]["creationTimestamp"] = "2024-01-01T00:00:00Z"
    before = compile_policy(base, config=LinkerdConfig(default_policy=default))
    after = compile_policy([*base, added], config=LinkerdConfig(default_policy=default))
    for pod in (with_probe(deployment("web")), deployment("voting")):
        for r in requests:
            if after.evaluate(pod, r).allowed:
                assert before.evaluate(pod, r).allowed
