"""Linkerd client-side routing, one test per documented rule (``meshrules.sim.linkerd.routing``).

Services are emojivoto's (``samples/emojivoto.yml``); HTTPRoutes, ServiceProfiles and multicluster
mirror Services are written inline in the shapes Linkerd's docs show. Each docstring quotes the rule
and its page.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshrules.errors import QueryError
from meshrules.sim.linkerd.httproute import compile_http_route, select_route
from meshrules.sim.linkerd.policy import service_account_identity
from meshrules.sim.linkerd.routing import (
    GATEWAY_IDENTITY,
    NO_HEALTHY_UPSTREAM,
    NO_ROUTE,
    ROUTED,
    LinkerdCaller,
    compile_routing,
)
from meshrules.sim.request import Request

UPSTREAM = Path(__file__).resolve().parents[2] / "fixtures" / "upstream"
NS = "emojivoto"
WEB = LinkerdCaller(NS, service_account_identity("web", NS), "west", "web")


def app() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((UPSTREAM / "samples" / "emojivoto.yml").read_text()) if d]


def svc(name: str, ns: str = NS, port: int = 8080, labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": ns, "labels": labels or {}, "annotations": annotations or {}}
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta,
            "spec": {"ports": [{"name": "grpc", "port": port}]}}


def http_route(name: str, rules: list[dict[str, Any]], parent: str = "voting-svc", ns: str = NS,
               port: int | None = None, annotations: dict[str, str] | None = None, ts: str | None = None,
               group: str = "gateway.networking.k8s.io", parent_ns: str | None = None) -> dict[str, Any]:
    ref: dict[str, Any] = {"name": parent, "kind": "Service", "group": "core"}
    if port:
        ref["port"] = port
    if parent_ns:
        ref["namespace"] = parent_ns
    meta: dict[str, Any] = {"name": name, "namespace": ns, "annotations": annotations or {}}
    if ts:
        meta["creationTimestamp"] = ts
    return {"apiVersion": f"{group}/v1", "kind": "HTTPRoute", "metadata": meta,
            "spec": {"parentRefs": [ref], "rules": rules}}


def backend(name: str, weight: int | None = None, port: int | None = 8080) -> dict[str, Any]:
    b: dict[str, Any] = {"name": name}
    if port:
        b["port"] = port
    if weight is not None:
        b["weight"] = weight
    return b


def get(path: str = "/", method: str = "GET", **headers: str) -> Request:
    return Request.http(path=path, method=method, headers=headers, destination_port=8080)


def shares(d: Any) -> dict[str, int]:
    return {b.service: b.weight for b in d.backends}


# ================================================================================================
# defaults
# ================================================================================================


def test_without_routes_every_request_goes_to_the_service_with_no_retries() -> None:
    """"Timeouts and retries are configured with a set of annotations ... placed on HTTPRoute or GRPCRoute
    resources ... Alternatively, they can be placed on Service resources" — Retries and Timeouts feature
    (https://linkerd.io/2-edge/features/retries-and-timeouts/): with none, the proxy neither retries nor
    times out (API §3.2: "Linkerd does not retry by default")."""
    d = compile_routing(app()).route(WEB, "voting-svc", 8080, get())
    assert (d.code, shares(d), d.retries, d.timeouts.request) == (ROUTED, {"emojivoto/voting-svc": 100}, None, None)
    assert set(d.defaults) == {"route", "retries", "timeouts"}


def test_short_names_resolve_through_the_callers_namespace() -> None:
    """Clients dial Services by DNS name; ``voting-svc`` from namespace emojivoto is
    ``voting-svc.emojivoto.svc.cluster.local`` (Kubernetes DNS for Services and Pods). An unknown name is
    not routable."""
    r = compile_routing(app())
    assert r.route(WEB, "voting-svc.emojivoto.svc.cluster.local", 8080).service == "emojivoto/voting-svc"
    assert r.route(WEB, "nowhere", 8080).code == NO_ROUTE
    with pytest.raises(QueryError):
        r.route(WEB, "voting-svc")  # two ports: grpc and prom


# ================================================================================================
# matching and precedence
# ================================================================================================


def test_precedence_exact_path_then_longest_prefix_then_method_then_headers() -> None:
    """"Across all rules specified on applicable Routes, precedence must be given to the match having:
    "Exact" path match. "Prefix" path match with largest number of characters. Method match. Largest
    number of header matches. Largest number of query param matches." — Gateway API, HTTPRouteRule.matches
    (https://gateway-api.sigs.k8s.io/reference/spec/#httprouterule)."""
    rules = [
        {"matches": [{"path": {"type": "PathPrefix", "value": "/api"}}], "backendRefs": [backend("voting-svc")]},
        {"matches": [{"path": {"type": "PathPrefix", "value": "/api/vote"}}], "backendRefs": [backend("emoji-svc")]},
        {"matches": [{"path": {"type": "Exact", "value": "/api/vote/x"}}],
         "backendRefs": [backend("web-svc", port=80)]},
        {"matches": [{"path": {"type": "PathPrefix", "value": "/api/vote"}, "method": "POST"}],
         "backendRefs": [backend("voting-svc")]},
        {"matches": [{"path": {"type": "PathPrefix", "value": "/api/vote"}, "method": "POST",
                      "headers": [{"name": "x-canary", "value": "1"}]}], "backendRefs": [backend("emoji-svc")]},
    ]
    r = compile_routing([*app(), http_route("r", rules)])
    assert r.route(WEB, "voting-svc", 8080, get("/api/vote/x")).rule == 2
    assert r.route(WEB, "voting-svc", 8080, get("/api/vote/y")).rule == 1
    assert r.route(WEB, "voting-svc", 8080, get("/api/other")).rule == 0
    assert r.route(WEB, "voting-svc", 8080, get("/api/vote/y", method="POST")).rule == 3
    assert r.route(WEB, "voting-svc", 8080, get("/api/vote/y", method="POST", **{"X-Canary": "1"})).rule == 4


def test_ties_go_to_the_oldest_route_then_namespace_name() -> None:
    """"If ties still exist across multiple Routes, matching precedence MUST be determined in order of the
    following criteria, continuing on ties: The oldest Route based on creation timestamp. The Route
    appearing first in alphabetical order by "{namespace}/{name}"." — Gateway API, HTTPRouteRule."""
    same = [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}]}]
    old = http_route("zz-old", copy.deepcopy(same), ts="2024-01-01T00:00:00Z")
    new = http_route("aa-new", copy.deepcopy(same), ts="2024-02-01T00:00:00Z")
    assert compile_routing([*app(), new, old]).route(WEB, "voting-svc", 8080, get()).route == (
        "HTTPRoute emojivoto/zz-old (gateway.networking.k8s.io)")
    a, b = http_route("b-route", copy.deepcopy(same)), http_route("a-route", copy.deepcopy(same))
    assert compile_routing([*app(), a, b]).route(WEB, "voting-svc", 8080, get()).route == (
        "HTTPRoute emojivoto/a-route (gateway.networking.k8s.io)")


