"""The cluster interface trust works through, and nothing more.

Trust logic is pure; what it needs of a cluster is this small `TrustCluster` Protocol: read and
write a Secret or a ConfigMap in a namespace, and say what chain a mesh currently serves. The live
implementation (kubernetes client, server-side apply) belongs to `meshrules.kube`; the in-memory
`FakeCluster` of `meshrules.trust.fake` serves tests and the offline `trust rotate`.
"""

from __future__ import annotations

from typing import Protocol

from meshrules.discovery.trust_bundle import ReportedChain
from meshrules.trust.mesh import MeshIdentity
from meshrules.trust.objects import ConfigMapObject, SecretObject


class TrustCluster(Protocol):
    """One cluster, as the trust agent and the rotation see it.

    Writes replace the whole object (the live implementation applies it with field manager
    `meshrules`). ``reported_chain`` is what the mesh *serves* — the roots its proxies trust and the
    root its issuer chains to — which lags what was written until the control plane reloads its CA
    and the workloads have certificates from it; None when the mesh reports nothing yet.
    """

    def get_secret(self, namespace: str, name: str) -> SecretObject | None:
        """The Secret, or None when it does not exist."""
        ...

    def put_secret(self, secret: SecretObject) -> None:
        """Create or replace a Secret."""
        ...

    def delete_secret(self, namespace: str, name: str) -> None:
        """Delete a Secret; deleting one that does not exist is not an error."""
        ...

    def get_config_map(self, namespace: str, name: str) -> ConfigMapObject | None:
        """The ConfigMap, or None when it does not exist."""
        ...

    def put_config_map(self, config_map: ConfigMapObject) -> None:
        """Create or replace a ConfigMap."""
        ...

    def reported_chain(self, mesh: MeshIdentity) -> ReportedChain | None:
        """What ``mesh`` serves now, or None when it reports nothing yet."""
        ...
