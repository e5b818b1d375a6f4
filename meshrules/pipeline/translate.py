"""Translate: discovered state + decided intent → each mesh's resources, statuses and findings.

Both emitters run on the same `EmitInput`; each renders only its own meshes, so their results are
disjoint and merge by concatenation. Statuses join the rule set's entries with what an emitter
could not express (spec §3.4); nothing is dropped.
"""

from __future__ import annotations

import gc
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from meshrules.emit import EmitInput, EmitResult
from meshrules.emit.istio import emit_istio
from meshrules.emit.linkerd import emit_linkerd
from meshrules.emit.naming import sort_objects
from meshrules.errors import Diagnostic
from meshrules.model.common import PolicyStatus
from meshrules.model.intent import Intent, PolicyStatusEntry
from meshrules.model.source import KubeObject
from meshrules.pipeline.discovery import Analysis
from meshrules.pipeline.status import policy_statuses

# Mesh config a cluster may already hold (spec §1.1): emitters report it and never overwrite it.
MESH_CONFIG_GROUPS = frozenset(
    {"networking.istio.io", "security.istio.io", "policy.linkerd.io", "linkerd.io", "gateway.networking.k8s.io"}
)


@dataclass(frozen=True)
class Translation:
    """What `translate` produces: objects and patches per cluster, statuses, every finding."""

    objects: Mapping[str, tuple[Mapping[str, Any], ...]]
    patches: Mapping[str, tuple[Mapping[str, Any], ...]]
    statuses: Mapping[str, PolicyStatus]
    status_entries: tuple[PolicyStatusEntry, ...]
    findings: tuple[Diagnostic, ...]

    def object_count(self) -> int:
        """How many objects were emitted over every cluster."""
        return sum(len(v) for v in self.objects.values())


def existing_config(analysis: Analysis) -> dict[str, tuple[KubeObject, ...]]:
    """Per cluster, the Istio/Linkerd/Gateway API objects already there."""
    return {
        c.name: tuple(o for o in c.objects if o.group in MESH_CONFIG_GROUPS) for c in analysis.scenario.clusters
    }


def emit_input(analysis: Analysis, intent: Intent) -> EmitInput:
    """The emitters' input for a scenario and the rule set's decisions on it."""
    found = analysis.discovery
    return EmitInput(
        clusters=found.clusters,
        meshes=found.meshes,
        workloads=found.workloads,
        destinations=found.destinations,
        policies=analysis.scenario.policies,
        intent=intent,
        existing=existing_config(analysis),
    )


def merge_results(results: Sequence[EmitResult]) -> EmitResult:
    """One result from several emitters' (disjoint) results, in a stable order."""
    objects: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    patches: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for result in results:
        for cluster, objs in result.objects.items():
            objects[cluster].extend(objs)
        for cluster, objs in result.patches.items():
            patches[cluster].extend(objs)
    return EmitResult(
        objects={c: tuple(sort_objects(objects[c])) for c in sorted(objects)},
        patches={c: tuple(sort_objects(patches[c])) for c in sorted(patches)},
        statuses=tuple(s for r in results for s in r.statuses),
        findings=tuple(sorted((f for r in results for f in r.findings), key=Diagnostic.sort_key)),
    )


def translate(analysis: Analysis, intent: Intent) -> Translation:
    """Render every mesh's resources for ``intent`` and assemble each policy's status."""
    with _without_cycle_collection():
        inp = emit_input(analysis, intent)
        emitted = merge_results([emit_istio(inp), emit_linkerd(inp)])
        entries = _unique_entries((*intent.statuses, *emitted.statuses))
        return Translation(
            objects=emitted.objects,
            patches=emitted.patches,
            statuses=policy_statuses(analysis.graph, entries),
            status_entries=entries,
            findings=emitted.findings,
        )


@contextmanager
def _without_cycle_collection() -> Iterator[None]:
    """Pause the cyclic garbage collector while the emitters run.

    They allocate millions of small, acyclic containers (hundreds of thousands of objects at the
    L size); each allocation burst triggers collections that traverse every live container, which
    cost about as much as the emitting itself. Reference counting still frees everything at once;
    cycles, if any, are collected after the collector is re-enabled.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _unique_entries(entries: Sequence[PolicyStatusEntry]) -> tuple[PolicyStatusEntry, ...]:
    seen: dict[tuple[str, str | None, str, str, str], PolicyStatusEntry] = {}
    for e in entries:
        seen.setdefault((e.policy, e.destination, e.field, e.code, e.message), e)
    return tuple(seen[k] for k in sorted(seen, key=lambda k: (k[0], k[1] or "", k[2], k[3], k[4])))
