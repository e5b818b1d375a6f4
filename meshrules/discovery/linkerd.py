"""Linkerd control planes (one `Mesh` per control-plane namespace) and the multicluster gateway.

A Linkerd mesh is a Deployment `linkerd-destination` (or the older `linkerd-controller`) in a
namespace labelled `linkerd.io/is-control-plane: "true"` or named `linkerd` (spec §2). Its trust
domain and issuer scheme come from the `values` key of ConfigMap `linkerd-config`, its roots from
ConfigMap `linkerd-identity-trust-roots`. The control-plane namespace and Linkerd's extension
namespaces (viz, multicluster, ...) are system namespaces: nothing in them is a Workload.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from meshrules.discovery.findings import GATEWAY_WITHOUT_MESH, Findings
from meshrules.discovery.gateways import gateways_for, linkerd_gateway_port
from meshrules.discovery.identity import pem_fingerprints
from meshrules.discovery.index import ClusterIndex
from meshrules.discovery.meshconfig import EmbeddedConfig, read_embedded, read_trust_roots
from meshrules.discovery.pods import PodSource
from meshrules.discovery.services import ServiceInfo
from meshrules.discovery.shapes import image_tag
from meshrules.model.discovery import DEFAULT_TRUST_DOMAIN, Gateway, GatewayKind, Mesh, MeshType

DEFAULT_NAMESPACE = "linkerd"
CONTROL_PLANE_LABEL = "linkerd.io/is-control-plane"
EXTENSION_LABEL = "linkerd.io/extension"
CONTROL_PLANE_NS_LABEL = "linkerd.io/control-plane-ns"
# Preferred first: `linkerd-controller` is the pre-2.9 name of the destination controller.
CONTROL_PLANE_DEPLOYMENTS = ("linkerd-destination", "linkerd-controller")
CONFIG_CONFIGMAP = "linkerd-config"
ROOTS_CONFIGMAP = "linkerd-identity-trust-roots"
ROOTS_KEY = "ca-bundle.crt"
DEFAULT_ISSUER_SCHEME = "linkerd.io/tls"
GATEWAY_NAMESPACE = "linkerd-multicluster"
GATEWAY_DEPLOYMENT = "linkerd-gateway"


@dataclass(frozen=True, slots=True)
class LinkerdMeshes:
    """The Linkerd meshes of one cluster and the namespaces that hold no Workloads."""

    meshes: tuple[Mesh, ...] = ()
    system_namespaces: frozenset[str] = frozenset()
    excluded: frozenset[tuple[str, str, str]] = frozenset()

    def mesh_for(self, control_plane_namespace: str | None) -> Mesh | None:
        """The mesh of a control-plane namespace; None means "the cluster's Linkerd" (`linkerd` first)."""
        if control_plane_namespace:
            return next((m for m in self.meshes if m.namespace == control_plane_namespace), None)
        if not self.meshes:
            return None
        return next((m for m in self.meshes if m.namespace == DEFAULT_NAMESPACE), self.meshes[0])


def discover_linkerd(
    cluster: str,
    index: ClusterIndex,
    controllers: Sequence[PodSource],
    services: Mapping[str, Sequence[ServiceInfo]],
    findings: Findings,
) -> LinkerdMeshes:
    """Find the Linkerd control planes of ``cluster``, their configuration and the multicluster gateway."""
    cp_namespaces = {DEFAULT_NAMESPACE} | {
        name for name in index.namespaces if index.namespace_labels(name).get(CONTROL_PLANE_LABEL) == "true"
    }
    extension_namespaces = {name for name in index.namespaces if index.namespace_labels(name).get(EXTENSION_LABEL)}
    planes: dict[str, PodSource] = {}
    for source in controllers:
        if source.kind != "Deployment" or source.name not in CONTROL_PLANE_DEPLOYMENTS:
            continue
        if source.namespace not in cp_namespaces:
            continue
        current = planes.get(source.namespace)
        rank = CONTROL_PLANE_DEPLOYMENTS.index
        if current is None or rank(source.name) < rank(current.name):
            planes[source.namespace] = source
    drafts = sorted((_mesh(cluster, index, s, findings) for s in planes.values()), key=lambda m: m.name)
    draft = LinkerdMeshes(meshes=tuple(drafts))

    excluded: set[tuple[str, str, str]] = set()
    gateways: dict[str, list[Gateway]] = {}
    gateway = next(
        (
            s
            for s in controllers
            if s.kind == "Deployment" and s.namespace == GATEWAY_NAMESPACE and s.name == GATEWAY_DEPLOYMENT
        ),
        None,
    )
    if gateway is not None:
        excluded.add(gateway.key)
        mesh = draft.mesh_for(gateway.labels.get(CONTROL_PLANE_NS_LABEL))
        if mesh is None:
            findings.add(
                GATEWAY_WITHOUT_MESH,
                gateway.obj,
                "",
                f"Linkerd gateway `{gateway.name}` has no Linkerd control plane in cluster `{cluster}`",
                hint="install the Linkerd control plane, or include it in the snapshot",
            )
        else:
            found = gateways_for(
                gateway,
                GatewayKind.LINKERD_GATEWAY,
                services.get(gateway.namespace, ()),
                linkerd_gateway_port,
                findings,
            )
            gateways.setdefault(mesh.name, []).extend(found)

    meshes = tuple(
        m.model_copy(update={"gateways": tuple(sorted(gateways.get(m.name, ()), key=_gateway_order))}) for m in drafts
    )
    system = frozenset(m.namespace for m in meshes) | frozenset(cp_namespaces & set(index.namespaces))
    return LinkerdMeshes(meshes=meshes, system_namespaces=system | extension_namespaces, excluded=frozenset(excluded))


def _gateway_order(gateway: Gateway) -> tuple[str, str]:
    return (gateway.namespace, gateway.service)


def _mesh(cluster: str, index: ClusterIndex, source: PodSource, findings: Findings) -> Mesh:
    ns = source.namespace
    config = read_embedded(
        index.get("ConfigMap", ns, CONFIG_CONFIGMAP),
        "values",
        findings,
        missing_about=source.obj,
        expected_name=CONFIG_CONFIGMAP,
    )
    trust_domain = config.text("identityTrustDomain") or DEFAULT_TRUST_DOMAIN
    roots_cm = index.get("ConfigMap", ns, ROOTS_CONFIGMAP)
    roots = read_trust_roots(roots_cm, ROOTS_KEY, findings) if roots_cm is not None else _values_roots(config)
    return Mesh(
        name=f"{source.name}-{ns}-{cluster}",
        type=MeshType.LINKERD,
        cluster=cluster,
        namespace=ns,
        control_plane=source.name,
        version=_version(source, config),
        trust_domain=trust_domain,
        accepted_trust_domains=(trust_domain,),
        trust_roots=roots,
        issuer_scheme=config.text("identity.issuer.scheme") or DEFAULT_ISSUER_SCHEME,
    )


def _version(source: PodSource, config: EmbeddedConfig) -> str | None:
    """The controller image tag, else `linkerdVersion` from the install values."""
    container = next((c for c in source.containers if c.name == "destination"), None) or next(
        (c for c in source.containers if "controller" in c.image), None
    )
    tag = image_tag(container.image) if container is not None else None
    return tag or config.text("linkerdVersion")


def _values_roots(config: EmbeddedConfig) -> tuple[str, ...]:
    """Linkerd before 2.13 kept its trust anchors only in `identityTrustAnchorsPEM` of the values."""
    text = config.text("identityTrustAnchorsPEM")
    if not text:
        return ()
    fingerprints, problems = pem_fingerprints(text)
    for problem in problems:
        config.wrong("identityTrustAnchorsPEM", f"a PEM certificate bundle ({problem})")
    return fingerprints
