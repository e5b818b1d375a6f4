"""The incremental translator: after every edit its result is the whole pipeline's, byte for byte.

Scenarios are built as the controller builds them (`live_scenario` over fresh copies of each
cluster's objects and the policy objects), from generated topologies; edits are drawn from what
happens to a live fleet: a policy's spec, timestamp or status changes, policies come and go, a
Service or Deployment changes, an object's resourceVersion moves without a change, nothing moves.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshrules.errors import RuleError
from meshrules.kube.live import LiveCluster, live_scenario
from meshrules.kube.scenario import load_scenario
from meshrules.kube.translation import from_pipeline
from meshrules.model.scenario import RuleSource, Scenario
from meshrules.model.source import KubeObject
from meshrules.pipeline import Analysis, IncrementalTranslator, Retranslation, TranslationPath, analyse
from meshrules.pipeline.incremental import same_object
from meshrules.pipeline.rules import decide
from meshrules.pipeline.translate import Translation, translate
from meshrules.testing import (
    Topology,
    access_policies,
    generate_topology,
    invalid_policies,
    topologies,
    topology_params,
    traffic_policies,
)
from meshrules.testing.topology import TopologyParams

Body = dict[str, Any]
EDITS = ("spec", "field", "invalid", "add", "delete", "retime", "status", "vm", "cluster", "touch", "nothing")


class Fleet:
    """The objects a controller would read: each cluster's inputs and the policies, as plain dicts."""

    def __init__(self, topology: Topology, versioned: bool) -> None:
        self.topology = topology
        self.versioned = versioned
        self._next = 0
        self.clusters = {name: [self._stamped(o) for o in objs] for name, objs in topology.clusters.items()}
        self.policies = [self._stamped(p) for p in topology.policies]

    def scenario(self) -> Scenario:
        """What a reconcile reads now: fresh copies, as the informers hand them out."""
        live = [LiveCluster(name, copy.deepcopy(objs), "cluster.local") for name, objs in sorted(self.clusters.items())]
        return live_scenario(live, copy.deepcopy(self.policies))

    def bump(self, obj: Body) -> None:
        """A write to ``obj``: the API server gives it a new resourceVersion."""
        if self.versioned:
            self._next += 1
            obj["metadata"]["resourceVersion"] = str(1000 + self._next)

    def _stamped(self, obj: Body) -> Body:
        out = copy.deepcopy(obj)
        if self.versioned:
            self._next += 1
            out["metadata"]["uid"] = f"uid-{self._next}"
            out["metadata"]["resourceVersion"] = "1"
        return out


