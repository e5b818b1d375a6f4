"""The synthetic topology generator: deterministic, exact counts, realistic and valid objects."""

from __future__ import annotations

import dataclasses
import json
import re
from collections import Counter
from typing import Any

import pytest
import yaml
from hypothesis import given

from meshrules.testing import (
    KubeObject,
    Topology,
    TopologyParams,
    generate_topology,
    mesh_name,
    topology_params,
)

from .spec_rules import policy_violations

SMALL = TopologyParams(clusters=3, namespaces_per_cluster=3, services=50, traffic_policies=10, access_policies=10,
                       linkerd_share=1 / 3, seed=1)  # fmt: skip
# M's shape (benchmark size M) at full size: generating it takes a few hundredths of a second.
MEDIUM = TopologyParams(clusters=10, namespaces_per_cluster=10, services=1_000, workloads_per_service=2,
                        traffic_policies=100, access_policies=100, linkerd_share=0.2, seed=1)  # fmt: skip
SYSTEM_NAMESPACES = {"default", "kube-system", "istio-system", "linkerd", "linkerd-multicluster"}
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


@pytest.fixture(scope="module", params=[SMALL, MEDIUM], ids=["S", "M"])
def topology(request: pytest.FixtureRequest) -> Topology:
    params: TopologyParams = request.param
    return generate_topology(params)


def _canonical(topology: Topology) -> str:
    return json.dumps({"clusters": topology.clusters, "policies": topology.policies}, sort_keys=True)


def _app_objects(topology: Topology, cluster: str, kind: str) -> list[KubeObject]:
    def namespace(obj: KubeObject) -> str:
        return str(obj["metadata"]["name"] if obj["kind"] == "Namespace" else obj["metadata"]["namespace"])

    return [o for o in topology.clusters[cluster] if o["kind"] == kind and namespace(o) not in SYSTEM_NAMESPACES]


def _all_app_objects(topology: Topology, kind: str) -> list[KubeObject]:
    return [o for c in topology.clusters for o in _app_objects(topology, c, kind)]


# -- determinism ------------------------------------------------------------------------------------------


def test_same_seed_gives_identical_topology() -> None:
    assert _canonical(generate_topology(SMALL)) == _canonical(generate_topology(SMALL))


def test_different_seeds_give_different_topologies() -> None:
    other = dataclasses.replace(SMALL, seed=2)
    assert _canonical(generate_topology(SMALL)) != _canonical(generate_topology(other))


def test_output_is_sorted(topology: Topology) -> None:
    assert list(topology.clusters) == [f"cluster-{i + 1}" for i in range(topology.params.clusters)]
    refs = [(s.cluster, s.namespace, s.name) for s in topology.services]
    assert refs == sorted(refs)
    for objects in (*topology.clusters.values(), topology.policies):
        keys = [(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]) for o in objects]
        by_kind: dict[str, list[tuple[str, str]]] = {}
        for kind, ns, name in keys:
            by_kind.setdefault(kind, []).append((ns, name))
        assert all(items == sorted(items) for items in by_kind.values())


# -- counts -----------------------------------------------------------------------------------------------


def test_counts_match_params(topology: Topology) -> None:
    p = topology.params
    assert len(topology.clusters) == p.clusters
    assert len(_all_app_objects(topology, "Service")) == len(topology.services) == p.services
    assert len(_all_app_objects(topology, "Deployment")) == len(topology.workloads) == p.workloads
    assert len(_all_app_objects(topology, "ServiceAccount")) == p.services
    assert len(_all_app_objects(topology, "Namespace")) == p.clusters * p.namespaces_per_cluster
    kinds = Counter(policy["kind"] for policy in topology.policies)
    assert kinds["TrafficPolicy"] == p.traffic_policies
    assert kinds["AccessPolicy"] == p.access_policies
    assert list(topology.meshes.values()).count("linkerd") == p.linkerd_clusters


