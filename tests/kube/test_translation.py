"""The controller's `Translate` callables: the incremental one gives what the whole pipeline gives."""

from __future__ import annotations

import copy
import logging

import pytest

from meshrules.kube.live import LiveCluster, live_scenario
from meshrules.kube.metrics import Metrics
from meshrules.kube.translation import default_translate, full_pipeline, incremental_pipeline
from meshrules.model.scenario import Scenario
from meshrules.testing import TopologyParams, generate_topology

TOPOLOGY = generate_topology(TopologyParams(clusters=2, services=4, traffic_policies=2, access_policies=2, seed=3))


def _scenario(policies: list[dict[str, object]]) -> Scenario:
    clusters = [LiveCluster(name, copy.deepcopy(list(objs))) for name, objs in sorted(TOPOLOGY.clusters.items())]
    return live_scenario(clusters, copy.deepcopy(policies))


def test_incremental_pipeline_translates_as_the_full_pipeline_and_counts_its_paths(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics = Metrics()
    translate = incremental_pipeline(metrics)
    policies = copy.deepcopy(list(TOPOLOGY.policies))
    access = next(p for p in policies if p["kind"] == "AccessPolicy")
    scenarios = [_scenario(policies), _scenario(policies)]
    access["spec"]["allowedMethods"] = ["GET"]
    scenarios.append(_scenario(policies))
    scenarios.append(_scenario(policies[1:]))
    with caplog.at_level(logging.DEBUG, logger="meshrules.kube.translation"):
        for scenario in scenarios:
            assert translate(scenario) == full_pipeline(scenario)
    paths = [r.getMessage().split()[3] for r in caplog.records if r.getMessage().startswith("translated on the")]
    assert paths == ["full", "unchanged", "update", "redecide"]
    counted = {
        path: metrics.registry.get_sample_value("meshrules_translations_total", {"path": path})
        for path in ("full", "unchanged", "update", "redecide")
    }
    assert counted == {"full": 1.0, "unchanged": 1.0, "update": 1.0, "redecide": 1.0}


def test_the_default_translation_is_incremental(caplog: pytest.LogCaptureFixture) -> None:
    translate = default_translate()
    scenario = _scenario(list(TOPOLOGY.policies))
    with caplog.at_level(logging.DEBUG, logger="meshrules.kube.translation"):
        first, again = translate(scenario), translate(scenario)
    assert first == again == full_pipeline(scenario)
    assert [r.getMessage().split()[3] for r in caplog.records] == ["full", "unchanged"]


def test_pod_writes_that_change_nothing_are_counted_as_rediscover_unchanged() -> None:
    metrics = Metrics()
    translate = incremental_pipeline(metrics)
    policies = list(TOPOLOGY.policies)
    first = _scenario(policies)
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "debug", "namespace": "default", "uid": "u1", "resourceVersion": "1"},
        "status": {"phase": "Pending"},
    }
    clusters = [LiveCluster(name, copy.deepcopy([*objs, pod])) for name, objs in sorted(TOPOLOGY.clusters.items())]
    with_pod = live_scenario(clusters, copy.deepcopy(policies))
    pod = copy.deepcopy(pod)
    pod["metadata"]["resourceVersion"], pod["status"]["phase"] = "2", "Running"
    clusters = [LiveCluster(name, copy.deepcopy([*objs, pod])) for name, objs in sorted(TOPOLOGY.clusters.items())]
    running = live_scenario(clusters, copy.deepcopy(policies))
    for scenario in (first, with_pod, running):
        assert translate(scenario) == full_pipeline(scenario)
    counted = {
        path: metrics.registry.get_sample_value("meshrules_translations_total", {"path": path})
        for path in ("full", "rediscover-unchanged")
    }
    assert counted == {"full": 1.0, "rediscover-unchanged": 2.0}


def test_the_full_pipeline_pauses_the_cyclic_collector_for_the_whole_step(monkeypatch: pytest.MonkeyPatch) -> None:
    import gc

    from meshrules.kube import translation

    seen: list[bool] = []
    real = translation.analyse

    def analyse(scenario: Scenario) -> object:
        seen.append(gc.isenabled())
        return real(scenario)

    monkeypatch.setattr(translation, "analyse", analyse)
    enabled = gc.isenabled()
    full_pipeline(_scenario(list(TOPOLOGY.policies)))
    assert seen == [False]
    assert gc.isenabled() == enabled
