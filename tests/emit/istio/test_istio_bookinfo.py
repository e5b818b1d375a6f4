"""The bundled bookinfo scenario, translated for Istio: expected objects, reviewed against Istio's docs.

The intent is stated by hand (`bookinfo_intent.py`) until the rule set derives it. The key objects
are written out below with the documentation that says why each field is what it is; the whole
output is pinned by a golden file (regenerate with `MESHRULES_UPDATE_GOLDEN=1` and review the diff).
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from emit.emit_builders import find, spec_of, yaml_spec
from emit.istio.bookinfo_intent import bookinfo_input
from meshrules.emit.istio import emit_istio
from meshrules.emit.naming import MAX_LABEL, MAX_SUBDOMAIN, OWNER_LABEL, PARENTS_ANNOTATION
from meshrules.emit.schema import validate

GOLDEN = Path(__file__).parent / "golden" / "bookinfo.yaml"


def _dump(objects: dict[str, tuple[dict[str, object], ...]]) -> str:
    docs = [{"cluster": cluster, "objects": list(objs)} for cluster, objs in objects.items()]
    return yaml.safe_dump_all(docs, sort_keys=True, default_flow_style=False)


def test_bookinfo_matches_the_golden_output() -> None:
    text = _dump(dict(emit_istio(bookinfo_input()).objects))
    if os.environ.get("MESHRULES_UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text()


def test_every_bookinfo_object_validates_and_is_owned() -> None:
    result = emit_istio(bookinfo_input())
    assert result.statuses == () and result.findings == ()
    for cluster, objects in result.objects.items():
        assert cluster in {"cluster-1", "cluster-2"}  # cluster-3 is Linkerd: not this emitter's
        for obj in objects:
            assert validate(obj) == [], obj
            meta = obj["metadata"]
            assert meta["labels"][OWNER_LABEL] == "meshrules-system"
            assert PARENTS_ANNOTATION in meta["annotations"]
            assert len(meta["name"]) <= (MAX_LABEL if obj["kind"] == "Service" else MAX_SUBDOMAIN)


def test_reviews_routes_in_its_own_cluster() -> None:
    # VirtualService http routes are evaluated in order, first match wins; `match` entries are
    # ORed, fields within one entry ANDed; `sourceLabels`/`sourceNamespace` match the caller
    # (https://istio.io/latest/docs/reference/config/networking/virtual-service/#HTTPMatchRequest).
    # A destination in another cluster is its federated host, a subset its DestinationRule subset
    # (#Destination); weights are integers summing to 100 (#HTTPRouteDestination).
    spec = spec_of(emit_istio(bookinfo_input()).objects, "cluster-1", "VirtualService", "reviews")
    assert spec == yaml_spec(
        """
        hosts: [reviews.bookinfo.svc.cluster.local]
        http:
        - match:
          - uri: {prefix: /reviews}
            headers: {end-user: {exact: jason}}
            sourceLabels: {app: productpage}
            sourceNamespace: bookinfo
          route:
          - destination: {host: reviews.bookinfo.svc.cluster-2.global, subset: version-v2}
          timeout: 2s
          retries: {attempts: 3, perTryTimeout: 500ms}
        - route:
          - destination: {host: reviews.bookinfo.svc.cluster.local, subset: version-v1}
            weight: 50
          - destination: {host: reviews.bookinfo.svc.cluster-2.global, subset: version-v2}
            weight: 30
          - destination: {host: reviews.bookinfo.svc.cluster-2.global, subset: version-v3}
            weight: 20
          timeout: 3s
        """
    )


def test_callers_in_the_other_cluster_route_by_the_federated_host() -> None:
    # Callers in cluster-2 dial `reviews.bookinfo.svc.cluster-1.global`; their own cluster's
    # VirtualService for that host applies the same policies, with cluster-2's reviews local.
    objects = emit_istio(bookinfo_input()).objects
    spec = spec_of(objects, "cluster-2", "VirtualService", "reviews-bookinfo-cluster-1-global")
    assert spec["hosts"] == ["reviews.bookinfo.svc.cluster-1.global"]
    assert [d["destination"] for d in spec["http"][1]["route"]] == [
        {"host": "reviews.bookinfo.svc.cluster-1.global", "subset": "version-v1"},
        {"host": "reviews.bookinfo.svc.cluster.local", "subset": "version-v2"},
        {"host": "reviews.bookinfo.svc.cluster.local", "subset": "version-v3"},
    ]
    assert find(objects, "cluster-2", "VirtualService", "reviews-bookinfo-cluster-1-global", "istio-system")


def test_federated_reviews_on_the_caller_side() -> None:
    # A MESH_INTERNAL ServiceEntry adds the host to the caller's registry; STATIC endpoints at the
    # remote east-west gateway's TLS port; the address lets Istio's DNS proxy answer the name
    # (https://istio.io/latest/docs/reference/config/networking/service-entry/,
    # https://istio.io/latest/docs/ops/configuration/traffic-management/dns-proxy/). One endpoint per
    # subset carries that subset's labels so the subset's cluster selects the gateway.
    objects = emit_istio(bookinfo_input()).objects
    entry = spec_of(objects, "cluster-1", "ServiceEntry", "reviews-bookinfo-cluster-2-global")
    address = entry.pop("addresses")
    assert (
        len(address) == 1
        and address[0].startswith("24")
        and address[0].split(".")[0] in {str(n) for n in range(240, 256)}
    )
    assert entry == yaml_spec(
        """
        hosts: [reviews.bookinfo.svc.cluster-2.global]
        location: MESH_INTERNAL
        resolution: STATIC
        ports: [{number: 9080, name: http, protocol: HTTP}]
        endpoints:
        - {address: 203.0.113.2, ports: {http: 15443}, labels: {version: v2}}
        - {address: 203.0.113.2, ports: {http: 15443}, labels: {version: v3}}
        """
    )
    # ISTIO_MUTUAL makes the sidecar originate Istio mTLS with SNI `outbound_.<port>_.<subset>_.<host>`.
    rule = spec_of(objects, "cluster-1", "DestinationRule", "reviews-bookinfo-cluster-2-global")
    assert rule == yaml_spec(
        """
        host: reviews.bookinfo.svc.cluster-2.global
        trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}
        subsets:
        - {name: version-v2, labels: {version: v2}}
        - {name: version-v3, labels: {version: v3}}
        """
    )


def test_federated_reviews_on_the_destination_side() -> None:
    # AUTO_PASSTHROUGH forwards by SNI to the gateway's cluster of that name, no VirtualService
    # needed (https://istio.io/latest/docs/reference/config/networking/gateway/#ServerTLSSettings-TLSmode;
    # Envoy's sni_cluster filter). That cluster exists when the gateway sees the host (ServiceEntry
    # selecting reviews' pods, exported to the gateway namespace) and the subset (DestinationRule).
    objects = emit_istio(bookinfo_input()).objects
    gateway = spec_of(objects, "cluster-2", "Gateway", "meshrules-istio-eastwestgateway")
    assert gateway == yaml_spec(
        """
        selector:
          app: istio-eastwestgateway
          istio: eastwestgateway
          sidecar.istio.io/inject: "true"
          topology.istio.io/network: network2
        servers:
        - port: {number: 15443, name: tls-meshrules, protocol: TLS}
          tls: {mode: AUTO_PASSTHROUGH}
          hosts: ["*.global"]
        """
    )
    entry = spec_of(objects, "cluster-2", "ServiceEntry", "reviews-global")
    assert entry == yaml_spec(
        """
        hosts: [reviews.bookinfo.svc.cluster-2.global]
        location: MESH_INTERNAL
        resolution: STATIC
        ports: [{number: 9080, name: http, protocol: HTTP, targetPort: 9080}]
        workloadSelector: {labels: {app: reviews}}
        exportTo: [., istio-system]
        """
    )
    rule = spec_of(objects, "cluster-2", "DestinationRule", "reviews-global")
    assert rule["subsets"] == [
        {"name": "version-v2", "labels": {"version": "v2"}},
        {"name": "version-v3", "labels": {"version": "v3"}},
    ]
    assert rule["exportTo"] == [".", "istio-system"]


def test_access_and_enforcement() -> None:
    # One ALLOW policy per destination selecting its pods; principals without `spiffe://`; ports
    # are the workload's (https://istio.io/latest/docs/reference/config/security/authorization-policy/).
    # An empty policy in the root namespace denies what no ALLOW policy allows (#AuthorizationPolicy,
    # "allow-nothing"); the gateways are allowed everything so traffic can reach the destinations.
    objects = emit_istio(bookinfo_input()).objects
    assert spec_of(objects, "cluster-2", "AuthorizationPolicy", "ratings") == yaml_spec(
        """
        selector: {matchLabels: {app: ratings}}
        action: ALLOW
        rules:
        - from: [{source: {principals: [cluster.local/ns/bookinfo/sa/bookinfo-reviews]}}]
          to: [{operation: {paths: [/ratings/*], methods: [GET]}}]
        """
    )
    for cluster in ("cluster-1", "cluster-2"):
        assert spec_of(objects, cluster, "AuthorizationPolicy", "meshrules-deny-by-default") == {}
        allow = spec_of(objects, cluster, "AuthorizationPolicy", "meshrules-allow-istio-eastwestgateway")
        assert allow["rules"] == [{}] and allow["selector"]["matchLabels"]["istio"] == "eastwestgateway"
