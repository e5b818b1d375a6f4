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
