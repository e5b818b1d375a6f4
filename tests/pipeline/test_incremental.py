"""The incremental translator: after every edit its result is the whole pipeline's, byte for byte.

Scenarios are built as the controller builds them (`live_scenario` over fresh copies of each
cluster's objects and the policy objects), from generated topologies with Pods (owned by a
Deployment's ReplicaSet, and one bare Pod per cluster, a workload of its own) and a Node added;
edits are drawn from what happens to a live fleet: a policy's spec, timestamp or status changes,
policies come and go, a Service or Deployment changes, a Pod's or Node's status or labels change,
Pods are replaced, a namespace or a user's mesh config appears, an object's resourceVersion moves
without a change, nothing moves.
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

from meshrules.discovery import Discovery
from meshrules.engine.facts_from_graph import extract_facts
from meshrules.engine.intent import Decision
from meshrules.errors import RuleError
from meshrules.graph import ServiceGraph, build_graph
from meshrules.kube.live import LiveCluster, live_scenario
from meshrules.kube.scenario import load_scenario
from meshrules.kube.translation import from_pipeline
from meshrules.model.scenario import ClusterSnapshot, RuleSource, Scenario
from meshrules.model.source import KubeObject
from meshrules.pipeline import Analysis, IncrementalTranslator, Retranslation, TranslationPath, analyse, incremental
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
from meshrules.testing.topology import TopologyParams, live_extras

Body = dict[str, Any]
POLICY_EDITS = ("spec", "field", "invalid", "add", "delete", "retime", "status", "vm")
CLUSTER_EDITS = ("cluster", "touch", "pod-status", "pod-labels", "pod-churn", "node-region", "namespace", "mesh-config")
EDITS = (*POLICY_EDITS, *CLUSTER_EDITS, "nothing")
# Edits that change nothing the translation reads: they never cost more than rediscovery.
STATUS_ONLY = ("touch", "pod-status")
REGION = "topology.kubernetes.io/region"


class Fleet:
    """The objects a controller would read: each cluster's inputs and the policies, as plain dicts."""

    def __init__(self, topology: Topology, versioned: bool) -> None:
        self.topology = topology
        self.versioned = versioned
        self._next = 0
        self.clusters = {
            name: [self._stamped(o) for o in (*objs, *_pods_and_node(name, topology))]
            for name, objs in topology.clusters.items()
        }
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

    def objects(self, kind: str) -> list[tuple[str, Body]]:
        """Every cluster object of ``kind`` with its cluster, in a stable order."""
        return [(name, o) for name, objs in sorted(self.clusters.items()) for o in objs if o["kind"] == kind]

    def _stamped(self, obj: Body) -> Body:
        out = copy.deepcopy(obj)
        if self.versioned:
            self._next += 1
            out["metadata"]["uid"] = f"uid-{self._next}"
            out["metadata"]["resourceVersion"] = "1"
        return out


def _pods_and_node(cluster: str, topology: Topology) -> list[Body]:
    """What a live cluster also holds (`live_extras`): Pods of the app Deployments, a bare Pod, a Node with a region."""
    deployments = [
        o
        for o in topology.clusters[cluster]
        if o["kind"] == "Deployment" and o["metadata"].get("namespace") in topology.namespaces
    ]
    return live_extras(cluster, deployments, topology.meshes[cluster], region="eu-west-1")


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
    elif kind in ("pod-status", "pod-labels", "pod-churn", "node-region"):
        _edit_pod_or_node(fleet, kind, data)
    elif kind in ("namespace", "mesh-config"):
        _add_namespace_or_config(fleet, kind, data)


def _edit_pod_or_node(fleet: Fleet, kind: str, data: st.DataObject) -> None:
    pods = fleet.objects("Pod")
    if kind == "pod-status":  # the kubelet reports: a new phase, IP or heartbeat, nothing else
        _, target = data.draw(st.sampled_from(pods + fleet.objects("Node")))
        status = target.setdefault("status", {})
        status["phase"] = data.draw(st.sampled_from(("Pending", "Running", "Succeeded")))
        status["conditions"] = [{"type": "Ready", "status": data.draw(st.sampled_from(("True", "False")))}]
        fleet.bump(target)
    elif kind == "pod-labels" and pods:  # the bare Pod's labels are its workload's; others' mostly not
        _, target = data.draw(st.sampled_from(pods))
        labels = target["metadata"]["labels"]
        key = data.draw(st.sampled_from(("version", "tier", "linkerd.io/control-plane-ns", "istio.io/rev")))
        value = data.draw(st.sampled_from(("v1", "v2", "linkerd", "canary", None)))
        if value is None:
            labels.pop(key, None)
        else:
            labels[key] = value
        fleet.bump(target)
    elif kind == "pod-churn" and pods:  # a Pod replaced (a rollout, an eviction): a new name and uid
        cluster, target = data.draw(st.sampled_from(pods))
        fleet.clusters[cluster].remove(target)
        fresh = copy.deepcopy(target)
        fresh["metadata"]["name"] += "-r"
        fleet.clusters[cluster].append(fleet._stamped(fresh))
    elif kind == "node-region":  # the cluster's region moves with its Nodes' label
        _, target = data.draw(st.sampled_from(fleet.objects("Node")))
        target["metadata"]["labels"][REGION] = data.draw(st.sampled_from(("eu-west-1", "us-east-1")))
        fleet.bump(target)


