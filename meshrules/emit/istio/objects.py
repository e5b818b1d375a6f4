"""Emitted objects before they have final names, and the naming pass that makes names safe.

Place: every renderer of this package returns `Draft`s; `finalize` turns them into the wire
objects of each cluster. Names are decided last, over all drafts of a cluster at once, so that
they never depend on input order: a base name that two different objects would share, or that
a user-owned object of the same kind and namespace already has, gets a stable hash suffix of the
object's identity (what it is about, e.g. its host).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from meshrules.emit.istio.existing import ExistingConfig
from meshrules.emit.naming import object_name, owned_metadata, sort_objects, stable_hash


@dataclass
class Draft:
    """One object to emit: where, what kind, a base name, what it is about, its spec and parents."""

    cluster: str
    api_version: str
    kind: str
    namespace: str
    base_name: str
    identity: str
    spec: dict[str, Any]
    parents: list[tuple[str, str]] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str, str, str]:
        """Where the object lives and what it is about: two drafts with one key are one object."""
        return (self.cluster, self.kind, self.namespace, self.identity)


def finalize(drafts: Iterable[Draft], existing: ExistingConfig, owner: str) -> dict[str, tuple[dict[str, Any], ...]]:
    """Wire objects per cluster, named safely and sorted (apiVersion, kind, namespace, name).

    Drafts with the same key are one object: their parents merge (their specs are equal by
    construction, e.g. one east-west Gateway serving several federated destinations).
    """
    merged: dict[tuple[str, str, str, str], Draft] = {}
    for draft in drafts:
        known = merged.get(draft.key)
        if known is None:
            merged[draft.key] = Draft(**{**draft.__dict__, "parents": list(draft.parents)})
        else:
            known.parents.extend(draft.parents)
    by_name: dict[tuple[str, str, str, str], set[str]] = defaultdict(set)
    for d in merged.values():
        by_name[(d.cluster, d.kind, d.namespace, d.base_name)].add(d.identity)
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for key in sorted(merged):
        d = merged[key]
        name = d.base_name
        shared = len(by_name[(d.cluster, d.kind, d.namespace, name)]) > 1
        if shared or existing.is_taken(d.cluster, d.kind, d.namespace, name):
            name = object_name(d.base_name, stable_hash(d.identity))
        out[d.cluster].append(
            {
                "apiVersion": d.api_version,
                "kind": d.kind,
                "metadata": owned_metadata(name, d.namespace, _group(d.parents), owner=owner),
                "spec": d.spec,
            }
        )
    return {cluster: tuple(dict(o) for o in sort_objects(objs)) for cluster, objs in sorted(out.items())}


def _group(parents: Iterable[tuple[str, str]]) -> Mapping[str, list[str]]:
    grouped: dict[str, list[str]] = defaultdict(list)
    for kind, name in parents:
        grouped[kind].append(name)
    return grouped