def test_benchmark_shapes_have_the_promised_sizes() -> None:
    assert (MEDIUM.clusters, MEDIUM.services, MEDIUM.workloads) == (10, 1_000, 2_000)
    assert MEDIUM.traffic_policies + MEDIUM.access_policies == 200


def test_every_version_cycles_through_subsets() -> None:
    topology = generate_topology(TopologyParams(clusters=1, services=4, workloads_per_service=5, subsets=2))
    for svc in topology.services:
        assert svc.versions == ("v1", "v2")
    names = [w.name for w in topology.workloads if w.service == topology.services[0].name]
    assert len(names) == len(set(names)) == 5


def test_replicas_run_in_other_clusters_of_the_same_namespace() -> None:
    topology = generate_topology(TopologyParams(clusters=3, services=12, replicated_share=0.5, seed=3))
    by_app = Counter((s.namespace, s.name) for s in topology.services)
    assert max(by_app.values()) > 1
    assert len({(s.cluster, s.namespace, s.name) for s in topology.services}) == len(topology.services)


# -- Kubernetes objects -----------------------------------------------------------------------------------


def test_every_object_has_identity_fields(topology: Topology) -> None:
    for cluster, objects in topology.clusters.items():
        seen: set[tuple[str, str, str]] = set()
        for obj in objects:
            meta = obj["metadata"]
            assert obj["apiVersion"] and obj["kind"] and _DNS_LABEL.match(meta["name"]), obj
            if obj["kind"] == "Namespace":
                assert "namespace" not in meta
            else:
                assert _DNS_LABEL.match(meta["namespace"]), obj
            key = (obj["kind"], meta.get("namespace", ""), meta["name"])
            assert key not in seen, f"duplicate {key} in {cluster}"
            seen.add(key)


def test_objects_live_in_namespaces_that_exist(topology: Topology) -> None:
    for objects in topology.clusters.values():
        namespaces = {o["metadata"]["name"] for o in objects if o["kind"] == "Namespace"}
        assert {o["metadata"]["namespace"] for o in objects if o["kind"] != "Namespace"} <= namespaces


def test_service_selectors_match_their_deployments(topology: Topology) -> None:
    for cluster in topology.clusters:
        deployments = _app_objects(topology, cluster, "Deployment")
        selected: set[tuple[str, str]] = set()
        for svc in _app_objects(topology, cluster, "Service"):
            selector = svc["spec"]["selector"].items()
            ns = svc["metadata"]["namespace"]
            matches = [
                d
                for d in deployments
                if d["metadata"]["namespace"] == ns and selector <= d["spec"]["template"]["metadata"]["labels"].items()
            ]
            assert matches, f"{cluster}/{ns}/{svc['metadata']['name']} selects no Deployment"
            target_ports = {p["targetPort"] for p in svc["spec"]["ports"]}
            for d in matches:
                container_ports = {p["containerPort"] for p in d["spec"]["template"]["spec"]["containers"][0]["ports"]}
                assert target_ports <= container_ports
                selected.add((ns, d["metadata"]["name"]))
            assert all(p["name"] for p in svc["spec"]["ports"]), "Istio needs named ports for protocol selection"
        assert selected == {(d["metadata"]["namespace"], d["metadata"]["name"]) for d in deployments}


def test_deployments_select_their_own_pods_and_run_as_their_service_account(topology: Topology) -> None:
    for cluster in topology.clusters:
        accounts = {
            (a["metadata"]["namespace"], a["metadata"]["name"])
            for a in _app_objects(topology, cluster, "ServiceAccount")
        }
        for d in _app_objects(topology, cluster, "Deployment"):
            template = d["spec"]["template"]
            assert d["spec"]["selector"]["matchLabels"].items() <= template["metadata"]["labels"].items()
            assert {"app", "version"} <= set(template["metadata"]["labels"])
            assert (d["metadata"]["namespace"], template["spec"]["serviceAccountName"]) in accounts


