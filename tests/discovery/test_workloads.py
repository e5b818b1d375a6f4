"""Meshed workloads: injection by namespace, by pod label or annotation, opt-outs, several meshes."""

from __future__ import annotations

from typing import Any

import pytest
from discovery_builders import (
    ISTIO_CP,
    LINKERD_CP,
    SAMPLES,
    Discover,
    Kube,
    codes,
    deployment,
    dump,
    istiod,
    ns,
)

from meshrules.discovery import Discovery
from meshrules.model.discovery import ContainerPort, ControllerRef, HttpProbe

ISTIO_MESH = "istiod-istio-system-c1"
LINKERD_MESH = "linkerd-destination-linkerd-c1"


def _by_name(found: Discovery) -> dict[str, Any]:
    return {w.name: w for w in found.workloads}


def test_bookinfo_in_an_injected_namespace(kube: Kube, run: Discover) -> None:
    objs = [
        *kube(ISTIO_CP),
        *kube(dump(ns("bookinfo", {"istio-injection": "enabled"}))),
        *kube(SAMPLES / "bookinfo.yaml", namespace="bookinfo"),
    ]
    found = run(c1=objs)
    expected = {
        "details-v1": ("bookinfo-details", {"app": "details", "version": "v1"}),
        "productpage-v1": ("bookinfo-productpage", {"app": "productpage", "version": "v1"}),
        "ratings-v1": ("bookinfo-ratings", {"app": "ratings", "version": "v1"}),
        "reviews-v1": ("bookinfo-reviews", {"app": "reviews", "version": "v1"}),
        "reviews-v2": ("bookinfo-reviews", {"app": "reviews", "version": "v2"}),
        "reviews-v3": ("bookinfo-reviews", {"app": "reviews", "version": "v3"}),
    }
    workloads = _by_name(found)
    assert sorted(workloads) == sorted(f"{d}-bookinfo-c1-deployment" for d in expected)
    for deploy, (sa, labels) in expected.items():
        w = workloads[f"{deploy}-bookinfo-c1-deployment"]
        assert (w.cluster, w.namespace) == ("c1", "bookinfo")
        assert w.controller == ControllerRef(kind="Deployment", name=deploy)
        assert w.service_account == sa
        assert w.pod_labels == labels
        assert w.mesh == ISTIO_MESH
        assert w.identity == f"spiffe://cluster.local/ns/bookinfo/sa/{sa}"
        assert w.ports == (ContainerPort(container_port=9080),)
    assert found.diagnostics == ()


def test_bookinfo_without_injection_is_not_meshed(kube: Kube, run: Discover) -> None:
    found = run(c1=[*kube(ISTIO_CP), *kube(SAMPLES / "bookinfo.yaml", namespace="bookinfo")])
    assert found.workloads == () and found.destinations == ()


def test_emojivoto_meshed_by_namespace_annotation(kube: Kube, run: Discover) -> None:
    emojivoto = [o for o in kube(SAMPLES / "emojivoto.yml") if o.kind != "Namespace"]
    annotated = kube(dump(ns("emojivoto", annotations={"linkerd.io/inject": "enabled"})))
    found = run(c1=[*kube(LINKERD_CP), *annotated, *emojivoto])
    identities = {w.controller.name: (w.service_account, w.identity, w.mesh) for w in found.workloads}
    assert identities == {
        "emoji": ("emoji", "emoji.emojivoto.serviceaccount.identity.linkerd.cluster.local", LINKERD_MESH),
        "vote-bot": ("default", "default.emojivoto.serviceaccount.identity.linkerd.cluster.local", LINKERD_MESH),
        "voting": ("voting", "voting.emojivoto.serviceaccount.identity.linkerd.cluster.local", LINKERD_MESH),
        "web": ("web", "web.emojivoto.serviceaccount.identity.linkerd.cluster.local", LINKERD_MESH),
    }
    web = _by_name(found)["web-emojivoto-c1-deployment"]
    assert web.ports == (ContainerPort(container_port=8080, name="http"),)
    assert found.diagnostics == ()


def test_emojivoto_meshed_by_pod_template_annotation(kube: Kube, run: Discover) -> None:
    # linkerd2's multicluster test copy of emojivoto annotates each pod template (no vote-bot).
    found = run(c1=[*kube(LINKERD_CP), *kube(SAMPLES / "emojivoto-no-bot.yml")])
    assert sorted(w.controller.name for w in found.workloads) == ["emoji", "voting", "web"]
    assert {w.mesh for w in found.workloads} == {LINKERD_MESH}


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        ("httpbin.yaml", {"httpbin": ("httpbin", (8080,))}),
        ("helloworld.yaml", {"helloworld-v1": ("default", (5000,)), "helloworld-v2": ("default", (5000,))}),
        ("curl.yaml", {"curl": ("curl", ())}),
        ("sleep.yaml", {"sleep": ("sleep", ())}),
    ],
)
def test_istio_samples(kube: Kube, run: Discover, sample: str, expected: dict[str, Any]) -> None:
    objs = [
        *kube(ISTIO_CP),
        *kube(dump(ns("demo", {"istio-injection": "enabled"}))),
        *kube(SAMPLES / sample, namespace="demo"),
    ]
    found = run(c1=objs)
    got = {w.controller.name: (w.service_account, tuple(p.container_port for p in w.ports)) for w in found.workloads}
    assert got == expected
    for w in found.workloads:
        assert w.identity == f"spiffe://cluster.local/ns/demo/sa/{w.service_account}"


