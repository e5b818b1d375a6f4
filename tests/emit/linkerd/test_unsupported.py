"""One test per feature Linkerd cannot express: the policy is INVALID at that destination (spec §3.4).

Each status names the feature and the mesh, has a stable code, and the policy contributes nothing
to the destination (no HTTPRoute carries any of its fields).
"""

from __future__ import annotations

from typing import Any

import pytest

from meshrules.emit.linkerd import emit_linkerd
from meshrules.model.intent import Intent, PolicyStatusEntry

from .builders import (
    applies,
    destination,
    emit_input,
    linkerd_mesh,
    mirror_edge,
    objects,
    port,
    traffic_policy,
    user_object,
    workload,
)

C = "cluster-3"
MESH = linkerd_mesh(C)
M = MESH.name
API = workload("api", C)
API_SVC = destination("api", C, workloads=[API])
OTHER = destination("other", C, "elsewhere", workloads=[workload("other", C, "elsewhere")])


def statuses(
    spec: dict[str, Any],
    *,
    fields: tuple[str, ...] | None = None,
    existing: Any = None,
    destinations: tuple[Any, ...] = (API_SVC, OTHER),
    edges: tuple[Any, ...] = (),
) -> list[PolicyStatusEntry]:
    policy = traffic_policy("p", spec)
    intent = Intent(traffic=(applies(policy, API_SVC, fields),), federation=edges)
    result = emit_linkerd(
        emit_input(
            meshes=[MESH, linkerd_mesh("cluster-1")],
            workloads=[API],
            destinations=destinations,
            policies=[policy],
            intent=intent,
            existing=existing,
        )
    )
    # The INVALID policy contributes nothing at the destination.
    assert not any(
        "TrafficPolicy" in o["metadata"]["annotations"]["meshrules.io/parents"]
        for c in result.objects
        for o in objects(result, c)
    )
    return [s for s in result.statuses if s.destination == API_SVC.name]


def only(entries: list[PolicyStatusEntry]) -> tuple[str, str, str]:
    assert len(entries) == 1, entries
    return entries[0].code, entries[0].field, entries[0].message


@pytest.mark.parametrize(
    ("spec", "code", "field", "message"),
    [
        (
            {"policy": {"faultInjection": {"fixedDelay": "2s", "percentage": 10}}},
            "MR0401",
            "spec.policy.faultInjection",
            f"fault injection is not supported by Linkerd (mesh `{M}`)",
        ),
        (
            {"policy": {"corsPolicy": {"allowOrigins": [{"exact": "https://a.example"}]}}},
            "MR0402",
            "spec.policy.corsPolicy",
            f"a CORS policy is not supported by Linkerd (mesh `{M}`)",
        ),
        (
            {"policy": {"mirror": {"service": {"name": "api"}, "percentage": 5}}},
            "MR0403",
            "spec.policy.mirror",
            f"request mirroring is not supported by Linkerd (mesh `{M}`)",
        ),
        (
            {"policy": {"trafficShift": {"destinations": [{"service": {"name": "api"}, "subset": {"version": "v2"}}]}}},
            "MR0404",
            "spec.policy.trafficShift.destinations[0].subset",
            f"a traffic shift to a subset is not supported by Linkerd (mesh `{M}`)",
        ),
        (
            {"sourceSelector": [{"namespaces": ["web"]}], "policy": {"requestTimeout": "1s"}},
            "MR0405",
            "spec.sourceSelector[0].namespaces",
            f"routing for selected sources only is not supported by Linkerd (mesh `{M}`)",
        ),
        (
            {"sourceSelector": [{"labels": {"app": "web"}}], "policy": {"requestTimeout": "1s"}},
            "MR0405",
            "spec.sourceSelector[0].labels",
            f"routing for selected sources only is not supported by Linkerd (mesh `{M}`)",
        ),
        (
            {"policy": {"headerManipulation": {"appendRequestHeaders": {"x-empty": ""}}}},
            "MR0406",
            "spec.policy.headerManipulation.appendRequestHeaders",
            "header manipulation with an empty value in `appendRequestHeaders` is not supported by Linkerd "
            f"(mesh `{M}`)",
        ),
        (
            {"policy": {"outlierDetection": {"consecutiveErrors": 5, "maxEjectionPercent": 50}}},
            "MR0407",
            "spec.policy.outlierDetection.maxEjectionPercent",
            f"outlier detection with `maxEjectionPercent` below 100 is not supported by Linkerd (mesh `{M}`)",
        ),
        (
            {"policy": {"mtls": {"mode": "DISABLE"}}},
            "MR0408",
            "spec.policy.mtls.mode",
            f"disabling mTLS is not supported by Linkerd (mesh `{M}`)",
        ),
        (
            {
                "httpRequestMatchers": [{"headers": [{"name": "x-canary", "value": "1", "invertMatch": True}]}],
                "policy": {"requestTimeout": "1s"},
            },
            "MR0409",
            "spec.httpRequestMatchers[0].headers[0].invertMatch",
            f"an inverted header match is not supported by Linkerd (mesh `{M}`)",
        ),
        (
            {"httpRequestMatchers": [{"method": "PROPFIND"}], "policy": {"requestTimeout": "1s"}},
            "MR0409",
            "spec.httpRequestMatchers[0].method",
            f"matching method `PROPFIND` is not supported by Linkerd (mesh `{M}`)",
        ),
        (
            {"policy": {"trafficShift": {"destinations": [{"service": {"name": "other", "namespace": "elsewhere"}}]}}},
            "MR0410",
            "spec.policy.trafficShift",
            f"a traffic shift from `shop` to a Service in `elsewhere` is not supported by Linkerd (mesh `{M}`)",
        ),
    ],
)
def test_unsupported_feature_is_invalid_for_the_destination(
    spec: dict[str, Any], code: str, field: str, message: str
) -> None:
    assert only(statuses(spec)) == (code, field, message)