def test_application_namespaces_enable_injection_for_their_mesh(topology: Topology) -> None:
    for cluster, mesh in topology.meshes.items():
        for ns in _app_objects(topology, cluster, "Namespace"):
            if mesh == "istio":
                assert ns["metadata"]["labels"]["istio-injection"] == "enabled"
            else:
                assert ns["metadata"]["annotations"]["linkerd.io/inject"] == "enabled"


def _one(objects: tuple[KubeObject, ...], kind: str, namespace: str | None, name: str) -> KubeObject:
    found = [o for o in objects if o["kind"] == kind and o["metadata"].get("namespace") == namespace
             and o["metadata"]["name"] == name]  # fmt: skip
    assert len(found) == 1, (kind, namespace, name)
    return found[0]


def test_control_planes_are_what_discovery_looks_for(topology: Topology) -> None:
    for cluster, mesh in topology.meshes.items():
        objects = topology.clusters[cluster]
        if mesh == "istio":
            istiod = _one(objects, "Deployment", "istio-system", "istiod")
            assert "pilot" in istiod["spec"]["template"]["spec"]["containers"][0]["image"]
            mesh_config = yaml.safe_load(_one(objects, "ConfigMap", "istio-system", "istio")["data"]["mesh"])
            assert mesh_config["trustDomain"] == "cluster.local"
            assert mesh_config["defaultConfig"]["proxyMetadata"]["ISTIO_META_DNS_CAPTURE"] == "true"
        else:
            namespace = _one(objects, "Namespace", None, "linkerd")
            assert namespace["metadata"]["labels"]["linkerd.io/is-control-plane"] == "true"
            _one(objects, "Deployment", "linkerd", "linkerd-destination")
            values = yaml.safe_load(_one(objects, "ConfigMap", "linkerd", "linkerd-config")["data"]["values"])
            assert values["identityTrustDomain"] == "cluster.local"
            assert values["identity"]["issuer"]["scheme"] == "linkerd.io/tls"


def _gateway_address(service: KubeObject) -> str | None:
    ingress = service.get("status", {}).get("loadBalancer", {}).get("ingress", [])
    return (ingress[0].get("ip") or ingress[0].get("hostname")) if ingress else None


def test_every_cluster_has_an_addressed_gateway(topology: Topology) -> None:
    for cluster, mesh in topology.meshes.items():
        objects = topology.clusters[cluster]
        if mesh == "istio":
            service = _one(objects, "Service", "istio-system", "istio-eastwestgateway")
            assert {"name": "tls", "port": 15443, "protocol": "TCP", "targetPort": 15443} in service["spec"]["ports"]
            gateway = _one(objects, "Deployment", "istio-system", "istio-eastwestgateway")
            assert gateway["spec"]["template"]["metadata"]["labels"]["istio"] == "eastwestgateway"
        else:
            service = _one(objects, "Service", "linkerd-multicluster", "linkerd-gateway")
            _one(objects, "Deployment", "linkerd-multicluster", "linkerd-gateway")
        assert _gateway_address(service) == topology.gateway_addresses[cluster]
    addresses = list(topology.gateway_addresses.values())
    assert len(addresses) == len(set(addresses)) == topology.params.clusters


def test_unaddressed_gateways_have_no_address() -> None:
    topology = generate_topology(TopologyParams(clusters=3, unaddressed_gateways=2))
    services = [
        _one(topology.clusters[c], "Service", "istio-system", "istio-eastwestgateway") for c in topology.clusters
    ]
    assert [_gateway_address(s) for s in services] == [None, None, topology.gateway_addresses["cluster-3"]]


def test_without_gateways_there_are_none() -> None:
    topology = generate_topology(TopologyParams(clusters=2, linkerd_share=0.5, eastwest_gateways=False))
    names = {o["metadata"]["name"] for objs in topology.clusters.values() for o in objs}
    assert not names & {"istio-eastwestgateway", "linkerd-gateway"}
    assert topology.gateway_addresses == {}


