"""Istio client-side routing, one test per documented rule (``meshrules.sim.istio.routing``).

Each test's docstring quotes the rule and names the page it comes from. Objects are the Bookinfo
samples of ``tests/fixtures/upstream/sim/istio/bookinfo`` (see SOURCES.md) placed in namespace
``bookinfo``, plus small objects written inline where no sample shows the rule.
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from meshrules.errors import QueryError
from meshrules.sim.istio.routing import (
    DEFAULT_RETRY_ON,
    ENVOYFILTER_NOT_MODELLED,
    NO_DNS,
    NO_HEALTHY_UPSTREAM,
    NO_ROUTE,
    ROUTED,
    SIDECAR_EGRESS_NOT_MODELLED,
    Caller,
    EastWestGateway,
    IstioRouting,
    compile_routing,
    host_matches,
    resolve_short_name,
)
from meshrules.sim.request import Request

UPSTREAM = Path(__file__).resolve().parents[2] / "fixtures" / "upstream"
BOOKINFO = UPSTREAM / "sim" / "istio" / "bookinfo"
NS = "bookinfo"
PRODUCTPAGE = Caller.of(NS, {"app": "productpage", "version": "v1"}, workload="productpage-v1")
REVIEWS = "reviews.bookinfo.svc.cluster.local"


# ================================================================================================
# helpers
# ================================================================================================


def docs(path: Path, namespace: str = NS) -> list[dict[str, Any]]:
    """The documents of a sample, placed in ``namespace`` (the samples are applied with ``-n``)."""
    out = []
    for d in yaml.safe_load_all(path.read_text()):
        if d:
            d.setdefault("metadata", {}).setdefault("namespace", namespace)
            out.append(d)
    return out


def bookinfo_app() -> list[dict[str, Any]]:
    return docs(UPSTREAM / "samples" / "bookinfo.yaml")


def endpoint_labels(objects: Iterable[Mapping[str, Any]]) -> dict[str, list[dict[str, str]]]:
    """Service FQDN -> pod labels of the Deployments its selector selects (what EDS would list)."""
    pods = [(o["metadata"]["namespace"], o["spec"]["template"]["metadata"]["labels"])
            for o in objects if o.get("kind") == "Deployment"]
    out: dict[str, list[dict[str, str]]] = {}
    for o in objects:
        if o.get("kind") == "Service":
            sel = o["spec"].get("selector") or {}
            ns = o["metadata"]["namespace"]
            out[f"{o['metadata']['name']}.{ns}.svc.cluster.local"] = [
                dict(lbl) for pns, lbl in pods if pns == ns and all(lbl.get(k) == v for k, v in sel.items())]
    return out


def routing(*samples: str, extra: Iterable[Mapping[str, Any]] = (), **kw: Any) -> IstioRouting:
    objs = bookinfo_app() + [d for s in samples for d in docs(BOOKINFO / s)] + list(extra)
    kw.setdefault("endpoint_labels", endpoint_labels(objs))
    return compile_routing(objs, **kw)


def service(name: str, ns: str, ports: Iterable[tuple[str, int]] = (("http", 80),), **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns, **meta},
            "spec": {"selector": {"app": name}, "ports": [{"name": n, "port": p} for n, p in ports]}}


def vs(name: str, ns: str, hosts: list[str], http: list[dict[str, Any]] | None = None,
       ts: str | None = None, **spec: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": ns}
    if ts:
        meta["creationTimestamp"] = ts
    body: dict[str, Any] = {"hosts": hosts, **spec}
    if http is not None:
        body["http"] = http
    return {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": meta, "spec": body}


def dr(name: str, ns: str, host: str, subsets: Iterable[tuple[str, dict[str, str]]] = (), ts: str | None = None,
       **spec: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": ns}
    if ts:
        meta["creationTimestamp"] = ts
    return {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule", "metadata": meta,
            "spec": {"host": host, "subsets": [{"name": n, "labels": lbl} for n, lbl in subsets], **spec}}


def to(host: str, subset: str | None = None, weight: int | None = None, port: int | None = None) -> dict[str, Any]:
    d: dict[str, Any] = {"host": host}
    if subset:
        d["subset"] = subset
    if port:
        d["port"] = {"number": port}
    out: dict[str, Any] = {"destination": d}
    if weight is not None:
        out["weight"] = weight
    return out


def get(path: str = "/", method: str = "GET", **headers: str) -> Request:
    return Request.http(method=method, path=path, headers={k.replace("_", "-"): v for k, v in headers.items()})


def split(decision: Any) -> dict[tuple[str, str | None], int]:
    return {(b.host, b.subset): b.weight for b in decision.backends}


# ================================================================================================
# hosts and VirtualService selection
# ================================================================================================


def test_short_host_names_resolve_in_the_virtual_service_namespace() -> None:
    """"Istio will interpret the short name based on the namespace of the rule, not the service. A rule in
    the "default" namespace containing a host "reviews" will be interpreted as
    "reviews.default.svc.cluster.local"" — VirtualService reference, ``hosts``
    (https://istio.io/latest/docs/reference/config/networking/virtual-service/#VirtualService)."""
    assert resolve_short_name("reviews", "default") == "reviews.default.svc.cluster.local"
    # virtual-service-reviews-v3.yaml says `hosts: [reviews]`; in namespace bookinfo it is reviews.bookinfo...
    r = routing("virtual-service-reviews-v3.yaml", "destination-rule-all.yaml")
    assert r.route(PRODUCTPAGE, "reviews", 9080).virtual_service == "bookinfo/reviews"
    # The same VirtualService in another namespace names another host and leaves reviews alone.
    other = routing("destination-rule-all.yaml", extra=docs(BOOKINFO / "virtual-service-reviews-v3.yaml", "other"))
    assert other.route(PRODUCTPAGE, "reviews", 9080).virtual_service is None


def test_wildcard_host_prefix_covers_every_name_under_the_suffix() -> None:
    """"`*` is a wildcard prefix indicating that this virtual service handles routing for any DNS name
    ending with `.my-co.org`" — Traffic Management concept, virtual services
    (https://istio.io/latest/docs/concepts/traffic-management/#virtual-services)."""
    assert host_matches("*.my-co.org", "a.my-co.org") and host_matches("*.my-co.org", "b.a.my-co.org")
    assert not host_matches("*.my-co.org", "my-co.org")
    wild = vs("all-bookinfo", NS, ["*.bookinfo.svc.cluster.local"], [{"route": [to("reviews", "v1")]}])
    r = routing("destination-rule-all.yaml", extra=[wild])
    d = r.route(PRODUCTPAGE, "ratings", 9080)
    assert d.virtual_service == "bookinfo/all-bookinfo" and split(d) == {(REVIEWS, "v1"): 100}


def test_export_to_dot_limits_a_virtual_service_to_its_own_namespace() -> None:
    """"The value "." is reserved and defines an export to the same namespace that the virtual service is
    declared in" — VirtualService reference, ``exportTo``; "only requests from workloads in the same
    namespace can be affected by the following virtual service" — Traffic Management Best Practices
    (https://istio.io/latest/docs/ops/best-practices/traffic-management/#cross-namespace-configuration)."""
    private = vs("reviews", NS, ["reviews"], [{"route": [to("reviews", "v3")]}], exportTo=["."])
    r = routing("destination-rule-all.yaml", extra=[private])
    assert r.route(PRODUCTPAGE, "reviews", 9080).virtual_service == "bookinfo/reviews"
    outsider = Caller.of("other")
    d = r.route(outsider, "reviews.bookinfo", 9080)
    assert d.virtual_service is None and any("not exported" in s for s in d.shadowed)


def test_gateways_without_mesh_keep_a_virtual_service_off_sidecars() -> None:
    """"If a list of gateway names is provided, the rules will apply only to the gateways. To apply the
    rules to both gateways and sidecars, specify `mesh` as one of the gateway names." — VirtualService
    reference, ``gateways``."""
    gw_only = vs("reviews", NS, ["reviews"], [{"route": [to("reviews", "v3")]}], gateways=["bookinfo-gateway"])
    gw_route = routing("destination-rule-all.yaml", extra=[gw_only]).route(PRODUCTPAGE, "reviews", 9080)
    assert gw_route.virtual_service is None
    both = vs("reviews", NS, ["reviews"], [{"route": [to("reviews", "v3")]}], gateways=["bookinfo-gateway", "mesh"])
    assert routing("destination-rule-all.yaml", extra=[both]).route(PRODUCTPAGE, "reviews", 9080).virtual_service


def test_sidecars_do_not_merge_virtual_services_the_oldest_wins() -> None:
    """"A VirtualService can only be fragmented this way if it is bound to a gateway. Host merging is not
    supported in sidecars." — Traffic Management Best Practices, split virtual services; "Currently istio
    will match virtualservices by creation timestamp" (istio/istio#10464); IST0109
    ConflictingMeshGatewayVirtualServiceHosts flags the overlap."""
    old = vs("reviews-old", NS, ["reviews"], [{"route": [to("reviews", "v1")]}], ts="2024-01-01T00:00:00Z")
    new = vs("reviews-new", NS, ["reviews"], [{"route": [to("reviews", "v2")]}], ts="2024-06-01T00:00:00Z")
    d = routing("destination-rule-all.yaml", extra=[new, old]).route(PRODUCTPAGE, "reviews", 9080)
    assert d.virtual_service == "bookinfo/reviews-old" and split(d) == {(REVIEWS, "v1"): 100}
    assert any(s.startswith("bookinfo/reviews-new") for s in d.shadowed)


def test_an_exact_host_beats_a_wildcard_virtual_service() -> None:
    """istiod associates each service with its most specific VirtualService host: an exact host first,
    else "the most specific wildcard match for a given wildcard host" (``mostSpecificWildcardVsIndex``,
    pilot/pkg/networking/core/route/route.go) — even when the wildcard one is older."""
    wild = vs("wild", NS, ["*.svc.cluster.local"], [{"route": [to("reviews", "v1")]}], ts="2020-01-01T00:00:00Z")
    narrower = vs("narrow", NS, ["*.bookinfo.svc.cluster.local"], [{"route": [to("reviews", "v2")]}],
                  ts="2021-01-01T00:00:00Z")
    exact = vs("exact", NS, ["reviews"], [{"route": [to("reviews", "v3")]}], ts="2022-01-01T00:00:00Z")
    r = routing("destination-rule-all.yaml", extra=[wild, narrower, exact])
    assert r.route(PRODUCTPAGE, "reviews", 9080).virtual_service == "bookinfo/exact"
    assert r.route(PRODUCTPAGE, "ratings", 9080).virtual_service == "bookinfo/narrow"


def test_a_host_outside_the_registry_has_no_route() -> None:
    """"The destination's host must exist in the service registry. To use external services as
    destinations, use service entries to add those services to the registry." — Traffic Management
    concept, virtual services."""
    d = routing().route(PRODUCTPAGE, "nowhere.example.com", 80)
    assert d.code == NO_ROUTE and "neither a Kubernetes Service nor a ServiceEntry" in d.reason


def test_service_entries_add_hosts_to_the_registry() -> None:
    """"You use a service entry to add an entry to the service registry that Istio maintains internally"
    — Traffic Management concept, service entries; the Bookinfo egress sample routes
    www.googleapis.com port 80 to port 443 (egress-rule-google-apis.yaml)."""
    r = routing("egress-rule-google-apis.yaml")
    d = r.route(PRODUCTPAGE, "www.googleapis.com", 80)
    assert d.code == ROUTED and d.registry == "ServiceEntry bookinfo/googleapis"
    assert d.virtual_service == "bookinfo/rewrite-port-for-googleapis"
    (backend,) = d.backends
    assert backend.port == 443 and backend.location == "MESH_EXTERNAL" and backend.hops[-1].kind == "external"


def test_service_entry_endpoints_at_an_east_west_gateway_add_the_gateway_hop() -> None:
    """Federation (API §4): the ServiceEntry for ``<svc>.<ns>.svc.<C>.<suffix>`` has "endpoints at C's
    east-west gateway address and TLS port"; Istio's multi-primary-on-different-networks model sends
    such traffic through the east-west gateway ("Install Multi-Primary on different networks",
    https://istio.io/latest/docs/setup/install/multicluster/multi-primary_multi-network/)."""
    se = {"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
          "metadata": {"name": "reviews-c2", "namespace": NS},
          "spec": {"hosts": ["reviews.bookinfo.svc.cluster-2.global"], "location": "MESH_INTERNAL",
                   "resolution": "STATIC", "addresses": ["240.0.0.7"],
                   "ports": [{"name": "http", "number": 9080, "protocol": "HTTP"}],
                   "endpoints": [{"address": "203.0.113.9", "ports": {"http": 15443}, "labels": {"version": "v2"}}]}}
    r = routing(extra=[se], eastwest_gateways=[EastWestGateway("203.0.113.9", 15443, "cluster-2")])
    d = r.route(PRODUCTPAGE, "reviews.bookinfo.svc.cluster-2.global", 9080)
    hops = d.backends[0].hops
    assert [h.kind for h in hops] == ["sidecar", "eastwest-gateway", "destination"]
    assert (hops[1].address, hops[1].port, hops[1].cluster) == ("203.0.113.9", 15443, "cluster-2")
    # Without Istio DNS proxying the caller cannot resolve the federated name (API §4: NO_DNS).
    assert r.route(PRODUCTPAGE, "reviews.bookinfo.svc.cluster-2.global", 9080, dns_capture=False).code == NO_DNS


def test_a_port_must_be_chosen_for_a_multi_port_service() -> None:
    """API §6: "`--port` is required when the target has several ports"; a single-port service needs
    none ("If a service exposes only a single port it is not required to explicitly select the port" —
    VirtualService reference, ``Destination.port``)."""
    two = service("multi", NS, (("http", 80), ("http-admin", 8080)))
    r = routing(extra=[two])
    with pytest.raises(QueryError):
        r.route(PRODUCTPAGE, "multi")
    assert r.route(PRODUCTPAGE, "reviews").port == 9080


# ================================================================================================
# HTTP route matching
# ================================================================================================


def test_first_matching_route_wins() -> None:
    """"The first rule matching an incoming request is used." — VirtualService reference, ``http``;
    Bookinfo virtual-service-reviews-jason-v2-v3.yaml sends user jason to v2 and everyone else to v3."""
    r = routing("virtual-service-reviews-jason-v2-v3.yaml", "destination-rule-all.yaml")
    assert split(r.route(PRODUCTPAGE, "reviews", 9080, get("/reviews/0", end_user="jason"))) == {(REVIEWS, "v2"): 100}
    other = r.route(PRODUCTPAGE, "reviews", 9080, get("/reviews/0", end_user="mia"))
    assert split(other) == {(REVIEWS, "v3"): 100} and other.route == 1
    assert other.misses[0].field == "spec.http[0].match[0].headers.end-user"


def test_match_blocks_are_ored_and_their_fields_anded() -> None:
    """"To specify AND semantics, you nest multiple conditions in a single section of `match.`" ... "To
    specify OR conditions, you place multiple conditions in separate sections of `match.`" — Traffic
    Management concept, multiple match conditions."""
    and_vs = vs("reviews", NS, ["reviews"], [
        {"match": [{"uri": {"prefix": "/api/v1"}, "headers": {"end-user": {"exact": "jason"}}}],
         "route": [to("reviews", "v2")]},
        {"route": [to("reviews", "v1")]}])
    r = routing("destination-rule-all.yaml", extra=[and_vs])
    assert r.route(PRODUCTPAGE, "reviews", 9080, get("/api/v1/x", end_user="jason")).route == 0
    assert r.route(PRODUCTPAGE, "reviews", 9080, get("/api/v1/x")).route == 1
    or_vs = vs("reviews", NS, ["reviews"], [
        {"match": [{"uri": {"prefix": "/api/v1"}}, {"headers": {"end-user": {"exact": "jason"}}}],
         "route": [to("reviews", "v2")]},
        {"route": [to("reviews", "v1")]}])
    r = routing("destination-rule-all.yaml", extra=[or_vs])
    assert r.route(PRODUCTPAGE, "reviews", 9080, get("/other", end_user="jason")).match == 1
    assert r.route(PRODUCTPAGE, "reviews", 9080, get("/api/v1/x")).match == 0


@pytest.mark.parametrize(("uri", "path", "hit"), [
    ({"exact": "/reviews"}, "/reviews", True),
    ({"exact": "/reviews"}, "/reviews?x=1", True),  # exact and regex paths ignore the query string
    ({"exact": "/reviews"}, "/reviews/1", False),
    ({"prefix": "/rev"}, "/reviews/1", True),
    ({"prefix": "/rev"}, "/ratings", False),
    ({"regex": "/reviews/[0-9]+"}, "/reviews/12", True),
    ({"regex": "/reviews/[0-9]+"}, "/reviews/12/x", False),  # RE2 full match
    ({"regex": "/reviews/(?P<id>[0-9]+"}, "/reviews/1", False),  # invalid RE2 never matches
])
def test_uri_string_match_exact_prefix_and_re2_regex(uri: dict[str, str], path: str, hit: bool) -> None:
    """"URI to match values are case-sensitive and formatted as follows: `exact: "value"` for exact
    string match, `prefix: "value"` for prefix-based match, `regex: "value"` for RE2 style regex-based
    match" — VirtualService reference, ``HTTPMatchRequest.uri``."""
    v = vs("reviews", NS, ["reviews"], [{"match": [{"uri": uri}], "route": [to("reviews", "v2")]}])
    d = routing("destination-rule-all.yaml", extra=[v]).route(PRODUCTPAGE, "reviews", 9080, get(path))
    assert (d.code == ROUTED) is hit


def test_ignore_uri_case_applies_to_exact_and_prefix_only() -> None:
    """"Flag to specify whether the URI matching should be case-insensitive. Note: The case will be
    ignored only in the case of exact and prefix URI matches." — VirtualService reference."""
    v = vs("reviews", NS, ["reviews"], [
        {"match": [{"uri": {"prefix": "/API"}, "ignoreUriCase": True}], "route": [to("reviews", "v2")]},
        {"match": [{"uri": {"regex": "/API/.*"}, "ignoreUriCase": True}], "route": [to("reviews", "v3")]}])
    r = routing("destination-rule-all.yaml", extra=[v])
    assert r.route(PRODUCTPAGE, "reviews", 9080, get("/api/x")).route == 0
    v2 = vs("reviews", NS, ["reviews"], [
        {"match": [{"uri": {"regex": "/API/.*"}, "ignoreUriCase": True}], "route": [to("reviews", "v3")]}])
    assert routing("destination-rule-all.yaml", extra=[v2]).route(PRODUCTPAGE, "reviews", 9080,
                                                                   get("/api/x")).code == NO_ROUTE


def test_method_match() -> None:
    """"HTTP Method values are case-sensitive and formatted as follows: exact / prefix / regex" —
    VirtualService reference, ``HTTPMatchRequest.method``."""
    v = vs("reviews", NS, ["reviews"], [{"match": [{"method": {"exact": "GET"}}], "route": [to("reviews", "v2")]}])
    r = routing("destination-rule-all.yaml", extra=[v])
    assert r.route(PRODUCTPAGE, "reviews", 9080, get(method="GET")).code == ROUTED
    assert r.route(PRODUCTPAGE, "reviews", 9080, get(method="POST")).misses[0].field.endswith(".method")


def test_header_match_presence_and_ignored_pseudo_keys() -> None:
    """"If the value is empty and only the name of header is specified, presence of the header is
    checked. To provide an empty value, use `{}`" ... "The keys `uri`, `scheme`, `method`, and
    `authority` will be ignored." — VirtualService reference, ``HTTPMatchRequest.headers``."""
    v = vs("reviews", NS, ["reviews"], [
        {"match": [{"headers": {"x-canary": {}, "method": {"exact": "NEVER"}}}], "route": [to("reviews", "v2")]},
        {"match": [{"headers": {"x-user": {"prefix": "ja"}}}], "route": [to("reviews", "v3")]}])
    r = routing("destination-rule-all.yaml", extra=[v])
    assert r.route(PRODUCTPAGE, "reviews", 9080, get(x_canary="")).route == 0  # `method` key ignored
    assert r.route(PRODUCTPAGE, "reviews", 9080, get(x_user="jason")).route == 1
    assert r.route(PRODUCTPAGE, "reviews", 9080, get()).code == NO_ROUTE


def test_without_headers_excludes_matching_requests() -> None:
    """"withoutHeader has the same syntax with the header, but has opposite meaning. If a header is
    matched with a matching rule among withoutHeader, the traffic becomes not matched one." —
    VirtualService reference, ``HTTPMatchRequest.withoutHeaders``.

    Envoy runs it as ``invert_match`` on the header matcher, and a value matcher fails on an absent
    header before the inversion: a request without the header does not match (istio/istio#50988,
    #49537). Only an inverted presence test (`{}`) matches an absent header."""
    v = vs("reviews", NS, ["reviews"], [
        {"match": [{"withoutHeaders": {"end-user": {"exact": "jason"}}}], "route": [to("reviews", "v2")]},
        {"match": [{"withoutHeaders": {"x-canary": {}}}], "route": [to("reviews", "v3")]},
        {"route": [to("reviews", "v1")]}])
    r = routing("destination-rule-all.yaml", extra=[v])
    assert r.route(PRODUCTPAGE, "reviews", 9080, get(end_user="mia")).route == 0
    assert r.route(PRODUCTPAGE, "reviews", 9080, get()).route == 1  # absent: not `end-user != jason`
    assert r.route(PRODUCTPAGE, "reviews", 9080, get(end_user="jason", x_canary="1")).route == 2
    assert r.route(PRODUCTPAGE, "reviews", 9080, get(end_user="jason")).route == 1


def test_query_params_exact_regex_and_bare_keys() -> None:
    """"For a query parameter like "?key=true", the map key would be "key" and the string match could be
    defined as exact: "true". For a query parameter like "?key", ... exact: "". ... regex: "\\d+$". Note
    that this configuration will only match values like "123" but not "a123"" ... "Note: prefix matching
    is currently not supported." — VirtualService reference, ``HTTPMatchRequest.queryParams``."""
    v = vs("reviews", NS, ["reviews"], [
        {"match": [{"queryParams": {"key": {"exact": "true"}}}], "route": [to("reviews", "v1")]},
        {"match": [{"queryParams": {"flag": {"exact": ""}}}], "route": [to("reviews", "v2")]},
        {"match": [{"queryParams": {"id": {"regex": "\\d+"}}}], "route": [to("reviews", "v3")]},
        {"match": [{"queryParams": {"p": {"prefix": "x"}}}], "route": [to("reviews", "v3")]}])
    r = routing("destination-rule-all.yaml", extra=[v])
    assert r.route(PRODUCTPAGE, "reviews", 9080, get("/?key=true")).route == 0
    assert r.route(PRODUCTPAGE, "reviews", 9080, get("/?flag")).route == 1
    assert r.route(PRODUCTPAGE, "reviews", 9080, get("/?id=123")).route == 2
    assert r.route(PRODUCTPAGE, "reviews", 9080, get("/?id=a123")).code == NO_ROUTE
    assert any(d.code == "MR0912" for d in r.diagnostics)


def test_source_labels_and_source_namespace_select_callers() -> None:
    """"sourceLabels: One or more labels that constrain the applicability of a rule to source (client)
    workloads with the given labels." / "sourceNamespace: Source namespace constraining the applicability
    of a rule to workloads in that namespace." — VirtualService reference."""
    v = vs("reviews", NS, ["reviews"], [
        {"match": [{"sourceLabels": {"app": "productpage"}}], "route": [to("reviews", "v2")]},
        {"match": [{"sourceNamespace": "qa"}], "route": [to("reviews", "v3")]},
        {"route": [to("reviews", "v1")]}])
    r = routing("destination-rule-all.yaml", extra=[v])
    assert r.route(PRODUCTPAGE, "reviews", 9080).route == 0
    assert r.route(Caller.of("qa", {"app": "tester"}), "reviews.bookinfo", 9080).route == 1
    assert r.route(Caller.of(NS, {"app": "ratings"}), "reviews", 9080).route == 2


def test_port_match_and_routes_bound_to_other_ports() -> None:
    """"port: Specifies the ports on the host that is being addressed." — VirtualService reference; a
    VirtualService that yields no route for the dialed port does not take the host there (istiod
    ``BuildHTTPRoutesForVirtualService`` returns no routes, so the service keeps its default route)."""
    two = service("web", NS, (("http", 80), ("http-admin", 8080)))
    v = vs("web", NS, ["web"], [{"match": [{"port": 8080}], "route": [to("web", port=8080)]}])
    r = routing(extra=[two, v], endpoint_labels=None)
    assert r.route(PRODUCTPAGE, "web", 8080).virtual_service == "bookinfo/web"
    d = r.route(PRODUCTPAGE, "web", 80)
    assert d.virtual_service is None and d.code == ROUTED and "no http route for port 80" in d.shadowed[0]


def test_no_matching_route_is_a_404() -> None:
    """Envoy answers a request no route matches with 404 and response flag NR ("No route configured for a
    given request in addition to 404 response code" — Envoy access log, response flags,
    https://www.envoyproxy.io/docs/envoy/latest/configuration/observability/access_log/usage)."""
    v = vs("reviews", NS, ["reviews"], [{"match": [{"uri": {"prefix": "/only"}}], "route": [to("reviews", "v1")]}])
    d = routing("destination-rule-all.yaml", extra=[v]).route(PRODUCTPAGE, "reviews", 9080, get("/else"))
    assert (d.code, d.status) == (NO_ROUTE, 404) and d.misses[0].field == "spec.http[0].match[0].uri"


def test_unnamed_ports_are_sniffed_and_tcp_ports_use_tcp_routes() -> None:
    """"By default, Istio will automatically detect HTTP and HTTP/2 traffic" (Protocol Selection,
    https://istio.io/latest/docs/ops/configuration/traffic-management/protocol-selection/); "TCP routes
    will be applied to any port that is not a HTTP or TLS port." — VirtualService reference, ``tcp``."""
    db = service("db", NS, (("tcp-db", 5432),))
    raw = service("raw", NS, (("", 7000),))
    v = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": "db", "namespace": NS},
         "spec": {"hosts": ["db"], "tcp": [{"match": [{"port": 5432}], "route": [to("db", weight=100)]}]}}
    r = routing(extra=[db, raw, v])
    d = r.route(PRODUCTPAGE, "db", 5432, Request.tcp(destination_port=5432))
    assert d.protocol == "tcp" and d.virtual_service == "bookinfo/db" and d.retries is None
    sniffed = r.route(PRODUCTPAGE, "raw", 7000)
    assert sniffed.protocol == "http" and "sniffs" in sniffed.notes[0]


