"""What a `why` answer takes for granted: mesh features present on the path that are not modelled.

An answer is only as good as its model, so it says where the model stops (API §6): when an
object meshrules does not simulate could change what happens to a request — an EnvoyFilter or a
WasmPlugin on a proxy on the path, a Sidecar restricting the caller's egress, a Kubernetes
NetworkPolicy around caller or destination, ambient mode — the answer carries an assumption code
(documented in `docs/codes.md`) naming it. Each is scoped the way its object applies: the
workload's namespace, or the mesh root namespace for mesh-wide objects.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

from meshrules.model.source import KubeObject

__all__ = [
    "AMBIENT_NOT_MODELLED",
    "ENVOYFILTER_NOT_MODELLED",
    "NETWORKPOLICY_NOT_MODELLED",
    "SIDECAR_EGRESS_NOT_MODELLED",
    "WASMPLUGIN_NOT_MODELLED",
    "UnmodelledObjects",
]

ENVOYFILTER_NOT_MODELLED = "ENVOYFILTER_NOT_MODELLED"
WASMPLUGIN_NOT_MODELLED = "WASMPLUGIN_NOT_MODELLED"
SIDECAR_EGRESS_NOT_MODELLED = "SIDECAR_EGRESS_NOT_MODELLED"
NETWORKPOLICY_NOT_MODELLED = "NETWORKPOLICY_NOT_MODELLED"
AMBIENT_NOT_MODELLED = "AMBIENT_NOT_MODELLED"

# (API group, kind) -> assumption, and whether the object acts on the caller (outbound) side,
# the destination (inbound) side, or both.
_KINDS: Mapping[tuple[str, str], tuple[str, str]] = {
    ("networking.istio.io", "EnvoyFilter"): (ENVOYFILTER_NOT_MODELLED, "both"),
    ("extensions.istio.io", "WasmPlugin"): (WASMPLUGIN_NOT_MODELLED, "both"),
    ("networking.istio.io", "Sidecar"): (SIDECAR_EGRESS_NOT_MODELLED, "caller"),
    ("networking.k8s.io", "NetworkPolicy"): (NETWORKPOLICY_NOT_MODELLED, "both"),
}
_AMBIENT_LABEL = "istio.io/dataplane-mode"


class UnmodelledObjects:
    """Per cluster and namespace, the objects whose effect `why` does not simulate."""

    def __init__(self, clusters: Mapping[str, Sequence[KubeObject]]) -> None:
        # (cluster, namespace) -> {(assumption, side, "Kind ns/name")}
        self._found: dict[tuple[str, str], set[tuple[str, str, str]]] = defaultdict(set)
        for cluster, objects in clusters.items():
            for obj in objects:
                hit = _KINDS.get((obj.group, obj.kind))
                if hit is not None:
                    self._found[(cluster, obj.namespace)].add((hit[0], hit[1], obj.ref()))
                elif obj.kind == "Namespace" and obj.group == "" and obj.labels.get(_AMBIENT_LABEL) == "ambient":
                    self._found[(cluster, obj.name)].add((AMBIENT_NOT_MODELLED, "both", obj.ref()))

    def on_path(
        self, side: str, cluster: str, namespaces: Iterable[str]
    ) -> list[tuple[str, str]]:
        """Assumptions (code, object) for one side (``caller`` or ``destination``) of a request."""
        out: list[tuple[str, str]] = []
        for ns in dict.fromkeys(namespaces):
            for code, where, ref in sorted(self._found.get((cluster, ns), ())):
                if where in ("both", side):
                    out.append((code, f"{ref} in {cluster}"))
        return out
