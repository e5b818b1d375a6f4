"""Queries over a scenario: load → decide → translate → simulate, for `why`, `describe`, `diff`, `matrix`.

The simulator (`meshrules.sim`) answers over a `Fleet` — resources and intent as data. This
module composes the pipeline stages that produce one (`simulate`), and does the one thing the
simulator cannot do alone: **verify a nearest miss** — apply its edits to the scenario's policies
(or cluster objects), run the rule set and the emitters again, re-ask the query, and record
whether the denied backend is now allowed. Everything here is pure: scenarios come in loaded.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from meshrules.errors import InputError, MeshrulesError
from meshrules.graph import build_graph
from meshrules.model.policy import POLICY_KINDS, Policy
from meshrules.model.scenario import ClusterSnapshot, Scenario
from meshrules.model.source import KubeObject
from meshrules.pipeline.discovery import Analysis, analyse
from meshrules.pipeline.rules import Decision, decide
from meshrules.pipeline.translate import Translation, translate
from meshrules.sim.describe import describe as describe_object
from meshrules.sim.diff import Change, diff_fleets
from meshrules.sim.fleet import Fleet
from meshrules.sim.matrix import Matrix, reachability_matrix
from meshrules.sim.verdict import Edit, Verdict
from meshrules.sim.why import Query, answer

__all__ = ["Simulation", "apply_edits", "describe", "diff", "matrix", "simulate", "verify", "why"]

_INDEX = re.compile(r"^(\w+)\[(\d+)\]$")


@dataclass(frozen=True)
class Simulation:
    """A scenario taken through the whole pipeline, ready for queries."""

    analysis: Analysis
    decision: Decision
    translation: Translation
    fleet: Fleet
    rules_dir: Path | None = None


def simulate(analysis: Analysis, rules_dir: Path | None = None, *, memoise: bool = True) -> Simulation:
    """Decide and translate ``analysis``, and build the simulator's fleet over the result."""
    decision = decide(analysis, rules_dir=rules_dir)
    translation = translate(analysis, decision.intent)
    fleet = Fleet(
        analysis.scenario,
        analysis.discovery,
        decision.intent,
        translation.objects,
        model=decision.model,
        memoise=memoise,
    )
    return Simulation(analysis, decision, translation, fleet, rules_dir)


def why(sim: Simulation, query: Query, *, verify_miss: bool = True) -> Verdict:
    """Answer ``query``; for a denial, re-run it with the nearest miss's edits to verify them."""
    verdict = answer(sim.fleet, query)
    if verify_miss and verdict.nearest_miss is not None:
        return verify(sim, query, verdict)
    return verdict


def verify(sim: Simulation, query: Query, verdict: Verdict) -> Verdict:
    """``verdict`` with its nearest miss verified: edits applied, pipeline and query re-run."""
    miss = verdict.nearest_miss
    if miss is None:
        return verdict
    try:
        edited = apply_edits(sim.analysis.scenario, miss.edits)
        if edited.clusters == sim.analysis.scenario.clusters:
            # Only policies changed: discovery (a function of the clusters' objects) stands.
            found = sim.analysis.discovery
            analysis = Analysis(edited, found, build_graph(found, edited.policies))
        else:
            analysis = analyse(edited)
        again = answer(simulate(analysis, sim.rules_dir).fleet, query, nearest=False)
    except MeshrulesError:
        return replace(verdict, nearest_miss=replace(miss, verified=False))
    backend = next((b for b in again.backends if b.destination == miss.backend), None)
    flipped = backend.allowed if backend is not None else again.allowed
    return replace(verdict, nearest_miss=replace(miss, verified=flipped, code_after=again.code))


def matrix(sim: Simulation) -> Matrix:
    """Every workload class × destination → code."""
    return reachability_matrix(sim.fleet)


def describe(sim: Simulation, kind: str, name: str) -> dict[str, Any]:
    """What applies to an object, what it emits, its reachability and errors."""
    return describe_object(sim.fleet, kind, name, sim.translation.statuses, sim.translation.patches)


def diff(before: Simulation, after: Simulation) -> tuple[list[Change], int]:
    """Pairs whose answers change from ``before`` to ``after``, and how many were compared."""
    return diff_fleets(before.fleet, after.fleet)


# ================================================================================================
# Edits
# ================================================================================================


