"""The Services Linkerd's service mirror will create for federated destinations.

meshrules exports a destination to Linkerd multicluster by labelling its Service (spec §4); the
*service mirror* controller of each linked cluster then creates the mirror Service
`<svc>-<cluster>` and its Endpoints at run time. A snapshot does not hold them, so the simulator
writes them from the federation edges, exactly as Linkerd's "Multi-cluster communication"
reference describes them: in gateway mode the Service carries `mirror.linkerd.io/mirrored-service`,
`mirror.linkerd.io/cluster-name` and the remote gateway's identity, and its Endpoints point at the
remote `linkerd-gateway`; in remote-discovery (pod-to-pod) mode it carries
`mirror.linkerd.io/remote-discovery: <cluster>` and no gateway. `meshrules.sim.linkerd.routing`
reads these objects like any other.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from meshrules.model.discovery import DEFAULT_CLUSTER_DOMAIN, Destination, GatewayKind, Mesh, MeshType
from meshrules.model.intent import FederationEdge, MeshMembership
from meshrules.sim.linkerd.policy import LinkerdConfig, service_account_identity

__all__ = ["GATEWAY_NAMESPACE", "gateway_identity", "mirror_objects", "mirror_service_name"]

GATEWAY_NAMESPACE = "linkerd-multicluster"
_GATEWAY_ACCOUNT = "linkerd-gateway"


def mirror_service_name(service: str, cluster: str) -> str:
    """Linkerd's name for the mirror of ``service`` from ``cluster``."""
    return f"{service}-{cluster}"


def gateway_identity(mesh: Mesh) -> str:
    """The identity of ``mesh``'s multicluster gateway, which a destination sees in gateway mode."""
    config = LinkerdConfig(trust_domain=mesh.trust_domain, control_plane_namespace=mesh.namespace)
    return service_account_identity(_GATEWAY_ACCOUNT, GATEWAY_NAMESPACE, config)


def mirror_objects(
    edges: Iterable[FederationEdge],
    meshes: Mapping[str, Mesh],
    destinations: Mapping[str, Destination],
    memberships: Mapping[str, MeshMembership],
    cluster_domains: Mapping[str, str],
) -> dict[str, list[dict[str, Any]]]:
    """Per cluster, the mirror Services and Endpoints of every Linkerd federation edge into it."""
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for edge in sorted(edges, key=lambda e: (e.mesh, e.destination)):
        into = meshes.get(edge.mesh)
        dest = destinations.get(edge.destination)
        home = meshes.get(dest.mesh or "") if dest is not None else None
        if into is None or dest is None or home is None or into.type != MeshType.LINKERD:
            continue
        member = memberships.get(edge.mesh)
        remote_discovery = member is not None and member.linkerd_mode == "remote-discovery"
        name = mirror_service_name(dest.service, dest.cluster)
        domain = cluster_domains.get(dest.cluster, DEFAULT_CLUSTER_DOMAIN)
        labels = (
            {"mirror.linkerd.io/remote-discovery": dest.cluster}
            if remote_discovery
            else {"mirror.linkerd.io/mirrored-service": "true", "mirror.linkerd.io/cluster-name": dest.cluster}
        )
        annotations = {"mirror.linkerd.io/remote-svc-fq-name": f"{dest.service}.{dest.namespace}.svc.{domain}"}
        if not remote_discovery:
            annotations["mirror.linkerd.io/remote-gateway-identity"] = gateway_identity(home)
        meta = {"name": name, "namespace": dest.namespace, "labels": labels, "annotations": annotations}
        out[into.cluster].append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": meta,
                "spec": {"ports": [{"name": p.name, "port": p.port, "protocol": p.protocol} for p in dest.ports]},
            }
        )
        if not remote_discovery:
            out[into.cluster].append(_endpoints(name, dest.namespace, home))
    return dict(out)


def _endpoints(name: str, namespace: str, home: Mesh) -> dict[str, Any]:
    """Endpoints at the remote gateway; none when it has no address (the mirror then has no endpoint)."""
    gateways = sorted(
        (g for g in home.gateways if g.kind == GatewayKind.LINKERD_GATEWAY and g.address),
        key=lambda g: (g.namespace, g.service),
    )
    subsets: list[dict[str, Any]] = []
    if gateways:
        g = gateways[0]
        subsets.append({"addresses": [{"ip": g.address}], "ports": [{"port": g.port or 4143}]})
    meta = {"name": name, "namespace": namespace, "annotations": {}}
    return {"apiVersion": "v1", "kind": "Endpoints", "metadata": meta, "subsets": subsets}
