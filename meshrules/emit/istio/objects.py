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
from operator import itemgetter
from typing import Any

from meshrules.emit.istio.existing import ExistingConfig
from meshrules.emit.naming import object_name, owned_metadata, parents_annotation, stable_hash


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
    # key → (the first draft of that key, the parents of every draft of that key)
    merged: dict[tuple[str, str, str, str], tuple[Draft, list[tuple[str, str]]]] = {}
    for draft in drafts:
        key = (draft.cluster, draft.kind, draft.namespace, draft.identity)
        known = merged.get(key)
        if known is None:
            merged[key] = (draft, list(draft.parents))
        else:
            known[1].extend(draft.parents)
    by_name: dict[tuple[str, str, str, str], set[str]] = defaultdict(set)
    for d, _ in merged.values():
        by_name[(d.cluster, d.kind, d.namespace, d.base_name)].add(d.identity)
    # Per cluster: (sort key of `sort_objects` then the draft key, object). Sorting by both is the
    # same order as sorting the drafts by key and then, stably, by `sort_objects`' key; one sort.
    out: dict[str, list[tuple[tuple[str, ...], dict[str, Any]]]] = defaultdict(list)
    annotations: dict[tuple[tuple[str, str], ...], str] = {}
    for key, (d, parents) in merged.items():
        name = d.base_name
        shared = len(by_name[(d.cluster, d.kind, d.namespace, name)]) > 1
        if shared or existing.is_taken(d.cluster, d.kind, d.namespace, name):
            name = object_name(d.base_name, stable_hash(d.identity))
        # Objects of one federated destination share their parents: their annotation is built once.
        parents_key = tuple(parents)
        annotation = annotations.get(parents_key)
        if annotation is None:
            annotation = annotations[parents_key] = parents_annotation(_group(parents))
        obj = {
            "apiVersion": d.api_version,
            "kind": d.kind,
            "metadata": owned_metadata(name, d.namespace, {}, owner=owner, annotation=annotation),
            "spec": d.spec,
        }
        out[d.cluster].append(((str(d.api_version), str(d.kind), str(d.namespace or ""), str(name), *key), obj))
    del merged, by_name, annotations
    return {cluster: tuple(obj for _, obj in sorted(objs, key=itemgetter(0))) for cluster, objs in sorted(out.items())}


def _group(parents: Iterable[tuple[str, str]]) -> Mapping[str, list[str]]:
    grouped: dict[str, list[str]] = defaultdict(list)
    for kind, name in parents:
        grouped[kind].append(name)
    return grouped