def _add_namespace_or_config(fleet: Fleet, kind: str, data: st.DataObject) -> None:
    cluster = data.draw(st.sampled_from(sorted(fleet.clusters)))
    objects = fleet.clusters[cluster]
    if kind == "namespace":
        _toggle_namespace(fleet, cluster, data.draw(st.sampled_from(fleet.topology.namespaces)))
        return
    # A user's DestinationRule, for a host a TrafficPolicy configures when there is one (where the
    # emitters leave the host to the user and say so), else for any Service.
    named = [
        ref
        for p in fleet.policies
        if p["kind"] == "TrafficPolicy"
        for selector in p["spec"].get("destinationSelector") or ()
        for ref in selector.get("services") or ()
        if ref.get("cluster") in fleet.clusters
    ]
    services = [
        o for o in objects if o["kind"] == "Service" and o["metadata"].get("namespace") in fleet.topology.namespaces
    ]
    if named:
        ref = data.draw(st.sampled_from(named))
        cluster, name, namespace = ref["cluster"], ref["name"], ref.get("namespace", "default")
        objects = fleet.clusters[cluster]
    elif services:
        service = data.draw(st.sampled_from(services))
        name, namespace = service["metadata"]["name"], service["metadata"]["namespace"]
    else:
        return
    existing = next(
        (o for o in objects if o["kind"] == "DestinationRule" and o["metadata"]["name"] == f"user-{name}"), None
    )
    if existing is not None:  # the user edits their own DestinationRule, or deletes it
        if data.draw(st.booleans()):
            objects.remove(existing)
        else:
            existing["spec"]["trafficPolicy"] = {
                "connectionPool": {"tcp": {"maxConnections": data.draw(st.integers(1, 9))}}
            }
            fleet.bump(existing)
        return
    rule = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": {"name": f"user-{name}", "namespace": namespace},
        "spec": {"host": f"{name}.{namespace}.svc.cluster.local", "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}},
    }
    objects.append(fleet._stamped(rule))


def _toggle_namespace(fleet: Fleet, cluster: str, namespace: str) -> None:
    """An empty namespace deleted, or created again: no workload moves, but the namespace facts do
    (a Linkerd mirror needs the destination's namespace in the target cluster)."""
    objects = fleet.clusters[cluster]
    declared = next((o for o in objects if o["kind"] == "Namespace" and o["metadata"]["name"] == namespace), None)
    if declared is None:
        objects.append(fleet._stamped({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}))
    elif not any(o["metadata"].get("namespace") == namespace for o in objects):
        objects.remove(declared)
    else:  # in use: a new, empty namespace instead
        objects.append(
            fleet._stamped({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"team-{len(objects)}"}})
        )


def _full(scenario: Scenario) -> tuple[Analysis, Any, Translation]:
    analysis = analyse(scenario)
    decision = decide(analysis)
    return analysis, decision, translate(analysis, decision.intent)


def _bytes(translation: Translation) -> str:
    """Objects, patches and statuses in order, as the controller would serialise them."""
    statuses = {ref: s.model_dump(mode="json", by_alias=True) for ref, s in translation.statuses.items()}
    return json.dumps([translation.objects, translation.patches, statuses])


def _base_facts(decision: Decision) -> dict[tuple[str, Any], str | None]:
    """The facts a decision was evaluated from, with their sources (their order never matters)."""
    return {(relation, row): decision.facts.source(relation, row) for relation, row in decision.facts}