def _one_workload(kube: Kube, run: Discover, *objects: dict[str, Any]) -> Discovery:
    return run(c1=kube(dump(*istiod(), *objects)))


def test_injection_by_pod_label(kube: Kube, run: Discover) -> None:
    found = _one_workload(kube, run, deployment("api", "shop", {"app": "api", "sidecar.istio.io/inject": "true"}))
    assert [w.mesh for w in found.workloads] == [ISTIO_MESH]


def test_injection_by_pod_annotation(kube: Kube, run: Discover) -> None:
    dep = deployment("api", "shop", {"app": "api"}, annotations={"sidecar.istio.io/inject": "true"})
    assert [w.mesh for w in _one_workload(kube, run, dep).workloads] == [ISTIO_MESH]


@pytest.mark.parametrize(
    ("labels", "annotations"),
    [
        ({"app": "api", "sidecar.istio.io/inject": "false"}, {}),
        ({"app": "api"}, {"sidecar.istio.io/inject": "false"}),
    ],
)
def test_pod_opt_out_beats_namespace_injection(
    kube: Kube, run: Discover, labels: dict[str, str], annotations: dict[str, str]
) -> None:
    found = _one_workload(
        kube,
        run,
        ns("shop", {"istio-injection": "enabled"}),
        deployment("api", "shop", labels, annotations=annotations),
        deployment("web", "shop", {"app": "web"}),
    )
    assert [w.controller.name for w in found.workloads] == ["web"]
    assert found.diagnostics == ()


def test_namespace_opt_out_beats_pod_injection(kube: Kube, run: Discover) -> None:
    found = _one_workload(
        kube,
        run,
        ns("shop", {"istio-injection": "disabled"}),
        deployment("api", "shop", {"app": "api", "sidecar.istio.io/inject": "true"}),
    )
    assert found.workloads == ()


def test_linkerd_pod_opt_out_beats_namespace_annotation(kube: Kube, run: Discover) -> None:
    objs = [
        ns("shop", annotations={"linkerd.io/inject": "enabled"}),
        deployment("api", "shop", {"app": "api"}, annotations={"linkerd.io/inject": "disabled"}),
        deployment("web", "shop", {"app": "web"}),
    ]
    found = run(c1=[*kube(LINKERD_CP), *kube(dump(*objs))])
    assert [w.controller.name for w in found.workloads] == ["web"]


def test_already_injected_template_is_meshed_without_labels(kube: Kube, run: Discover) -> None:
    dep = deployment("api", "shop", {"app": "api"}, containers=("api", "istio-proxy"))
    sts = deployment("db", "shop", {"app": "db"}, kind="StatefulSet", init_containers=("istio-proxy",))
    found = _one_workload(kube, run, dep, sts)
    assert sorted(w.name for w in found.workloads) == ["api-shop-c1-deployment", "db-shop-c1-statefulset"]


def test_proxy_ports_are_not_workload_ports(kube: Kube, run: Discover) -> None:
    dep = deployment("api", "shop", {"app": "api"}, containers=("api", "istio-proxy"))
    dep["spec"]["template"]["spec"]["containers"][0]["ports"] = [{"containerPort": 8080, "name": "http"}]
    dep["spec"]["template"]["spec"]["containers"][1]["ports"] = [{"containerPort": 15090, "name": "http-envoy-prom"}]
    (workload,) = _one_workload(kube, run, dep).workloads
    assert workload.ports == (ContainerPort(container_port=8080, name="http"),)


def test_http_probes_of_app_containers_are_read_with_named_ports_resolved(kube: Kube, run: Discover) -> None:
    dep = deployment("api", "shop", {"app": "api"}, containers=("api", "istio-proxy"))
    app, proxy = dep["spec"]["template"]["spec"]["containers"]
    app["ports"] = [{"containerPort": 8080, "name": "http"}, {"containerPort": 9090, "name": "admin"}]
    app["livenessProbe"] = {"httpGet": {"path": "/status/live", "port": "http"}}
    app["readinessProbe"] = {"httpGet": {"path": "/ready", "port": 9090}}
    app["startupProbe"] = {"tcpSocket": {"port": 8080}}  # not HTTP: nothing to authorize by path
    proxy["readinessProbe"] = {"httpGet": {"path": "/healthz/ready", "port": 15021}}  # the proxy's own
    (workload,) = _one_workload(kube, run, dep).workloads
    assert workload.probes == (HttpProbe(port=8080, path="/status/live"), HttpProbe(port=9090, path="/ready"))
    # No probes at all is known (an empty tuple), unlike a Workload discovery did not make (None).
    (bare,) = _one_workload(
        kube, run, deployment("db", "shop", {"app": "db"}, containers=("db", "istio-proxy"))
    ).workloads
    assert bare.probes == ()


