"""Synthetic multi-cluster mesh topologies, deterministic for a seed.

This is the pure core of the test kit ``meshrules.testing``: it builds the Kubernetes objects of a
scenario (spec §1.1, §2) and the meshrules policies over them (spec §3) as plain dicts, in the shapes
``kubectl get -o yaml`` and the spec's examples use. It never touches files: ``benchmarks/generate.py``
writes a topology as a scenario directory, and ``meshrules.testing.strategies`` draws small topologies
for property tests. Nothing here imports the rest of meshrules, so any layer's tests may use it.

The objects are modelled on the real manifests in ``shared/fixtures`` (the rendered istiod chart,
Linkerd's control plane, Istio's bookinfo sample): what discovery reads is there, the rest is left out.
"""

from __future__ import annotations

import copy
import ipaddress
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

__all__ = [
    "MANAGEMENT_NAMESPACE",
    "GeneratedService",
    "GeneratedWorkload",
    "KubeObject",
    "Topology",
    "TopologyParams",
    "generate_topology",
    "live_extras",
    "mesh_name",
]

KubeObject = dict[str, Any]
"""A Kubernetes object or meshrules policy as plain data (what a YAML loader returns)."""

MeshType = Literal["istio", "linkerd"]

MANAGEMENT_NAMESPACE = "meshrules-system"
POLICY_API_VERSION = "networking.meshrules.io/v1alpha1"

# Versions inside the spec's targets (Istio ≥ 1.22, Linkerd ≥ 2.14 / edge); discovery reports the tag.
ISTIO_TAG = "1.24.2"
LINKERD_TAG = "edge-24.11.8"
ISTIO_SYSTEM = "istio-system"
LINKERD_NS = "linkerd"
LINKERD_MULTICLUSTER_NS = "linkerd-multicluster"
TRUST_DOMAIN = "cluster.local"

# Gateway load-balancer addresses and ClusterIPs are counted up from these bases, so they are stable
# and unique for any size we generate (the /16 below leaves room for 65k gateways).
_GATEWAY_BASE = ipaddress.IPv4Address("172.18.200.1")
_CLUSTER_IP_BASE = ipaddress.IPv4Address("10.96.16.1")
# Every policy is created within this window after the epoch; a second per draw keeps ties rare but
# possible, and acceptance order (spec §3) breaks them by namespace/name.
_EPOCH = datetime(2026, 1, 10, 9, 0, 0, tzinfo=UTC)
_POLICY_WINDOW_SECONDS = 30 * 24 * 3600

_NAMESPACE_WORDS = (
    "shop", "payments", "catalog", "identity", "search", "shipping", "ads", "analytics",
    "messaging", "media", "billing", "support", "risk", "platform", "growth", "inventory",
)  # fmt: skip
_SERVICE_WORDS = (
    "frontend", "cart", "checkout", "payment", "currency", "shipping", "email", "recommendation",
    "ad", "catalog", "reviews", "ratings", "details", "inventory", "orders", "users", "auth",
    "search", "notifications", "pricing", "ledger", "profile", "session", "quotes",
)  # fmt: skip
_TIERS = ("frontend", "backend", "backend", "data")  # backends are the common case
_HTTP_PORTS = (8080, 9080, 80)
_GRPC_PORT = 9090
_GRPC_SHARE = 0.25  # about a quarter of real services also serve gRPC on a second port

_KIND_ORDER = {
    "Namespace": 0,
    "ServiceAccount": 1,
    "ConfigMap": 2,
    "Service": 3,
    "Deployment": 4,
    "VirtualMesh": 0,
    "TrafficPolicy": 1,
    "AccessPolicy": 2,
}


@dataclass(frozen=True, slots=True)
class TopologyParams:
    """The shape of a synthetic topology; every count is exact in the output.

    ``services`` counts Service objects over all clusters. A share of them (``replicated_share``) are
    further instances of an app that already runs in another cluster (same namespace and name, as in
    a multi-cluster bookinfo), which is what cross-cluster traffic shifts and failover need. Each
    Service has ``workloads_per_service`` Deployments whose ``version`` labels cycle through
    ``subsets`` versions (``v1``, ``v2``, ...). The last ``round(linkerd_share * clusters)`` clusters
    run Linkerd, the others Istio.
    """

    clusters: int = 3
    namespaces_per_cluster: int = 2
    services: int = 6
    workloads_per_service: int = 2
    subsets: int = 2
    traffic_policies: int = 4
    access_policies: int = 4
    linkerd_share: float = 0.0
    replicated_share: float = 0.1
    eastwest_gateways: bool = True
    unaddressed_gateways: int = 0
    enforcement: Literal["DISABLED", "ENFORCED"] = "ENFORCED"
    seed: int = 0

    def __post_init__(self) -> None:
        problems = []
        if self.clusters < 1:
            problems.append("clusters must be at least 1")
        if self.namespaces_per_cluster < 1:
            problems.append("namespaces_per_cluster must be at least 1")
        if self.services < 0 or self.traffic_policies < 0 or self.access_policies < 0:
            problems.append("counts must not be negative")
        if self.workloads_per_service < 1 or self.subsets < 1:
            problems.append("workloads_per_service and subsets must be at least 1")
        if not 0.0 <= self.linkerd_share <= 1.0 or not 0.0 <= self.replicated_share <= 1.0:
            problems.append("shares must be within [0, 1]")
        if self.unaddressed_gateways < 0:
            problems.append("unaddressed_gateways must not be negative")
        if (self.traffic_policies or self.access_policies) and not self.services:
            problems.append("policies need at least one service to select")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def linkerd_clusters(self) -> int:
        """How many clusters run Linkerd (half rounds up, so 0.5 of 3 clusters is 2)."""
        return math.floor(self.linkerd_share * self.clusters + 0.5)

    @property
    def workloads(self) -> int:
        """The number of application Deployments."""
        return self.services * self.workloads_per_service


