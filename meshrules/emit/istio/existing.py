"""Istio config already in the clusters: what meshrules must not fight or overwrite (spec §1.1, §4).

Place: read by `emit_istio` before rendering. A user-owned VirtualService, DestinationRule or
ServiceEntry for a host meshrules would configure wins: Istio merges two objects for one host
unpredictably (the oldest DestinationRule is used, VirtualServices merge only on gateways), so
meshrules reports the conflict instead of emitting its own. Objects labelled with meshrules'
owner label are its own earlier output and are not user config. Names of user objects are
reserved: meshrules never writes an object with the same kind, namespace and name.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from meshrules.emit.naming import is_owned
from meshrules.errors import Diagnostic, Severity
from meshrules.model.discovery import DEFAULT_CLUSTER_DOMAIN
from meshrules.model.source import KubeObject

NETWORKING_GROUP = "networking.istio.io"
CODE_USER_VIRTUAL_SERVICE = "MR0320"
CODE_USER_DESTINATION_RULE = "MR0321"
CODE_USER_SERVICE_ENTRY = "MR0322"


def resolve_host(host: str, namespace: str, cluster_domain: str) -> str:
    """A host as Istio reads it in a config object of ``namespace``: short names get the FQDN."""
    # Istio expands only dot-less names (ResolveShortnameToFQDN); `reviews.bookinfo` stays as written.
    return host if "." in host or host == "*" else f"{host}.{namespace}.svc.{cluster_domain}"


class ExistingConfig:
    """User-owned Istio networking objects per cluster, indexed by host and by name."""

    def __init__(self, existing: Mapping[str, Iterable[KubeObject]], cluster_domains: Mapping[str, str], owner: str):
        self._by_host: dict[tuple[str, str, str], list[KubeObject]] = defaultdict(list)
        self._names: set[tuple[str, str, str, str]] = set()
        for cluster, objects in existing.items():
            domain = cluster_domains.get(cluster, DEFAULT_CLUSTER_DOMAIN)
            for obj in objects:
                if is_owned(obj.body, owner):
                    continue
                self._names.add((cluster, obj.kind, obj.namespace, obj.name))
                if obj.group != NETWORKING_GROUP:
                    continue
                for host in _hosts(obj):
                    self._by_host[(cluster, obj.kind, resolve_host(host, obj.namespace, domain))].append(obj)
        for found in self._by_host.values():
            found.sort(key=lambda o: (o.namespace, o.name))

    def for_host(self, cluster: str, kind: str, host: str) -> KubeObject | None:
        """The first (by namespace/name) user-owned ``kind`` configuring ``host`` in ``cluster``."""
        found = self._by_host.get((cluster, kind, host))
        return found[0] if found else None

    def is_taken(self, cluster: str, kind: str, namespace: str, name: str) -> bool:
        """Whether a user object of that kind already has that namespace and name."""
        return (cluster, kind, namespace, name) in self._names


def _hosts(obj: KubeObject) -> list[str]:
    spec = obj.spec
    if obj.kind == "DestinationRule":
        host = spec.get("host")
        return [host] if isinstance(host, str) else []
    if obj.kind == "VirtualService" and not _applies_to_sidecars(spec):
        return []  # bound to gateways only: sidecars, where meshrules routes, never see it
    if obj.kind in ("VirtualService", "ServiceEntry"):
        hosts = spec.get("hosts")
        return [h for h in hosts if isinstance(h, str)] if isinstance(hosts, list) else []
    return []


def _applies_to_sidecars(spec: Mapping[str, Any]) -> bool:
    # https://istio.io/latest/docs/reference/config/networking/virtual-service/#VirtualService-gateways:
    # no `gateways` means sidecars only; otherwise the reserved word `mesh` must be listed.
    gateways = spec.get("gateways")
    return not isinstance(gateways, list) or not gateways or "mesh" in gateways


def subset_defined(obj: KubeObject, name: str, labels: Mapping[str, str]) -> bool:
    """Whether a user DestinationRule defines subset ``name`` with exactly ``labels``."""
    subsets = obj.spec.get("subsets")
    if not isinstance(subsets, list):
        return False
    return any(_is_subset(s, name, labels) for s in subsets)


def _is_subset(subset: Any, name: str, labels: Mapping[str, str]) -> bool:
    return isinstance(subset, Mapping) and subset.get("name") == name and dict(subset.get("labels") or {}) == labels


def conflict_finding(code: str, obj: KubeObject, host: str, consequence: str) -> Diagnostic:
    """A finding that user object ``obj`` already configures ``host``, and what meshrules did."""
    return Diagnostic(
        code=code,
        severity=Severity.WARNING,
        message=f"user-owned {obj.kind} `{obj.namespace}/{obj.name}` in cluster `{obj.cluster}` already "
        f"configures host `{host}`: {consequence}",
        hint=(
            f"delete or change the {obj.kind} so meshrules can own host `{host}`, "
            "or express what it does as meshrules policies"
        ),
        location=obj.location,
        object=obj.ref(),
    )
