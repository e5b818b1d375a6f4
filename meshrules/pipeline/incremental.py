"""Translating a stream of scenarios, reusing from the previous translation what an edit leaves alone.

Place: beside ``translate`` in the pure pipeline, for the controller (``meshrules.kube.translation``
wraps one ``IncrementalTranslator`` per controller). It composes the same stages as the whole
pipeline — ``analyse`` (discovery, graph), ``decide`` (rules), ``translate`` (emitters, statuses) —
and its result is always exactly theirs for the same scenario; what it saves is work:

    translator = IncrementalTranslator()
    step = translator.translate(scenario)      # the first one runs whole
    step = translator.translate(edited)        # an edited AccessPolicy: step.path is UPDATE
    step.translation, step.analysis.discovery  # what `translate(analyse(edited), ...)` gives

First, the clusters. Their inputs are compared object by object, which is cheap: live objects
carry `metadata.uid`/`resourceVersion`, and the API server gives every change a new
resourceVersion (and a re-created object a new uid), so equal pairs stand for equal bodies; other
objects (from files, which may have been edited without a new resourceVersion) are compared by
value. A live cluster's Pods and Nodes move all the time (status updates) without changing
anything the translation reads, so the clusters whose inputs moved are *rediscovered*
(``Retranslation.rediscovered``): each one alone (``discover_cluster``; discovery is the sorted
union of independent clusters' parts), its new part compared with its previous one. The previous
translation is then reused as far as what each stage reads of the clusters is unchanged:

- discovery (the graph, the facts of meshes, workloads and destinations): every moved cluster's
  part equals its previous one, ``cluster.yaml`` findings included; else everything runs (FULL);
- the decision also reads the snapshots directly — `namespace_in_cluster` facts and where each
  cluster's settings were read (``extract_facts``): those facts must be equal, sources included;
- the emitters also read each cluster's existing mesh config (``existing_config``: Istio, Linkerd
  and Gateway API objects): those objects must be the same objects (``same_object``).

Which path a scenario then takes (``TranslationPath``), from the cheapest:

- ``UNCHANGED``: the policies (and where they were written), the rule files and everything the
  decision and the emitters read of the clusters are those of the previous scenario: its result
  is the answer. Rediscovered, this is the common live case (a Pod status update): it costs the
  moved clusters' discovery.
- ``REEMIT``: as UNCHANGED, but a cluster's existing mesh config changed: the decision is
  reused, the emitters and statuses run whole.
- ``UPDATE``: only existing policies changed — the same policies by reference, in the same
  acceptance order, the same rule files, the same discovery and snapshot facts. Discovery is
  reused, the graph is rebuilt over the new policies, and ``Decision.update`` swaps the changed
  policies' base facts (re-evaluating only the strata they reach); the emitters and statuses run
  whole.
- ``REDECIDE``: discovery is reused, but a policy was added or removed, an acceptance rank moved,
  the rule files changed or the snapshot facts changed (a new namespace): the rest runs whole.
- ``FULL``: the first scenario, clusters added, removed or renamed, or a cluster that discovers
  differently: everything runs.

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

from meshrules.discovery import Discovery, discover_cluster
from meshrules.dsl.program import Program
from meshrules.engine.facts import Facts
from meshrules.engine.facts_from_graph import acceptance_ranks, extract_facts, policy_facts
from meshrules.engine.intent import Decision, gc_paused
from meshrules.engine.mesh_builtins import mesh_builtins
from meshrules.engine.values import Row
from meshrules.errors import Diagnostic
from meshrules.graph import build_graph
from meshrules.model.policy import Policy
from meshrules.model.scenario import ClusterSnapshot, Scenario
from meshrules.model.source import KubeObject
from meshrules.pipeline.discovery import Analysis, analyse, cluster_input
from meshrules.pipeline.rules import decide_with, rule_inputs
from meshrules.pipeline.translate import MESH_CONFIG_GROUPS, Translation, translate


class TranslationPath(enum.Enum):
    """How much of the previous translation a scenario reused (the value names it in logs and metrics)."""

    FULL = "full"
    REDECIDE = "redecide"
    UPDATE = "update"
    REEMIT = "reemit"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class Retranslation:
    """One scenario translated: what the whole pipeline gives, and how it was reached.

    ``analysis``, ``decision`` and ``translation`` equal ``analyse(scenario)``, ``decide(analysis)``
    and ``translate(analysis, decision.intent)`` (the decision's model may share strata with the
    previous one). ``updated`` names the policies ``Decision.update`` re-decided (``UPDATE`` only).
    ``rediscovered``: cluster inputs moved, and the moved clusters were discovered again and found
    as before (so ``path`` is not FULL).
    """

    analysis: Analysis
    decision: Decision
    translation: Translation
    path: TranslationPath
    updated: tuple[str, ...] = ()
    rediscovered: bool = False

    @property
    def label(self) -> str:
        """The path as logs and `meshrules_translations_total{path}` name it (`rediscover-unchanged`, …)."""
        return f"rediscover-{self.path.value}" if self.rediscovered else self.path.value


@dataclass(frozen=True)
class _Rules:
    """The checked rule set and the top-level files it was loaded from."""

    files: tuple[str, ...]
    program: Program


@dataclass(frozen=True)
class _ClusterPart:
    """What ``analyse`` makes of one cluster's snapshot: its part of the discovery, its `cluster.yaml` findings."""

    discovery: Discovery
    config_diagnostics: tuple[Diagnostic, ...]