@dataclass(frozen=True, slots=True)
class GeneratedService:
    """A Service of the topology, with what policies and requests need to know about it."""

    cluster: str
    namespace: str
    name: str
    mesh: MeshType
    labels: Mapping[str, str]
    ports: tuple[tuple[str, int], ...]  # (port name, port), in Service order
    versions: tuple[str, ...]  # sorted `version` labels of its workloads
    service_account: str

    @property
    def ref(self) -> str:
        """``cluster/namespace/name``, as ``why --to`` and ReachabilityTests name a destination."""
        return f"{self.cluster}/{self.namespace}/{self.name}"

    def cluster_object_ref(self) -> dict[str, str]:
        """The spec's ClusterObjectRef for this Service."""
        return {"name": self.name, "namespace": self.namespace, "cluster": self.cluster}


@dataclass(frozen=True, slots=True)
class GeneratedWorkload:
    """An application Deployment of the topology."""

    cluster: str
    namespace: str
    name: str
    service: str
    mesh: MeshType
    labels: Mapping[str, str]  # pod template labels
    service_account: str

    @property
    def ref(self) -> str:
        """``cluster/namespace/name``, as ``why --from`` names a workload."""
        return f"{self.cluster}/{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class Topology:
    """A generated scenario: Kubernetes objects per cluster, policies, and an index of both.

    The dicts are fresh data owned by the caller; treat them as read-only when the topology is shared
    (Hypothesis may hand the same example to several assertions).
    """

    params: TopologyParams
    clusters: Mapping[str, tuple[KubeObject, ...]]  # cluster name -> objects, in natural order
    policies: tuple[KubeObject, ...]
    meshes: Mapping[str, MeshType]  # cluster name -> mesh type
    namespaces: tuple[str, ...]  # application namespaces (the same in every cluster)
    services: tuple[GeneratedService, ...]
    workloads: tuple[GeneratedWorkload, ...]
    gateway_addresses: Mapping[str, str] = field(default_factory=dict)  # cluster -> address

    def __repr__(self) -> str:
        # The params (seed included) rebuild the whole topology, so a failing Hypothesis example
        # prints as one line a reader can paste, not as thousands of objects.
        return f"generate_topology({self.params!r})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """The same one line for Hypothesis and IPython, whose pretty printers walk dataclass fields."""
        printer.text(repr(self))

    def object_count(self) -> int:
        """Kubernetes objects over all clusters, policies not included."""
        return sum(len(objects) for objects in self.clusters.values())

    def kind_counts(self) -> dict[str, int]:
        """How many objects of each kind, Kubernetes objects and policies together, sorted by kind."""
        counts: dict[str, int] = {}
        for objects in (*self.clusters.values(), self.policies):
            for obj in objects:
                counts[obj["kind"]] = counts.get(obj["kind"], 0) + 1
        return dict(sorted(counts.items()))


def generate_topology(params: TopologyParams) -> Topology:
    """Build the topology ``params`` describes; the same params (seed included) give equal output."""
    return _Generator(params).run()


def live_extras(
    cluster: str, deployments: list[KubeObject], mesh: MeshType, *, region: str | None = None
) -> list[KubeObject]:
    """What a live cluster holds beyond a snapshot, for ``deployments`` of ``mesh``.

    A running Pod per Deployment (owned by its ReplicaSet, with the proxy the mesh injected), one
    bare Pod `<first deployment>-debug` (no controller: a workload of its own, selected like the
    Deployment's pods) and a Node (labelled with ``region`` when given). Controllers and tests use
    them to check that Pod and Node churn leaves translations alone.
    """
    proxy = f"{mesh}-proxy"
    out: list[KubeObject] = []
    for i, deployment in enumerate(deployments):
        template, meta = deployment["spec"]["template"], deployment["metadata"]
        labels = {**template["metadata"]["labels"], "pod-template-hash": "5f7b9c"}
        if mesh == "linkerd":
            labels["linkerd.io/control-plane-ns"] = "linkerd"
        owner = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": f"{meta['name']}-5f7b9c", "controller": True}
        spec = copy.deepcopy(template["spec"])
        spec["containers"].append({"name": proxy, "image": f"registry.example.com/{proxy}:1.0"})
        out.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": f"{meta['name']}-5f7b9c-a{i}",
                    "namespace": meta["namespace"],
                    "labels": labels,
                    "ownerReferences": [owner],
                },
                "spec": {**spec, "nodeName": f"{cluster}-node"},
                "status": {
                    "phase": "Running",
                    "podIP": f"10.{i // 65536}.{i // 256 % 256}.{i % 256}",
                    "conditions": [{"type": "Ready", "status": "True"}],
                },
            }
        )
    if deployments:
        template, meta = deployments[0]["spec"]["template"], deployments[0]["metadata"]
        bare_meta = {
            "name": f"{meta['name']}-debug",
            "namespace": meta["namespace"],
            "labels": dict(template["metadata"]["labels"]),
        }
        out.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": bare_meta,
                "spec": copy.deepcopy(template["spec"]),
                "status": {"phase": "Running"},
            }
        )
    node_labels = {"kubernetes.io/hostname": f"{cluster}-node"}
    if region is not None:
        node_labels["topology.kubernetes.io/region"] = region
    node_status = {"conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": "2026-01-10T09:00:00Z"}]}
    out.append(
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": f"{cluster}-node", "labels": node_labels},
            "status": node_status,
        }
    )
    return out


def mesh_name(cluster: str, mesh: MeshType) -> str:
    """The discovered Mesh name of a cluster's control plane (spec §2)."""
    if mesh == "istio":
        return f"istiod-{ISTIO_SYSTEM}-{cluster}"
    return f"linkerd-destination-{LINKERD_NS}-{cluster}"


def _numbered(words: tuple[str, ...], index: int) -> str:
    """``words[i]`` for the first round, then ``word-1``, ``word-2``, ... so names stay unique."""
    word = words[index % len(words)]
    rnd = index // len(words)
    return word if rnd == 0 else f"{word}-{rnd}"


def _sort_key(obj: KubeObject) -> tuple[int, str, str]:
    meta = obj["metadata"]
    return (_KIND_ORDER.get(obj["kind"], 99), meta.get("namespace", ""), meta["name"])


class _Generator:
    """One run of ``generate_topology``; holds the random stream so draws happen in a fixed order."""

    def __init__(self, params: TopologyParams) -> None:
        self.p = params
        # INVARIANT: every random draw goes through self.rng, in an order that depends only on params.
        self.rng = random.Random(params.seed)
        count = params.clusters
        self.cluster_names = tuple(f"cluster-{i + 1}" for i in range(count))
        first_linkerd = count - params.linkerd_clusters
        self.meshes: dict[str, MeshType] = {
            name: ("linkerd" if i >= first_linkerd else "istio") for i, name in enumerate(self.cluster_names)
        }
        self.namespaces = tuple(_numbered(_NAMESPACE_WORDS, i) for i in range(params.namespaces_per_cluster))
        self.objects: dict[str, list[KubeObject]] = {name: [] for name in self.cluster_names}
        self.services: list[GeneratedService] = []
        self.workloads: list[GeneratedWorkload] = []
        self.gateway_addresses: dict[str, str] = {}
        self._cluster_ip = 0
        self._policy_names: set[tuple[str, str]] = set()
        # (namespace, name) -> the app's instances over all clusters, for cross-cluster shifts
        self.instances: dict[tuple[str, str], list[GeneratedService]] = {}

    def run(self) -> Topology:
        for index, cluster in enumerate(self.cluster_names):
            self._cluster_base(index, cluster)
        self._applications()
        policies = self._policies()
        return Topology(
            params=self.p,
            clusters={c: tuple(sorted(objs, key=_sort_key)) for c, objs in self.objects.items()},
            policies=tuple(sorted(policies, key=_sort_key)),
            meshes=dict(self.meshes),
            namespaces=self.namespaces,
            services=tuple(sorted(self.services, key=lambda s: (s.cluster, s.namespace, s.name))),
            workloads=tuple(sorted(self.workloads, key=lambda w: (w.cluster, w.namespace, w.name))),
            gateway_addresses=dict(self.gateway_addresses),
        )

    # -- clusters: namespaces, control planes, gateways ------------------------------------------

    def _cluster_base(self, index: int, cluster: str) -> None:
        out = self.objects[cluster]
        mesh = self.meshes[cluster]
        for ns in ("default", "kube-system"):
            out.append(_namespace(ns, {}, {}))
        for ns in self.namespaces:
            if mesh == "istio":
                out.append(_namespace(ns, {"istio-injection": "enabled", "team": ns}, {}))
            else:
                out.append(_namespace(ns, {"team": ns}, {"linkerd.io/inject": "enabled"}))
        address = self._gateway_address(index, cluster)
        if mesh == "istio":
            out.extend(_istio_control_plane(index))
            if self.p.eastwest_gateways:
                out.extend(_istio_eastwest_gateway(index, address))
        else:
            out.extend(_linkerd_control_plane())
            if self.p.eastwest_gateways:
                out.extend(_linkerd_gateway(address))

    def _gateway_address(self, index: int, cluster: str) -> str | None:
        if not self.p.eastwest_gateways:
            return None
        istio_index = sum(1 for c in self.cluster_names[:index] if self.meshes[c] == "istio")
        if self.meshes[cluster] == "istio" and istio_index < self.p.unaddressed_gateways:
            return None
        # Every fourth cluster sits behind a cloud load balancer that publishes a hostname, not an IP,
        # so both address forms of spec §2 occur.
        hostname = index % 4 == 3
        address = f"a{index:04d}f3c9e1.elb.eu-west-1.amazonaws.com" if hostname else str(_GATEWAY_BASE + index)
        self.gateway_addresses[cluster] = address
        return address

    # -- applications: Services, ServiceAccounts, Deployments -------------------------------------

    def _applications(self) -> None:
        p = self.p
        count = p.clusters
        if count > 1:
            wanted = math.floor(p.services * p.replicated_share + 0.5)
            # Each app has at most one instance per cluster, so replicas <= primaries * (clusters - 1).
            replicas = min(wanted, p.services - math.ceil(p.services / count))
        else:
            replicas = 0
        primaries = p.services - replicas
        slots = [(i % count, (i // count) % len(self.namespaces)) for i in range(primaries)]
        self.rng.shuffle(slots)
        apps: list[tuple[str, int, int]] = []  # (name, primary cluster index, namespace index)
        for i, (cluster_index, ns_index) in enumerate(slots):
            name = _numbered(_SERVICE_WORDS, i)
            apps.append((name, cluster_index, ns_index))
        shapes = [self._app_shape() for _ in apps]
        for (name, cluster_index, ns_index), shape in zip(apps, shapes, strict=True):
            self._service_instance(name, cluster_index, ns_index, 0, shape)
        order = list(range(primaries))
        self.rng.shuffle(order)
        for r in range(replicas):
            app = order[r % primaries]
            offset = r // primaries + 1
            name, cluster_index, ns_index = apps[app]
            self._service_instance(name, (cluster_index + offset) % count, ns_index, offset, shapes[app])

    def _app_shape(self) -> tuple[str, tuple[tuple[str, int, int, str | None], ...]]:
        """Draw an app's tier and ports: (name, port, targetPort, appProtocol) each."""
        tier = self.rng.choice(_TIERS)
        http = self.rng.choice(_HTTP_PORTS)
        ports: list[tuple[str, int, int, str | None]] = [("http", http, 8080 if http == 80 else http, None)]
        if self.rng.random() < _GRPC_SHARE:
            ports.append(("grpc", _GRPC_PORT, _GRPC_PORT, "grpc"))
        return tier, tuple(ports)

    def _service_instance(
        self,
        name: str,
        cluster_index: int,
        ns_index: int,
        offset: int,
        shape: tuple[str, tuple[tuple[str, int, int, str | None], ...]],
    ) -> None:
        p = self.p
        cluster = self.cluster_names[cluster_index]
        ns = self.namespaces[ns_index]
        mesh = self.meshes[cluster]
        tier, ports = shape
        out = self.objects[cluster]
        sa = name
        service_labels = {"app": name, "service": name, "tier": tier}
        out.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": name, "namespace": ns, "labels": service_labels},
                "spec": {
                    "type": "ClusterIP",
                    "clusterIP": self._next_cluster_ip(),
                    "selector": {"app": name},
                    "ports": [_service_port(*port) for port in ports],
                },
            }
        )
        out.append(
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": sa, "namespace": ns, "labels": {"account": name}},
            }
        )
        versions = set()
        for k in range(p.workloads_per_service):
            # Replicas start their version cycle later, so a replica in another cluster may run
            # versions the primary does not (bookinfo's reviews-v2/v3 on cluster-2).
            version = f"v{(k + offset) % p.subsets + 1}"
            deployment = f"{name}-{version}" if k < p.subsets else f"{name}-{version}-{k // p.subsets}"
            pod_labels = {"app": name, "version": version, "tier": tier}
            versions.add(version)
            out.append(_app_deployment(deployment, ns, pod_labels, sa, name, ports))
            self.workloads.append(
                GeneratedWorkload(cluster, ns, deployment, name, mesh, pod_labels, sa),
            )
        self.services.append(
            GeneratedService(
                cluster=cluster,
                namespace=ns,
                name=name,
                mesh=mesh,
                labels=service_labels,
                ports=tuple((port[0], port[1]) for port in ports),
                versions=tuple(sorted(versions, key=lambda v: int(v[1:]))),
                service_account=sa,
            )
        )

    def _next_cluster_ip(self) -> str:
        self._cluster_ip += 1
        return str(_CLUSTER_IP_BASE + self._cluster_ip)

    # -- policies -----------------------------------------------------------------------------------

    def _policies(self) -> list[KubeObject]:
        policies: list[KubeObject] = []
        vms: tuple[tuple[MeshType, str], ...] = (("istio", "global"), ("linkerd", "linkerd-global"))
        for mesh_type, name in vms:
            members = [c for c in self.cluster_names if self.meshes[c] == mesh_type]
            # A one-member Linkerd VirtualMesh federates nothing; Istio's still carries enforcement.
            if members and (mesh_type == "istio" or len(members) > 1):
                policies.append(self._virtual_mesh(name, [mesh_name(c, mesh_type) for c in members]))
        services = sorted(self.services, key=lambda s: (s.cluster, s.namespace, s.name))
        for svc in services:
            self.instances.setdefault((svc.namespace, svc.name), []).append(svc)
        for _ in range(self.p.traffic_policies):
            policies.append(self._traffic_policy(self.rng.choice(services), services))
        for _ in range(self.p.access_policies):
            policies.append(self._access_policy(self.rng.choice(services), services))
        return policies

    def _metadata(self, base: str, namespace: str) -> dict[str, str]:
        name, n = base, 1
        while (namespace, name) in self._policy_names:
            n += 1
            name = f"{base}-{n}"
        self._policy_names.add((namespace, name))
        created = _EPOCH + timedelta(seconds=self.rng.randrange(_POLICY_WINDOW_SECONDS))
        return {"name": name, "namespace": namespace, "creationTimestamp": created.strftime("%Y-%m-%dT%H:%M:%SZ")}

    def _virtual_mesh(self, name: str, meshes: list[str]) -> KubeObject:
        return {
            "apiVersion": POLICY_API_VERSION,
            "kind": "VirtualMesh",
            "metadata": {
                "name": name,
                "namespace": MANAGEMENT_NAMESPACE,
                "creationTimestamp": _EPOCH.strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
            "spec": {
                "meshes": [{"name": m, "namespace": MANAGEMENT_NAMESPACE} for m in meshes],
                "trust": {
                    "shared": {
                        "rootCertificateAuthority": {
                            "generated": {"ttlDays": 3650, "keyAlgorithm": "ECDSA_P256", "orgName": "meshrules"}
                        },
                        "intermediateTtlDays": 365,
                    }
                },
                "federation": {"hostnameSuffix": "global"},
                "accessPolicyEnforcement": self.p.enforcement,
            },
        }

    def _traffic_policy(self, target: GeneratedService, services: list[GeneratedService]) -> KubeObject:
        rng = self.rng
        remote = [s for s in self.instances[(target.namespace, target.name)] if s.mesh == target.mesh]
        kinds = ["timeouts"]
        # Linkerd cannot express subsets, faults, mirrors, CORS or DestinationRule settings (spec
        # §3.4); generated policies stay within what each target mesh can do.
        if target.mesh == "istio":
            kinds += ["fault", "resilience", "edge"]
            if len(target.versions) > 1:
                kinds += ["canary", "canary", "header-route"]
            if len(remote) > 1:
                kinds += ["failover"]
        kind = rng.choice(kinds)
        spec: dict[str, Any] = {"destinationSelector": [self._destination_selector(target)]}
        policy: dict[str, Any] = {}
        if kind == "canary":
            picked = rng.sample(target.versions, 2)
            major = rng.choice((50, 80, 90, 95))
            policy["trafficShift"] = {
                "destinations": [
                    {"service": target.cluster_object_ref(), "subset": {"version": picked[0]}, "weight": major},
                    {"service": target.cluster_object_ref(), "subset": {"version": picked[1]}, "weight": 100 - major},
                ]
            }
            spec["destinationSelector"] = [{"services": [target.cluster_object_ref()]}]
        elif kind == "failover":
            local_share = rng.choice((50, 70, 80))
            others = [s for s in remote if s is not target]
            other = rng.choice(others)
            policy["trafficShift"] = {
                "destinations": [
                    {"service": target.cluster_object_ref(), "weight": local_share},
                    {"service": other.cluster_object_ref(), "weight": 100 - local_share},
                ]
            }
            spec["destinationSelector"] = [{"services": [target.cluster_object_ref()]}]
        elif kind == "header-route":
            spec["sourceSelector"] = [self._workload_selector(target, services)]
            spec["httpRequestMatchers"] = [
                {"uri": {"prefix": f"/{target.name}"}, "headers": [{"name": "end-user", "value": "jason"}]}
            ]
            policy["trafficShift"] = {
                "destinations": [
                    {"service": target.cluster_object_ref(), "subset": {"version": target.versions[-1]}, "weight": 100}
                ]
            }
        elif kind == "fault":
            if rng.random() < 0.5:
                fault: dict[str, Any] = {"fixedDelay": rng.choice(("2s", "5s", "7s", "500ms"))}
            else:
                fault = {"abort": {"httpStatus": rng.choice((500, 503, 429))}}
            fault["percentage"] = rng.choice((1, 5, 10, 50))
            policy["faultInjection"] = fault
            spec["sourceSelector"] = [self._workload_selector(target, services)]
        elif kind == "resilience":
            policy["outlierDetection"] = {
                "consecutiveErrors": rng.choice((3, 5, 10)),
                "interval": rng.choice(("10s", "30s")),
                "baseEjectionTime": rng.choice(("30s", "1m")),
                "maxEjectionPercent": rng.choice((50, 100)),
            }
            policy["mtls"] = {"mode": "ISTIO_MUTUAL"}
        elif kind == "edge":
            policy["corsPolicy"] = {
                "allowOrigins": [{"exact": "https://shop.example.com"}, {"regex": "https://.*\\.example\\.org"}],
                "allowMethods": ["GET", "POST"],
                "allowHeaders": ["content-type"],
                "maxAge": "24h",
                "allowCredentials": False,
            }
            policy["headerManipulation"] = {
                "appendRequestHeaders": {"x-served-by": "meshrules"},
                "removeResponseHeaders": ["server"],
            }
            # A shadow copy of the traffic goes to some other Istio app, or back to the target itself.
            shadow = rng.choice(services)
            if shadow.mesh != "istio":
                shadow = target
            policy["mirror"] = {
                "service": shadow.cluster_object_ref(),
                "port": shadow.ports[0][1],
                "percentage": rng.choice((1, 10)),
            }
        else:  # timeouts
            if rng.random() < 0.6:
                spec["sourceSelector"] = [self._workload_selector(target, services)]
            if rng.random() < 0.4:
                spec["httpRequestMatchers"] = [
                    {"uri": {"prefix": "/api/"}},
                    {"uri": {"exact": "/healthz"}, "method": "GET"},
                ]
            policy["requestTimeout"] = rng.choice(("1s", "2s", "5s", "10s", "30s"))
            policy["retries"] = {"attempts": rng.randint(1, 5), "perTryTimeout": rng.choice(("250ms", "500ms", "1s"))}
        spec["policy"] = policy
        return {
            "apiVersion": POLICY_API_VERSION,
            "kind": "TrafficPolicy",
            "metadata": self._metadata(f"{target.name}-{kind}", target.namespace),
            "spec": spec,
        }

    def _destination_selector(self, target: GeneratedService) -> dict[str, Any]:
        roll = self.rng.random()
        if roll < 0.4:
            return {"services": [target.cluster_object_ref()]}
        if roll < 0.6:
            # No cluster: the app's instances in every cluster, as a team that owns the app would say.
            return {"services": [{"name": target.name, "namespace": target.namespace}]}
        if roll < 0.9:
            return {"namespaces": [target.namespace], "labels": {"app": target.name}}
        return {"clusters": [target.cluster], "namespaces": [target.namespace], "labels": {"app": target.name}}

    def _workload_selector(self, target: GeneratedService, services: list[GeneratedService]) -> dict[str, Any]:
        caller = self.rng.choice(services)
        roll = self.rng.random()
        if roll < 0.4:
            return {"namespaces": [caller.namespace]}
        if roll < 0.8:
            return {"namespaces": [caller.namespace], "labels": {"app": caller.name}}
        if roll < 0.9:
            return {"clusters": [caller.cluster], "labels": {"tier": caller.labels["tier"]}}
        return {"clusters": [target.cluster]}

    def _access_policy(self, target: GeneratedService, services: list[GeneratedService]) -> KubeObject:
        rng = self.rng
        callers = rng.sample(services, min(len(services), rng.randint(1, 3)))
        roll = rng.random()
        sources: list[dict[str, Any]]
        if roll < 0.5:
            sources = [{"serviceAccounts": [_sa_ref(c, with_cluster=rng.random() < 0.3) for c in callers]}]
        elif roll < 0.7:
            sources = [{"namespaces": sorted({c.namespace for c in callers})}]
        elif roll < 0.9:
            sources = [{"clusters": [c.cluster], "namespaces": [c.namespace]} for c in callers]
        else:
            sources = []  # any authenticated identity
        spec: dict[str, Any] = {}
        if sources:
            spec["sourceSelector"] = sources
        spec["destinationSelector"] = [self._destination_selector(target)]
        roll = rng.random()
        if roll < 0.3:
            spec["allowedMethods"] = ["GET"]
        elif roll < 0.5:
            spec["allowedMethods"] = ["GET", "POST"]
        roll = rng.random()
        if roll < 0.3:
            spec["allowedPaths"] = ["/api/*"]
        elif roll < 0.5:
            spec["allowedPaths"] = ["/healthz", f"/{target.name}*"]
        if rng.random() < 0.4:
            spec["allowedPorts"] = [target.ports[0][1]]
        base = f"{target.name}-allow-{callers[0].name}" if sources else f"{target.name}-allow-mesh"
        return {
            "apiVersion": POLICY_API_VERSION,
            "kind": "AccessPolicy",
            "metadata": self._metadata(base, target.namespace),
            "spec": spec,
        }


def _sa_ref(service: GeneratedService, *, with_cluster: bool) -> dict[str, str]:
    ref = {"name": service.service_account, "namespace": service.namespace}
    if with_cluster:
        ref["cluster"] = service.cluster
    return ref


# -- object builders (shapes follow the real manifests in shared/fixtures) ---------------------------


def _namespace(name: str, labels: dict[str, str], annotations: dict[str, str]) -> KubeObject:
    meta: dict[str, Any] = {"name": name, "labels": {"kubernetes.io/metadata.name": name, **labels}}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


def _service_port(name: str, port: int, target: int, app_protocol: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "port": port, "protocol": "TCP", "targetPort": target}
    if app_protocol:
        out["appProtocol"] = app_protocol
    return out


def _app_deployment(
    name: str,
    namespace: str,
    pod_labels: dict[str, str],
    service_account: str,
    app: str,
    ports: tuple[tuple[str, int, int, str | None], ...],
) -> KubeObject:
    selector = {"app": pod_labels["app"], "version": pod_labels["version"]}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(selector)},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": dict(pod_labels)},
                "spec": {
                    "serviceAccountName": service_account,
                    "containers": [
                        {
                            "name": app,
                            "image": f"registry.example.com/{namespace}/{app}:{pod_labels['version']}.0",
                            "imagePullPolicy": "IfNotPresent",
                            "ports": [
                                {"containerPort": target, "name": port_name, "protocol": "TCP"}
                                for port_name, _, target, _ in ports
                            ],
                        }
                    ],
                },
            },
        },
    }


