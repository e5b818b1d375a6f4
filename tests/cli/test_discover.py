"""`meshrules discover`, `crds` and `demo` through the real command line."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from meshrules.cli import app
from meshrules.cli.commands import __all__ as _registered  # noqa: F401  (registers the commands)
from meshrules.resources import bundled_scenario

runner = CliRunner()
BOOKINFO = str(bundled_scenario("bookinfo-multicluster"))


def test_discover_yaml_lists_discovery_objects() -> None:
    result = runner.invoke(app, ["discover", BOOKINFO, "-o", "yaml"])
    assert result.exit_code == 0, result.output
    docs = list(yaml.safe_load_all(result.stdout))
    kinds = [d["kind"] for d in docs]
    assert kinds.count("KubernetesCluster") == 3 and kinds.count("Mesh") == 3
    assert {d["apiVersion"] for d in docs} == {"discovery.meshrules.io/v1alpha1"}
    mesh = next(d for d in docs if d["metadata"]["name"] == "istiod-istio-system-cluster-2")
    assert mesh["metadata"]["labels"] == {"meshrules.io/cluster": "cluster-2"}
    assert mesh["spec"]["gateways"][0]["address"] == "203.0.113.2"


def test_discover_json_is_stable_and_byte_identical_across_runs() -> None:
    first = runner.invoke(app, ["discover", BOOKINFO, "-o", "json"])
    second = runner.invoke(app, ["discover", BOOKINFO, "-o", "json"])
    assert first.exit_code == 0
    assert first.stdout == second.stdout
    assert json.loads(first.stdout)["kind"] == "List"


def test_discover_table_names_every_workload() -> None:
    result = runner.invoke(app, ["discover", BOOKINFO])
    assert result.exit_code == 0
    assert "productpage-v1-bookinfo-cluster-1-deployment" in result.stdout
    assert "203.0.113.3:4143" in result.stdout


def test_missing_scenario_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["discover", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert result.stderr.strip().count("\n") == 0
    assert "is not a directory" in result.stderr
    assert "Traceback" not in result.output


def test_broken_file_is_reported_while_the_rest_is_discovered(tmp_path: Path) -> None:
    import shutil

    shutil.copytree(BOOKINFO, tmp_path / "s")
    (tmp_path / "s/policies/zz-broken.yaml").write_text("kind: [\n")
    result = runner.invoke(app, ["discover", str(tmp_path / "s"), "-o", "yaml"])
    assert result.exit_code == 2
    assert "error: policies/zz-broken.yaml:2:1: invalid YAML" in result.stderr
    assert len(list(yaml.safe_load_all(result.stdout))) > 20


def test_crds_prints_the_policy_and_discovery_crds() -> None:
    result = runner.invoke(app, ["crds"])
    assert result.exit_code == 0
    names = [d["metadata"]["name"] for d in yaml.safe_load_all(result.stdout)]
    assert names == [
        "virtualmeshes.networking.meshrules.io",
        "trafficpolicies.networking.meshrules.io",
        "accesspolicies.networking.meshrules.io",
        "reachabilitytests.testing.meshrules.io",
        "kubernetesclusters.discovery.meshrules.io",
        "meshes.discovery.meshrules.io",
        "workloads.discovery.meshrules.io",
        "destinations.discovery.meshrules.io",
    ]


def test_demo_runs_on_the_bundled_scenario() -> None:
    result = runner.invoke(app, ["demo"])
    assert result.exit_code == 0, result.output
    assert "istiod-istio-system-cluster-1" in result.stdout