def assert_same_as_full(step: Retranslation, scenario: Scenario) -> None:
    """``step`` is what the whole pipeline gives ``scenario``: outputs, statuses, discovery, findings."""
    analysis, decision, translation = _full(scenario)
    assert _bytes(step.translation) == _bytes(translation)
    assert step.translation.status_entries == translation.status_entries
    assert step.translation.findings == translation.findings
    assert step.analysis.discovery == analysis.discovery
    assert step.analysis.diagnostics == analysis.diagnostics
    assert step.decision.intent == decision.intent
    assert _base_facts(step.decision) == _base_facts(decision)
    assert from_pipeline(step.analysis, step.translation) == from_pipeline(analysis, translation)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    topologies(topology_params(max_clusters=3, max_services=4, max_policies=3)),
    st.booleans(),
    # Each step: one edit, or a cluster edit and a policy edit read together (Pods move while a
    # policy is edited, and a debounced reconcile sees both).
    st.lists(
        st.one_of(
            st.tuples(st.sampled_from(EDITS)),
            st.tuples(st.sampled_from(CLUSTER_EDITS), st.sampled_from(POLICY_EDITS)),
        ),
        min_size=1,
        max_size=4,
    ),
    st.data(),
)
def test_incremental_translation_equals_full_translation(
    topology: Topology, versioned: bool, steps: list[tuple[str, ...]], data: st.DataObject
) -> None:
    fleet = Fleet(topology, versioned)
    translator = IncrementalTranslator()
    first = fleet.scenario()
    assert translator.translate(first).path is TranslationPath.FULL
    for kinds in steps:
        for kind in kinds:
            _edit(fleet, kind, data)
        scenario = fleet.scenario()
        step = translator.translate(scenario)
        assert_same_as_full(step, scenario)
        if all(kind in STATUS_ONLY for kind in kinds):
            assert step.path is TranslationPath.UNCHANGED


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


def test_a_cluster_that_discovers_differently_runs_whole(fleet: Fleet) -> None:
    translator = IncrementalTranslator()
    _step(translator, fleet)
    _, deployment = next((c, o) for c, o in fleet.objects("Deployment") if o["metadata"]["name"] == "payment-v1")
    deployment["spec"]["template"]["metadata"]["labels"]["tier"] = "edited"
    fleet.bump(deployment)
    step = _step(translator, fleet)
    assert step.path is TranslationPath.FULL
    assert not step.rediscovered
    fleet.bump(deployment)  # a new resourceVersion alone: rediscovered, and found as it was
    step = _step(translator, fleet)
    assert (step.path, step.label) == (TranslationPath.UNCHANGED, "rediscover-unchanged")


def _pod(fleet: Fleet, name: str) -> Body:
    return next(o for _, o in fleet.objects("Pod") if o["metadata"]["name"] == name)


@pytest.mark.parametrize("kind", ["Pod", "Node"])
def test_a_status_update_of_a_pod_or_node_reuses_the_previous_translation(fleet: Fleet, kind: str) -> None:
    translator = IncrementalTranslator()
    first = _step(translator, fleet)
    _, target = fleet.objects(kind)[0]
    target["status"]["conditions"] = [{"type": "Ready", "status": "False", "reason": "KubeletNotReady"}]
    fleet.bump(target)
    step = _step(translator, fleet)
    assert step.label == "rediscover-unchanged"
    assert step.translation is first.translation
    assert step.analysis.discovery is first.analysis.discovery


def test_a_label_change_on_a_pod_its_deployment_speaks_for_reuses_the_previous_translation(fleet: Fleet) -> None:
    translator = IncrementalTranslator()
    first = _step(translator, fleet)
    pod = _pod(fleet, "payment-v1-5f7b9c-a0")  # owned: the Deployment's template is the workload
    pod["metadata"]["labels"]["version"] = "v2"
    fleet.bump(pod)
    step = _step(translator, fleet)
    assert step.label == "rediscover-unchanged"
    assert step.translation is first.translation


def test_a_label_change_that_moves_a_workload_between_subsets_runs_whole(fleet: Fleet) -> None:
    translator = IncrementalTranslator()
    first = _step(translator, fleet)
    # `payment-canary` shifts traffic between the `version: v1` and `v2` subsets of `payment`;
    # the bare Pod is a workload of its own, in the v1 subset.
    canary = next(p for p in fleet.policies if p["metadata"]["name"] == "payment-canary")
    assert {d["subset"]["version"] for d in canary["spec"]["policy"]["trafficShift"]["destinations"]} == {"v1", "v2"}
    pod = _pod(fleet, "payment-v1-debug")
    pod["metadata"]["labels"]["version"] = "v2"
    fleet.bump(pod)
    step = _step(translator, fleet)
    assert (step.path, step.rediscovered) == (TranslationPath.FULL, False)
    assert step.analysis.discovery != first.analysis.discovery
    workload = next(w for w in step.analysis.discovery.workloads if w.controller.name == "payment-v1-debug")
    assert workload.pod_labels["version"] == "v2"


def test_a_node_region_change_runs_whole(fleet: Fleet) -> None:
    translator = IncrementalTranslator()
    _step(translator, fleet)
    _, node = fleet.objects("Node")[0]
    node["metadata"]["labels"][REGION] = "us-east-1"
    fleet.bump(node)
    step = _step(translator, fleet)
    assert step.path is TranslationPath.FULL
    assert "us-east-1" in {c.region for c in step.analysis.discovery.clusters}