def _edit(fleet: Fleet, kind: str, data: st.DataObject) -> None:
    """Apply one drawn edit of ``kind`` to ``fleet`` (a no-op when it has nothing to act on)."""
    topology, policies = fleet.topology, fleet.policies
    plain = [p for p in policies if p["kind"] != "VirtualMesh"]
    if kind in ("spec", "field", "invalid", "retime", "status") and not plain:
        kind = "add"
    if kind == "spec":  # a new spec of the same kind, in place
        target = data.draw(st.sampled_from(plain))
        drawn = traffic_policies(topology) if target["kind"] == "TrafficPolicy" else access_policies(topology)
        target["spec"] = data.draw(drawn)["spec"]
        fleet.bump(target)
    elif kind == "field":  # one field: methods of an AccessPolicy, the timeout of a TrafficPolicy
        target = data.draw(st.sampled_from(plain))
        if target["kind"] == "AccessPolicy":
            methods = data.draw(st.lists(st.sampled_from(("GET", "POST", "PATCH")), max_size=2, unique=True))
            target["spec"]["allowedMethods"] = methods
        else:
            target["spec"].setdefault("policy", {})["requestTimeout"] = data.draw(st.sampled_from(("1s", "5s")))
        fleet.bump(target)
    elif kind == "invalid":  # broken in place (or no longer loadable, which removes it)
        target = data.draw(st.sampled_from(plain))
        bad = data.draw(invalid_policies(topology)).policy
        target.update(kind=bad["kind"], spec=bad["spec"])
        fleet.bump(target)
    elif kind == "add":
        drawn = data.draw(st.one_of(traffic_policies(topology), access_policies(topology)))
        policies.append(fleet._stamped(drawn))
    elif kind == "delete" and policies:
        policies.remove(data.draw(st.sampled_from(policies)))
    elif kind == "retime":  # may move the policy in acceptance order, or not
        target = data.draw(st.sampled_from(plain))
        when = data.draw(st.sampled_from(("2020-01-01T00:00:00Z", "2026-01-10T09:00:00Z", "2030-01-01T00:00:00Z")))
        target["metadata"]["creationTimestamp"] = when
        fleet.bump(target)
    elif kind == "status":  # the controller wrote a status: the object changed, its spec did not
        target = data.draw(st.sampled_from(plain))
        target["status"] = {"state": data.draw(st.sampled_from(("ACCEPTED", "INVALID")))}
        fleet.bump(target)
    elif kind == "vm":
        meshes = [p for p in policies if p["kind"] == "VirtualMesh"]
        if meshes:
            target = data.draw(st.sampled_from(meshes))
            now = target["spec"].get("accessPolicyEnforcement")
            target["spec"]["accessPolicyEnforcement"] = "DISABLED" if now == "ENFORCED" else "ENFORCED"
            fleet.bump(target)
    elif kind in ("cluster", "touch"):
        name = data.draw(st.sampled_from(sorted(fleet.clusters)))
        objects = fleet.clusters[name]
        apps = [o for o in objects if o["kind"] in ("Service", "Deployment")]
        if not apps:
            return
        target = data.draw(st.sampled_from(apps))
        if kind == "cluster" and data.draw(st.booleans()):
            objects.remove(target)
        elif kind == "cluster":  # relabelled: selections by label change
            target["metadata"].setdefault("labels", {})["tier"] = "edited"
            fleet.bump(target)
        else:  # a write that changed nothing discovery reads (a status heartbeat)
            fleet.bump(target)


def _full(scenario: Scenario) -> tuple[Analysis, Any, Translation]:
    analysis = analyse(scenario)
    decision = decide(analysis)
    return analysis, decision, translate(analysis, decision.intent)


def _bytes(translation: Translation) -> str:
    """Objects, patches and statuses in order, as the controller would serialise them."""
    statuses = {ref: s.model_dump(mode="json", by_alias=True) for ref, s in translation.statuses.items()}
    return json.dumps([translation.objects, translation.patches, statuses])


def assert_same_as_full(step: Retranslation, scenario: Scenario) -> None:
    """``step`` is what the whole pipeline gives ``scenario``: outputs, statuses, discovery, findings."""
    analysis, decision, translation = _full(scenario)
    assert _bytes(step.translation) == _bytes(translation)
    assert step.translation.status_entries == translation.status_entries
    assert step.translation.findings == translation.findings
    assert step.analysis.discovery == analysis.discovery
    assert step.analysis.diagnostics == analysis.diagnostics
    assert step.decision.intent == decision.intent
    assert from_pipeline(step.analysis, step.translation) == from_pipeline(analysis, translation)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    topologies(topology_params(max_clusters=3, max_services=4, max_policies=3)),
    st.booleans(),
    st.lists(st.sampled_from(EDITS), min_size=1, max_size=4),
    st.data(),
)
def test_incremental_translation_equals_full_translation(
    topology: Topology, versioned: bool, edits: list[str], data: st.DataObject
) -> None:
    fleet = Fleet(topology, versioned)
    translator = IncrementalTranslator()
    first = fleet.scenario()
    assert translator.translate(first).path is TranslationPath.FULL
    for kind in edits:
        _edit(fleet, kind, data)
        scenario = fleet.scenario()
        step = translator.translate(scenario)
        assert_same_as_full(step, scenario)


# --- which path -----------------------------------------------------------------------------------

PARAMS = TopologyParams(clusters=2, services=4, traffic_policies=2, access_policies=2, linkerd_share=0.5, seed=7)