def test_path_prefix_matches_whole_path_elements() -> None:
    """"PathPrefix: Matches based on a URL path prefix split by `/`. ... the paths `/abc`, `/abc/`, and
    `/abc/def` would all match the prefix `/abc`, but the path `/abcd` would not." — Gateway API,
    PathMatchType."""
    route = compile_http_route(http_route("r", [{"matches": [{"path": {"type": "PathPrefix", "value": "/abc/"}}]}]))
    for path, hit in (("/abc", True), ("/abc/", True), ("/abc/def", True), ("/abcd", False)):
        assert (select_route([route], get(path)).winner is not None) is hit


def test_header_names_are_case_insensitive_and_the_first_entry_counts() -> None:
    """"Name is the name of the HTTP Header to be matched. Name matching MUST be case-insensitive. ... If
    multiple entries specify equivalent header names, only the first entry with an equivalent name MUST be
    considered for a match." — Gateway API, HTTPHeaderMatch."""
    route = compile_http_route(http_route("r", [{"matches": [{"headers": [
        {"name": "X-User", "value": "jason"}, {"name": "x-user", "value": "other"}]}]}]))
    assert select_route([route], get(**{"x-user": "jason"})).winner is not None
    assert select_route([route], get(**{"x-user": "other"})).winner is None


def test_routes_attached_but_no_match_is_a_404() -> None:
    """"When no rules matching a request have been successfully attached to the parent a request is coming
    from, a HTTP 404 status code MUST be returned." — Gateway API, HTTPRouteRule.matches."""
    r = compile_routing([*app(), http_route("r", [{"matches": [{"path": {"type": "Exact", "value": "/only"}}]}])])
    d = r.route(WEB, "voting-svc", 8080, get("/else"))
    assert (d.code, d.status) == (NO_ROUTE, 404) and d.misses