def test_a_namespace_without_workloads_decides_again_on_the_same_discovery(fleet: Fleet) -> None:
    translator = IncrementalTranslator()
    first = _step(translator, fleet)
    fleet.clusters["cluster-2"].append(
        fleet._stamped({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-new"}})
    )
    step = _step(translator, fleet)
    assert step.label == "rediscover-redecide"
    assert step.analysis.discovery is first.analysis.discovery
    assert ("namespace_in_cluster", ("cluster-2", "team-new")) in step.decision.facts


def test_a_users_destination_rule_is_read_again_by_the_emitters_only(fleet: Fleet) -> None:
    translator = IncrementalTranslator()
    first = _step(translator, fleet)
    rule = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": {"name": "user-payment", "namespace": "payments"},
        "spec": {"host": "payment.payments.svc.cluster.local"},
    }
    fleet.clusters["cluster-1"].append(fleet._stamped(rule))
    step = _step(translator, fleet)
    assert step.label == "rediscover-reemit"
    assert step.decision is first.decision
    # The canary needs the host's subsets: the emitters leave the host to the user and say so.
    assert "MR0321" in {f.code for f in step.translation.findings}
    assert "MR0321" not in {f.code for f in first.translation.findings}


def test_a_policy_edit_read_with_pod_status_updates_is_an_update(fleet: Fleet) -> None:
    translator = IncrementalTranslator()
    _step(translator, fleet)
    target = _policy(fleet, "AccessPolicy")
    target["spec"]["allowedMethods"] = ["GET"]
    fleet.bump(target)
    for _, pod in fleet.objects("Pod"):
        pod["status"]["phase"] = "Succeeded"
        fleet.bump(pod)
    step = _step(translator, fleet)
    assert step.label == "rediscover-update"
    assert step.updated == (f"AccessPolicy {target['metadata']['namespace']}/{target['metadata']['name']}",)


def test_a_cluster_that_moves_on_every_step_is_discovered_once_per_step(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    discovered: list[str] = []
    real = incremental._discover_cluster

    def counted(snapshot: ClusterSnapshot) -> Any:
        discovered.append(snapshot.name)
        return real(snapshot)

    monkeypatch.setattr(incremental, "_discover_cluster", counted)
    translator = IncrementalTranslator()
    _step(translator, fleet)
    _, node = next((c, o) for c, o in fleet.objects("Node") if c == "cluster-1")
    counts = []
    for _ in range(3):
        fleet.bump(node)
        assert _step(translator, fleet).label == "rediscover-unchanged"
        counts.append(len(discovered))
        discovered.clear()
    # The first time, its previous snapshot too; then the part found the step before is reused.
    assert counts == [2, 1, 1]
    translator.reset()
    _step(translator, fleet)
    fleet.bump(node)
    _step(translator, fleet)
    assert discovered == ["cluster-1", "cluster-1"]


def test_a_cluster_discovered_differently_leaves_no_part_of_the_others_behind(fleet: Fleet) -> None:
    translator = IncrementalTranslator()
    _step(translator, fleet)
    nodes = dict(fleet.objects("Node"))
    for node in nodes.values():  # both clusters rediscovered: both parts remembered
        fleet.bump(node)
    assert _step(translator, fleet).label == "rediscover-unchanged"
    _, deployment = next((c, o) for c, o in fleet.objects("Deployment") if o["metadata"]["name"] == "payment-v1")
    deployment["spec"]["template"]["metadata"]["labels"]["tier"] = "edited"  # cluster-1 differs ...
    fleet.bump(deployment)
    nodes["cluster-2"]["metadata"]["labels"][REGION] = "us-east-1"  # ... and so does cluster-2
    fleet.bump(nodes["cluster-2"])
    assert _step(translator, fleet).path is TranslationPath.FULL
    nodes["cluster-2"]["metadata"]["labels"][REGION] = "eu-west-1"  # back to the part remembered before
    fleet.bump(nodes["cluster-2"])
    assert _step(translator, fleet).path is TranslationPath.FULL


def test_the_decision_reads_the_snapshots_only_for_cluster_facts(fleet: Fleet) -> None:
    """What `incremental._snapshot_facts` relies on: the facts a scenario adds to those of its
    discovery are those it adds to discovery's clusters alone (and their sources come first)."""
    scenario = fleet.scenario()
    discovery = analyse(scenario).discovery

    def facts(graph: ServiceGraph, with_scenario: bool) -> dict[tuple[str, Any], str | None]:
        found = extract_facts(graph, scenario if with_scenario else None)
        return {(relation, row): found.source(relation, row) for relation, row in found}

    whole = build_graph(discovery, ())
    clusters_only = build_graph(Discovery(clusters=discovery.clusters), ())
    assert facts(whole, True) == {**facts(whole, False), **facts(clusters_only, True)}
    assert facts(clusters_only, True) != facts(clusters_only, False)  # the snapshots do add facts


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
