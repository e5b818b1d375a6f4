"""Generated scenarios load without error and round-trip through their wire forms."""

from __future__ import annotations

import tempfile
from pathlib import Path

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from meshrules.kube.scenario import load_scenario
from meshrules.model.discovery import DISCOVERY_KINDS
from meshrules.model.policy import POLICY_KINDS
from meshrules.pipeline import analyse
from meshrules.testing import Topology, topologies, topology_params


def _write(topology: Topology, root: Path) -> None:
    """Lay a topology out as a scenario directory, one file per cluster and one for policies."""
    for cluster, objects in topology.clusters.items():
        directory = root / "clusters" / cluster
        directory.mkdir(parents=True)
        (directory / "objects.yaml").write_text(yaml.safe_dump_all(list(objects), sort_keys=True))
    (root / "policies").mkdir()
    (root / "policies" / "all.yaml").write_text(yaml.safe_dump_all(list(topology.policies), sort_keys=True))


@settings(max_examples=15)
@given(topologies(topology_params(max_clusters=3, max_services=5, max_policies=4)))
def test_generated_scenario_loads_cleanly_and_round_trips(topology: Topology) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _write(topology, root)
        analysis = analyse(load_scenario(root))
    assert analysis.diagnostics == ()
    found = analysis.discovery
    assert len(found.destinations) == len(topology.services)
    assert len(found.workloads) == len(topology.workloads)
    # Discovery objects: dump → load → equal.
    kinds = {k.kind: k for k in DISCOVERY_KINDS}
    for obj in found.objects():
        again = kinds[obj["kind"]].from_object(yaml.safe_load(yaml.safe_dump(obj)))
        assert again.to_object() == obj
    # Policies: wire form → model → wire form is stable.
    for policy in analysis.scenario.policies:
        wire = policy.to_wire()
        assert POLICY_KINDS[policy.kind].model_validate(wire) == policy


@settings(max_examples=10)
@given(topologies(topology_params(max_clusters=2, max_services=4, max_policies=3)), st.randoms())
def test_file_order_and_object_order_do_not_change_discovery(topology: Topology, rnd: object) -> None:
    import random

    assert isinstance(rnd, random.Random)
    results = []
    for shuffle in (False, True):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            for cluster, objects in topology.clusters.items():
                directory = root / "clusters" / cluster
                directory.mkdir(parents=True)
                items = list(objects)
                if shuffle:
                    rnd.shuffle(items)
                for i in range(0, len(items), 7):  # several files, in a different split when shuffled
                    (directory / f"part-{i:04d}.yaml").write_text(yaml.safe_dump_all(items[i : i + 7]))
            results.append(analyse(load_scenario(root)).discovery.objects())
    assert results[0] == results[1]
