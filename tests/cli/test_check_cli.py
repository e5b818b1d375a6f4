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
