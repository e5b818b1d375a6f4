"""The bundled scenario (`simulator/scenarios/bookinfo-multicluster`) discovers as designed."""

from __future__ import annotations

from discovery_builders import SCENARIO, Discover, Kube

from meshrules.discovery import Discovery
from meshrules.model.discovery import GatewayKind, KubernetesClusterConfig, parse_cluster_config


def _load(kube: Kube, run: Discover) -> Discovery:
    clusters = {}
    configs: dict[str, KubernetesClusterConfig] = {}
    for cdir in sorted((SCENARIO / "clusters").iterdir()):
        objects = []
        for file in sorted(cdir.glob("*.yaml")):
            for obj in kube(file, cdir.name):
                if obj.kind == "KubernetesCluster":
                    configs[cdir.name] = parse_cluster_config(obj.body)
                else:
                    objects.append(obj)
        clusters[cdir.name] = objects
    return run(configs=configs, **clusters)


def test_bundled_scenario(kube: Kube, run: Discover) -> None:
    found = _load(kube, run)
    assert found.diagnostics == ()
    assert [(c.name, c.region) for c in found.clusters] == [
        ("cluster-1", "us-east1"),
        ("cluster-2", "us-west1"),
        ("cluster-3", "europe-west1"),
    ]
    meshes = {m.name: m for m in found.meshes}
    assert sorted(meshes) == [
        "istiod-istio-system-cluster-1",
        "istiod-istio-system-cluster-2",
        "linkerd-destination-linkerd-cluster-3",
    ]
    for i in (1, 2):
        mesh = meshes[f"istiod-istio-system-cluster-{i}"]
        assert (mesh.type.value, mesh.version, mesh.revision, mesh.trust_domain) == (
            "istio",
            "1.27.0",
            "default",
            "cluster.local",
        )
        assert mesh.dns_capture is True
        assert mesh.root_namespace == "istio-system"
        (gateway,) = mesh.gateways
        assert (gateway.kind, gateway.service, gateway.address, gateway.port) == (
            GatewayKind.EASTWEST,
            "istio-eastwestgateway",
            f"203.0.113.{i}",
            15443,
        )
    linkerd = meshes["linkerd-destination-linkerd-cluster-3"]
    assert (linkerd.version, linkerd.trust_domain, linkerd.issuer_scheme) == (
        "edge-26.8.3",
        "cluster.local",
        "linkerd.io/tls",
    )
    assert len(linkerd.trust_roots) == 1
    assert [(g.kind, g.address, g.port) for g in linkerd.gateways] == [
        (GatewayKind.LINKERD_GATEWAY, "203.0.113.3", 4143)
    ]

    assert sorted((w.cluster, w.controller.name) for w in found.workloads) == [
        ("cluster-1", "details-v1"),
        ("cluster-1", "productpage-v1"),
        ("cluster-1", "reviews-v1"),
        ("cluster-2", "ratings-v1"),
        ("cluster-2", "reviews-v2"),
        ("cluster-2", "reviews-v3"),
        ("cluster-3", "emoji"),
        ("cluster-3", "vote-bot"),
        ("cluster-3", "voting"),
        ("cluster-3", "web"),
    ]
    destinations = {d.name: d for d in found.destinations}
    assert sorted(destinations) == [
        "details-bookinfo-cluster-1",
        "emoji-svc-emojivoto-cluster-3",
        "productpage-bookinfo-cluster-1",
        "ratings-bookinfo-cluster-2",
        "reviews-bookinfo-cluster-1",
        "reviews-bookinfo-cluster-2",
        "voting-svc-emojivoto-cluster-3",
        "web-svc-emojivoto-cluster-3",
    ]
    assert destinations["reviews-bookinfo-cluster-2"].subsets == {"version": ("v2", "v3")}
    assert destinations["reviews-bookinfo-cluster-1"].workloads == ("reviews-v1-bookinfo-cluster-1-deployment",)
