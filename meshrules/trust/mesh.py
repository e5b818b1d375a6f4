"""The mesh a CA certificate is for: its type, where its control plane runs, and what it may be issued.

A mesh's intermediate CA is judged against this record, never against what a CSR claims: Istio's
istiod signs workload certificates as `spiffe://<trustDomain>/ns/<ns>/sa/<istiod-sa>`'s CA, and
Linkerd's identity controller signs as `identity.<ns>.<trustDomain>` (the name `linkerd check`
verifies the issuer certificate against).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from meshrules.model.discovery import DEFAULT_TRUST_DOMAIN, Mesh, MeshType
from meshrules.trust.keys import KeyType

ISTIOD_SERVICE_ACCOUNT = "istiod"

# What each mesh's control plane can load as its CA key. Linkerd's identity controller and proxies
# use ECDSA P-256 throughout (its install and docs generate nothing else), so an RSA issuer would
# be refused at startup; istiod loads RSA and ECDSA CA keys alike.
ALLOWED_KEY_TYPES: dict[MeshType, frozenset[KeyType]] = {
    MeshType.ISTIO: frozenset(KeyType),
    MeshType.LINKERD: frozenset({KeyType.ECDSA_P256}),
}


class IssuerScheme(StrEnum):
    """How Linkerd reads its issuer Secret (`identity.issuer.scheme`)."""

    LINKERD_TLS = "linkerd.io/tls"
    KUBERNETES_TLS = "kubernetes.io/tls"


@dataclass(frozen=True, slots=True)
class MeshIdentity:
    """A mesh as trust sees it: name, type, cluster, control-plane namespace and trust domain.

    ``service_account`` is istiod's (`istiod`, or `istiod-<revision>`); ``issuer_scheme`` is
    Linkerd's. Each is ignored for the other mesh type.
    """

    name: str
    mesh_type: MeshType
    cluster: str
    namespace: str
    trust_domain: str = DEFAULT_TRUST_DOMAIN
    service_account: str = ISTIOD_SERVICE_ACCOUNT
    issuer_scheme: IssuerScheme = IssuerScheme.LINKERD_TLS

    @property
    def identity(self) -> str:
        """The one name this mesh's intermediate CA may carry (its SAN)."""
        if self.mesh_type is MeshType.ISTIO:
            return f"spiffe://{self.trust_domain}/ns/{self.namespace}/sa/{self.service_account}"
        return f"identity.{self.namespace}.{self.trust_domain}"

    @property
    def san(self) -> str:
        """The SAN in `URI:...` / `DNS:...` form, as `pem.subject_alt_names` prints SANs."""
        return f"URI:{self.identity}" if self.mesh_type is MeshType.ISTIO else f"DNS:{self.identity}"

    @property
    def allowed_key_types(self) -> frozenset[KeyType]:
        """The intermediate key types this mesh's control plane can use."""
        return ALLOWED_KEY_TYPES[self.mesh_type]

    @classmethod
    def of(cls, mesh: Mesh) -> MeshIdentity:
        """The trust view of a discovered `Mesh` (an Istio revision's istiod runs as `istiod-<rev>`)."""
        sa = ISTIOD_SERVICE_ACCOUNT
        if mesh.type is MeshType.ISTIO and mesh.revision and mesh.revision != "default":
            sa = f"{ISTIOD_SERVICE_ACCOUNT}-{mesh.revision}"
        scheme = IssuerScheme.LINKERD_TLS
        if mesh.issuer_scheme == IssuerScheme.KUBERNETES_TLS.value:
            scheme = IssuerScheme.KUBERNETES_TLS
        return cls(
            name=mesh.name,
            mesh_type=mesh.type,
            cluster=mesh.cluster,
            namespace=mesh.namespace,
            trust_domain=mesh.trust_domain,
            service_account=sa,
            issuer_scheme=scheme,
        )

    def to_wire(self) -> dict[str, str]:
        """The record as JSON-ready camelCase data (the offline rotation state keeps meshes so)."""
        return {
            "name": self.name,
            "type": self.mesh_type.value,
            "cluster": self.cluster,
            "namespace": self.namespace,
            "trustDomain": self.trust_domain,
            "serviceAccount": self.service_account,
            "issuerScheme": self.issuer_scheme.value,
        }

    @classmethod
    def from_wire(cls, data: dict[str, str]) -> MeshIdentity:
        """The inverse of `to_wire`."""
        return cls(
            name=data["name"],
            mesh_type=MeshType(data["type"]),
            cluster=data["cluster"],
            namespace=data["namespace"],
            trust_domain=data.get("trustDomain", DEFAULT_TRUST_DOMAIN),
            service_account=data.get("serviceAccount", ISTIOD_SERVICE_ACCOUNT),
            issuer_scheme=IssuerScheme(data.get("issuerScheme", IssuerScheme.LINKERD_TLS.value)),
        )
