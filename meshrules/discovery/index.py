"""One pass over a cluster's objects into the lookups discovery needs.

Every later step asks "the ConfigMap `istio` in `istio-system`" or "the Services of namespace
`bookinfo`"; answering from these dictionaries keeps discovery linear in the number of objects.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from meshrules.model.source import KubeObject

# Kinds whose pod template makes a workload (spec §2); bare Pods are handled apart.
CONTROLLER_KINDS = ("Deployment", "StatefulSet", "DaemonSet")
# Only these kinds matter to discovery; everything else a snapshot holds is passed over.
_INDEXED_KINDS = frozenset(
    {
        *CONTROLLER_KINDS,
        "Pod",
        "Service",
        "ConfigMap",
        "Namespace",
        "Node",
        "MutatingWebhookConfiguration",
    }
)


@dataclass(slots=True)
class ClusterIndex:
    """The objects of one cluster that discovery reads, grouped for direct lookup."""

    cluster: str
    namespaces: dict[str, KubeObject] = field(default_factory=dict)
    # kind -> namespace -> objects, in input order.
    by_kind_ns: dict[str, dict[str, list[KubeObject]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list))
    )
    # (kind, namespace, name) -> object.
    by_name: dict[tuple[str, str, str], KubeObject] = field(default_factory=dict)
    # Namespace name -> its string-valued labels / annotations (read once; asked once per workload).
    ns_labels: dict[str, Mapping[str, str]] = field(default_factory=dict)
    ns_annotations: dict[str, Mapping[str, str]] = field(default_factory=dict)

    @classmethod
    def build(cls, cluster: str, objects: Iterable[KubeObject]) -> ClusterIndex:
        """Index ``objects`` (of one cluster); core-group objects only, by kind."""
        index = cls(cluster=cluster)
        for obj in objects:
            kind = obj.kind
            if kind not in _INDEXED_KINDS:
                continue
            if kind == "Namespace":
                index.namespaces[obj.name] = obj
                index.ns_labels[obj.name] = _strings(obj.labels)
                index.ns_annotations[obj.name] = _strings(obj.annotations)
            index.by_kind_ns[kind][obj.namespace].append(obj)
            index.by_name[(kind, obj.namespace, obj.name)] = obj
        return index

    def get(self, kind: str, namespace: str, name: str) -> KubeObject | None:
        """The object of ``kind`` named ``namespace/name``, if the cluster has it."""
        return self.by_name.get((kind, namespace, name))

    def in_namespace(self, kind: str, namespace: str) -> list[KubeObject]:
        """Objects of ``kind`` in ``namespace``, in input order."""
        return self.by_kind_ns.get(kind, {}).get(namespace, [])

    def all(self, kind: str) -> Iterable[KubeObject]:
        """Every object of ``kind``, namespace by namespace in sorted order."""
        per_ns: Mapping[str, list[KubeObject]] = self.by_kind_ns.get(kind, {})
        for namespace in sorted(per_ns):
            yield from per_ns[namespace]

    def namespace_labels(self, namespace: str) -> Mapping[str, str]:
        """String labels of the Namespace object (empty when the snapshot does not hold it)."""
        return self.ns_labels.get(namespace, _EMPTY)

    def namespace_annotations(self, namespace: str) -> Mapping[str, str]:
        """String annotations of the Namespace object (empty when the snapshot does not hold it)."""
        return self.ns_annotations.get(namespace, _EMPTY)


_EMPTY: Mapping[str, str] = {}


def _strings(raw: object) -> Mapping[str, str]:
    # Non-string values cannot be what an injection setting means; Kubernetes refuses them anyway.
    if not isinstance(raw, Mapping):
        return _EMPTY
    return {k: v for k, v in raw.items() if isinstance(k, str) and isinstance(v, str)}
