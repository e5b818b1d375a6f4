"""Federation through Linkerd multicluster, and the user-Service patch meshrules owns fields of.

Linkerd "Multi-cluster communication" reference: Services labelled `mirror.linkerd.io/exported=true`
are mirrored in gateway (hierarchical) mode, `mirror.linkerd.io/exported=remote-discovery` in flat
(pod-to-pod) mode. "Circuit Breaking": `balancer.linkerd.io/failure-accrual` annotations on a Service.
"""

from __future__ import annotations

from meshrules.emit.linkerd import emit_linkerd
from meshrules.model.intent import Intent

from .builders import (
    applies,
    destination,
    emit_input,
    linkerd_mesh,
    load,
    member,
    mirror_edge,
    traffic_policy,
    workload,
)

C, R = "cluster-3", "cluster-1"
MESH, REMOTE = linkerd_mesh(C), linkerd_mesh(R)
API = destination("api", C, workloads=[workload("api", C)])


def test_export_is_a_patch_owning_only_the_export_label() -> None:
    intent = Intent(federation=(mirror_edge(API, REMOTE),), memberships=(member(MESH), member(REMOTE)))
    result = emit_linkerd(emit_input(meshes=[MESH, REMOTE], destinations=[API], intent=intent))
    assert result.patches == {
        C: (
            load("""
        apiVersion: v1
        kind: Service
        metadata:
          name: api
          namespace: shop
          labels: {mirror.linkerd.io/exported: "true"}
    """),
        )
    }
    # The Link and its credentials Secret are live-mode only: nothing is emitted for them.
    assert result.objects == {}


def test_remote_discovery_exports_with_its_label_value() -> None:
    intent = Intent(
        federation=(mirror_edge(API, REMOTE),),
        memberships=(member(MESH, mode="remote-discovery"), member(REMOTE, mode="remote-discovery")),
    )
    result = emit_linkerd(emit_input(meshes=[MESH, REMOTE], destinations=[API], intent=intent))
    assert result.patches[C][0]["metadata"]["labels"] == {"mirror.linkerd.io/exported": "remote-discovery"}


def test_outlier_detection_is_failure_accrual_in_the_same_patch() -> None:
    # One server-side-apply patch per Service: a second apply by the same field manager would drop
    # the fields of the first.
    breaker = traffic_policy(
        "breaker",
        {
            "policy": {
                "outlierDetection": {
                    "consecutiveErrors": 5,
                    "interval": "10s",
                    "baseEjectionTime": "30s",
                    "maxEjectionPercent": 100,
                }
            }
        },
    )
    intent = Intent(
        federation=(mirror_edge(API, REMOTE),),
        traffic=(applies(breaker, API),),
        memberships=(member(MESH), member(REMOTE)),
    )
    result = emit_linkerd(emit_input(meshes=[MESH, REMOTE], destinations=[API], policies=[breaker], intent=intent))
    assert result.patches == {
        C: (
            load("""
        apiVersion: v1
        kind: Service
        metadata:
          name: api
          namespace: shop
          labels: {mirror.linkerd.io/exported: "true"}
          annotations:
            balancer.linkerd.io/failure-accrual: consecutive
            balancer.linkerd.io/failure-accrual-consecutive-max-failures: "5"
            balancer.linkerd.io/failure-accrual-consecutive-min-penalty: 30s
            balancer.linkerd.io/failure-accrual-consecutive-max-penalty: 300s
    """),
        )
    }
    assert result.statuses == ()


def test_only_linkerd_meshes_are_emitted() -> None:
    from meshrules.model.discovery import Mesh, MeshType

    istio = Mesh(
        name="istiod-istio-system-cluster-2",
        type=MeshType.ISTIO,
        cluster="cluster-2",
        namespace="istio-system",
        control_plane="istiod",
    )
    svc = destination("web", "cluster-2", workloads=[], mesh=istio)
    intent = Intent(memberships=(member(istio, enforced=True),))
    result = emit_linkerd(emit_input(meshes=[istio], destinations=[svc], intent=intent))
    assert result.objects == {} and result.patches == {} and result.statuses == ()