def apply_edits(scenario: Scenario, edits: Sequence[Edit]) -> Scenario:
    """``scenario`` with each edit applied to its policy (``Kind ns/name``) or cluster object
    (``cluster/Kind ns/name``). Raises `InputError` when an edit does not fit its target."""
    policies: list[Policy] = list(scenario.policies)
    clusters = list(scenario.clusters)
    for edit in edits:
        head, _, rest = edit.target.partition(" ")
        if "/" in head:  # cluster/Kind
            cluster, _, kind = head.partition("/")
            clusters = [_edit_cluster(c, kind, rest, edit) if c.name == cluster else c for c in clusters]
        else:
            policies = _edit_policies(policies, edit)
    return replace(scenario, policies=tuple(policies), clusters=tuple(clusters))


def _edit_policies(policies: list[Policy], edit: Edit) -> list[Policy]:
    if edit.op == "create":
        return [*policies, _validated(edit.value, edit.target)]
    out = []
    for p in policies:
        if p.ref == edit.target:
            body = p.to_wire()
            _apply(body, edit)
            p = _validated(body, edit.target)
        out.append(p)
    return out


def _validated(body: Any, target: str) -> Policy:
    kind = str(body.get("kind")) if isinstance(body, Mapping) else ""
    model = POLICY_KINDS.get(kind)
    if model is None:
        raise InputError(f"edit of `{target}` is not a networking.meshrules.io policy")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise InputError(f"edit of `{target}` makes it invalid: {exc.errors()[0]['msg']}") from exc


def _edit_cluster(snapshot: ClusterSnapshot, kind: str, key: str, edit: Edit) -> ClusterSnapshot:
    namespace, _, name = key.partition("/")
    objects: list[KubeObject] = []
    for obj in snapshot.objects:
        if obj.kind == kind and obj.namespace == namespace and obj.name == name:
            body = copy.deepcopy(dict(obj.body))
            if kind == "ConfigMap" and _embedded(body, edit.field):
                _apply_embedded(body, edit)
            else:
                _apply(body, edit)
            obj = replace(obj, body=body)
        objects.append(obj)
    return replace(snapshot, objects=tuple(objects))


def _embedded(body: Mapping[str, Any], field: str) -> bool:
    """Whether ``field`` walks into a YAML document kept as text under a ConfigMap key
    (`data.mesh.trustDomainAliases`: Istio's mesh config is the YAML text of key `mesh`)."""
    parts = field.split(".")
    data = body.get("data")
    return len(parts) > 2 and parts[0] == "data" and isinstance(data, Mapping) and isinstance(data.get(parts[1]), str)


def _apply_embedded(body: dict[str, Any], edit: Edit) -> None:
    """Apply ``edit`` inside the YAML text of ConfigMap key ``data.<key>`` and write it back."""
    _, key, rest = edit.field.split(".", 2)
    try:
        doc = yaml.safe_load(body["data"][key]) or {}
    except yaml.YAMLError as exc:
        raise InputError(f"`data.{key}` of `{edit.target}` is not valid YAML") from exc
    if not isinstance(doc, dict):
        raise InputError(f"`data.{key}` of `{edit.target}` is not a YAML object")
    _apply(doc, replace(edit, field=rest))
    body["data"] = {**body["data"], key: yaml.safe_dump(doc, sort_keys=True)}


def _apply(body: dict[str, Any], edit: Edit) -> None:
    """Apply ``add`` (append to the list at the field, creating it) or ``remove`` (a list element)."""
    parts = edit.field.split(".")
    node: Any = body
    for part in parts[:-1]:
        node = _step(node, part, create=edit.op == "add")
    last = parts[-1]
    m = _INDEX.match(last)
    if edit.op == "remove":
        if m is None:
            if isinstance(node, dict):
                node.pop(last, None)
            return
        items = node.get(m.group(1)) if isinstance(node, dict) else None
        if isinstance(items, list) and int(m.group(2)) < len(items):
            del items[int(m.group(2))]
        return
    if not isinstance(node, dict):
        raise InputError(f"cannot edit `{edit.field}` of `{edit.target}`")
    current = node.setdefault(last, [])
    if not isinstance(current, list):
        raise InputError(f"`{edit.field}` of `{edit.target}` is not a list")
    if edit.value not in current:
        current.append(copy.deepcopy(edit.value))


def _step(node: Any, part: str, *, create: bool) -> Any:
    m = _INDEX.match(part)
    if m is not None:
        items = node.get(m.group(1)) if isinstance(node, dict) else None
        if not isinstance(items, list) or int(m.group(2)) >= len(items):
            raise InputError(f"no `{part}` to edit")
        return items[int(m.group(2))]
    if not isinstance(node, dict):
        raise InputError(f"no `{part}` to edit")
    if part not in node and create:
        node[part] = {}
    return node[part]
