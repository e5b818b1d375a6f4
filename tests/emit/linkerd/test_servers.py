"""Servers: only where denial by default is wanted, one per pod port, with Linkerd's protocols.

Linkerd reference ("Authorization Policy", Server): "When a Server resource is present, all traffic
to the port on its pods will be denied unless explicitly authorized"; a Server selects a port by
name or number; `proxyProtocol` is one of unknown, HTTP/1, HTTP/2, gRPC, opaque, TLS.
"""

from __future__ import annotations

import pytest

from meshrules.emit.linkerd import emit_linkerd
from meshrules.emit.linkerd.servers import proxy_protocol
from meshrules.model.intent import Intent

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
    user_object,
    without_metadata,
    workload,
)

C = "cluster-3"
MESH = linkerd_mesh(C)
WEB = workload("web", C, ports=((8080, "http"),))
API = workload("api", C, ports=((8080, "http"), (9090, "metrics")))
WEB_SVC = destination("web", C, workloads=[WEB])
API_SVC = destination("api", C, workloads=[API], ports=[port(80), port(9090, "metrics", "metrics")])


def test_no_server_without_access_policy_or_enforcement() -> None:
    # Without a Server the cluster's default inbound policy applies: meshrules must not change it.
    result = emit_linkerd(emit_input(meshes=[MESH], workloads=[WEB], destinations=[WEB_SVC]))
    assert objects(result, C, "Server") == []


def test_one_server_per_port_of_a_destination_with_an_access_policy() -> None:
    p = access_policy("web-reads-api")
    intent = Intent(access=(allow(p, API_SVC, sa("web"), ports=(80,)),))
    result = emit_linkerd(
        emit_input(meshes=[MESH], workloads=[WEB, API], destinations=[WEB_SVC, API_SVC], policies=[p], intent=intent)
    )
    # Both ports of `api` get a Server (the metrics port too: a destination with an AccessPolicy
    # denies what no policy allows, as in Istio); `web` has no AccessPolicy and keeps the default.
    assert [s["metadata"]["name"] for s in objects(result, C, "Server")] == ["api-http", "api-metrics"]
    assert without_metadata(named(result, C, "Server", "api-metrics")) == load("""
        apiVersion: policy.linkerd.io/v1beta3
        kind: Server
        metadata: {name: api-metrics, namespace: shop}
        spec:
          accessPolicy: deny
          podSelector: {matchLabels: {app: api}}
          port: metrics
          proxyProtocol: unknown
    """)
    assert named(result, C, "Server", "api-http")["spec"]["proxyProtocol"] == "HTTP/1"


def test_enforced_member_mesh_gets_servers_for_every_destination() -> None:
    intent = Intent(memberships=(member(MESH, enforced=True),))
    result = emit_linkerd(
        emit_input(meshes=[MESH], workloads=[WEB, API], destinations=[WEB_SVC, API_SVC], intent=intent)
    )
    assert [s["metadata"]["name"] for s in objects(result, C, "Server")] == ["api-http", "api-metrics", "web-http"]
    # Nothing authorizes them: under ENFORCED unauthorized means denied.
    assert objects(result, C, "AuthorizationPolicy") == []
    parents = named(result, C, "Server", "web-http")["metadata"]["annotations"]["meshrules.io/parents"]
    assert parents == '{"Destination":["meshrules-system/web-shop-cluster-3"],"VirtualMesh":["meshrules-system/vm"]}'


def test_not_enforced_member_mesh_keeps_the_default() -> None:
    intent = Intent(memberships=(member(MESH, enforced=False),))
    result = emit_linkerd(emit_input(meshes=[MESH], workloads=[WEB], destinations=[WEB_SVC], intent=intent))
    assert objects(result, C) == []


