"""Destinations: Services that select meshed workloads, with ports, subsets and local FQDN."""

from __future__ import annotations

from discovery_builders import ISTIO_CP, SAMPLES, Discover, Kube, codes, deployment, dump, istiod, ns, service

from meshrules.discovery.destinations import subsets
from meshrules.model.common import ObjectMeta
from meshrules.model.discovery import (
    ControllerRef,
    KubernetesClusterConfig,
    KubernetesClusterConfigSpec,
    ServicePort,
    Workload,
)

ISTIO_MESH = "istiod-istio-system-c1"


def _bookinfo(kube: Kube) -> list:  # type: ignore[type-arg]
    return [
        *kube(ISTIO_CP),
        *kube(dump(ns("bookinfo", {"istio-injection": "enabled"}))),
        *kube(SAMPLES / "bookinfo.yaml", namespace="bookinfo"),
    ]


def test_bookinfo_destinations(kube: Kube, run: Discover) -> None:
    found = run(c1=_bookinfo(kube))
    assert [d.name for d in found.destinations] == [
        "details-bookinfo-c1",
        "productpage-bookinfo-c1",
        "ratings-bookinfo-c1",
        "reviews-bookinfo-c1",
    ]
    reviews = found.destinations[-1]
    assert (reviews.cluster, reviews.namespace, reviews.service) == ("c1", "bookinfo", "reviews")
    assert reviews.labels == {"app": "reviews", "service": "reviews"}
    assert reviews.selector == {"app": "reviews"}
    # bookinfo.yaml writes no protocol and no targetPort: Kubernetes' defaults apply.
    assert reviews.ports == (ServicePort(port=9080, name="http", protocol="TCP", target_port=9080),)
    assert reviews.workloads == (
        "reviews-v1-bookinfo-c1-deployment",
        "reviews-v2-bookinfo-c1-deployment",
        "reviews-v3-bookinfo-c1-deployment",
    )
    assert reviews.subsets == {"version": ("v1", "v2", "v3")}
    assert reviews.local_fqdn == "reviews.bookinfo.svc.cluster.local"
    assert reviews.mesh == ISTIO_MESH
    details = found.destinations[0]
    assert details.workloads == ("details-v1-bookinfo-c1-deployment",)
    assert details.subsets == {}


def test_local_fqdn_uses_the_cluster_domain(kube: Kube, run: Discover) -> None:
    config = KubernetesClusterConfig(
        metadata=ObjectMeta(name="c1"), spec=KubernetesClusterConfigSpec(cluster_domain="east.corp", region="r1")
    )
    found = run(configs={"c1": config}, c1=_bookinfo(kube))
    assert found.destinations[0].local_fqdn == "details.bookinfo.svc.east.corp"
    assert (found.clusters[0].cluster_domain, found.clusters[0].region) == ("east.corp", "r1")


def test_cluster_config_naming_another_cluster_is_an_error(kube: Kube, run: Discover) -> None:
    config = KubernetesClusterConfig(metadata=ObjectMeta(name="c2"))
    found = run(configs={"c1": config}, c1=[])
    assert codes(found) == ["MR0140"]


def test_httpbin_target_port_and_helloworld_subsets(kube: Kube, run: Discover) -> None:
    objs = [
        *kube(ISTIO_CP),
        *kube(dump(ns("demo", {"istio-injection": "enabled"}))),
        *kube(SAMPLES / "httpbin.yaml", namespace="demo"),
        *kube(SAMPLES / "helloworld.yaml", namespace="demo"),
    ]
    by_name = {d.service: d for d in run(c1=objs).destinations}
    assert by_name["httpbin"].ports == (ServicePort(port=8000, name="http", target_port=8080),)
    assert by_name["httpbin"].workloads == ("httpbin-demo-c1-deployment",)
    assert by_name["helloworld"].subsets == {"version": ("v1", "v2")}
    assert by_name["helloworld"].local_fqdn == "helloworld.demo.svc.cluster.local"