def _istio_control_plane(index: int) -> list[KubeObject]:
    network = f"network-{index + 1}"
    labels = {"app": "istiod", "istio": "pilot", "istio.io/rev": "default", "release": "istio"}
    mesh_config = (
        "defaultConfig:\n"
        f"  discoveryAddress: istiod.{ISTIO_SYSTEM}.svc:15012\n"
        "  proxyMetadata:\n"
        '    ISTIO_META_DNS_AUTO_ALLOCATE: "true"\n'
        '    ISTIO_META_DNS_CAPTURE: "true"\n'
        "defaultProviders:\n"
        "  metrics:\n"
        "  - prometheus\n"
        "enablePrometheusMerge: true\n"
        f"rootNamespace: {ISTIO_SYSTEM}\n"
        f"trustDomain: {TRUST_DOMAIN}\n"
    )
    return [
        _namespace(ISTIO_SYSTEM, {"topology.istio.io/network": network}, {}),
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "istiod", "namespace": ISTIO_SYSTEM, "labels": {"app": "istiod"}},
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "istio",
                "namespace": ISTIO_SYSTEM,
                "labels": {"istio.io/rev": "default", "release": "istio"},
            },
            "data": {"mesh": mesh_config, "meshNetworks": "networks: {}"},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "istiod", "namespace": ISTIO_SYSTEM, "labels": dict(labels)},
            "spec": {
                "selector": {"matchLabels": {"istio": "pilot"}},
                "template": {
                    "metadata": {
                        "annotations": {"sidecar.istio.io/inject": "false"},
                        "labels": {**labels, "sidecar.istio.io/inject": "false"},
                    },
                    "spec": {
                        "serviceAccountName": "istiod",
                        "containers": [
                            {
                                "name": "discovery",
                                "image": f"docker.io/istio/pilot:{ISTIO_TAG}",
                                "args": ["discovery", "--monitoringAddr=:15014", "--domain", "cluster.local"],
                                "env": [
                                    {"name": "REVISION", "value": "default"},
                                    {"name": "PILOT_CERT_PROVIDER", "value": "istiod"},
                                    {"name": "CLUSTER_ID", "value": f"cluster-{index + 1}"},
                                ],
                                "ports": [
                                    {"containerPort": 8080, "name": "http-debug", "protocol": "TCP"},
                                    {"containerPort": 15010, "name": "grpc-xds", "protocol": "TCP"},
                                    {"containerPort": 15012, "name": "tls-xds", "protocol": "TCP"},
                                    {"containerPort": 15017, "name": "https-webhooks", "protocol": "TCP"},
                                ],
                            }
                        ],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "istiod", "namespace": ISTIO_SYSTEM, "labels": dict(labels)},
            "spec": {
                "selector": {"app": "istiod", "istio": "pilot"},
                "ports": [
                    {"name": "grpc-xds", "port": 15010, "protocol": "TCP"},
                    {"name": "https-dns", "port": 15012, "protocol": "TCP"},
                    {"name": "https-webhook", "port": 443, "protocol": "TCP", "targetPort": 15017},
                    {"name": "http-monitoring", "port": 15014, "protocol": "TCP"},
                ],
            },
        },
    ]