# ================================================================================================
# destinations
# ================================================================================================


def test_weights_split_traffic_proportionally() -> None:
    """"A destination will receive weight/(sum of all weights) requests." — VirtualService reference,
    ``RouteDestination.weight``; Bookinfo virtual-service-reviews-80-20.yaml."""
    d = routing("virtual-service-reviews-80-20.yaml", "destination-rule-all.yaml").route(PRODUCTPAGE, "reviews", 9080)
    assert split(d) == {(REVIEWS, "v1"): 80, (REVIEWS, "v2"): 20}
    odd = vs("reviews", NS, ["reviews"], [{"route": [to("reviews", "v1", 1), to("reviews", "v2", 1),
                                                     to("reviews", "v3", 1)]}])
    shares = split(routing("destination-rule-all.yaml", extra=[odd]).route(PRODUCTPAGE, "reviews", 9080))
    assert sum(shares.values()) == 100 and sorted(shares.values()) == [33, 33, 34]


def test_zero_weight_gets_no_traffic_and_a_single_destination_gets_all() -> None:
    """"If there is only one destination in a rule, it will receive all traffic. Otherwise, if weight is
    0, the destination will not receive any traffic." — VirtualService reference."""
    v = vs("reviews", NS, ["reviews"], [{"route": [to("reviews", "v1", 0), to("reviews", "v2", 5)]}])
    assert split(routing("destination-rule-all.yaml", extra=[v]).route(PRODUCTPAGE, "reviews", 9080)) == {
        (REVIEWS, "v2"): 100}
    assert split(routing("virtual-service-reviews-v3.yaml", "destination-rule-all.yaml").route(
        PRODUCTPAGE, "reviews", 9080)) == {(REVIEWS, "v3"): 100}