def test_emojivoto_destinations_have_named_ports(kube: Kube, run: Discover) -> None:
    from discovery_builders import LINKERD_CP

    emojivoto = [o for o in kube(SAMPLES / "emojivoto.yml") if o.kind != "Namespace"]
    objs = [*kube(LINKERD_CP), *kube(dump(ns("emojivoto", annotations={"linkerd.io/inject": "enabled"}))), *emojivoto]
    by_name = {d.service: d for d in run(c1=objs).destinations}
    assert sorted(by_name) == ["emoji-svc", "voting-svc", "web-svc"]
    assert by_name["web-svc"].ports == (ServicePort(port=80, name="http", target_port=8080),)
    assert [p.name for p in by_name["emoji-svc"].ports] == ["grpc", "prom"]
    assert by_name["voting-svc"].mesh == "linkerd-destination-linkerd-c1"


def test_service_of_unmeshed_workloads_is_not_a_destination(kube: Kube, run: Discover) -> None:
    objs = [
        *istiod(),
        deployment("legacy", "shop", {"app": "legacy"}),
        service("legacy", "shop", {"app": "legacy"}),
        service("nothing", "shop", {"app": "nobody"}),
        service("external", "shop", None),
    ]
    assert run(c1=kube(dump(*objs))).destinations == ()


def test_discover_annotation_forces_a_destination_in(kube: Kube, run: Discover) -> None:
    forced = {"meshrules.io/discover": "true"}
    objs = [
        *istiod(),
        deployment("legacy", "shop", {"app": "legacy"}),
        service("legacy", "shop", {"app": "legacy"}, annotations=forced),
        service("external", "shop", None, annotations=forced),
    ]
    found = run(c1=kube(dump(*objs)))
    assert [(d.service, d.workloads, d.mesh) for d in found.destinations] == [
        ("external", (), ISTIO_MESH),  # the cluster's only mesh
        ("legacy", (), ISTIO_MESH),
    ]
    assert found.diagnostics == ()


def test_forced_destination_without_a_mesh_is_a_finding(kube: Kube, run: Discover) -> None:
    objs = [
        *istiod("a"),
        *istiod("b"),
        service("external", "shop", None, annotations={"meshrules.io/discover": "true"}),
    ]
    found = run(c1=kube(dump(*objs)))
    assert [(d.service, d.mesh) for d in found.destinations] == [("external", None)]
    assert codes(found) == ["MR0131"]


def test_destination_across_revisions_takes_the_majority(kube: Kube, run: Discover) -> None:
    objs = [
        *istiod("a"),
        *istiod("b"),
        deployment("api-1", "shop", {"app": "api", "istio.io/rev": "a", "track": "one"}),
        deployment("api-2", "shop", {"app": "api", "istio.io/rev": "b", "track": "two"}),
        deployment("api-3", "shop", {"app": "api", "istio.io/rev": "b", "track": "three"}),
        service("api", "shop", {"app": "api"}),
    ]
    found = run(c1=kube(dump(*objs)))
    (dest,) = found.destinations
    assert dest.mesh == "istiod-b-istio-system-c1"
    assert dest.subsets == {"istio.io/rev": ("a", "b"), "track": ("one", "three", "two")}
    assert codes(found) == ["MR0130"]


def _workload(name: str, labels: dict[str, str]) -> Workload:
    return Workload(
        name=name,
        cluster="c1",
        namespace="ns",
        controller=ControllerRef(kind="Deployment", name=name),
        pod_labels=labels,
        mesh="m",
        identity="id",
    )


def test_subsets_are_keys_whose_values_differ() -> None:
    workloads = [
        _workload("a", {"app": "x", "version": "v1", "tier": "gold", "pod-template-hash": "1"}),
        _workload("b", {"app": "x", "version": "v2", "tier": "gold", "pod-template-hash": "2"}),
        _workload("c", {"app": "x", "version": "v2", "tier": "gold", "canary": "yes"}),
    ]
    # `app` is selected on; `tier` is the same everywhere; `canary` is present on one workload
    # only, which already tells it apart; Kubernetes' own hashes are never subsets.
    assert subsets(workloads, {"app": "x"}) == {"canary": ("yes",), "version": ("v1", "v2")}
    assert subsets(workloads[:1], {"app": "x"}) == {}
