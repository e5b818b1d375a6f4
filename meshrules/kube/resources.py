"""The Kubernetes kinds meshrules reads and writes, and how each is addressed on the API server.

Every other module of `meshrules.kube` names kinds through this registry, so what discovery
reads, what `snapshot` writes, what the controller watches, what apply may prune and what the
RBAC rules grant all come from one table (and cannot drift apart). Pure data: no client here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True, slots=True, order=True)
class ApiResource:
    """One kind as the API server serves it: group, version, plural, scope, status subresource."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool = True
    # Whether writes to `.status` go through the `/status` subresource (and spec writes ignore it).
    status: bool = False

    @property
    def api_version(self) -> str:
        """`apiVersion` of its objects (`v1`, `apps/v1`, …)."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_kind(self) -> str:
        """`Kind.group` as kubectl spells it (`Deployment.apps`, `Service`)."""
        return f"{self.kind}.{self.group}" if self.group else self.kind

    def with_version(self, version: str) -> ApiResource:
        """The same kind served at another version."""
        return replace(self, version=version)

    def path(self, namespace: str = "", name: str = "", subresource: str = "") -> str:
        """The URL path of the collection (no ``name``) or of one object (and its subresource)."""
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name:
            base += f"/{name}"
            if subresource:
                base += f"/{subresource}"
        return base


def _core(kind: str, plural: str, namespaced: bool = True, status: bool = False) -> ApiResource:
    return ApiResource("", "v1", kind, plural, namespaced, status)


# --- Kubernetes ---------------------------------------------------------------------------------
NAMESPACE = _core("Namespace", "namespaces", namespaced=False, status=True)
NODE = _core("Node", "nodes", namespaced=False, status=True)
POD = _core("Pod", "pods", status=True)
SERVICE = _core("Service", "services", status=True)
SERVICE_ACCOUNT = _core("ServiceAccount", "serviceaccounts")
SECRET = _core("Secret", "secrets")
CONFIG_MAP = _core("ConfigMap", "configmaps")
DEPLOYMENT = ApiResource("apps", "v1", "Deployment", "deployments", status=True)
STATEFUL_SET = ApiResource("apps", "v1", "StatefulSet", "statefulsets", status=True)
DAEMON_SET = ApiResource("apps", "v1", "DaemonSet", "daemonsets", status=True)
MUTATING_WEBHOOK = ApiResource(
    "admissionregistration.k8s.io", "v1", "MutatingWebhookConfiguration", "mutatingwebhookconfigurations", False
)
CLUSTER_ROLE = ApiResource("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False)
CLUSTER_ROLE_BINDING = ApiResource(
    "rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False
)
ROLE = ApiResource("rbac.authorization.k8s.io", "v1", "Role", "roles")
ROLE_BINDING = ApiResource("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings")
LEASE = ApiResource("coordination.k8s.io", "v1", "Lease", "leases")
CRD = ApiResource("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", False)

# --- Istio (the versions the CRDs in meshrules/emit/schema/crds store) --------------------------
_NET = "networking.istio.io"
_SEC = "security.istio.io"
ISTIO_VIRTUAL_SERVICE = ApiResource(_NET, "v1", "VirtualService", "virtualservices", status=True)
ISTIO_DESTINATION_RULE = ApiResource(_NET, "v1", "DestinationRule", "destinationrules", status=True)
ISTIO_GATEWAY = ApiResource(_NET, "v1", "Gateway", "gateways", status=True)
ISTIO_SERVICE_ENTRY = ApiResource(_NET, "v1", "ServiceEntry", "serviceentries", status=True)
ISTIO_SIDECAR = ApiResource(_NET, "v1", "Sidecar", "sidecars", status=True)
ISTIO_AUTHORIZATION_POLICY = ApiResource(_SEC, "v1", "AuthorizationPolicy", "authorizationpolicies", status=True)
ISTIO_PEER_AUTHENTICATION = ApiResource(_SEC, "v1", "PeerAuthentication", "peerauthentications", status=True)

# --- Linkerd --------------------------------------------------------------------------------------
_POL = "policy.linkerd.io"
LINKERD_SERVER = ApiResource(_POL, "v1beta3", "Server", "servers")
LINKERD_AUTHORIZATION_POLICY = ApiResource(_POL, "v1alpha1", "AuthorizationPolicy", "authorizationpolicies")
LINKERD_MESH_TLS_AUTHENTICATION = ApiResource(_POL, "v1alpha1", "MeshTLSAuthentication", "meshtlsauthentications")
LINKERD_NETWORK_AUTHENTICATION = ApiResource(_POL, "v1alpha1", "NetworkAuthentication", "networkauthentications")
LINKERD_HTTP_ROUTE = ApiResource(_POL, "v1beta3", "HTTPRoute", "httproutes", status=True)
LINKERD_SERVICE_PROFILE = ApiResource("linkerd.io", "v1alpha2", "ServiceProfile", "serviceprofiles")
LINKERD_LINK = ApiResource("multicluster.linkerd.io", "v1alpha3", "Link", "links", status=True)

# --- meshrules ------------------------------------------------------------------------------------
_MR_NET = "networking.meshrules.io"
_MR_DISC = "discovery.meshrules.io"
VIRTUAL_MESH = ApiResource(_MR_NET, "v1alpha1", "VirtualMesh", "virtualmeshes", status=True)
TRAFFIC_POLICY = ApiResource(_MR_NET, "v1alpha1", "TrafficPolicy", "trafficpolicies", status=True)
ACCESS_POLICY = ApiResource(_MR_NET, "v1alpha1", "AccessPolicy", "accesspolicies", status=True)
KUBERNETES_CLUSTER = ApiResource(_MR_DISC, "v1alpha1", "KubernetesCluster", "kubernetesclusters", status=True)
MESH = ApiResource(_MR_DISC, "v1alpha1", "Mesh", "meshes")
WORKLOAD = ApiResource(_MR_DISC, "v1alpha1", "Workload", "workloads")
DESTINATION = ApiResource(_MR_DISC, "v1alpha1", "Destination", "destinations")

# What discovery reads of a cluster (spec §2; `meshrules.discovery.index`).
DISCOVERY_INPUTS: tuple[ApiResource, ...] = (
    NAMESPACE,
    NODE,
    POD,
    SERVICE,
    CONFIG_MAP,
    DEPLOYMENT,
    STATEFUL_SET,
    DAEMON_SET,
    MUTATING_WEBHOOK,
)
# Existing user mesh config the simulator takes into account (spec §1.1); never overwritten.
MESH_CONFIG: tuple[ApiResource, ...] = (
    ISTIO_VIRTUAL_SERVICE,
    ISTIO_DESTINATION_RULE,
    ISTIO_AUTHORIZATION_POLICY,
    ISTIO_PEER_AUTHENTICATION,
    ISTIO_SIDECAR,
    ISTIO_SERVICE_ENTRY,
    ISTIO_GATEWAY,
    LINKERD_SERVER,
    LINKERD_AUTHORIZATION_POLICY,
    LINKERD_MESH_TLS_AUTHENTICATION,
    LINKERD_NETWORK_AUTHENTICATION,
    LINKERD_HTTP_ROUTE,
    LINKERD_SERVICE_PROFILE,
)
# What `snapshot` writes and the controller watches on each registered cluster. ServiceAccounts
# are what identities are named after; Secrets are never read (spec §1.1).
CLUSTER_INPUTS: tuple[ApiResource, ...] = (*DISCOVERY_INPUTS, SERVICE_ACCOUNT, *MESH_CONFIG)
# The kinds meshrules emits into registered clusters (spec §4); only these are ever pruned.
EMITTED: tuple[ApiResource, ...] = (
    ISTIO_DESTINATION_RULE,
    ISTIO_VIRTUAL_SERVICE,
    ISTIO_AUTHORIZATION_POLICY,
    ISTIO_SERVICE_ENTRY,
    ISTIO_GATEWAY,
    LINKERD_SERVER,
    LINKERD_AUTHORIZATION_POLICY,
    LINKERD_MESH_TLS_AUTHENTICATION,
    LINKERD_NETWORK_AUTHENTICATION,
    LINKERD_HTTP_ROUTE,
    LINKERD_LINK,
)
# User objects meshrules may patch (server-side apply of only the fields it sets): the Linkerd
# export label on a Service (spec §4).
PATCHED: tuple[ApiResource, ...] = (SERVICE,)
POLICIES: tuple[ApiResource, ...] = (VIRTUAL_MESH, TRAFFIC_POLICY, ACCESS_POLICY)
DISCOVERED: tuple[ApiResource, ...] = (KUBERNETES_CLUSTER, MESH, WORKLOAD, DESTINATION)
REGISTRATION: tuple[ApiResource, ...] = (
    NAMESPACE,
    SERVICE_ACCOUNT,
    SECRET,
    CLUSTER_ROLE,
    CLUSTER_ROLE_BINDING,
    ROLE,
    ROLE_BINDING,
)

ALL: tuple[ApiResource, ...] = tuple(
    sorted(
        {
            *CLUSTER_INPUTS,
            *EMITTED,
            *PATCHED,
            *POLICIES,
            *DISCOVERED,
            *REGISTRATION,
            SECRET,
            LEASE,
            CRD,
        }
    )
)

_BY_GROUP_KIND: dict[tuple[str, str], ApiResource] = {(r.group, r.kind): r for r in ALL}


def group_of(api_version: str) -> str:
    """The API group of an `apiVersion` (`""` for the core group)."""
    return api_version.rpartition("/")[0]


def resource_for(api_version: str, kind: str) -> ApiResource | None:
    """The registered kind with this group and ``kind``, at the version ``api_version`` names."""
    found = _BY_GROUP_KIND.get((group_of(api_version), kind))
    if found is None:
        return None
    version = api_version.rpartition("/")[2]
    return found if found.version == version else found.with_version(version)


def resource_of(obj: Mapping[str, Any]) -> ApiResource | None:
    """The registered kind of a wire-form object, at the version it names."""
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return None
    return resource_for(api_version, kind)


def unique(resources: Iterable[ApiResource]) -> tuple[ApiResource, ...]:
    """Resources without repeats, in first-seen order."""
    seen: dict[tuple[str, str], ApiResource] = {}
    for res in resources:
        seen.setdefault((res.group, res.kind), res)
    return tuple(seen.values())
