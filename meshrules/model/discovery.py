"""The discovery kinds (spec §2, group `discovery.meshrules.io/v1alpha1`): what meshrules found.

`meshrules.discovery` builds these from the objects of each cluster; everything above it (graph,
rules, emitters, simulator) reads them. Each model is flat — `name` plus the spec's key fields —
and `to_object()` gives the Kubernetes object users see from `meshrules discover -o yaml` and the
controller writes: `metadata.name`, the management namespace, the `meshrules.io/cluster` label,
and every other field under `spec`.

The one input form here is the optional `clusters/<cluster>/cluster.yaml` (`KubernetesClusterConfig`),
read strictly like every meshrules kind.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import AfterValidator, Field

from meshrules.model.base import ApiModel
from meshrules.model.common import MANAGEMENT_NAMESPACE, ObjectMeta, is_dns1123_subdomain

DISCOVERY_API_VERSION = "discovery.meshrules.io/v1alpha1"
CLUSTER_LABEL = "meshrules.io/cluster"
DEFAULT_CLUSTER_DOMAIN = "cluster.local"
DEFAULT_TRUST_DOMAIN = "cluster.local"


def _check_domain(value: str) -> str:
    if not is_dns1123_subdomain(value):
        raise ValueError(f"`{value}` is not a DNS domain (lower-case letters, digits, `-` and `.`)")
    return value


Domain = Annotated[str, AfterValidator(_check_domain)]


class DiscoveredObject(ApiModel):
    """Base of the discovery kinds: a `name`, spec fields, and the Kubernetes object form."""

    kind: ClassVar[str]

    name: str

    @property
    def cluster_name(self) -> str:
        """The cluster this object was discovered in (the `meshrules.io/cluster` label)."""
        return str(getattr(self, "cluster", self.name))

    def to_object(self) -> dict[str, Any]:
        """The `discovery.meshrules.io/v1alpha1` object: metadata in the management namespace, the rest in `spec`."""
        spec = self.to_wire()
        del spec["name"]
        return {
            "apiVersion": DISCOVERY_API_VERSION,
            "kind": self.kind,
            "metadata": {
                "name": self.name,
                "namespace": MANAGEMENT_NAMESPACE,
                "labels": {CLUSTER_LABEL: self.cluster_name},
            },
            "spec": spec,
        }

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> Self:
        """Read back an object written by `to_object` (unknown spec fields are errors)."""
        if obj.get("apiVersion") != DISCOVERY_API_VERSION or obj.get("kind") != cls.kind:
            raise ValueError(f"not a `{DISCOVERY_API_VERSION}` `{cls.kind}` object")
        meta = obj.get("metadata")
        spec = obj.get("spec")
        if not isinstance(meta, Mapping) or not isinstance(spec, Mapping):
            raise ValueError("object needs `metadata` and `spec` mappings")
        return cls.model_validate({**spec, "name": meta.get("name")})

    @classmethod
    def spec_json_schema(cls) -> dict[str, Any]:
        """The JSON Schema of `spec` (the model without `name`), for the CRD's `openAPIV3Schema`."""
        schema = cls.model_json_schema(by_alias=True)
        schema.get("properties", {}).pop("name", None)
        required = [r for r in schema.get("required", []) if r != "name"]
        if required:
            schema["required"] = required
        else:
            schema.pop("required", None)
        return schema


# --- KubernetesCluster ----------------------------------------------------------------------------


class KubernetesCluster(DiscoveredObject):
    """A cluster meshrules reads; its name is the cluster name."""

    kind: ClassVar[str] = "KubernetesCluster"

    cluster_domain: Domain = DEFAULT_CLUSTER_DOMAIN
    region: str | None = None
    # Live only: the Secret in the management namespace holding the cluster's kubeconfig (§8).
    secret_name: str | None = None


class KubernetesClusterConfigSpec(ApiModel):
    """What a user may say about a cluster in `clusters/<cluster>/cluster.yaml`."""

    cluster_domain: Domain = DEFAULT_CLUSTER_DOMAIN
    region: str | None = None


class KubernetesClusterConfig(ApiModel):
    """The optional `clusters/<cluster>/cluster.yaml`, parsed strictly (unknown fields are errors)."""

    api_version: Literal["discovery.meshrules.io/v1alpha1"] = "discovery.meshrules.io/v1alpha1"
    kind: Literal["KubernetesCluster"] = "KubernetesCluster"
    metadata: ObjectMeta
    spec: KubernetesClusterConfigSpec = Field(default_factory=KubernetesClusterConfigSpec)


def parse_cluster_config(body: Mapping[str, Any]) -> KubernetesClusterConfig:
    """Parse a `cluster.yaml` body; raises `pydantic.ValidationError` with field paths on mistakes."""
    return KubernetesClusterConfig.model_validate(body)