def test_index_agrees_with_objects(topology: Topology) -> None:
    services = {(c, s["metadata"]["namespace"], s["metadata"]["name"]) for c in topology.clusters
                for s in _app_objects(topology, c, "Service")}  # fmt: skip
    assert services == {(s.cluster, s.namespace, s.name) for s in topology.services}
    pods: dict[tuple[str, str, str], Any] = {
        (c, d["metadata"]["namespace"], d["metadata"]["name"]): d["spec"]["template"]["metadata"]["labels"]
        for c in topology.clusters
        for d in _app_objects(topology, c, "Deployment")
    }
    assert pods == {(w.cluster, w.namespace, w.name): w.labels for w in topology.workloads}
    for svc in topology.services:
        assert svc.mesh == topology.meshes[svc.cluster]
        own = [
            w
            for w in topology.workloads
            if (w.cluster, w.namespace, w.service) == (svc.cluster, svc.namespace, svc.name)
        ]
        assert svc.versions == tuple(sorted({w.labels["version"] for w in own}, key=lambda v: int(v[1:])))


# -- policies ---------------------------------------------------------------------------------------------


def test_generated_policies_satisfy_the_spec_rules(topology: Topology) -> None:
    for policy in topology.policies:
        assert policy_violations(policy, topology) == [], policy
        assert "creationTimestamp" in policy["metadata"]


def test_policy_names_are_unique_per_namespace(topology: Topology) -> None:
    keys = [(p["kind"], p["metadata"]["namespace"], p["metadata"]["name"]) for p in topology.policies]
    assert len(keys) == len(set(keys))


def test_virtual_meshes_group_meshes_of_one_type_with_shared_trust(topology: Topology) -> None:
    meshes = [p for p in topology.policies if p["kind"] == "VirtualMesh"]
    istio = next(m for m in meshes if m["metadata"]["name"] == "global")
    assert istio["metadata"]["namespace"] == "meshrules-system"
    assert [m["name"] for m in istio["spec"]["meshes"]] == [
        mesh_name(c, "istio") for c, mesh in topology.meshes.items() if mesh == "istio"
    ]
    for vm in meshes:
        assert "shared" in vm["spec"]["trust"]


def test_policies_use_the_spec_features_at_medium_size() -> None:
    topology = generate_topology(MEDIUM)
    text = json.dumps(topology.policies)
    for feature in ("trafficShift", "subset", "requestTimeout", "retries", "faultInjection", "outlierDetection",
                    "mtls", "corsPolicy", "mirror", "headerManipulation", "httpRequestMatchers", "serviceAccounts",
                    "allowedPaths", "allowedMethods", "allowedPorts", '"labels"', '"services"'):  # fmt: skip
        assert feature in text, feature
    clusters_per_shift = [
        {d["service"]["cluster"] for d in p["spec"]["policy"]["trafficShift"]["destinations"]}
        for p in topology.policies
        if p["kind"] == "TrafficPolicy" and "trafficShift" in p["spec"]["policy"]
    ]
    assert any(len(clusters) > 1 for clusters in clusters_per_shift), "no cross-cluster traffic shift"


@given(topology_params())
def test_any_params_give_exact_counts_and_valid_policies(params: TopologyParams) -> None:
    topology = generate_topology(params)
    assert len(topology.services) == params.services
    assert len(topology.workloads) == params.workloads
    assert len(topology.policies) >= params.traffic_policies + params.access_policies
    for policy in topology.policies:
        assert policy_violations(policy, topology) == []


@pytest.mark.parametrize(
    "bad",
    [
        {"clusters": 0},
        {"namespaces_per_cluster": 0},
        {"services": -1},
        {"subsets": 0},
        {"linkerd_share": 1.5},
        {"services": 0, "traffic_policies": 1},
    ],
)
def test_params_reject_nonsense(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        TopologyParams(**bad)


def test_repr_rebuilds_the_topology() -> None:
    # Hypothesis prints drawn topologies with this repr: it must be short and reproduce the draw.
    topology = generate_topology(SMALL)
    namespace = {"generate_topology": generate_topology, "TopologyParams": TopologyParams}
    assert len(repr(topology)) < 400
    assert _canonical(eval(repr(topology), namespace)) == _canonical(topology)
