"""The discovery kinds: names on the wire, the Kubernetes object form, strictness, `cluster.yaml`."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from meshrules.model.discovery import (
    CLUSTER_LABEL,
    DISCOVERY_API_VERSION,
    DISCOVERY_KINDS,
    ContainerPort,
    ControllerRef,
    Destination,
    Gateway,
    GatewayKind,
    KubernetesCluster,
    Mesh,
    MeshType,
    ServicePort,
    Workload,
    parse_cluster_config,
)


def _mesh() -> Mesh:
    return Mesh(
        name="istiod-istio-system-cluster-1",
        type=MeshType.ISTIO,
        cluster="cluster-1",
        namespace="istio-system",
        control_plane="istiod",
        version="1.27.0",
        revision="default",
        trust_domain="cluster.local",
        accepted_trust_domains=("cluster.local",),
        dns_capture=True,
        gateways=(
            Gateway(
                kind=GatewayKind.EASTWEST,
                service="istio-eastwestgateway",
                namespace="istio-system",
                address="203.0.113.1",
                port=15443,
                workload_labels={"istio": "eastwestgateway"},
            ),
        ),
    )


def _destination() -> Destination:
    return Destination(
        name="reviews-bookinfo-cluster-2",
        cluster="cluster-2",
        namespace="bookinfo",
        service="reviews",
        ports=(
            ServicePort(port=9080, name="http", target_port=9080),
            ServicePort(port=9443, name="https", app_protocol="https", target_port="https"),
        ),
        selector={"app": "reviews"},
        workloads=("reviews-v2-bookinfo-cluster-2-deployment", "reviews-v3-bookinfo-cluster-2-deployment"),
        subsets={"version": ("v2", "v3")},
        local_fqdn="reviews.bookinfo.svc.cluster.local",
        mesh="istiod-istio-system-cluster-2",
    )


def test_mesh_object_has_discovery_metadata_and_camel_case_spec() -> None:
    obj = _mesh().to_object()
    assert obj["apiVersion"] == DISCOVERY_API_VERSION == "discovery.meshrules.io/v1alpha1"
    assert obj["kind"] == "Mesh"
    assert obj["metadata"] == {
        "name": "istiod-istio-system-cluster-1",
        "namespace": "meshrules-system",
        "labels": {CLUSTER_LABEL: "cluster-1"},
    }
    spec = obj["spec"]
    assert "name" not in spec
    assert spec["type"] == "istio"
    assert spec["trustDomain"] == "cluster.local"
    assert spec["acceptedTrustDomains"] == ["cluster.local"]
    assert spec["dnsCapture"] is True
    assert spec["gateways"] == [
        {
            "kind": "eastwest",
            "service": "istio-eastwestgateway",
            "namespace": "istio-system",
            "address": "203.0.113.1",
            "port": 15443,
            "workloadLabels": {"istio": "eastwestgateway"},
        }
    ]


def test_destination_object_spells_ports_and_fqdn_as_the_spec() -> None:
    spec = _destination().to_object()["spec"]
    assert spec["ports"] == [
        {"port": 9080, "name": "http", "protocol": "TCP", "targetPort": 9080},
        {"port": 9443, "name": "https", "protocol": "TCP", "appProtocol": "https", "targetPort": "https"},
    ]
    assert spec["localFqdn"] == "reviews.bookinfo.svc.cluster.local"
    assert spec["subsets"] == {"version": ["v2", "v3"]}


def test_workload_object_has_controller_and_container_ports() -> None:
    workload = Workload(
        name="reviews-v1-bookinfo-cluster-1-deployment",
        cluster="cluster-1",
        namespace="bookinfo",
        controller=ControllerRef(kind="Deployment", name="reviews-v1"),
        pod_labels={"app": "reviews", "version": "v1"},
        service_account="bookinfo-reviews",
        mesh="istiod-istio-system-cluster-1",
        identity="spiffe://cluster.local/ns/bookinfo/sa/bookinfo-reviews",
        ports=(ContainerPort(container_port=9080),),
    )
    spec = workload.to_object()["spec"]
    assert spec["controller"] == {"kind": "Deployment", "name": "reviews-v1"}
    assert spec["podLabels"] == {"app": "reviews", "version": "v1"}
    assert spec["serviceAccount"] == "bookinfo-reviews"
    assert spec["ports"] == [{"containerPort": 9080, "protocol": "TCP"}]


def test_kubernetes_cluster_is_labelled_with_its_own_name() -> None:
    obj = KubernetesCluster(name="cluster-3", region="europe-west1").to_object()
    assert obj["metadata"]["labels"] == {CLUSTER_LABEL: "cluster-3"}
    assert obj["spec"] == {"clusterDomain": "cluster.local", "region": "europe-west1"}


@pytest.mark.parametrize("model", [_mesh(), _destination(), KubernetesCluster(name="c1", secret_name="c1")])
def test_objects_round_trip(model: Mesh | Destination | KubernetesCluster) -> None:
    assert type(model).from_object(model.to_object()) == model


def test_models_are_frozen_and_strict() -> None:
    mesh = _mesh()
    with pytest.raises(ValidationError):
        mesh.version = "1.0"  # type: ignore[misc]
    wire = mesh.to_object()
    wire["spec"]["surprise"] = 1
    with pytest.raises(ValidationError, match="surprise"):
        Mesh.from_object(wire)
    with pytest.raises(ValueError, match="Mesh"):
        Mesh.from_object(_destination().to_object())


@pytest.mark.parametrize("kind", DISCOVERY_KINDS)
def test_spec_schema_has_no_name(kind: type[Mesh]) -> None:
    schema = kind.spec_json_schema()
    assert "name" not in schema["properties"]
    assert "name" not in schema.get("required", [])


def test_cluster_config_parses_with_defaults() -> None:
    config = parse_cluster_config(
        {
            "apiVersion": "discovery.meshrules.io/v1alpha1",
            "kind": "KubernetesCluster",
            "metadata": {"name": "cluster-1"},
            "spec": {"region": "us-east1"},
        }
    )
    assert config.metadata.name == "cluster-1"
    assert config.spec.cluster_domain == "cluster.local"
    assert config.spec.region == "us-east1"


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"spec": {"clusterDomain": "cluster.local", "zone": "a"}}, "spec.zone"),
        ({"spec": {"clusterDomain": "Not A Domain"}}, "spec.clusterDomain"),
        ({"spec": {"secretName": "only-live"}}, "spec.secretName"),
        ({"kind": "Mesh"}, "kind"),
        ({"apiVersion": "discovery.meshrules.io/v1"}, "apiVersion"),
        ({"metadata": {}}, "metadata.name"),
    ],
)
def test_cluster_config_is_strict(body: dict[str, object], where: str) -> None:
    doc: dict[str, object] = {
        "apiVersion": "discovery.meshrules.io/v1alpha1",
        "kind": "KubernetesCluster",
        "metadata": {"name": "cluster-1"},
        **body,
    }
    with pytest.raises(ValidationError) as err:
        parse_cluster_config(doc)
    locations = {".".join(str(p) for p in e["loc"]) for e in err.value.errors()}
    assert where in locations