def test_no_virtual_service_means_the_default_route_to_every_version() -> None:
    """"the default Istio behavior conveniently sends traffic from any source to all versions of a
    destination service without any rules being set" — Traffic Management Best Practices, set default
    routes."""
    d = routing("destination-rule-all.yaml").route(PRODUCTPAGE, "reviews", 9080)
    assert d.code == ROUTED and d.virtual_service is None and split(d) == {(REVIEWS, None): 100}
    assert [h.kind for h in d.backends[0].hops] == ["sidecar", "destination"]


def test_a_subset_must_be_defined_by_a_destination_rule() -> None:
    """"If the VirtualService using the subsets arrives before the DestinationRule where the subsets are
    defined, the Envoy configuration generated by Pilot would refer to non-existent upstream pools. This
    results in HTTP 503 errors" — Traffic Management Best Practices, avoid 503 errors."""
    d = routing("virtual-service-reviews-v3.yaml").route(PRODUCTPAGE, "reviews", 9080)
    assert (d.code, d.status) == (NO_HEALTHY_UPSTREAM, 503) and "subset `v3` is not defined" in d.reason
    ok = routing("virtual-service-reviews-v3.yaml", "destination-rule-reviews.yaml").route(PRODUCTPAGE, "reviews", 9080)
    assert ok.code == ROUTED and ok.backends[0].subset_labels == (("version", "v3"),)