def test_services_sharing_a_pod_port_share_one_server() -> None:
    # Linkerd's admission controller refuses two Servers selecting the same pod port.
    alias = destination("web-alias", C, workloads=[WEB], selector={"app": "web"}, ports=[port(8000, "http", 8080)])
    intent = Intent(memberships=(member(MESH, enforced=True),))
    result = emit_linkerd(emit_input(meshes=[MESH], workloads=[WEB], destinations=[WEB_SVC, alias], intent=intent))
    servers = objects(result, C, "Server")
    assert [s["metadata"]["name"] for s in servers] == ["web-alias-http"]
    assert servers[0]["metadata"]["annotations"]["meshrules.io/parents"].startswith(
        '{"Destination":["meshrules-system/web-alias-shop-cluster-3","meshrules-system/web-shop-cluster-3"]'
    )


def test_udp_ports_get_no_server() -> None:
    dns = destination("dns", C, workloads=[WEB], ports=[port(53, "dns", 53, protocol="UDP"), port(80)])
    intent = Intent(memberships=(member(MESH, enforced=True),))
    result = emit_linkerd(emit_input(meshes=[MESH], workloads=[WEB], destinations=[dns], intent=intent))
    assert [s["spec"]["port"] for s in objects(result, C, "Server")] == [8080]


@pytest.mark.parametrize(
    ("name", "app_protocol", "expected"),
    [
        ("grpc", None, "gRPC"),
        ("grpc-web", None, "gRPC"),
        ("http", None, "HTTP/1"),
        ("http-api", None, "HTTP/1"),
        ("http2", None, "HTTP/2"),
        ("web", "kubernetes.io/h2c", "HTTP/2"),
        ("https", None, "TLS"),
        ("tcp-db", None, "opaque"),
        ("mysql", None, "opaque"),
        ("prom", None, "unknown"),
        (None, None, "unknown"),
        ("http", "grpc", "gRPC"),  # appProtocol wins over the name, as in Kubernetes
    ],
)
def test_proxy_protocol_from_port_name_or_app_protocol(
    name: str | None, app_protocol: str | None, expected: str
) -> None:
    assert proxy_protocol(port(80, name, 8080, app_protocol=app_protocol)) == expected


def test_user_server_on_the_same_port_is_used_not_duplicated() -> None:
    user_server = user_object(
        C,
        {
            "apiVersion": "policy.linkerd.io/v1beta3",
            "kind": "Server",
            "metadata": {"name": "web-http-by-hand", "namespace": "shop"},
            "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "port": "http", "proxyProtocol": "HTTP/1"},
        },
    )
    p = access_policy("api-calls-web")
    intent = Intent(access=(allow(p, WEB_SVC, sa("api")),))
    result = emit_linkerd(
        emit_input(
            meshes=[MESH],
            workloads=[WEB, API],
            destinations=[WEB_SVC],
            policies=[p],
            intent=intent,
            existing={C: (user_server,)},
        )
    )
    assert objects(result, C, "Server") == []
    [policy] = objects(result, C, "AuthorizationPolicy")
    assert policy["spec"]["targetRef"] == {"group": "policy.linkerd.io", "kind": "Server", "name": "web-http-by-hand"}
    assert [f.code for f in result.findings] == ["MR0423"]


def test_a_user_object_name_is_never_taken() -> None:
    # A user's Server named like meshrules' would be overwritten by an apply: meshrules picks another name.
    taken = user_object(
        C,
        {
            "apiVersion": "policy.linkerd.io/v1beta3",
            "kind": "Server",
            "metadata": {"name": "web-http", "namespace": "shop"},
            "spec": {"podSelector": {"matchLabels": {"app": "other"}}, "port": 9999},
        },
    )
    intent = Intent(memberships=(member(MESH, enforced=True),))
    result = emit_linkerd(
        emit_input(meshes=[MESH], workloads=[WEB], destinations=[WEB_SVC], intent=intent, existing={C: (taken,)})
    )
    [server] = objects(result, C, "Server")
    assert server["metadata"]["name"].startswith("web-http-") and server["metadata"]["name"] != "web-http"
    assert [f.code for f in result.findings] == ["MR0426"]
