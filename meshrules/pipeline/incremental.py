"""Translating a stream of scenarios, reusing from the previous translation what an edit leaves alone.

Place: beside ``translate`` in the pure pipeline, for the controller (``meshrules.kube.translation``
wraps one ``IncrementalTranslator`` per controller). It composes the same stages as the whole
pipeline — ``analyse`` (discovery, graph), ``decide`` (rules), ``translate`` (emitters, statuses) —
and its result is always exactly theirs for the same scenario; what it saves is work:

    translator = IncrementalTranslator()
    step = translator.translate(scenario)      # the first one runs whole
    step = translator.translate(edited)        # an edited AccessPolicy: step.path is UPDATE
    step.translation, step.analysis.discovery  # what `translate(analyse(edited), ...)` gives

Which path a scenario takes (``TranslationPath``), from the cheapest:

- ``UNCHANGED``: the clusters' inputs, the policies (and where they were written) and the rule
  files are those of the previous scenario: its result is the answer.
- ``UPDATE``: only existing policies changed — the same policies by reference, in the same
  acceptance order, the same rule files, the same cluster inputs. Discovery is reused, the graph
  is rebuilt over the new policies, and ``Decision.update`` swaps the changed policies' base facts
  (re-evaluating only the strata they reach); the emitters and statuses run whole.
- ``REDECIDE``: the cluster inputs are unchanged but a policy was added or removed, an acceptance
  rank moved or the rule files changed: discovery is reused, the rest runs whole.
- ``FULL``: the first scenario, or any cluster's inputs changed: everything runs.

Comparing cluster inputs is cheap next to discovering them: live objects carry
`metadata.uid`/`resourceVersion`, and the API server gives every change a new resourceVersion
(and a re-created object a new uid), so equal pairs stand for equal bodies; other objects (from
files, which may have been edited without a new resourceVersion) are compared by value.

The rule files are read on every step (a few small files) and parsed and checked again only when
a name or a text changed, so an edited rule set on disk is never missed.

The emitters run whole on every path but ``UNCHANGED``: their names are decided over all drafts of
a cluster at once and federation ties destinations across clusters, so a partial re-emission
would need a proof of which objects an edit cannot reach, which they do not give.

Not thread-safe: one translator serves one thread (the controller's reconcile loop).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meshrules.dsl.program import Program
from meshrules.engine.facts import Facts
from meshrules.engine.facts_from_graph import acceptance_ranks, policy_facts
from meshrules.engine.intent import Decision, gc_paused
from meshrules.engine.mesh_builtins import mesh_builtins
from meshrules.graph import build_graph
from meshrules.model.policy import Policy
from meshrules.model.scenario import ClusterSnapshot, Scenario
from meshrules.model.source import KubeObject
from meshrules.pipeline.discovery import Analysis, analyse
from meshrules.pipeline.rules import decide_with, rule_inputs
from meshrules.pipeline.translate import Translation, translate


class TranslationPath(enum.Enum):
    """How much of the previous translation a scenario reused (the value names it in logs and metrics)."""

    FULL = "full"
    REDECIDE = "redecide"
    UPDATE = "update"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class Retranslation:
    """One scenario translated: what the whole pipeline gives, and how it was reached.

    ``analysis``, ``decision`` and ``translation`` equal ``analyse(scenario)``, ``decide(analysis)``
    and ``translate(analysis, decision.intent)`` (the decision's model may share strata with the
    previous one). ``updated`` names the policies ``Decision.update`` re-decided (``UPDATE`` only).
    """

    analysis: Analysis
    decision: Decision
    translation: Translation
    path: TranslationPath
    updated: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Rules:
    """The checked rule set and the top-level files it was loaded from."""

    files: tuple[str, ...]
    program: Program


class IncrementalTranslator:
    """Translates scenario after scenario, each exactly as the whole pipeline would (see the module)."""

    def __init__(self, rules_dir: Path | None = None) -> None:
        self.rules_dir = rules_dir
        self._builtins = mesh_builtins()
        self._rules: _Rules | None = None
        self._last: Retranslation | None = None

    def reset(self) -> None:
        """Forget the previous translation: the next scenario runs whole."""
        self._last = None

    def translate(self, scenario: Scenario) -> Retranslation:
        """``scenario`` discovered, decided and emitted, reusing what the previous scenario shares with it.

        Raises what the whole pipeline raises (a rule file that does not check, a missing rules
        directory). A failure while loading the rules keeps the previous translation to compare
        with; a failure after that leaves the next scenario to run whole.
        """
        rules = self._rules_for(scenario)
        # Everything built here is acyclic and large (see `gc_paused`); pausing the collector for
        # the whole step, not just the rules and the emitters, also spares the graph and statuses.
        with gc_paused():
            step = self._step(scenario, rules)
        self._last = step
        return step

    # --- paths -----------------------------------------------------------------------------------

    def _step(self, scenario: Scenario, rules: _Rules) -> Retranslation:
        # Taken, not borrowed: each path drops what it no longer needs before the costly stages,
        # so an L fleet's previous graph and model are not held twice.
        last, self._last = self._last, None
        if last is None or not same_cluster_inputs(last.analysis.scenario.clusters, scenario.clusters):
            del last
            return self._decided(analyse(scenario), rules, TranslationPath.FULL)
        before = last.analysis
        same_rules = before.scenario.rule_files == scenario.rule_files and last.decision.model.program is rules.program
        changed = _changed_policies(before.scenario, scenario) if same_rules else None
        if changed is not None and not changed:
            # INVARIANT: the inputs of every stage are those of the previous scenario (policies are
            # compared by value and with where they were written), so its result is this one.
            analysis = Analysis(scenario=scenario, discovery=before.discovery, graph=before.graph)
            return Retranslation(analysis, last.decision, last.translation, TranslationPath.UNCHANGED)
        analysis = Analysis(
            scenario=scenario, discovery=before.discovery, graph=build_graph(before.discovery, scenario.policies)
        )
        if changed is None:
            del last, before
            return self._decided(analysis, rules, TranslationPath.REDECIDE)
        decision = last.decision.update(
            analysis.graph,
            added=_facts_of(analysis, changed),
            removed=_facts_of(before, changed),
            scenario=scenario,
        )
        del last, before  # of the previous translation, only strata the new model shares live on
        return Retranslation(
            analysis,
            decision,
            translate(analysis, decision.intent),
            TranslationPath.UPDATE,
            tuple(p.ref for p in changed),
        )

    def _decided(self, analysis: Analysis, rules: _Rules, path: TranslationPath) -> Retranslation:
        decision = decide_with(analysis, rules.program, self._builtins)
        return Retranslation(analysis, decision, translate(analysis, decision.intent), path)

    def _rules_for(self, scenario: Scenario) -> _Rules:
        """The checked rule set for ``scenario``: the cached one while its files read the same."""
        inputs = rule_inputs(self.rules_dir, scenario.rule_files)
        cached = self._rules
        if cached is not None and inputs.loaded(cached.files, cached.program):
            return cached
        self._rules = _Rules(inputs.files, inputs.load(self._builtins))
        return self._rules


# --- what changed -------------------------------------------------------------------------------------


def same_cluster_inputs(before: Sequence[ClusterSnapshot], after: Sequence[ClusterSnapshot]) -> bool:
    """Whether two scenarios' clusters hold the same objects and settings (so discovery is the same).

    Objects are compared in order (loaders and ``live_snapshots`` sort them); see ``same_object``.
    """
    if len(before) != len(after):
        return False
    for old, new in zip(before, after, strict=True):
        if old is new:
            continue
        if old.name != new.name or old.config != new.config or len(old.objects) != len(new.objects):
            return False
        for a, b in zip(old.objects, new.objects, strict=True):
            if a is not b and not same_object(a, b):
                return False
    return True


def same_object(a: KubeObject, b: KubeObject) -> bool:
    """Whether two reads of a cluster's object are equal: by uid and resourceVersion for live objects."""
    version = _version(a)
    if version is not None and version == _version(b):
        # INVARIANT: the API server gives each change of an object a new resourceVersion and a
        # re-created object a new uid, so one (uid, resourceVersion) read live is one body.
        return (a.cluster, a.api_version, a.kind, a.namespace, a.name, a.location) == (
            b.cluster,
            b.api_version,
            b.kind,
            b.namespace,
            b.name,
            b.location,
        )
    return a == b