def test_a_subset_without_endpoints_has_no_healthy_upstream() -> None:
    """Subsets select endpoints: "Labels apply a filter over the endpoints of a service in the service
    registry" (DestinationRule reference, ``Subset.labels``); with none selected Envoy has no healthy
    host (503 UH)."""
    ghost = dr("reviews", NS, "reviews", [("v9", {"version": "v9"})])
    v = vs("reviews", NS, ["reviews"], [{"route": [to("reviews", "v9", 50), to("reviews", weight=50)]}])
    d = routing(extra=[ghost, v]).route(PRODUCTPAGE, "reviews", 9080)
    broken = next(b for b in d.backends if b.subset == "v9")
    assert broken.code == NO_HEALTHY_UPSTREAM and d.code == ROUTED  # the other half still works


def test_destination_port_defaults_to_the_only_port_else_the_dialed_port() -> None:
    """"If a service exposes only a single port it is not required to explicitly select the port." —
    VirtualService reference, ``Destination.port``."""
    d = routing("virtual-service-reviews-v3.yaml", "destination-rule-all.yaml").route(PRODUCTPAGE, "reviews", 9080)
    assert d.backends[0].port == 9080


def test_redirect_and_direct_response_are_answered_by_the_sidecar() -> None:
    """"A HTTP rule can either return a direct_response, redirect or forward (default) traffic." —
    VirtualService reference, ``HTTPRoute``; a redirect's code "defaults to 301"."""
    v = vs("reviews", NS, ["reviews"], [
        {"match": [{"uri": {"prefix": "/old"}}], "redirect": {"uri": "/new"}},
        {"directResponse": {"status": 418}}])
    r = routing(extra=[v])
    assert r.route(PRODUCTPAGE, "reviews", 9080, get("/old")).status == 301
    teapot = r.route(PRODUCTPAGE, "reviews", 9080, get("/x"))
    assert teapot.status == 418 and teapot.backends == ()


