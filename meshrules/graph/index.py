"""Selector resolution through inverted indexes (cluster, namespace, label key=value, name).

A policy selects by intersecting a few posting sets instead of testing every workload, so the cost
of a selector is proportional to what it selects, not to the size of the fleet.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

EMPTY: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Indexed:
    """What an index needs of a thing: its id, where it lives, its labels and its name."""

    id: str
    cluster: str
    namespace: str
    labels: Mapping[str, str]
    name: str = ""


class LabelIndex:
    """Posting sets of ids by cluster, namespace, (label, value), (namespace, name) and name."""

    __slots__ = ("_all", "_by_cluster", "_by_label", "_by_name", "_by_namespace")

    def __init__(self, items: Iterable[Indexed]) -> None:
        by_cluster: dict[str, set[str]] = defaultdict(set)
        by_namespace: dict[str, set[str]] = defaultdict(set)
        by_label: dict[tuple[str, str], set[str]] = defaultdict(set)
        by_name: dict[str, set[str]] = defaultdict(set)
        every: set[str] = set()
        for item in items:
            every.add(item.id)
            by_cluster[item.cluster].add(item.id)
            by_namespace[item.namespace].add(item.id)
            by_name[item.name].add(item.id)
            for kv in item.labels.items():
                by_label[kv].add(item.id)
        self._all = frozenset(every)
        self._by_cluster = {k: frozenset(v) for k, v in by_cluster.items()}
        self._by_namespace = {k: frozenset(v) for k, v in by_namespace.items()}
        self._by_label = {k: frozenset(v) for k, v in by_label.items()}
        self._by_name = {k: frozenset(v) for k, v in by_name.items()}

    @property
    def all(self) -> frozenset[str]:
        """Every id in the index."""
        return self._all

    def select(
        self,
        clusters: Iterable[str] = (),
        namespaces: Iterable[str] = (),
        labels: Mapping[str, str] | None = None,
        names: Iterable[str] = (),
    ) -> frozenset[str]:
        """Ids matching every given criterion (each list is an OR of values; empty means any)."""
        postings: list[frozenset[str]] = []
        for values, table in ((clusters, self._by_cluster), (namespaces, self._by_namespace), (names, self._by_name)):
            vals = list(values)
            if vals:
                postings.append(_union(table.get(v, EMPTY) for v in vals))
        for kv in (labels or {}).items():
            postings.append(self._by_label.get(kv, EMPTY))
        if not postings:
            return self._all
        postings.sort(key=len)  # intersect from the smallest set: the cost is its size
        result = postings[0]
        for other in postings[1:]:
            if not result:
                break
            result = result & other
        return result


def _union(sets: Iterable[frozenset[str]]) -> frozenset[str]:
    out: frozenset[str] = EMPTY
    for s in sets:
        out = out | s if out else s
    return out


def matches(
    item: Indexed,
    clusters: Iterable[str] = (),
    namespaces: Iterable[str] = (),
    labels: Mapping[str, str] | None = None,
    names: Iterable[str] = (),
) -> bool:
    """Brute-force selector match of one item: the reference the index must agree with."""
    cl, ns, nm = list(clusters), list(namespaces), list(names)
    return (
        (not cl or item.cluster in cl)
        and (not ns or item.namespace in ns)
        and (not nm or item.name in nm)
        and all(item.labels.get(k) == v for k, v in (labels or {}).items())
    )
