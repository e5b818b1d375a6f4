"""Istio control planes (one `Mesh` per istiod revision) and their east-west and ingress gateways.

An Istio mesh is a Deployment `istiod` or `istiod-<revision>` running the `pilot` image (spec §2).
Its trust settings come from the `mesh` key of ConfigMap `istio` (`istio-<revision>`), its roots
from ConfigMap `istio-ca-root-cert`. Revision tags (`istioctl tag set`) are read from the
MutatingWebhookConfigurations that carry them, so `istio.io/rev: prod` finds the revision `prod`
points to. Workload injection (`workloads.py`) asks `IstioMeshes.mesh_for` which mesh a revision is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from meshrules.discovery.findings import GATEWAY_WITHOUT_MESH, Findings
from meshrules.discovery.gateways import eastwest_port, gateways_for, ingress_port
from meshrules.discovery.index import ClusterIndex
from meshrules.discovery.meshconfig import read_embedded, read_trust_roots
from meshrules.discovery.pods import Container, PodSource
from meshrules.discovery.services import ServiceInfo
from meshrules.discovery.shapes import Reader, image_tag
from meshrules.model.discovery import DEFAULT_TRUST_DOMAIN, Gateway, GatewayKind, Mesh, MeshType

DEFAULT_REVISION = "default"
ISTIOD = "istiod"
REV_LABEL = "istio.io/rev"
TAG_LABEL = "istio.io/tag"
ROOT_CERT_CONFIGMAP = "istio-ca-root-cert"
ROOT_CERT_KEY = "root-cert.pem"
# istiod accepts peers of any trust domain when this is set (spec §2: acceptedTrustDomains ["*"]).
SKIP_VALIDATE_TRUST_DOMAIN = "PILOT_SKIP_VALIDATE_TRUST_DOMAIN"
DNS_CAPTURE = "ISTIO_META_DNS_CAPTURE"

# The `istio` label Istio's gateway charts and istioctl put on gateway pods.
GATEWAY_LABEL = "istio"
MESH_GATEWAYS = {"eastwestgateway": GatewayKind.EASTWEST, "ingressgateway": GatewayKind.INGRESS}
# Egress gateways are Istio proxies too, but not mesh gateways callers reach; never Workloads.
ALL_GATEWAY_LABELS = frozenset({*MESH_GATEWAYS, "egressgateway"})
# Pods injected with Istio's `gateway` template are gateways whatever their labels say.
INJECT_TEMPLATES = "inject.istio.io/templates"


@dataclass(frozen=True, slots=True)
class IstioMeshes:
    """The Istio meshes of one cluster, by revision, with the revision tags that point at them."""

    meshes: tuple[Mesh, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)
    # (namespace, kind, name) of istiod and gateway controllers: never Workloads.
    excluded: frozenset[tuple[str, str, str]] = frozenset()

    def mesh_for(self, revision: str | None) -> Mesh | None:
        """The mesh a revision (or tag) names; None/`default` is the default revision.

        A snapshot rarely holds the webhooks that say which revision is the default, so when the
        cluster runs exactly one Istio revision, the default is that one.
        """
        rev = revision or DEFAULT_REVISION
        rev = self.tags.get(rev, rev)
        for mesh in self.meshes:
            if mesh.revision == rev:
                return mesh
        if rev == DEFAULT_REVISION and len(self.meshes) == 1:
            return self.meshes[0]
        return None


def discover_istio(
    cluster: str,
    index: ClusterIndex,
    controllers: Sequence[PodSource],
    services: Mapping[str, Sequence[ServiceInfo]],
    findings: Findings,
) -> IstioMeshes:
    """Find the istiod revisions of ``cluster``, their configuration and their gateways."""
    drafts: list[Mesh] = []
    excluded: set[tuple[str, str, str]] = set()
    for source in controllers:
        if source.kind != "Deployment" or not (source.name == ISTIOD or source.name.startswith(f"{ISTIOD}-")):
            continue
        pilot = next((c for c in source.containers if not c.init and "pilot" in c.image), None)
        if pilot is None:
            continue
        excluded.add(source.key)
        drafts.append(_mesh(cluster, index, source, pilot, findings))
    drafts.sort(key=lambda m: m.name)
    draft = IstioMeshes(meshes=tuple(drafts), tags=_revision_tags(index, findings))

    gateways: dict[str, list[Gateway]] = {}
    for source in controllers:
        role = source.labels.get(GATEWAY_LABEL) or _str(source.obj.labels.get(GATEWAY_LABEL))
        is_gateway = role in ALL_GATEWAY_LABELS or "gateway" in source.annotations.get(INJECT_TEMPLATES, "")
        if source.kind != "Deployment" or not is_gateway:
            continue
        excluded.add(source.key)
        kind = MESH_GATEWAYS.get(role or "")
        if kind is None:
            continue
        revision = source.labels.get(REV_LABEL)
        mesh = draft.mesh_for(revision)
        if mesh is None:
            findings.add(
                GATEWAY_WITHOUT_MESH,
                source.obj,
                "spec.template.metadata.labels",
                f"{kind.value} gateway `{source.namespace}/{source.name}` uses Istio revision "
                f"`{revision or DEFAULT_REVISION}`, which has no control plane in cluster `{cluster}`",
                hint="set its `istio.io/rev` label to a revision istiod runs in this cluster",
            )
            continue
        port_rule = eastwest_port if kind is GatewayKind.EASTWEST else ingress_port
        found = gateways_for(source, kind, services.get(source.namespace, ()), port_rule, findings)
        gateways.setdefault(mesh.name, []).extend(found)

    meshes = tuple(
        m.model_copy(
            update={
                "gateways": tuple(
                    sorted(gateways.get(m.name, ()), key=lambda g: (g.kind.value, g.namespace, g.service))
                )
            }
        )
        for m in drafts
    )
    return IstioMeshes(meshes=meshes, tags=draft.tags, excluded=frozenset(excluded))


def _mesh(cluster: str, index: ClusterIndex, source: PodSource, pilot: Container, findings: Findings) -> Mesh:
    ns = source.namespace
    if source.name.startswith(f"{ISTIOD}-"):
        revision = source.name[len(ISTIOD) + 1 :]
    else:
        revision = source.labels.get(REV_LABEL) or _str(source.obj.labels.get(REV_LABEL)) or DEFAULT_REVISION
    cm_name = "istio" if revision == DEFAULT_REVISION else f"istio-{revision}"
    configmap = index.get("ConfigMap", ns, cm_name) or index.get("ConfigMap", ns, "istio")
    config = read_embedded(configmap, "mesh", findings, missing_about=source.obj, expected_name=cm_name)

    trust_domain = config.text("trustDomain") or DEFAULT_TRUST_DOMAIN
    # Two different things (istiod: `TrustDomainsForValidation` vs `trustdomain.NewBundle`):
    # mTLS accepts peers of its own domain, its aliases and the domains `caCertificates` roots
    # verify; authorization rewrites principals through `trustDomainAliases` only.
    aliases = tuple(sorted({a for a in config.strings("trustDomainAliases") if a != trust_domain}))
    ca_domains: set[str] = set()
    for i, ca in enumerate(config.objects("caCertificates")):
        value = ca.get("trustDomains")
        if isinstance(value, list):
            ca_domains.update(d for d in value if isinstance(d, str))
        elif value is not None:
            config.wrong(f"caCertificates[{i}].trustDomains", "a list")
    if _env(source, pilot, findings).get(SKIP_VALIDATE_TRUST_DOMAIN, "").lower() == "true":
        accepted: tuple[str, ...] = ("*",)
    else:
        accepted = tuple(sorted({trust_domain, *aliases, *ca_domains}))

    dns = config.get(f"defaultConfig.proxyMetadata.{DNS_CAPTURE}")
    roots = read_trust_roots(index.get("ConfigMap", ns, ROOT_CERT_CONFIGMAP), ROOT_CERT_KEY, findings)
    return Mesh(
        name=f"{source.name}-{ns}-{cluster}",
        type=MeshType.ISTIO,
        cluster=cluster,
        namespace=ns,
        control_plane=source.name,
        version=image_tag(pilot.image),
        revision=revision,
        root_namespace=config.text("rootNamespace") or ns,
        trust_domain=trust_domain,
        accepted_trust_domains=accepted,
        trust_domain_aliases=aliases,
        dns_capture=dns is True or (isinstance(dns, str) and dns.lower() == "true"),
        trust_roots=roots,
    )


def _env(source: PodSource, container: Container, findings: Findings) -> dict[str, str]:
    """Literal environment values of a container (`valueFrom` entries have no value to read)."""
    reader = Reader(source.obj, findings)
    env: dict[str, str] = {}
    for item in reader.objects("env", container.raw, container.path):
        name, value = item.get("name"), item.get("value")
        if isinstance(name, str) and isinstance(value, str):
            env[name] = value
    return env


def _revision_tags(index: ClusterIndex, findings: Findings) -> dict[str, str]:
    """Revision tags: webhooks labelled `istio.io/tag: <tag>` and `istio.io/rev: <revision>`."""
    tags: dict[str, str] = {}
    for hook in index.all("MutatingWebhookConfiguration"):
        labels = Reader(hook, findings).strings("metadata.labels")
        tag, rev = labels.get(TAG_LABEL), labels.get(REV_LABEL)
        if tag and rev:
            tags[tag] = rev
    return tags


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None