def test_delegate_routes_are_evaluated_after_the_parent_match() -> None:
    """"Delegate is used to specify the particular VirtualService which can be used to define delegate
    HTTPRoute. ... the route rules of the delegate VirtualService will be merged with that in the current
    one." — VirtualService reference, ``HTTPRoute.delegate``."""
    parent = vs("reviews", NS, ["reviews"], [
        {"match": [{"uri": {"prefix": "/reviews"}}], "delegate": {"name": "reviews-team", "namespace": NS}}])
    child = vs("reviews-team", NS, [], [{"match": [{"headers": {"end-user": {"exact": "jason"}}}],
                                          "route": [to("reviews", "v2")]},
                                         {"route": [to("reviews", "v1")]}])
    r = routing("destination-rule-all.yaml", extra=[parent, child])
    d = r.route(PRODUCTPAGE, "reviews", 9080, get("/reviews/1", end_user="jason"))
    assert d.virtual_service == "bookinfo/reviews-team" and split(d) == {(REVIEWS, "v2"): 100}
    assert r.route(PRODUCTPAGE, "reviews", 9080, get("/other")).code == NO_ROUTE


# ================================================================================================
# policies
# ================================================================================================


def test_timeout_is_disabled_by_default_and_set_per_route() -> None:
    """"Timeout for HTTP requests, default is disabled." — VirtualService reference, ``HTTPRoute.timeout``."""
    d = routing("virtual-service-reviews-v3.yaml", "destination-rule-all.yaml").route(PRODUCTPAGE, "reviews", 9080)
    assert d.timeout is None and "timeout" in d.defaults
    v = vs("reviews", NS, ["reviews"], [{"route": [to("reviews", "v1")], "timeout": "10s"}])
    assert routing("destination-rule-all.yaml", extra=[v]).route(PRODUCTPAGE, "reviews", 9080).timeout == "10s"