# --- Mesh -----------------------------------------------------------------------------------------


class MeshType(StrEnum):
    """Which service mesh a control plane belongs to."""

    ISTIO = "istio"
    LINKERD = "linkerd"


class GatewayKind(StrEnum):
    """What a mesh gateway is for."""

    EASTWEST = "eastwest"
    INGRESS = "ingress"
    LINKERD_GATEWAY = "linkerd-gateway"


class Gateway(ApiModel):
    """A gateway of a mesh: the Service in front of gateway pods, and where to reach it."""

    kind: GatewayKind
    service: str
    # The Service's namespace (gateways may live outside the control-plane namespace).
    namespace: str
    # None when the Service has no load-balancer address or external IP yet (finding MR0110).
    address: str | None = None
    # The Service port that carries mesh traffic (east-west: `tls`/15443; Linkerd: 4143).
    port: int | None = None
    workload_labels: dict[str, str] = Field(default_factory=dict)


class Mesh(DiscoveredObject):
    """One control plane: an Istio revision or a Linkerd installation, in one cluster."""

    kind: ClassVar[str] = "Mesh"

    type: MeshType
    cluster: str
    namespace: str
    # The control-plane Deployment's name (`istiod`, `istiod-canary`, `linkerd-destination`).
    control_plane: str
    version: str | None = None
    # Istio revision (`default` for a plain `istiod`); None for Linkerd.
    revision: str | None = None
    # Istio `rootNamespace` (mesh-wide config lives there; default: the istiod namespace); None for Linkerd.
    root_namespace: str | None = None
    trust_domain: str = DEFAULT_TRUST_DOMAIN
    # Trust domains whose peers mTLS accepts: the own domain, Istio `trustDomainAliases` and
    # `caCertificates[].trustDomains`; `("*",)` with `PILOT_SKIP_VALIDATE_TRUST_DOMAIN`.
    accepted_trust_domains: tuple[str, ...] = ()
    # Istio `trustDomainAliases` (own domain left out): authorization treats principals of these
    # domains as its own (`ReplaceTrustDomainAliases`). `caCertificates[].trustDomains` only verify
    # certificates and are not aliases. Empty for Linkerd.
    trust_domain_aliases: tuple[str, ...] = ()
    dns_capture: bool = False
    # Lower-case hex SHA-256 fingerprints of the DER certificates the mesh publishes as roots.
    trust_roots: tuple[str, ...] = ()
    issuer_scheme: str | None = None
    gateways: tuple[Gateway, ...] = ()


# --- Workload -------------------------------------------------------------------------------------


class ControllerRef(ApiModel):
    """The object that owns a workload's pods: a Deployment, StatefulSet, DaemonSet, or the Pod itself."""

    kind: str
    name: str


class ContainerPort(ApiModel):
    """A port an application container declares."""

    container_port: int
    name: str | None = None
    protocol: str = "TCP"


class HttpProbe(ApiModel):
    """A kubelet HTTP probe (`httpGet` of a liveness, readiness or startup probe) of an app container."""

    # The container port it targets (a named port resolved on its container).
    port: int
    path: str = "/"


class Workload(DiscoveredObject):
    """A meshed workload: pods that share a controller, a service account and a mesh."""

    kind: ClassVar[str] = "Workload"

    cluster: str
    namespace: str
    controller: ControllerRef
    pod_labels: dict[str, str] = Field(default_factory=dict)
    service_account: str = "default"
    mesh: str
    identity: str
    ports: tuple[ContainerPort, ...] = ()
    # The application containers' HTTP probes, sorted; None when not read (a Workload that
    # discovery did not make): emitters then assume conventional health paths.
    probes: tuple[HttpProbe, ...] | None = None


# --- Destination ----------------------------------------------------------------------------------


class ServicePort(ApiModel):
    """A port of a destination's Service (targetPort defaults to the port, as Kubernetes does)."""

    port: int
    name: str | None = None
    protocol: str = "TCP"
    app_protocol: str | None = None
    target_port: int | str


class Destination(DiscoveredObject):
    """A Service whose pods are in a mesh: what callers address and policies select."""

    kind: ClassVar[str] = "Destination"

    cluster: str
    namespace: str
    service: str
    labels: dict[str, str] = Field(default_factory=dict)
    ports: tuple[ServicePort, ...] = ()
    selector: dict[str, str] = Field(default_factory=dict)
    # Names of the meshed Workloads the selector matches, sorted.
    workloads: tuple[str, ...] = ()
    # Pod-label key -> sorted values, for keys whose values differ across the workloads.
    subsets: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    local_fqdn: str
    # None only for a destination forced in by annotation that no mesh can be told for (MR0131).
    mesh: str | None = None


DISCOVERY_KINDS: tuple[type[DiscoveredObject], ...] = (KubernetesCluster, Mesh, Workload, Destination)
