"""Workload equivalence classes: workloads no policy or mesh object can tell apart behave the same.

Everything that decides a request reads, about its caller, the cluster, the mesh, the namespace,
the identity and some pod labels; about the destination pod, the same. Which labels? Only those
some selector mentions: `sourceSelector` labels of TrafficPolicies, and in the mesh objects of the
fleet (emitted and existing) every label selector — AuthorizationPolicy/PeerAuthentication/Sidecar
`selector`, DestinationRule and ServiceEntry `workloadSelector`, VirtualService `sourceLabels`,
subset and endpoint labels, Linkerd Server `podSelector` (keys of `matchExpressions` too) and
Service selectors. Two workloads equal on all of these are interchangeable in every answer but
the names on their hops, so `describe` and `matrix` evaluate one representative per class.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from meshrules.model.discovery import Workload
from meshrules.model.policy import Policy, TrafficPolicy
from meshrules.sim.fleet import Fleet

__all__ = ["WorkloadClass", "relevant_label_keys", "workload_classes"]

# Keys under which a mapping (or list) of label selectors sits in a mesh object's spec.
_SELECTOR_MAPS = frozenset({"matchLabels", "sourceLabels"})
_LABELS_UNDER = frozenset({"workloadSelector", "subsets", "endpoints", "selector"})
_SELECTOR_KINDS = frozenset({
    "AuthorizationPolicy", "PeerAuthentication", "RequestAuthentication", "Sidecar", "DestinationRule",
    "ServiceEntry", "VirtualService", "EnvoyFilter", "WasmPlugin", "Telemetry", "Server", "Service", "Gateway",
    "WorkloadEntry",
})


@dataclass(frozen=True, slots=True)
class WorkloadClass:
    """Workloads indistinguishable to every selector: one cluster, mesh, namespace, identity, labels."""

    cluster: str
    mesh: str
    namespace: str
    identity: str
    labels: tuple[tuple[str, str], ...]
    members: tuple[str, ...]  # workload `cluster/namespace/controller`, sorted

    @property
    def representative(self) -> str:
        """The member answers are computed for (the first by name)."""
        return self.members[0]

    @property
    def name(self) -> str:
        """``cluster/ns/workload`` of the representative, ``+N`` when others share the class."""
        more = len(self.members) - 1
        return self.representative + (f" (+{more})" if more else "")

    def to_json(self) -> dict[str, Any]:
        """``{name, cluster, mesh, namespace, identity, labels, members}``."""
        return {"name": self.name, "cluster": self.cluster, "mesh": self.mesh, "namespace": self.namespace,
                "identity": self.identity, "labels": dict(self.labels), "members": list(self.members)}


def _walk(node: Any, parent: str, keys: set[str]) -> None:
    if isinstance(node, Mapping):
        for k, v in node.items():
            if k in _SELECTOR_MAPS and isinstance(v, Mapping):
                keys.update(str(x) for x in v)
            elif k == "matchExpressions" and isinstance(v, list):
                keys.update(str(e.get("key")) for e in v if isinstance(e, Mapping) and e.get("key"))
            elif k == "labels" and parent in _LABELS_UNDER and isinstance(v, Mapping):
                keys.update(str(x) for x in v)
            elif k == "selector" and isinstance(v, Mapping) and "matchLabels" not in v and all(
                    isinstance(x, str) for x in v.values()):
                keys.update(str(x) for x in v)  # a Service's (or Gateway's) plain label selector
            _walk(v, str(k), keys)
    elif isinstance(node, list):
        for item in node:
            _walk(item, parent, keys)


def relevant_label_keys(objects: Iterable[Mapping[str, Any]], policies: Iterable[Policy]) -> frozenset[str]:
    """Every pod-label key some selector of ``objects`` (mesh objects, Services) or ``policies`` mentions."""
    keys: set[str] = set()
    for obj in objects:
        if obj.get("kind") in _SELECTOR_KINDS:
            _walk(obj.get("spec"), "", keys)
    for p in policies:
        if isinstance(p, TrafficPolicy):
            for s in p.spec.source_selector:
                keys.update(s.labels)
    return frozenset(keys)


def workload_classes(fleet: Fleet, extra_keys: Iterable[str] = ()) -> list[WorkloadClass]:
    """The fleet's workloads grouped into equivalence classes, sorted by representative.

    ``extra_keys`` adds label keys (e.g. those relevant in another version of the policies, so that
    `diff` compares the same classes on both sides).
    """
    keys = relevant_label_keys((o for objs in fleet.objects.values() for o in objs), fleet.policies)
    keys |= frozenset(extra_keys)
    groups: dict[tuple[str, str, str, str, tuple[tuple[str, str], ...]], list[str]] = defaultdict(list)
    by_ref = {id(w): ref for ref, w in fleet.workload_by_ref.items()}
    for w in fleet.workloads.values():
        ref = by_ref.get(id(w))
        if ref is None:
            continue  # a second controller kind with the same name: not addressable by `--from`
        groups[class_key(w, keys)].append(ref)
    classes = [WorkloadClass(*key, tuple(sorted(members))) for key, members in groups.items()]
    return sorted(classes, key=lambda c: c.representative)


def class_key(w: Workload, keys: frozenset[str]) -> tuple[str, str, str, str, tuple[tuple[str, str], ...]]:
    """What a workload's class is made of."""
    labels = tuple(sorted((k, v) for k, v in w.pod_labels.items() if k in keys))
    return (w.cluster, w.mesh, w.namespace, w.identity, labels)