def test_parent_port_limits_a_route_to_that_port() -> None:
    """A parentRef ``port`` binds the route to that Service port; without it the route "applies to all
    ports" (Linkerd policy controller outbound index: "The HttpRoutes which target this Service but don't
    specify a port apply to all ports")."""
    rule = [{"backendRefs": [backend("emoji-svc")]}]
    r = compile_routing([*app(), http_route("r", rule, port=8801)])
    assert r.route(WEB, "voting-svc", 8801, Request.http(destination_port=8801)).route is not None
    assert r.route(WEB, "voting-svc", 8080, get()).route is None


def test_producer_routes_apply_to_everyone_consumer_routes_to_their_namespace() -> None:
    """"Producer routes are routes in the same namespace as their parent service. Consumer routes are
    routes in other namespaces." ... "Consumer routes should only apply to watches from the consumer
    namespace." ... "Producer routes apply to clients in all namespaces" — Linkerd policy controller
    outbound index (GAMMA's producer and consumer routes, https://gateway-api.sigs.k8s.io/mesh/)."""
    consumer = http_route("mine", [{"matches": [{"path": {"type": "Exact", "value": "/x"}}],
                                    "backendRefs": [backend("emoji-svc", port=8080)]}], ns="client",
                          parent_ns=NS)
    consumer["spec"]["rules"][0]["backendRefs"][0]["namespace"] = NS
    r = compile_routing([*app(), consumer])
    assert r.route(LinkerdCaller("client"), "voting-svc.emojivoto", 8080, get("/x")).route is not None
    assert r.route(WEB, "voting-svc", 8080, get("/x")).route is None


# ================================================================================================
# backends
# ================================================================================================


def test_backend_weights_default_to_one_and_split_proportionally() -> None:
    """"Weight specifies the proportion of requests forwarded to the referenced backend. This is computed
    as weight/(sum of all weights in this BackendRefs list). ... Weight is not a percentage and the sum of
    weights does not need to equal 100." with "Default: 1" — Gateway API, HTTPBackendRef/BackendRef."""
    rule = [{"backendRefs": [backend("voting-svc", 3), backend("emoji-svc", 1)]}]
    d = compile_routing([*app(), http_route("r", rule)]).route(WEB, "voting-svc", 8080, get())
    assert shares(d) == {"emojivoto/voting-svc": 75, "emojivoto/emoji-svc": 25}
    even = [{"backendRefs": [backend("voting-svc"), backend("emoji-svc")]}]
    assert set(shares(compile_routing([*app(), http_route("r", even)]).route(WEB, "voting-svc", 8080,
                                                                               get())).values()) == {50}


def test_zero_weight_backends_get_nothing() -> None:
    """"If weight is set to 0, no traffic should be forwarded for this entry." — Gateway API, BackendRef."""
    rule = [{"backendRefs": [backend("voting-svc", 0), backend("emoji-svc", 1)]}]
    assert shares(compile_routing([*app(), http_route("r", rule)]).route(WEB, "voting-svc", 8080, get())) == {
        "emojivoto/emoji-svc": 100}


def test_a_rule_without_backends_goes_to_the_parent_service() -> None:
    """Linkerd's dynamic request routing routes a matched rule without ``backendRefs`` to the parent
    Service (Configuring Dynamic Request Routing, https://linkerd.io/2-edge/tasks/configuring-dynamic-request-routing/)."""
    d = compile_routing([*app(), http_route("r", [{"matches": [{"path": {"value": "/"}}]}])]).route(
        WEB, "voting-svc", 8080, get())
    assert shares(d) == {"emojivoto/voting-svc": 100}


def test_invalid_backends_fail_their_share() -> None:
    """"Port is required when the referent is a Kubernetes Service." — Gateway API BackendObjectReference;
    Linkerd marks such a backend invalid ("missing port for backend Service"), and requests routed to an
    invalid backend fail (Gateway API: "that request MUST get a 500 status code")."""
    rule = [{"backendRefs": [backend("voting-svc", 1, port=None), backend("ghost", 1)]}]
    d = compile_routing([*app(), http_route("r", rule)]).route(WEB, "voting-svc", 8080, get())
    assert (d.code, d.status) == (NO_HEALTHY_UPSTREAM, 500)
    assert {b.code for b in d.backends} == {NO_HEALTHY_UPSTREAM}