def _load_balancer_status(address: str | None) -> dict[str, Any]:
    if address is None:
        return {"loadBalancer": {}}
    key = "ip" if address[0].isdigit() else "hostname"
    return {"loadBalancer": {"ingress": [{key: address}]}}


def _istio_eastwest_gateway(index: int, address: str | None) -> list[KubeObject]:
    name = "istio-eastwestgateway"
    network = f"network-{index + 1}"
    selector = {"app": name, "istio": "eastwestgateway", "topology.istio.io/network": network}
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": name, "namespace": ISTIO_SYSTEM, "labels": {"app": name}},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": ISTIO_SYSTEM, "labels": dict(selector)},
            "spec": {
                "selector": {"matchLabels": {"app": name, "istio": "eastwestgateway"}},
                "template": {
                    "metadata": {
                        "annotations": {"inject.istio.io/templates": "gateway"},
                        "labels": {**selector, "sidecar.istio.io/inject": "true"},
                    },
                    "spec": {
                        "serviceAccountName": name,
                        "containers": [
                            {
                                "name": "istio-proxy",
                                "image": f"docker.io/istio/proxyv2:{ISTIO_TAG}",
                                "args": ["proxy", "router"],
                                "env": [{"name": "ISTIO_META_REQUESTED_NETWORK_VIEW", "value": network}],
                                "ports": [
                                    {"containerPort": 15021, "name": "status-port", "protocol": "TCP"},
                                    {"containerPort": 15443, "name": "tls", "protocol": "TCP"},
                                ],
                            }
                        ],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": ISTIO_SYSTEM, "labels": dict(selector)},
            "spec": {
                "type": "LoadBalancer",
                "selector": dict(selector),
                "ports": [
                    {"name": "status-port", "port": 15021, "protocol": "TCP", "targetPort": 15021},
                    {"name": "tls", "port": 15443, "protocol": "TCP", "targetPort": 15443},
                    {"name": "tls-istiod", "port": 15012, "protocol": "TCP", "targetPort": 15012},
                    {"name": "tls-webhook", "port": 15017, "protocol": "TCP", "targetPort": 15017},
                ],
            },
            "status": _load_balancer_status(address),
        },
    ]


def _linkerd_control_plane() -> list[KubeObject]:
    component = {"linkerd.io/control-plane-component": "destination", "linkerd.io/control-plane-ns": LINKERD_NS}
    values = (
        f"clusterDomain: {TRUST_DOMAIN}\n"
        "identity:\n"
        "  issuer:\n"
        "    scheme: linkerd.io/tls\n"
        f"identityTrustDomain: {TRUST_DOMAIN}\n"
        f"linkerdVersion: {LINKERD_TAG}\n"
    )
    return [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": LINKERD_NS,
                "annotations": {"linkerd.io/inject": "disabled"},
                "labels": {
                    "kubernetes.io/metadata.name": LINKERD_NS,
                    "linkerd.io/is-control-plane": "true",
                    "linkerd.io/control-plane-ns": LINKERD_NS,
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "linkerd-destination", "namespace": LINKERD_NS, "labels": dict(component)},
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "linkerd-config",
                "namespace": LINKERD_NS,
                "labels": {
                    "linkerd.io/control-plane-component": "controller",
                    "linkerd.io/control-plane-ns": LINKERD_NS,
                },
            },
            "data": {"values": values},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "linkerd-destination",
                "namespace": LINKERD_NS,
                "labels": {**component, "app.kubernetes.io/part-of": "Linkerd"},
            },
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {**component, "linkerd.io/proxy-deployment": "linkerd-destination"}},
                "template": {
                    "metadata": {
                        "labels": {**component, "linkerd.io/proxy-deployment": "linkerd-destination"},
                    },
                    "spec": {
                        "serviceAccountName": "linkerd-destination",
                        "containers": [
                            {
                                "name": "destination",
                                "image": f"cr.l5d.io/linkerd/controller:{LINKERD_TAG}",
                                "args": [
                                    "destination",
                                    "-addr=:8086",
                                    f"-controller-namespace={LINKERD_NS}",
                                    f"-identity-trust-domain={TRUST_DOMAIN}",
                                ],
                                "ports": [{"containerPort": 8086, "name": "dest-grpc"}],
                            },
                            {
                                "name": "linkerd-proxy",
                                "image": f"cr.l5d.io/linkerd/proxy:{LINKERD_TAG}",
                                "ports": [{"containerPort": 4143, "name": "linkerd-proxy"}],
                            },
                        ],
                    },
                },
            },
        },
    ]


def _linkerd_gateway(address: str | None) -> list[KubeObject]:
    name = "linkerd-gateway"
    labels = {"app": name, "linkerd.io/extension": "multicluster"}
    return [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": LINKERD_MULTICLUSTER_NS,
                "labels": {
                    "kubernetes.io/metadata.name": LINKERD_MULTICLUSTER_NS,
                    "linkerd.io/extension": "multicluster",
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": name, "namespace": LINKERD_MULTICLUSTER_NS, "labels": dict(labels)},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": LINKERD_MULTICLUSTER_NS, "labels": dict(labels)},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"annotations": {"linkerd.io/inject": "enabled"}, "labels": dict(labels)},
                    "spec": {
                        "serviceAccountName": name,
                        "containers": [{"name": "pause", "image": "gcr.io/google_containers/pause:3.2"}],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": LINKERD_MULTICLUSTER_NS, "labels": dict(labels)},
            "spec": {
                "type": "LoadBalancer",
                "selector": {"app": name},
                "ports": [
                    {"name": "mc-gateway", "port": 4143, "protocol": "TCP"},
                    {"name": "mc-probe", "port": 4191, "protocol": "TCP"},
                ],
            },
            "status": _load_balancer_status(address),
        },
    ]
