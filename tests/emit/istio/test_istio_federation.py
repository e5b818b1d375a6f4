"""The federation data path on both sides, and what happens when part of it is missing.

References: ServiceEntry (https://istio.io/latest/docs/reference/config/networking/service-entry/):
`resolution: STATIC` needs IP endpoints, `DNS` resolves endpoint host names; Gateway TLS mode
AUTO_PASSTHROUGH routes by the SNI `outbound_.<port>_.<subset>_.<host>`
(https://istio.io/latest/docs/reference/config/networking/gateway/#ServerTLSSettings-TLSmode).
"""

from __future__ import annotations

from emit.emit_builders import applies, federate, find, istio_mesh, member, spec_of, traffic_policy
from emit.istio.world import C1, C2, REVIEWS, REVIEWS_C2, WEB_SVC, emit
from meshrules.emit.istio.plan import CODE_UNREACHABLE_BACKEND
from meshrules.emit.istio.topology import CODE_NO_GATEWAY_ADDRESS
from meshrules.emit.naming import AddressBook
from meshrules.emit.schema import validate
from meshrules.errors import Severity


def _shift_to_c2_v3() -> object:
    return traffic_policy(
        "to-v3",
        {
            "policy": {
                "trafficShift": {
                    "destinations": [{"service": {"name": "reviews", "cluster": "c2"}, "subset": {"version": "v3"}}]
                }
            }
        },
        created="01:00",
    )


def test_subsets_reach_the_remote_pods_through_labelled_gateway_endpoints() -> None:
    policy = _shift_to_c2_v3()
    result = emit(
        [policy],
        memberships=(member(C1), member(C2)),
        federation=(federate(REVIEWS_C2, C1),),
        traffic=(applies(policy, REVIEWS),),  # type: ignore[arg-type]
    )
    host = "reviews.shop.svc.c2.global"
    client = spec_of(result.objects, "c1", "ServiceEntry", "reviews-shop-c2-global")
    assert client["addresses"] == [AddressBook.for_hosts([host]).address(host)]
    assert client["endpoints"] == [{"address": "203.0.113.2", "ports": {"http": 15443}, "labels": {"version": "v3"}}]
    subsets = [{"name": "version-v3", "labels": {"version": "v3"}}]
    assert spec_of(result.objects, "c1", "DestinationRule", "reviews-shop-c2-global")["subsets"] == subsets
    # The gateway side defines the same subset name: the SNI carries it across.
    assert spec_of(result.objects, "c2", "DestinationRule", "reviews-global")["subsets"] == subsets
    server = spec_of(result.objects, "c2", "ServiceEntry", "reviews-global")
    assert server["workloadSelector"] == {"labels": {"app": "reviews"}}
    assert server["ports"] == [{"number": 80, "name": "http", "protocol": "HTTP", "targetPort": 8080}]
    assert spec_of(result.objects, "c2", "Gateway", "meshrules-istio-eastwestgateway")["servers"][0]["hosts"] == [
        "*.global"
    ]
    for objects in result.objects.values():
        assert all(validate(o) == [] for o in objects)


def test_a_gateway_published_by_name_uses_dns_resolution() -> None:
    named = istio_mesh("c2", gateway_address="gw.c2.example.com")
    result = emit(meshes=(C1, named), memberships=(member(C1), member(named)), federation=(federate(REVIEWS_C2, C1),))
    entry = spec_of(result.objects, "c1", "ServiceEntry", "reviews-shop-c2-global")
    assert entry["resolution"] == "DNS"
    assert entry["endpoints"] == [{"address": "gw.c2.example.com", "ports": {"http": 15443}}]


def test_no_gateway_address_no_data_path_and_a_finding() -> None:
    dark = istio_mesh("c2", gateway_address=None)
    policy = _shift_to_c2_v3()
    result = emit(
        [policy],
        meshes=(C1, dark),
        memberships=(member(C1), member(dark)),
        federation=(federate(REVIEWS_C2, C1),),
        traffic=(applies(policy, REVIEWS),),  # type: ignore[arg-type]
    )
    assert [f.code for f in result.findings] == [CODE_NO_GATEWAY_ADDRESS]
    finding = result.findings[0]
    assert finding.severity == Severity.ERROR and "NO_GATEWAY_ADDRESS" in finding.message
    assert "reviews-shop-c2" in finding.message
    assert find(result.objects, "c1", "ServiceEntry") == [] and find(result.objects, "c2", "Gateway") == []
    # With no way to reach the backend, the shifting policy is INVALID at reviews (and routes nothing).
    assert [(s.policy, s.code, s.destination) for s in result.statuses] == [
        ("TrafficPolicy shop/to-v3", CODE_UNREACHABLE_BACKEND, REVIEWS.name)
    ]
    assert find(result.objects, "c1", "VirtualService") == []


def test_backend_not_federated_into_a_caller_mesh_is_invalid_there() -> None:
    # reviews (c1) is federated into c2, so c2's callers route by its policies too; the backend
    # `web` (c1) is not federated into c2: c2's callers could not reach it.
    policy = traffic_policy(
        "to-web", {"policy": {"trafficShift": {"destinations": [{"service": {"name": "web"}}]}}}, created="01:00"
    )
    result = emit(
        [policy],
        memberships=(member(C1), member(C2)),
        federation=(federate(REVIEWS, C2),),
        traffic=(applies(policy, REVIEWS),),
    )
    assert [(s.code, s.destination) for s in result.statuses] == [(CODE_UNREACHABLE_BACKEND, REVIEWS.name)]
    assert "cluster `c2`" in result.statuses[0].message and WEB_SVC.name in result.statuses[0].message
    # the error names the field that holds the unreachable backend, not the whole `spec.policy`
    assert result.statuses[0].field == "spec.policy.trafficShift.destinations"
    assert find(result.objects, "c1", "VirtualService") == [] and find(result.objects, "c2", "VirtualService") == []


def test_server_side_objects_are_shared_by_every_calling_cluster() -> None:
    c3 = istio_mesh("c3", gateway_address="203.0.113.3")
    result = emit(
        meshes=(C1, C2, c3),
        memberships=(member(C1), member(C2), member(c3)),
        federation=(federate(REVIEWS_C2, C1), federate(REVIEWS_C2, c3)),
    )
    assert len(find(result.objects, "c2", "ServiceEntry")) == 1
    assert len(find(result.objects, "c2", "Gateway")) == 1
    assert find(result.objects, "c1", "ServiceEntry") and find(result.objects, "c3", "ServiceEntry")
    # Same host, same address in every caller cluster.
    addresses = {
        spec_of(result.objects, c, "ServiceEntry", "reviews-shop-c2-global")["addresses"][0] for c in ("c1", "c3")
    }
    assert len(addresses) == 1