def test_default_retry_policy_retries_twice() -> None:
    """"The default retry behavior for HTTP requests is to retry twice before returning the error." —
    Traffic Management concept, retries; "The default number of retry attempts is set at 2 for these
    errors: "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"." — MeshConfig
    reference, ``defaultHttpRetryPolicy``."""
    with_vs = routing("virtual-service-reviews-v3.yaml", "destination-rule-all.yaml")
    for d in (routing("destination-rule-all.yaml").route(PRODUCTPAGE, "reviews", 9080),
              with_vs.route(PRODUCTPAGE, "reviews", 9080)):
        assert d.retries is not None
        assert (d.retries.attempts, d.retries.retry_on, d.retries.source) == (2, DEFAULT_RETRY_ON, "istio default")


def test_mesh_default_http_retry_policy_replaces_istios_default() -> None:
    """"defaultHttpRetryPolicy: Configure the default HTTP retry policy. ... Setting the number of attempts
    to 0 disables retry policy globally. This setting can be overridden on a per-host basis using the
    Virtual Service API. All settings in the retry policy except `perTryTimeout` can currently be
    configured globally" — MeshConfig reference
    (https://istio.io/latest/docs/reference/config/istio.mesh.v1alpha1/)."""
    mesh = {"defaultHttpRetryPolicy": {"attempts": 5, "perTryTimeout": "1s"}}
    d = routing("destination-rule-all.yaml", mesh_config=mesh).route(PRODUCTPAGE, "reviews", 9080)
    assert d.retries is not None
    assert (d.retries.attempts, d.retries.retry_on, d.retries.per_try_timeout, d.retries.source) == (
        5, DEFAULT_RETRY_ON, None, "MeshConfig defaultHttpRetryPolicy")
    off = routing("destination-rule-all.yaml", mesh_config={"defaultHttpRetryPolicy": {"attempts": 0}})
    assert off.route(PRODUCTPAGE, "reviews", 9080).retries.attempts == 0  # type: ignore[union-attr]


def test_zero_attempts_disable_retries_and_retry_on_overrides() -> None:
    """"attempts: Number of retries to be allowed for a given request. ... If 0, retries will be disabled."
    — VirtualService reference, ``HTTPRetry``; istiod's ``ConvertPolicy`` appends
    ``retriable-status-codes`` when ``retryOn`` lists status codes."""
    off = vs("reviews", NS, ["reviews"], [{"route": [to("reviews", "v1")], "retries": {"attempts": 0}}])
    d = routing("destination-rule-all.yaml", extra=[off]).route(PRODUCTPAGE, "reviews", 9080)
    assert d.retries is not None and d.retries.attempts == 0
    on = vs("reviews", NS, ["reviews"], [{"route": [to("reviews", "v1")],
                                          "retries": {"attempts": 3, "perTryTimeout": "2s", "retryOn": "5xx,503"}}])
    d = routing("destination-rule-all.yaml", extra=[on]).route(PRODUCTPAGE, "reviews", 9080)
    assert d.retries is not None
    assert (d.retries.attempts, d.retries.per_try_timeout, d.retries.retry_on) == (3, "2s",
                                                                                  "5xx,retriable-status-codes,503")