def test_backend_not_federated_into_the_callers_cluster() -> None:
    remote = destination("api", "cluster-1", workloads=[workload("api", "cluster-1")])
    spec = {"policy": {"trafficShift": {"destinations": [{"service": {"name": "api", "cluster": "cluster-1"}}]}}}
    assert only(statuses(spec, destinations=(API_SVC, remote))) == (
        "MR0411",
        "spec.policy.trafficShift",
        "a traffic shift to `api-shop-cluster-1`, which is not federated into `cluster-3`, is not supported by "
        f"Linkerd (mesh `{M}`)",
    )


def test_user_service_profile_for_the_host_is_reported_not_fought() -> None:
    profile = user_object(
        C,
        {
            "apiVersion": "linkerd.io/v1alpha2",
            "kind": "ServiceProfile",
            "metadata": {"name": "api.shop.svc.cluster.local", "namespace": "shop"},
            "spec": {"routes": [{"name": "GET /", "condition": {"method": "GET", "pathRegex": "/"}}]},
        },
    )
    spec = {"policy": {"requestTimeout": "1s"}}
    assert only(statuses(spec, existing={C: (profile,)})) == (
        "MR0412",
        "spec.policy",
        "ServiceProfile `shop/api.shop.svc.cluster.local` in `cluster-3` configures this host; Linkerd ignores "
        f"HTTPRoute timeouts, retries and backends for it, so meshrules emits none (mesh `{M}`)",
    )


def test_service_profile_on_the_mirror_host_counts_too() -> None:
    remote_mesh = linkerd_mesh("cluster-1")
    profile = user_object(
        "cluster-1",
        {
            "apiVersion": "linkerd.io/v1alpha2",
            "kind": "ServiceProfile",
            "metadata": {"name": "api-cluster-3.shop.svc.cluster.local", "namespace": "shop"},
            "spec": {},
        },
    )
    entries = statuses(
        {"policy": {"retries": {"attempts": 2}}},
        existing={"cluster-1": (profile,)},
        edges=(mirror_edge(API_SVC, remote_mesh),),
    )
    assert only(entries)[0] == "MR0412"


def test_no_http_port() -> None:
    db = destination("api", C, workloads=[API], ports=[port(5432, "tcp-pg", 5432)])
    assert only(statuses({"policy": {"requestTimeout": "1s"}}, destinations=(db,))) == (
        "MR0413",
        "spec.policy",
        f"HTTP routing on a Service without an HTTP port is not supported by Linkerd (mesh `{M}`)",
    )


def test_a_field_that_lost_its_conflict_is_not_judged() -> None:
    # The rule set removed `faultInjection` from this application (another policy won it): only
    # what the policy contributes at the destination can make it INVALID there.
    spec = {"policy": {"requestTimeout": "1s", "faultInjection": {"abort": {"httpStatus": 503}}}}
    policy = traffic_policy("p", spec)
    intent = Intent(traffic=(applies(policy, API_SVC, ("requestTimeout",)),))
    result = emit_linkerd(
        emit_input(meshes=[MESH], workloads=[API], destinations=[API_SVC], policies=[policy], intent=intent)
    )
    assert result.statuses == ()
    assert [o["metadata"]["name"] for o in objects(result, C, "HTTPRoute")] == ["api-80"]