def _discover_cluster(snapshot: ClusterSnapshot) -> _ClusterPart:
    config_diagnostics: list[Diagnostic] = []
    part = discover_cluster(cluster_input(snapshot, config_diagnostics))
    return _ClusterPart(part, tuple(config_diagnostics))


class IncrementalTranslator:
    """Translates scenario after scenario, each exactly as the whole pipeline would (see the module)."""

    def __init__(self, rules_dir: Path | None = None) -> None:
        self.rules_dir = rules_dir
        self._builtins = mesh_builtins()
        self._rules: _Rules | None = None
        self._last: Retranslation | None = None
        # Cluster name → (a snapshot of the previous scenario, its discovery part): the parts
        # rediscovered before, so a cluster that moves on every step is discovered once per step.
        self._parts: dict[str, tuple[ClusterSnapshot, _ClusterPart]] = {}

    def reset(self) -> None:
        """Forget the previous translation: the next scenario runs whole."""
        self._last = None
        self._parts = {}

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
        parts, self._parts = self._parts, {}
        pairs = None if last is None else _paired(last.analysis.scenario.clusters, scenario.clusters)
        if last is None or pairs is None:
            del last
            return self._decided(analyse(scenario), rules, TranslationPath.FULL)
        before = last.analysis
        moved = [(old, new) for old, new in pairs if not _same_snapshot(old, new)]
        if not self._rediscovered(pairs, moved, parts):
            del last, before
            return self._decided(analyse(scenario), rules, TranslationPath.FULL)
        # INVARIANT: from here on, `analyse(scenario).discovery == before.discovery`.
        rediscovered = bool(moved)
        decided_alike = not moved or _snapshot_facts(before.scenario, before.discovery) == _snapshot_facts(
            scenario, before.discovery
        )
        emitted_alike = all(_same_existing_config(old, new) for old, new in moved)
        same_rules = before.scenario.rule_files == scenario.rule_files and last.decision.model.program is rules.program
        changed = _changed_policies(before.scenario, scenario) if same_rules else None
        same_policies = changed is not None and not changed
        if same_policies and decided_alike:
            # INVARIANT: the inputs of the graph and the decision are those of the previous
            # scenario (policies are compared by value and with where they were written).
            analysis = Analysis(scenario=scenario, discovery=before.discovery, graph=before.graph)
            if emitted_alike:  # and those of the emitters too: the previous result is this one
                return Retranslation(
                    analysis, last.decision, last.translation, TranslationPath.UNCHANGED, rediscovered=rediscovered
                )
            decision = last.decision
            del last, before
            translation = translate(analysis, decision.intent)
            return Retranslation(analysis, decision, translation, TranslationPath.REEMIT, rediscovered=rediscovered)
        graph = before.graph if same_policies else build_graph(before.discovery, scenario.policies)
        analysis = Analysis(scenario=scenario, discovery=before.discovery, graph=graph)
        if not changed or not decided_alike:
            del last, before
            return self._decided(analysis, rules, TranslationPath.REDECIDE, rediscovered)
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
            rediscovered,
        )

    def _decided(
        self, analysis: Analysis, rules: _Rules, path: TranslationPath, rediscovered: bool = False
    ) -> Retranslation:
        decision = decide_with(analysis, rules.program, self._builtins)
        translation = translate(analysis, decision.intent)
        return Retranslation(analysis, decision, translation, path, rediscovered=rediscovered)

    def _rediscovered(
        self,
        pairs: Sequence[tuple[ClusterSnapshot, ClusterSnapshot]],
        moved: Sequence[tuple[ClusterSnapshot, ClusterSnapshot]],
        parts: dict[str, tuple[ClusterSnapshot, _ClusterPart]],
    ) -> bool:
        """Whether every moved cluster discovers as it did (then so does the scenario, see the module).

        Keeps, for the next step, the parts of this scenario's snapshots that are known: those
        rediscovered now, and those of unmoved clusters carried over.
        """
        fresh: dict[str, _ClusterPart] = {}
        alike = True
        for old, new in moved:
            cached = parts.get(old.name)
            previous = cached[1] if cached is not None and cached[0] is old else _discover_cluster(old)
            fresh[new.name] = _discover_cluster(new)
            if fresh[new.name] != previous:
                alike = False  # everything runs: the remaining clusters need not be discovered twice
                break
        moved_names = {new.name for _, new in moved}
        for old, new in pairs:
            if new.name in fresh:
                self._parts[new.name] = (new, fresh[new.name])
            elif new.name not in moved_names and (cached := parts.get(old.name)) is not None and cached[0] is old:
                self._parts[new.name] = (new, cached[1])
        return alike

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
    pairs = _paired(before, after)
    return pairs is not None and all(_same_snapshot(old, new) for old, new in pairs)