# ================================================================================================
# timeouts and retries
# ================================================================================================


def test_route_timeout_annotations_override_the_services() -> None:
    """"If any timeout configuration annotations are present on a route resource, they override all timeout
    configuration annotations on the parent Service." — Timeouts reference
    (https://linkerd.io/2-edge/reference/timeouts/)."""
    objs = [o for o in app() if o["metadata"]["name"] != "voting-svc"] + [
        svc("voting-svc", annotations={"timeout.linkerd.io/request": "5s", "timeout.linkerd.io/idle": "1m"})]
    plain = compile_routing(objs).route(WEB, "voting-svc", 8080, get())
    assert (plain.timeouts.request, plain.timeouts.idle) == ("5s", "1m")
    annotated = http_route("r", [{}], annotations={"timeout.linkerd.io/response": "1s"})
    d = compile_routing([*objs, annotated]).route(WEB, "voting-svc", 8080, get())
    assert (d.timeouts.request, d.timeouts.response, d.timeouts.idle) == (None, "1s", None)


def test_request_timeout_field_and_annotation_priority() -> None:
    """"If the request timeout field is set on an HTTPRoute resource, it will be used as the
    timeout.linkerd.io/request timeout. However, if both the field and the annotation are specified, the
    annotation will take priority." — Timeouts reference; "zero means no timeout" (GEP-1742)."""
    field = http_route("r", [{"timeouts": {"request": "3s"}}])
    assert compile_routing([*app(), field]).route(WEB, "voting-svc", 8080, get()).timeouts.request == "3s"
    both = http_route("r", [{"timeouts": {"request": "3s"}}], annotations={"timeout.linkerd.io/request": "2s"})
    assert compile_routing([*app(), both]).route(WEB, "voting-svc", 8080, get()).timeouts.request == "2s"
    zero = http_route("r", [{"timeouts": {"request": "0s"}}])
    assert compile_routing([*app(), zero]).route(WEB, "voting-svc", 8080, get()).timeouts.request is None


def test_retry_annotations_limit_defaults_to_one_and_routes_override_services() -> None:
    """"You can also add the retry.linkerd.io/limit annotation to specify the maximum number of times a
    request may be retried. By default, this limit is 1." — Configuring Retries
    (https://linkerd.io/2.16/tasks/configuring-retries/); "If any retry configuration annotations are
    present on a route resource, they override all retry configuration annotations on the parent
    Service." — Retries reference."""
    objs = [o for o in app() if o["metadata"]["name"] != "voting-svc"] + [
        svc("voting-svc", annotations={"retry.linkerd.io/http": "5xx", "retry.linkerd.io/limit": "3"})]
    d = compile_routing(objs).route(WEB, "voting-svc", 8080, get())
    assert d.retries is not None and (d.retries.limit, d.retries.conditions) == (3, "5xx")
    route = http_route("r", [{}], annotations={"retry.linkerd.io/http": "gateway-error"})
    d = compile_routing([*objs, route]).route(WEB, "voting-svc", 8080, get())
    assert d.retries is not None and (d.retries.limit, d.retries.conditions) == (1, "gateway-error")
    assert d.retries.source.startswith("HTTPRoute emojivoto/r")


def test_a_service_profile_takes_over_from_http_routes() -> None:
    """"If a ServiceProfile is defined for the parent Service of an HTTPRoute, proxies will use the
    ServiceProfile configuration, rather than the HTTPRoute configuration, as long as the ServiceProfile
    exists." — HTTPRoutes feature (https://linkerd.io/2-edge/features/httproute/)."""
    profile = {"apiVersion": "linkerd.io/v1alpha2", "kind": "ServiceProfile",
               "metadata": {"name": "voting-svc.emojivoto.svc.cluster.local", "namespace": NS},
               "spec": {"routes": [{"name": "vote", "condition": {"method": "POST", "pathRegex": "/emojivoto\\..*"},
                                    "timeout": "300ms", "isRetryable": True}]}}
    route = http_route("r", [{"backendRefs": [backend("emoji-svc")]}])
    d = compile_routing([*app(), route, profile]).route(WEB, "voting-svc", 8080,
                                                         get("/emojivoto.v1.VotingService/Vote", "POST"))
    assert d.route == "ServiceProfile emojivoto/voting-svc.emojivoto.svc.cluster.local"
    assert shares(d) == {"emojivoto/voting-svc": 100} and d.timeouts.request == "300ms" and d.retries is not None


