"""Existing user config: reported, never fought, never overwritten (spec §1.1, §4).

Istio applies one DestinationRule per host (the oldest) and merges VirtualServices for one host
only on gateways (https://istio.io/latest/docs/ops/best-practices/traffic-management/), so a
second object for a host the user already configures would behave unpredictably.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from emit.emit_builders import applies, find, spec_of, traffic_policy, user_object
from emit.istio.world import RATINGS, REVIEWS, emit
from meshrules.emit.istio.existing import CODE_USER_DESTINATION_RULE, CODE_USER_VIRTUAL_SERVICE
from meshrules.emit.naming import OWNER_LABEL


def _vs(name: str, hosts: list[str], *, owned: bool = False, namespace: str = "shop") -> Any:
    labels = {OWNER_LABEL: "meshrules-system"} if owned else {}
    return user_object(
        "c1",
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {"hosts": hosts, "http": [{"route": [{"destination": {"host": hosts[0]}}]}]},
        },
    )


def _dr(name: str, host: str, subsets: list[dict[str, Any]] | None = None) -> Any:
    return user_object(
        "c1",
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "DestinationRule",
            "metadata": {"name": name, "namespace": "shop"},
            "spec": {"host": host, "subsets": subsets or []},
        },
    )


TIMEOUT = traffic_policy("timeout", {"policy": {"requestTimeout": "1s"}}, created="01:00")
TO_V2 = traffic_policy(
    "to-v2",
    {"policy": {"trafficShift": {"destinations": [{"service": {"name": "reviews"}, "subset": {"version": "v2"}}]}}},
    created="02:00",
)


def test_user_virtual_service_for_the_host_wins_and_is_reported() -> None:
    # A short host name in the user's namespace is the same FQDN as Istio resolves it.
    user = _vs("my-reviews", ["reviews"])
    result = emit([TIMEOUT], traffic=(applies(TIMEOUT, REVIEWS),), existing={"c1": (user,)})
    assert find(result.objects, "c1", "VirtualService") == []
    assert [(s.policy, s.code, s.destination) for s in result.statuses] == [
        (TIMEOUT.ref, CODE_USER_VIRTUAL_SERVICE, REVIEWS.name)
    ]
    assert [(f.code, f.object, str(f.location)) for f in result.findings] == [
        (CODE_USER_VIRTUAL_SERVICE, "VirtualService shop/my-reviews", "clusters/c1/user.yaml:1")
    ]


def test_objects_meshrules_owns_are_not_user_config() -> None:
    ours = _vs("reviews", ["reviews.shop.svc.cluster.local"], owned=True)
    result = emit([TIMEOUT], traffic=(applies(TIMEOUT, REVIEWS),), existing={"c1": (ours,)})
    assert spec_of(result.objects, "c1", "VirtualService", "reviews")["http"][0]["timeout"] == "1s"
    assert result.statuses == () and result.findings == ()


def test_user_destination_rule_without_the_subset_invalidates_the_shift() -> None:
    user = _dr("reviews-dr", "reviews.shop.svc.cluster.local")
    result = emit([TO_V2], traffic=(applies(TO_V2, REVIEWS),), existing={"c1": (user,)})
    assert [(s.policy, s.code) for s in result.statuses] == [(TO_V2.ref, CODE_USER_DESTINATION_RULE)]
    assert find(result.objects, "c1", "DestinationRule") == [] and find(result.objects, "c1", "VirtualService") == []
    assert {f.code for f in result.findings} == {CODE_USER_DESTINATION_RULE}


def test_user_destination_rule_with_the_same_subset_is_used() -> None:
    user = _dr("reviews-dr", "reviews.shop.svc.cluster.local", [{"name": "version-v2", "labels": {"version": "v2"}}])
    result = emit([TO_V2], traffic=(applies(TO_V2, REVIEWS),), existing={"c1": (user,)})
    assert result.statuses == ()
    assert find(result.objects, "c1", "DestinationRule") == []  # the user's rule stays the only one
    assert spec_of(result.objects, "c1", "VirtualService", "reviews")["http"][0]["route"][0]["destination"] == {
        "host": "reviews.shop.svc.cluster.local",
        "subset": "version-v2",
    }


def test_user_destination_rule_blocks_mtls_settings() -> None:
    mtls = traffic_policy("mtls", {"policy": {"mtls": {"mode": "DISABLE"}}}, created="01:00")
    result = emit(
        [mtls], traffic=(applies(mtls, RATINGS),), existing={"c1": (_dr("r", "ratings.shop.svc.cluster.local"),)}
    )
    assert [(s.policy, s.code, s.field) for s in result.statuses] == [
        (mtls.ref, CODE_USER_DESTINATION_RULE, "spec.policy.mtls")
    ]
    assert find(result.objects, "c1", "DestinationRule") == []


def test_a_name_a_user_object_has_is_never_reused() -> None:
    # The user's VirtualService `reviews` routes another host: no conflict, but its name is taken.
    user = _vs("reviews", ["other.shop.svc.cluster.local"])
    result = emit([TIMEOUT], traffic=(applies(TIMEOUT, REVIEWS),), existing={"c1": (user,)})
    names = [o["metadata"]["name"] for o in find(result.objects, "c1", "VirtualService")]
    assert len(names) == 1 and names[0].startswith("reviews-") and names[0] != "reviews"
    assert result.statuses == ()


def test_a_user_virtual_service_bound_only_to_gateways_does_not_conflict() -> None:
    user = _vs("edge", ["reviews.shop.svc.cluster.local"])
    body = {**user.body, "spec": {**user.body["spec"], "gateways": ["istio-system/ingress"]}}
    result = emit([TIMEOUT], traffic=(applies(TIMEOUT, REVIEWS),), existing={"c1": (replace(user, body=body),)})
    assert result.statuses == ()
    assert find(result.objects, "c1", "VirtualService", "reviews")