def test_statefulset_daemonset_and_bare_pod_are_workloads_but_owned_pods_are_not(kube: Kube, run: Discover) -> None:
    pod_meta = {"name": "debug", "namespace": "shop", "labels": {"app": "debug"}}
    bare_pod = {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": {"containers": [{"name": "sh"}]}}
    owned_pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "api-5b8c7d9f6-x2x7q",
            "namespace": "shop",
            "labels": {"app": "api", "pod-template-hash": "5b8c7d9f6"},
            "ownerReferences": [{"kind": "ReplicaSet", "name": "api-5b8c7d9f6", "controller": True}],
        },
        "spec": {"containers": [{"name": "api"}, {"name": "istio-proxy"}]},
    }
    found = _one_workload(
        kube,
        run,
        ns("shop", {"istio-injection": "enabled"}),
        deployment("api", "shop", {"app": "api"}),
        deployment("db", "shop", {"app": "db"}, kind="StatefulSet"),
        deployment("agent", "shop", {"app": "agent"}, kind="DaemonSet"),
        bare_pod,
        owned_pod,
    )
    assert sorted(w.name for w in found.workloads) == [
        "agent-shop-c1-daemonset",
        "api-shop-c1-deployment",
        "db-shop-c1-statefulset",
        "debug-shop-c1-pod",
    ]
    assert _by_name(found)["debug-shop-c1-pod"].controller == ControllerRef(kind="Pod", name="debug")


def test_pods_speak_for_their_controller(kube: Kube, run: Discover) -> None:
    # No injection label is visible (e.g. a webhook the snapshot does not hold), but the running
    # Pods of the Deployment carry a proxy: the Deployment is meshed.
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "api-5b8c7d9f6-x2x7q",
            "namespace": "shop",
            "labels": {"app": "api", "pod-template-hash": "5b8c7d9f6"},
            "ownerReferences": [{"kind": "ReplicaSet", "name": "api-5b8c7d9f6", "controller": True}],
        },
        "spec": {"containers": [{"name": "api"}, {"name": "istio-proxy"}]},
    }
    found = _one_workload(kube, run, deployment("api", "shop", {"app": "api"}), pod)
    assert [w.name for w in found.workloads] == ["api-shop-c1-deployment"]


def test_two_revisions_in_one_cluster(kube: Kube, run: Discover) -> None:
    objs = [
        *istiod("stable"),
        *istiod("canary", mesh="trustDomain: canary.example\n"),
        ns("old", {"istio.io/rev": "stable"}),
        ns("new", {"istio.io/rev": "canary"}),
        deployment("a", "old", {"app": "a"}),
        deployment("b", "new", {"app": "b"}),
        deployment("c", "plain", {"app": "c", "istio.io/rev": "canary"}),
    ]
    found = run(c1=kube(dump(*objs)))
    got = {w.controller.name: (w.mesh, w.identity) for w in found.workloads}
    assert got == {
        "a": ("istiod-stable-istio-system-c1", "spiffe://cluster.local/ns/old/sa/default"),
        "b": ("istiod-canary-istio-system-c1", "spiffe://canary.example/ns/new/sa/default"),
        "c": ("istiod-canary-istio-system-c1", "spiffe://canary.example/ns/plain/sa/default"),
    }


def test_istio_beside_linkerd(kube: Kube, run: Discover) -> None:
    objs = [
        *kube(ISTIO_CP),
        *kube(LINKERD_CP),
        *kube(
            dump(
                ns("books", {"istio-injection": "enabled"}),
                ns("emoji", annotations={"linkerd.io/inject": "enabled"}),
                deployment("reviews", "books", {"app": "reviews"}, service_account="reviews"),
                deployment("web", "emoji", {"app": "web"}, service_account="web"),
                deployment("mixed", "books", {"app": "mixed"}, annotations={"linkerd.io/inject": "enabled"}),
            )
        ),
    ]
    found = run(c1=objs)
    assert [m.name for m in found.meshes] == [ISTIO_MESH, LINKERD_MESH]
    got = {w.controller.name: w.identity for w in found.workloads}
    assert got == {
        "reviews": "spiffe://cluster.local/ns/books/sa/reviews",
        "web": "web.emoji.serviceaccount.identity.linkerd.cluster.local",
    }
    # `mixed` is injected by both meshes' webhooks: reported and left out.
    assert codes(found) == ["MR0122"]
    assert "is injected by both Istio" in found.diagnostics[0].message


def test_injection_for_a_missing_revision_or_mesh_is_a_finding(kube: Kube, run: Discover) -> None:
    objs = [
        *istiod("stable"),
        deployment("a", "shop", {"app": "a", "istio.io/rev": "canary"}),
        deployment("b", "shop", {"app": "b"}, annotations={"linkerd.io/inject": "enabled"}),
    ]
    found = run(c1=kube(dump(*objs)))
    assert found.workloads == ()
    assert sorted(codes(found)) == ["MR0120", "MR0121"]