def test_opaque_ports_are_not_routed_as_http() -> None:
    """Opaque ports carry TCP: "config.linkerd.io/opaque-ports" marks ports whose traffic the proxy does
    not parse (Protocol Detection, https://linkerd.io/2-edge/features/protocol-detection/), so HTTPRoutes
    do not apply."""
    objs = [o for o in app() if o["metadata"]["name"] != "voting-svc"] + [
        svc("voting-svc", annotations={"config.linkerd.io/opaque-ports": "8080"}),
        http_route("r", [{"backendRefs": [backend("emoji-svc")]}])]
    d = compile_routing(objs).route(WEB, "voting-svc", 8080, get())
    assert d.protocol == "tcp" and shares(d) == {"emojivoto/voting-svc": 100}


# ================================================================================================
# multicluster
# ================================================================================================


def mirror(remote_discovery: bool = False) -> list[dict[str, Any]]:
    labels = {"mirror.linkerd.io/mirrored-service": "true", "mirror.linkerd.io/cluster-name": "east"}
    if remote_discovery:
        labels = {"mirror.linkerd.io/remote-discovery": "east"}
    gw = service_account_identity("linkerd-gateway", "linkerd-multicluster")
    service = svc("voting-svc-east", labels=labels, annotations={
        "mirror.linkerd.io/remote-svc-fq-name": "voting-svc.emojivoto.svc.cluster.local",
        "mirror.linkerd.io/remote-gateway-identity": gw})
    endpoints = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "voting-svc-east", "namespace": NS},
                 "subsets": [{"addresses": [{"ip": "198.51.100.20"}], "ports": [{"port": 4143}]}]}
    return [service] + ([] if remote_discovery else [endpoints])


def test_mirror_services_go_through_the_remote_gateway_with_its_identity() -> None:
    """"These mirrored services are suffixed with the name of the remote cluster, e.g. the Foo service on the
    west cluster would be mirrored as Foo-west" and "In hierarchical mode, Linkerd deploys a gateway
    component on the target cluster that allows it to receive requests from source clusters." —
    Multi-cluster communication (https://linkerd.io/2-edge/features/multicluster/); API §4: "in Linkerd's
    gateway mode (the default) the destination sees the remote gateway's identity"."""
    d = compile_routing(app() + mirror()).route(WEB, "voting-svc-east", 8080, get())
    (b,) = d.backends
    assert [h.kind for h in b.hops] == ["linkerd-proxy", "linkerd-gateway", "destination"]
    assert (b.hops[1].address, b.hops[1].port, b.hops[1].cluster) == ("198.51.100.20", 4143, "east")
    assert b.identity_seen == service_account_identity("linkerd-gateway", "linkerd-multicluster")
    assert b.causes == (GATEWAY_IDENTITY,) and b.remote_service == "voting-svc.emojivoto.svc.cluster.local"


def test_remote_discovery_keeps_the_callers_identity() -> None:
    """"In these environments, Linkerd does not use a gateway intermediary for data plane traffic, which
    provides ... Better multi-cluster authorization policies, as workload identity is preserved across
    cluster boundaries." — Multi-cluster communication, flat networks."""
    (b,) = compile_routing(app() + mirror(remote_discovery=True)).route(WEB, "voting-svc-east", 8080, get()).backends
    assert [h.kind for h in b.hops] == ["linkerd-proxy", "destination"] and b.identity_seen == WEB.identity


def test_routes_on_the_mirror_service_split_traffic_across_clusters() -> None:
    """API §4: "Client-side config for a federated D (timeouts, retries, weights) goes on HTTPRoutes whose
    parent is the mirror Service in each C′"; Linkerd's multicluster guide splits traffic between a local
    and a mirror Service with an HTTPRoute (https://linkerd.io/2-edge/tasks/multicluster/)."""
    route = http_route("split", [{"backendRefs": [backend("voting-svc", 50), backend("voting-svc-east", 50)]}])
    d = compile_routing(app() + mirror() + [route]).route(WEB, "voting-svc", 8080, get())
    by = {b.service: b for b in d.backends}
    assert shares(d) == {"emojivoto/voting-svc": 50, "emojivoto/voting-svc-east": 50}
    assert by["emojivoto/voting-svc-east"].causes == (GATEWAY_IDENTITY,) and not by["emojivoto/voting-svc"].causes
