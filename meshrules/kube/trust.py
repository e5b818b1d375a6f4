"""The trust package's `TrustCluster` on a live cluster: what the agent writes its CA objects through.

Reads and writes go through the `Cluster` interface with the apply rules of every other writer:
a Secret or ConfigMap is written (server-side apply, field manager `meshrules`) or deleted only
when it does not exist or carries `meshrules.io/owner`; a mesh CA Secret a user created (Istio's
"plug in CA certificates" `cacerts`, say) is refused with a clear error, never overwritten. Key
material passes through here in memory only; it is never logged and `SecretObject.__repr__`
hides it.

What a mesh *serves* is approximated from what its control plane publishes: Istio's bundle is the
`istio-ca-root-cert` ConfigMap istiod copies `root-cert.pem` into (it lags the `cacerts` Secret
until istiod reloads); Linkerd proxies read `linkerd-identity-trust-roots`. The issuing root is
the one the written issuer chains to — live workloads' certificates are not inspected.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from meshrules.emit.naming import is_owned
from meshrules.errors import ClusterError, Location
from meshrules.kube import resources as R
from meshrules.kube.apply import with_owner
from meshrules.kube.cluster import NOT_OWNED, Cluster
from meshrules.model.common import MANAGEMENT_NAMESPACE
from meshrules.model.discovery import MeshType
from meshrules.trust import ConfigMapObject, MeshIdentity, ReportedChain, SecretObject, bundle_fingerprints, read_bundle
from meshrules.trust import issuer_root as written_issuer_root
from meshrules.trust.objects import ISTIO_ROOT_CERT, LINKERD_BUNDLE, LINKERD_TRUST_ROOTS, split_bundle

# istiod copies its root certificate into this ConfigMap in every namespace (key `root-cert.pem`).
ISTIO_PUBLISHED_ROOTS = "istio-ca-root-cert"


class LiveTrustCluster:
    """`meshrules.trust.TrustCluster` over a `Cluster`."""

    def __init__(self, cluster: Cluster, owner: str = MANAGEMENT_NAMESPACE) -> None:
        self.cluster = cluster
        self.owner = owner

    @property
    def name(self) -> str:
        """The cluster's name."""
        return self.cluster.name

    def get_secret(self, namespace: str, name: str) -> SecretObject | None:
        """The Secret with its data decoded, or None."""
        obj = self.cluster.get(R.SECRET, name, namespace)
        if obj is None:
            return None
        data = {k: _decode(v) for k, v in (obj.get("data") or {}).items()}
        return SecretObject(namespace, name, data, str(obj.get("type") or "Opaque"), _labels(obj))

    def put_secret(self, secret: SecretObject) -> None:
        """Create or replace a Secret meshrules owns (refused for a user's Secret of that name)."""
        self._check_owned(R.SECRET, secret.namespace, secret.name)
        self.cluster.apply(with_owner(secret.manifest(), self.owner), force=True)

    def delete_secret(self, namespace: str, name: str) -> None:
        """Delete a Secret meshrules owns; absent is fine; a user's Secret is refused."""
        current = self._check_owned(R.SECRET, namespace, name)
        if current is not None:
            rv = str((current.get("metadata") or {}).get("resourceVersion", ""))
            self.cluster.delete(R.SECRET, name, namespace, resource_version=rv)

    def get_config_map(self, namespace: str, name: str) -> ConfigMapObject | None:
        """The ConfigMap, or None."""
        obj = self.cluster.get(R.CONFIG_MAP, name, namespace)
        if obj is None:
            return None
        data = {str(k): str(v) for k, v in (obj.get("data") or {}).items()}
        return ConfigMapObject(namespace, name, data, _labels(obj))

    def put_config_map(self, config_map: ConfigMapObject) -> None:
        """Create or replace a ConfigMap meshrules owns."""
        self._check_owned(R.CONFIG_MAP, config_map.namespace, config_map.name)
        self.cluster.apply(with_owner(config_map.manifest(), self.owner), force=True)

    def reported_chain(self, mesh: MeshIdentity) -> ReportedChain | None:
        """The bundle the mesh's control plane publishes and the root its written issuer chains to."""
        if mesh.mesh_type is MeshType.ISTIO:
            published = self.get_config_map(mesh.namespace, ISTIO_PUBLISHED_ROOTS)
            text = published.data.get(ISTIO_ROOT_CERT, "") if published else ""
        else:
            published = self.get_config_map(mesh.namespace, LINKERD_TRUST_ROOTS)
            text = published.data.get(LINKERD_BUNDLE, "") if published else ""
        if not text:
            return None
        # The roots to walk the issuer up to: Linkerd's `crt.pem` stops below the root.
        roots = (*split_bundle(text), *read_bundle(self, mesh))
        return ReportedChain(bundle=bundle_fingerprints(text), issuer_root=written_issuer_root(self, mesh, roots))

    def _check_owned(self, res: R.ApiResource, namespace: str, name: str) -> Mapping[str, Any] | None:
        current = self.cluster.get(res, name, namespace)
        if current is not None and not is_owned(current, self.owner):
            raise ClusterError(
                f"{res.kind} `{namespace}/{name}` exists and meshrules does not own it",
                code=NOT_OWNED,
                location=Location(cluster=self.cluster.name, kind=res.kind, namespace=namespace, name=name),
                hint=f"meshrules never overwrites it; move it away, or label it `meshrules.io/owner: {self.owner}`",
            )
        return current


def _decode(value: Any) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except binascii.Error:
        return b""


def _labels(obj: Mapping[str, Any]) -> dict[str, str]:
    return dict(((obj.get("metadata") or {}).get("labels")) or {})
