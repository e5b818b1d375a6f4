"""`meshrules check`: findings with codes and places, `-o json` per its schema, `--suppress`, exit codes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
from typer.testing import CliRunner

from meshrules.cli import app
from meshrules.cli.commands import __all__ as _registered  # noqa: F401  (registers the commands)
from meshrules.resources import bundled_scenario

runner = CliRunner()
BOOKINFO = str(bundled_scenario("bookinfo-multicluster"))
SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "docs/schemas/check.schema.json").read_text())


def test_bundled_scenario_reports_the_linkerd_fault_injection_error() -> None:
    result = runner.invoke(app, ["check", BOOKINFO, "-o", "json"])
    assert result.exit_code == 1
    answer = json.loads(result.stdout)
    jsonschema.validate(answer, SCHEMA)
    errors = [f for f in answer["findings"] if f["severity"] == "error"]
    assert [(f["code"], f["object"], f["location"]) for f in errors] == [
        ("MR0401", "TrafficPolicy emojivoto/emoji-chaos", {"file": "policies/traffic.yaml", "line": 107})
    ]


def test_suppress_hides_a_code_for_matching_objects_and_the_exit_follows() -> None:
    result = runner.invoke(app, ["check", BOOKINFO, "--suppress", "MR0401=*emoji-chaos", "-o", "json"])
    assert result.exit_code == 0
    assert [f["code"] for f in json.loads(result.stdout)["findings"] if f["severity"] == "error"] == []


def test_a_bad_suppression_is_a_usage_error() -> None:
    result = runner.invoke(app, ["check", BOOKINFO, "--suppress", "nonsense"])
    assert result.exit_code == 2
    assert "is not CODE=GLOB" in result.stderr


def test_broken_input_exits_2_and_still_reports_policy_findings(tmp_path: Path) -> None:
    shutil.copytree(BOOKINFO, tmp_path / "s")
    (tmp_path / "s/policies/zz.yaml").write_text("kind: [\n")
    result = runner.invoke(app, ["check", str(tmp_path / "s"), "-o", "json"])
    assert result.exit_code == 2
    codes = [f["code"] for f in json.loads(result.stdout)["findings"]]
    assert "MR0001" in codes and "MR0401" in codes


def test_a_cluster_yaml_naming_another_cluster_points_at_its_name_line(tmp_path: Path) -> None:
    # Regression: MR0140 pointed at the document's first line, not at `metadata.name`.
    shutil.copytree(BOOKINFO, tmp_path / "s")
    config = tmp_path / "s/clusters/cluster-1/cluster.yaml"
    text = config.read_text()
    config.write_text(text.replace("name: cluster-1", "name: cluster-9"))
    line = text.splitlines().index("  name: cluster-1") + 1
    result = runner.invoke(app, ["check", str(tmp_path / "s"), "-o", "json"])
    assert result.exit_code == 2
    found = [f for f in json.loads(result.stdout)["findings"] if f["code"] == "MR0140"]
    assert [f["location"] for f in found] == [{"file": "clusters/cluster-1/cluster.yaml", "line": line}]


def test_a_broken_scenario_rule_file_is_reported_and_the_shipped_rules_still_decide(tmp_path: Path) -> None:
    # Regression: a syntax error in policies/*.rules stopped `check` (and every deciding command)
    # with only that error: no finding, no answer.
    shutil.copytree(BOOKINFO, tmp_path / "s")
    (tmp_path / "s/policies/extra.rules").write_text('relation foo(a: str)\nrule r1 "x":\n  foo(X) :- bar(X\n')
    result = runner.invoke(app, ["check", str(tmp_path / "s"), "-o", "json"])
    assert result.exit_code == 2
    assert "error: policies/extra.rules:3:18: the text ends too early" in result.stderr
    assert "info: left out the scenario's rule files (policies/extra.rules)" in result.stderr
    assert "MR0401" in [f["code"] for f in json.loads(result.stdout)["findings"]]


def test_a_broken_rules_dir_still_stops_the_command(tmp_path: Path) -> None:
    (tmp_path / "bad.rules").write_text("relation p(x: str\n")
    result = runner.invoke(app, ["check", BOOKINFO, "--rules", str(tmp_path)])
    assert result.exit_code == 2
    assert "bad.rules:2:1:" in result.stderr or "bad.rules:1:" in result.stderr
    assert "left out" not in result.stderr