def test_fault_injection_abort_and_delay() -> None:
    """"Fault injection policy to apply on HTTP traffic at the client side. Note that timeouts or retries
    will not be enabled when faults are enabled on the client side." — VirtualService reference; Bookinfo
    virtual-service-ratings-test-abort.yaml aborts jason's requests with 500,
    virtual-service-ratings-test-delay.yaml delays them 7s."""
    ratings = "ratings"
    abort = routing("virtual-service-ratings-test-abort.yaml", "destination-rule-all.yaml")
    d = abort.route(PRODUCTPAGE, ratings, 9080, get(end_user="jason"))
    assert d.fault is not None and (d.fault.abort_http_status, d.fault.abort_percentage) == (500, 100.0)
    assert any("aborted with HTTP 500" in n for n in d.notes)
    assert abort.route(PRODUCTPAGE, ratings, 9080, get()).fault is None
    delay = routing("virtual-service-ratings-test-delay.yaml", "destination-rule-all.yaml")
    d = delay.route(PRODUCTPAGE, ratings, 9080, get(end_user="jason"))
    assert d.fault is not None and (d.fault.delay, d.fault.delay_percentage) == ("7s", 100.0)


def test_fault_percentage_left_unspecified_injects_nothing() -> None:
    """"percentage: Percentage of requests to be aborted with the error code provided. If not specified,
    no request will be aborted." / "If left unspecified, no request will be delayed" — VirtualService
    reference, ``HTTPFaultInjection``."""
    v = vs("reviews", NS, ["reviews"], [{"route": [to("reviews", "v1")],
                                         "fault": {"abort": {"httpStatus": 503}, "delay": {"fixedDelay": "1s"}}}])
    f = routing("destination-rule-all.yaml", extra=[v]).route(PRODUCTPAGE, "reviews", 9080).fault
    assert f is not None and (f.abort_percentage, f.delay_percentage) == (0.0, 0.0)


def test_mirror_percentage_defaults_to_all_traffic() -> None:
    """"Percentage of the traffic to be mirrored by the `mirror` field. If this field is absent, all the
    traffic (100%) will be mirrored. Max value is 100." — VirtualService reference, ``mirrorPercentage``."""
    v = vs("reviews", NS, ["reviews"], [
        {"match": [{"uri": {"prefix": "/a"}}], "route": [to("reviews", "v1")], "mirror": {"host": "reviews",
                                                                                       "subset": "v2"}},
        {"route": [to("reviews", "v1")], "mirror": {"host": "reviews", "subset": "v3"},
         "mirrorPercentage": {"value": 25.0}}])
    r = routing("destination-rule-all.yaml", extra=[v])
    (m,) = r.route(PRODUCTPAGE, "reviews", 9080, get("/a")).mirrors
    assert (m.host, m.subset, m.percentage) == (REVIEWS, "v2", 100.0)
    assert r.route(PRODUCTPAGE, "reviews", 9080, get("/b")).mirrors[0].percentage == 25.0


def test_header_manipulation_and_cors_policy_are_reported() -> None:
    """"Header manipulation rules" (``headers.request/response set/add/remove``) and "Cross-Origin
    Resource Sharing policy (CORS)" — VirtualService reference, ``HTTPRoute.headers`` and ``corsPolicy``."""
    v = vs("reviews", NS, ["reviews"], [{
        "route": [{**to("reviews", "v1"), "headers": {"response": {"remove": ["x-internal"]}}}],
        "headers": {"request": {"set": {"x-env": "prod"}, "add": {"x-trace": "1"}}},
        "corsPolicy": {"allowOrigins": [{"exact": "https://bookinfo.example"}], "allowMethods": ["GET"],
                       "maxAge": "24h", "allowCredentials": False}}])
    d = routing("destination-rule-all.yaml", extra=[v]).route(PRODUCTPAGE, "reviews", 9080)
    assert d.headers is not None and d.headers.request_set == (("x-env", "prod"),)
    assert d.backends[0].headers is not None and d.backends[0].headers.response_remove == ("x-internal",)
    assert d.cors is not None and d.cors.allow_origins == (("exact", "https://bookinfo.example"),)


# ================================================================================================
# DestinationRules
# ================================================================================================


def test_destination_rule_lookup_path_client_then_service_then_root() -> None:
    """"to actually be applied during a request the namespace also needs to be on the destination rule
    lookup path: 1. client namespace 2. service namespace 3. the configured meshconfig.rootNamespace"
    — Traffic Management Best Practices, cross-namespace configuration (example: a rule in ns1 for a
    service in default is not applied to clients in ns2)."""
    host = "myservice.default.svc.cluster.local"
    objs = [service("myservice", "default"), dr("myservice", "ns1", host)]
    r = compile_routing(objs)
    assert r.destination_rule("ns1", {}, host) is not None
    assert r.destination_rule("ns2", {}, host) is None
    r = compile_routing([*objs, dr("myservice", "default", host), dr("mesh", "istio-system", "*.local")])
    chosen = r.destination_rule("ns2", {}, host)
    assert chosen is not None and (chosen.rules, chosen.lookup) == (("default/myservice",), "service namespace")
    assert r.destination_rule("ns1", {}, host).lookup == "client namespace"  # type: ignore[union-attr]
    only_root = compile_routing([service("myservice", "default"), dr("mesh", "istio-system", "*.local")])
    assert only_root.destination_rule("ns2", {}, host).lookup == "root namespace"  # type: ignore[union-attr]


def test_destination_rule_export_to_hides_it_from_other_namespaces() -> None:
    """"Exporting a destination rule to other namespaces enables you to use it in those namespaces" and
    the value "." "defines an export to the same namespace that the destination rule is declared in" —
    Traffic Management Best Practices / DestinationRule reference, ``exportTo``."""
    host = "myservice.default.svc.cluster.local"
    r = compile_routing([service("myservice", "default"), dr("myservice", "default", host, exportTo=["."])])
    assert r.destination_rule("default", {}, host) is not None
    assert r.destination_rule("other", {}, host) is None


