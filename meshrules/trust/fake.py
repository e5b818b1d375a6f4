"""An in-memory `TrustCluster`: for tests, and for the offline `meshrules trust rotate`.

Meshes in a fake cluster either serve what is written at once (``auto_reload=True``), or keep
serving what they loaded at their last ``reload(mesh)`` — a control plane that has not yet picked
up its new CA, or workloads still holding certificates from the old one. Listeners run after every
change, which is how tests check an invariant "at every instant" of a rotation.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from meshrules.discovery.trust_bundle import ReportedChain
from meshrules.trust.agent import written_chain
from meshrules.trust.mesh import MeshIdentity
from meshrules.trust.objects import ConfigMapObject, SecretObject

Listener = Callable[["FakeCluster"], None]


class FakeCluster:
    """A cluster held in dictionaries, implementing `TrustCluster`."""

    def __init__(self, name: str, *, auto_reload: bool = True) -> None:
        self.name = name
        self.auto_reload = auto_reload
        self.secrets: dict[tuple[str, str], SecretObject] = {}
        self.config_maps: dict[tuple[str, str], ConfigMapObject] = {}
        self.served: dict[str, ReportedChain] = {}
        self.listeners: list[Listener] = []

    def __repr__(self) -> str:
        return f"FakeCluster({self.name!r}, secrets={len(self.secrets)}, configMaps={len(self.config_maps)})"

    def _changed(self) -> None:
        for listener in self.listeners:
            listener(self)

    def get_secret(self, namespace: str, name: str) -> SecretObject | None:
        """The Secret, or None."""
        return self.secrets.get((namespace, name))

    def put_secret(self, secret: SecretObject) -> None:
        """Create or replace a Secret."""
        self.secrets[(secret.namespace, secret.name)] = secret
        self._changed()

    def delete_secret(self, namespace: str, name: str) -> None:
        """Delete a Secret if it exists."""
        if self.secrets.pop((namespace, name), None) is not None:
            self._changed()

    def get_config_map(self, namespace: str, name: str) -> ConfigMapObject | None:
        """The ConfigMap, or None."""
        return self.config_maps.get((namespace, name))

    def put_config_map(self, config_map: ConfigMapObject) -> None:
        """Create or replace a ConfigMap."""
        self.config_maps[(config_map.namespace, config_map.name)] = config_map
        self._changed()

    def reported_chain(self, mesh: MeshIdentity) -> ReportedChain | None:
        """What ``mesh`` serves: what is written (auto-reload), else what it loaded at its last reload."""
        if self.auto_reload:
            return written_chain(self, mesh)
        return self.served.get(mesh.name)

    def reload(self, mesh: MeshIdentity) -> None:
        """The mesh picks up what is written now (istiod reloads `cacerts`, proxies restart)."""
        self.served[mesh.name] = written_chain(self, mesh)
        self._changed()

    def to_json(self) -> dict[str, Any]:
        """The cluster as JSON-ready data; it holds keys, so whoever stores it writes it 0600."""
        return {
            "name": self.name,
            "secrets": [
                {
                    "namespace": s.namespace,
                    "name": s.name,
                    "type": s.type,
                    "labels": dict(s.labels),
                    "data": {k: base64.b64encode(v).decode() for k, v in sorted(s.data.items())},
                }
                for _, s in sorted(self.secrets.items())
            ],
            "configMaps": [
                {"namespace": c.namespace, "name": c.name, "labels": dict(c.labels), "data": dict(c.data)}
                for _, c in sorted(self.config_maps.items())
            ],
            "served": {
                name: {"bundle": sorted(chain.bundle), "issuerRoot": chain.issuer_root}
                for name, chain in sorted(self.served.items())
            },
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], *, auto_reload: bool = True) -> FakeCluster:
        """The inverse of `to_json`."""
        cluster = cls(str(data["name"]), auto_reload=auto_reload)
        for s in data.get("secrets", []):
            decoded = {k: base64.b64decode(v) for k, v in s["data"].items()}
            secret = SecretObject(s["namespace"], s["name"], decoded, s["type"], dict(s.get("labels", {})))
            cluster.secrets[(secret.namespace, secret.name)] = secret
        for c in data.get("configMaps", []):
            cm = ConfigMapObject(c["namespace"], c["name"], dict(c["data"]), dict(c.get("labels", {})))
            cluster.config_maps[(cm.namespace, cm.name)] = cm
        for name, served in data.get("served", {}).items():
            cluster.served[name] = ReportedChain(frozenset(served["bundle"]), served.get("issuerRoot"))
        return cluster
