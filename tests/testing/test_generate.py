"""`benchmarks/generate.py`: the scenario it writes has spec §1.1's layout and loads as generated."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from meshrules.kube.scenario import load_scenario
from meshrules.pipeline.discovery import analyse
from meshrules.testing import Topology, TopologyParams, generate_topology

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def generate() -> ModuleType:
    # benchmarks/ is a folder of scripts, not a package: load the script by path.
    spec = importlib.util.spec_from_file_location("benchmarks_generate", REPO / "benchmarks" / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def topology() -> Topology:
    return generate_topology(TopologyParams(clusters=3, services=20, linkerd_share=1 / 3, seed=7))


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.yaml"))}


def test_layout_follows_the_scenario_spec(generate: ModuleType, topology: Topology, tmp_path: Path) -> None:
    files = generate.write_scenario(topology, tmp_path)
    names = {str(f.relative_to(tmp_path)) for f in files}
    for cluster in topology.clusters:
        for name in ("namespaces", "control-plane", "deployments", "services", "serviceaccounts"):
            assert f"clusters/{cluster}/{name}.yaml" in names
    assert "policies/meshrules-system.yaml" in names
    assert all(n.startswith(("clusters/", "policies/")) for n in names)
    listing = yaml.safe_load((tmp_path / "clusters/cluster-1/namespaces.yaml").read_text())
    assert listing["kind"] == "List" and all(item["kind"] == "Namespace" for item in listing["items"])


def test_written_objects_round_trip(generate: ModuleType, topology: Topology, tmp_path: Path) -> None:
    generate.write_scenario(topology, tmp_path)
    for cluster, objects in topology.clusters.items():
        read: list[dict[str, object]] = []
        for file in sorted((tmp_path / "clusters" / cluster).glob("*.yaml")):
            for doc in yaml.safe_load_all(file.read_text()):
                read.extend(doc["items"] if doc["kind"] == "List" else [doc])
        assert sorted(map(_canonical, read)) == sorted(map(_canonical, objects))
    policies = [d for f in sorted((tmp_path / "policies").glob("*.yaml")) for d in yaml.safe_load_all(f.read_text())]
    assert sorted(map(_canonical, policies)) == sorted(map(_canonical, topology.policies))


def _canonical(obj: object) -> str:
    return json.dumps(obj, sort_keys=True)


def test_same_seed_writes_identical_bytes(generate: ModuleType, tmp_path: Path) -> None:
    params = TopologyParams(clusters=2, services=10, seed=11)
    generate.write_scenario(generate_topology(params), tmp_path / "a")
    generate.write_scenario(generate_topology(params), tmp_path / "b")
    assert _tree(tmp_path / "a") == _tree(tmp_path / "b")


def test_written_scenario_is_discovered_as_generated(generate: ModuleType, topology: Topology, tmp_path: Path) -> None:
    generate.write_scenario(topology, tmp_path)
    scenario = load_scenario(tmp_path)
    assert scenario.diagnostics == ()
    assert len(scenario.policies) == len(topology.policies)
    analysis = analyse(scenario)
    assert analysis.diagnostics == ()
    assert len(analysis.discovery.meshes) == len(topology.clusters)
    assert len(analysis.discovery.workloads) == len(topology.workloads)
    assert len(analysis.discovery.destinations) == len(topology.services)


def test_cli_prints_timings_and_counts(
    generate: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert generate.main(["--size", "S", "--seed", "3", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "generate" in out and "write" in out
    assert "services 50" in out and "Deployment" in out
    assert (tmp_path / "clusters" / "cluster-3").is_dir()


def test_cli_refuses_to_overwrite_without_force(generate: ModuleType, tmp_path: Path) -> None:
    generate.main(["--size", "S", "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="--force"):
        generate.main(["--size", "S", "--out", str(tmp_path)])
    assert generate.main(["--size", "S", "--seed", "2", "--out", str(tmp_path), "--force"]) == 0


def test_size_presets_match_the_issue(generate: ModuleType) -> None:
    sizes = {name: (p.clusters, p.services, p.workloads, p.traffic_policies, p.access_policies)
             for name, p in generate.SIZES.items()}  # fmt: skip
    assert sizes["S"][:2] == (3, 50)
    assert sizes["M"][:3] == (10, 1_000, 2_000) and sum(sizes["M"][3:]) == 200
    assert sizes["L"] == (50, 5_000, 10_000, 1_000, 1_000)