def test_destination_rules_for_one_host_merge_first_definition_wins() -> None:
    """"If there is more than one with the same name, the first definition is used and any following
    duplicates are discarded." ... "When top-level traffic policies are defined in multiple destination
    rules, the first one processed will be used." ... "destination rule merging works in both sidecars
    and gateways." — Traffic Management Best Practices, split destination rules."""
    a = dr("a", NS, "reviews", [("v1", {"version": "v1"})], ts="2024-01-01T00:00:00Z",
           trafficPolicy={"tls": {"mode": "ISTIO_MUTUAL"}})
    b = dr("b", NS, "reviews", [("v1", {"version": "other"}), ("v2", {"version": "v2"})],
           ts="2024-02-01T00:00:00Z", trafficPolicy={"tls": {"mode": "DISABLE"}})
    choice = compile_routing([b, a, *bookinfo_app()]).destination_rule(NS, {}, REVIEWS)
    assert choice is not None and choice.rules == ("bookinfo/a", "bookinfo/b")
    assert choice.subsets["v1"][0] == (("version", "v1"),) and "v2" in choice.subsets
    assert choice.traffic_policy_from == "bookinfo/a"


def test_destination_rule_workload_selector_applies_only_in_its_namespace() -> None:
    """"If specified, the DestinationRule configuration will be applied only to the workload instances
    matching the workload selector label in the same namespace. Workload selectors do not apply across
    namespace boundaries." — DestinationRule reference, ``workloadSelector``."""
    sel = dr("reviews-pp", NS, "reviews", [("v1", {"version": "v1"})], workloadSelector={"matchLabels": {
        "app": "productpage"}})
    r = compile_routing([*bookinfo_app(), sel])
    assert r.destination_rule(NS, {"app": "productpage"}, REVIEWS) is not None
    assert r.destination_rule(NS, {"app": "ratings"}, REVIEWS) is None


def test_sidecar_egress_and_envoy_filters_are_reported_as_assumptions() -> None:
    """A Sidecar can "Limit the set of services that the Envoy proxy can reach" (Traffic Management
    concept, sidecars) and an EnvoyFilter can rewrite any generated route; API §6 asks for
    "assumption codes for what is not modelled (EnvoyFilter, ... Sidecar egress restrictions)"."""
    sidecar = {"apiVersion": "networking.istio.io/v1", "kind": "Sidecar", "metadata": {"name": "default",
                                                                                      "namespace": NS},
               "spec": {"egress": [{"hosts": ["./*"]}]}}
    envoy_filter = {"apiVersion": "networking.istio.io/v1alpha3", "kind": "EnvoyFilter",
                    "metadata": {"name": "lua", "namespace": "istio-system"}, "spec": {}}
    r = routing(extra=[sidecar, envoy_filter])
    assert r.route(PRODUCTPAGE, "reviews", 9080).assumptions == (ENVOYFILTER_NOT_MODELLED,
                                                                 SIDECAR_EGRESS_NOT_MODELLED)
    assert r.route(Caller.of("other"), "reviews.bookinfo", 9080).assumptions == (ENVOYFILTER_NOT_MODELLED,)
    assert routing().route(PRODUCTPAGE, "reviews", 9080).assumptions == ()


# ================================================================================================
# properties and speed
# ================================================================================================

SAMPLES = ["virtual-service-reviews-80-20.yaml", "virtual-service-reviews-jason-v2-v3.yaml",
           "virtual-service-reviews-test-v2.yaml", "virtual-service-ratings-test-abort.yaml",
           "virtual-service-all-v1.yaml", "destination-rule-all.yaml", "destination-rule-reviews.yaml"]
QUERIES = [(host, path, user) for host in ("reviews", "ratings", "details", "productpage")
           for path in ("/", "/api/v1/x") for user in ("jason", None)]


def _answers(objs: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    r = compile_routing(objs, endpoint_labels=endpoint_labels(objs))
    out = []
    for host, path, user in QUERIES:
        d = r.route(PRODUCTPAGE, host, 9080, get(path, **({"end_user": user} if user else {})))
        out.append((d.code, d.virtual_service, d.route, tuple(sorted(split(d).items())), d.timeout, d.retries,
                    d.fault))
    return out


@settings(max_examples=25, deadline=None)
@given(st.lists(st.sampled_from(SAMPLES), min_size=1, max_size=4), st.randoms(use_true_random=False),
       st.lists(st.integers(min_value=0, max_value=40), max_size=5))
def test_virtual_service_order_and_duplicates_never_change_a_decision(
        chosen: list[str], rnd: Any, dup_indexes: list[int]) -> None:
    """Input order and repeated objects are not Istio semantics: istiod orders configs by creation time
    and name (the oldest VirtualService for a host wins, DestinationRules merge oldest first), and a
    snapshot listing an object twice holds one object."""
    base = bookinfo_app()
    stamped: list[dict[str, Any]] = []
    for i, sample in enumerate(dict.fromkeys(chosen)):
        for d in docs(BOOKINFO / sample):
            # Distinct names, so several VirtualServices and DestinationRules share a host.
            d["metadata"]["name"] = f"{d['metadata']['name']}-{i}"
            d["metadata"]["creationTimestamp"] = f"2024-01-{i + 1:02d}T00:00:00Z"
            stamped.append(d)
    objs = base + stamped
    reference = _answers(objs)
    shuffled = list(objs)
    rnd.shuffle(shuffled)
    for i in dup_indexes:
        shuffled.append(copy.deepcopy(shuffled[i % len(shuffled)]))
    assert _answers(shuffled) == reference


def test_a_route_answers_in_well_under_a_millisecond() -> None:
    """A `why` must answer in milliseconds: routing is compiled once per cluster and each query does
    dictionary lookups plus the matching of one VirtualService."""
    r = routing("virtual-service-reviews-jason-v2-v3.yaml", "destination-rule-all.yaml",
                "virtual-service-ratings-test-abort.yaml")
    req = get("/reviews/1", end_user="jason")
    samples = []
    for _ in range(300):
        start = time.perf_counter()
        r.route(PRODUCTPAGE, "reviews", 9080, req)
        samples.append(time.perf_counter() - start)
    assert statistics.median(samples) < 0.001