@pytest.fixture
def fleet() -> Fleet:
    return Fleet(generate_topology(PARAMS), versioned=True)


def _policy(fleet: Fleet, kind: str) -> Body:
    return next(p for p in fleet.policies if p["kind"] == kind)


def _step(translator: IncrementalTranslator, fleet: Fleet) -> Retranslation:
    scenario = fleet.scenario()
    step = translator.translate(scenario)
    assert_same_as_full(step, scenario)
    return step


def test_first_scenario_runs_whole_and_an_unchanged_one_reuses_everything(fleet: Fleet) -> None:
    translator = IncrementalTranslator()
    first = _step(translator, fleet)
    assert first.path is TranslationPath.FULL
    again = _step(translator, fleet)
    assert again.path is TranslationPath.UNCHANGED
    assert again.translation is first.translation


@pytest.mark.parametrize("kind", ["AccessPolicy", "TrafficPolicy"])
def test_a_spec_edit_updates_the_decision_of_that_policy_only(fleet: Fleet, kind: str) -> None:
    translator = IncrementalTranslator()
    _step(translator, fleet)
    target = _policy(fleet, kind)
    if kind == "AccessPolicy":
        target["spec"]["allowedMethods"] = ["GET", "PATCH"]
    else:
        target["spec"]["policy"]["requestTimeout"] = "7s"
    fleet.bump(target)
    step = _step(translator, fleet)
    assert step.path is TranslationPath.UPDATE
    assert step.updated == (f"{kind} {target['metadata']['namespace']}/{target['metadata']['name']}",)


def test_a_status_write_is_an_edit_in_place(fleet: Fleet) -> None:
    translator = IncrementalTranslator()
    _step(translator, fleet)
    target = _policy(fleet, "AccessPolicy")
    target["status"] = {"state": "ACCEPTED"}
    fleet.bump(target)
    assert _step(translator, fleet).path is TranslationPath.UPDATE


def test_adding_or_deleting_a_policy_decides_again_on_the_same_discovery(fleet: Fleet) -> None:
    translator = IncrementalTranslator()
    first = _step(translator, fleet)
    added = copy.deepcopy(_policy(fleet, "AccessPolicy"))
    added["metadata"]["name"] = "one-more"
    fleet.policies.append(added)
    step = _step(translator, fleet)
    assert step.path is TranslationPath.REDECIDE
    assert step.analysis.discovery is first.analysis.discovery
    fleet.policies.remove(added)
    assert _step(translator, fleet).path is TranslationPath.REDECIDE


def test_a_timestamp_that_moves_a_policy_in_acceptance_order_decides_again(fleet: Fleet) -> None:
    translator = IncrementalTranslator()
    _step(translator, fleet)
    oldest = min(
        (p for p in fleet.policies if p["kind"] == "AccessPolicy"), key=lambda p: p["metadata"]["creationTimestamp"]
    )
    newest = max(
        (p for p in fleet.policies if p["kind"] == "AccessPolicy"), key=lambda p: p["metadata"]["creationTimestamp"]
    )
    assert oldest is not newest
    oldest["metadata"]["creationTimestamp"] = "2030-01-01T00:00:00Z"  # now the newest
    fleet.bump(oldest)
    assert _step(translator, fleet).path is TranslationPath.REDECIDE
    oldest["metadata"]["creationTimestamp"] = "2031-01-01T00:00:00Z"  # later still: the same rank
    fleet.bump(oldest)
    assert _step(translator, fleet).path is TranslationPath.UPDATE


def test_changed_cluster_inputs_run_whole(fleet: Fleet) -> None:
    translator = IncrementalTranslator()
    _step(translator, fleet)
    service = next(o for objs in fleet.clusters.values() for o in objs if o["kind"] == "Service")
    service["metadata"].setdefault("labels", {})["tier"] = "edited"
    fleet.bump(service)
    assert _step(translator, fleet).path is TranslationPath.FULL
    fleet.bump(service)  # a new resourceVersion alone cannot be told from a change
    assert _step(translator, fleet).path is TranslationPath.FULL


