"""What one run of the Linkerd emitter has produced so far, and how it becomes an `EmitResult`.

The planning modules (servers, authorization, http_routes, federation, unsupported) add objects,
patches, status entries and findings here; `result()` sorts everything, so the output is the same
byte for byte whatever order the input came in.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from meshrules.emit.linkerd.names import NameBook
from meshrules.emit.naming import owned_metadata, sort_objects
from meshrules.emit.output import EmitResult
from meshrules.errors import Diagnostic
from meshrules.model.intent import PolicyStatusEntry


def parents_of(refs: Iterable[str]) -> dict[str, list[str]]:
    """`Kind namespace/name` references → the kind → `namespace/name` mapping of `owned_metadata`."""
    parents: dict[str, set[str]] = defaultdict(set)
    for r in refs:
        kind, _, rest = r.partition(" ")
        parents[kind].add(rest)
    return {k: sorted(v) for k, v in sorted(parents.items())}


class Emission:
    """Objects per cluster, patches per cluster, statuses and findings of one run."""

    def __init__(self, owner: str, names: NameBook) -> None:
        self.owner = owner
        self.names = names
        self._objects: dict[str, dict[tuple[str, str, str, str], dict[str, Any]]] = defaultdict(dict)
        self._patches: dict[str, dict[tuple[str, str], dict[str, Any]]] = defaultdict(dict)
        self._statuses: set[PolicyStatusEntry] = set()
        self._findings: dict[tuple[Any, ...], Diagnostic] = {}

    def metadata(self, name: str, namespace: str, parents: Iterable[str]) -> dict[str, Any]:
        """Owned metadata (label, parents annotation) for an emitted object."""
        return owned_metadata(name, namespace, parents_of(parents), owner=self.owner)

    def add(self, cluster: str, obj: Mapping[str, Any]) -> None:
        """Add an object to a cluster's output."""
        meta = obj["metadata"]
        key = (str(obj["apiVersion"]), str(obj["kind"]), str(meta.get("namespace", "")), str(meta["name"]))
        # INVARIANT: names come from one NameBook, so two different objects never share a key.
        assert key not in self._objects[cluster], f"duplicate object {key} in {cluster}"
        self._objects[cluster][key] = dict(obj)

    def patch_service(
        self,
        cluster: str,
        namespace: str,
        name: str,
        *,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
    ) -> None:
        """Own some labels/annotations of a user's Service through one server-side-apply patch.

        One patch per Service: a second apply by the same field manager would drop what the first
        one set, so everything meshrules owns on a Service travels together.
        """
        patch = self._patches[cluster].setdefault(
            (namespace, name),
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace}},
        )
        meta = patch["metadata"]
        if labels:
            meta.setdefault("labels", {}).update(labels)
        if annotations:
            meta.setdefault("annotations", {}).update(annotations)

    def status(self, entry: PolicyStatusEntry) -> None:
        """Add a status entry (duplicates collapse)."""
        self._statuses.add(entry)

    def finding(self, diagnostic: Diagnostic) -> None:
        """Add a finding (duplicates collapse)."""
        key = (diagnostic.code, diagnostic.object, diagnostic.field, diagnostic.message)
        self._findings.setdefault(key, diagnostic)

    def result(self) -> EmitResult:
        """The sorted, immutable result."""
        objects = {
            cluster: tuple(_canonical(o) for o in sort_objects(objs.values()))
            for cluster, objs in sorted(self._objects.items())
            if objs
        }
        patches = {
            cluster: tuple(_canonical(p) for _, p in sorted(ps.items()))
            for cluster, ps in sorted(self._patches.items())
            if ps
        }
        statuses = tuple(
            sorted(self._statuses, key=lambda s: (s.policy, s.destination or "", s.code, s.field, s.message))
        )
        findings = tuple(sorted(self._findings.values(), key=lambda d: (*d.sort_key(), d.field)))
        return EmitResult(objects=objects, patches=patches, statuses=statuses, findings=findings)


def _canonical(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy with keys in sorted order, so serialized output is stable."""
    loaded: dict[str, Any] = json.loads(json.dumps(obj, sort_keys=True))
    return loaded