def _paired(
    before: Sequence[ClusterSnapshot], after: Sequence[ClusterSnapshot]
) -> list[tuple[ClusterSnapshot, ClusterSnapshot]] | None:
    """The snapshots of the same clusters side by side; None when the clusters are not the same ones."""
    if len(before) != len(after) or any(old.name != new.name for old, new in zip(before, after, strict=True)):
        return None
    return list(zip(before, after, strict=True))


def _same_snapshot(old: ClusterSnapshot, new: ClusterSnapshot) -> bool:
    if old is new:
        return True
    if old.name != new.name or old.config != new.config or len(old.objects) != len(new.objects):
        return False
    return all(a is b or same_object(a, b) for a, b in zip(old.objects, new.objects, strict=True))


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


def _snapshot_facts(scenario: Scenario, discovery: Discovery) -> dict[tuple[str, Row], str | None]:
    """The base facts the decision takes from ``scenario``'s cluster snapshots, with their sources.

    ``extract_facts`` reads the snapshots only for the clusters' own facts (`cluster` with where
    its settings were read, `namespace_in_cluster`); the facts of meshes, workloads and
    destinations come from discovery alone, and those of policies from the policies and where
    they were written. So these facts, extracted over discovery's clusters without the rest,
    are what the snapshots add (``test_the_decision_reads_the_snapshots_only_for_cluster_facts``
    keeps this true). The order of facts never changes a model, so they compare as a mapping.
    """
    facts = extract_facts(build_graph(Discovery(clusters=discovery.clusters), ()), scenario)
    return {(relation, row): facts.source(relation, row) for relation, row in facts}


def _same_existing_config(old: ClusterSnapshot, new: ClusterSnapshot) -> bool:
    """Whether a cluster holds the same mesh config objects (what ``existing_config`` gives the emitters)."""
    before = [o for o in old.objects if o.group in MESH_CONFIG_GROUPS]
    after = [o for o in new.objects if o.group in MESH_CONFIG_GROUPS]
    return len(before) == len(after) and all(a is b or same_object(a, b) for a, b in zip(before, after, strict=True))


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