def test_changed_rule_files_decide_again(fleet: Fleet) -> None:
    translator = IncrementalTranslator()
    scenario = fleet.scenario()
    translator.translate(scenario)
    text = (
        'rule note "every destination noted":\n'
        '  finding("MR0999", "warning", D, "", "noted", "") :- destination(D, M, C, N, S).\n'
    )
    extra = RuleSource("policies/extra.rules", text)
    with_rules = dataclasses.replace(scenario, rule_files=(extra,))
    step = translator.translate(with_rules)
    assert step.path is TranslationPath.REDECIDE
    assert_same_as_full(step, with_rules)
    assert translator.translate(with_rules).path is TranslationPath.UNCHANGED


def test_a_rule_file_that_does_not_check_fails_and_leaves_the_previous_translation(fleet: Fleet) -> None:
    translator = IncrementalTranslator()
    scenario = fleet.scenario()
    translator.translate(scenario)
    broken = dataclasses.replace(scenario, rule_files=(RuleSource("policies/bad.rules", "this is not a rule"),))
    with pytest.raises(RuleError):
        translator.translate(broken)
    assert translator.translate(scenario).path is TranslationPath.UNCHANGED
    translator.reset()
    assert translator.translate(scenario).path is TranslationPath.FULL


def test_a_failure_after_the_rules_leaves_the_next_scenario_to_run_whole(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    translator = IncrementalTranslator()
    translator.translate(fleet.scenario())
    target = _policy(fleet, "AccessPolicy")
    target["spec"]["allowedMethods"] = ["DELETE"]
    fleet.bump(target)

    def fail(*args: object, **kwargs: object) -> None:
        raise RuntimeError("emitter bug")

    monkeypatch.setattr("meshrules.pipeline.incremental.translate", fail)
    with pytest.raises(RuntimeError):
        translator.translate(fleet.scenario())
    monkeypatch.undo()
    assert _step(translator, fleet).path is TranslationPath.FULL


def test_a_policy_written_on_other_lines_is_re_decided_for_its_new_locations(tmp_path: Path) -> None:
    bookinfo = Path(__file__).resolve().parents[2] / "simulator" / "scenarios" / "bookinfo-multicluster"
    root = tmp_path / "scenario"
    import shutil

    shutil.copytree(bookinfo, root)
    translator = IncrementalTranslator()
    assert translator.translate(load_scenario(root)).path is TranslationPath.FULL
    policy_file = next(f for f in sorted((root / "policies").glob("*.yaml")) if "AccessPolicy" in f.read_text())
    policy_file.write_text("# moved down a line\n" + policy_file.read_text())
    scenario = load_scenario(root)
    step = translator.translate(scenario)
    # Equal policies, other lines: the facts' sources and the findings' locations move with them.
    assert step.path is TranslationPath.UPDATE
    assert_same_as_full(step, scenario)


def test_objects_with_one_uid_and_resource_version_are_one_object() -> None:
    from meshrules.errors import Location

    def obj(labels: dict[str, str], meta: dict[str, str], file: str = "") -> KubeObject:
        body = {"metadata": {"name": "a", "labels": labels, **meta}}
        where = Location(file=file, line=3) if file else Location(cluster="c", kind="Service", name="a")
        return KubeObject("c", "v1", "Service", "ns", "a", body, where)

    versioned = {"uid": "u1", "resourceVersion": "5"}
    # The API server never serves two bodies under one resourceVersion: the pair stands for the body.
    assert same_object(obj({"x": "1"}, versioned), obj({"x": "2"}, versioned))
    assert not same_object(obj({"x": "1"}, versioned), obj({"x": "1"}, {"uid": "u1", "resourceVersion": "6"}))
    # Without them, or read from a file (a snapshot edited by hand keeps them), by value.
    assert same_object(obj({"x": "1"}, {}), obj({"x": "1"}, {}))
    assert not same_object(obj({"x": "1"}, {}), obj({"x": "2"}, {}))
    assert not same_object(obj({"x": "1"}, versioned, "a.yaml"), obj({"x": "2"}, versioned, "a.yaml"))