def _version(obj: KubeObject) -> tuple[str, str] | None:
    """An object's (uid, resourceVersion) when it was read from an API server, else None.

    Objects from files do not count: a snapshot keeps both fields, and its file may have been
    edited by hand since without a new resourceVersion.
    """
    if obj.location.file or obj.lines:
        return None
    meta = obj.body.get("metadata")
    if not isinstance(meta, dict):
        return None
    uid, version = meta.get("uid"), meta.get("resourceVersion")
    if isinstance(uid, str) and uid and isinstance(version, str) and version:
        return (uid, version)
    return None


def _changed_policies(before: Scenario, after: Scenario) -> list[Policy] | None:
    """The policies of ``after`` that differ from ``before``'s, or None when not an edit in place.

    In place: the same policies by reference in the same order, each at the same acceptance rank
    (what the facts of the others were extracted with). A policy differs when its value or where
    it was written differs (fact sources and findings point there).
    """
    old, new = before.policies, after.policies
    if len(old) != len(new) or any(p.ref != q.ref for p, q in zip(old, new, strict=True)):
        return None
    changed = [q for p, q in zip(old, new, strict=True) if p != q or _written(before, p) != _written(after, q)]
    if changed and acceptance_ranks(old) != acceptance_ranks(new):
        return None
    return changed


def _written(scenario: Scenario, policy: Policy) -> Any:
    doc = scenario.sources.get(policy.ref)
    return None if doc is None else (doc.location, doc.lines)


def _facts_of(analysis: Analysis, policies: Sequence[Policy]) -> Facts:
    """The base facts ``analysis`` gives ``policies`` (what `extract_facts` wrote for them)."""
    facts = Facts()
    scenario, graph = analysis.scenario, analysis.graph
    rank = acceptance_ranks(graph.policies)
    by_ref = {p.ref: p for p in graph.policies}
    for changed in policies:
        policy = by_ref[changed.ref]
        own = policy_facts(graph, policy, rank[policy.ref], scenario)
        for relation, row in own:
            facts.add(relation, row, own.source(relation, row))
        for entity, obj in own.objects.items():
            facts.add_object(entity, obj)
    return facts


__all__ = ["IncrementalTranslator", "Retranslation", "TranslationPath", "same_cluster_inputs", "same_object"]
