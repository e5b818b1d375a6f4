"""`meshrules test` through the real command line: exit codes, failure text, JSON schema, JUnit XML."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema  # type: ignore[import-untyped]
import pytest
from referencing import Registry, Resource
from typer.testing import CliRunner

from meshrules.cli import app
from meshrules.cli import test as _test_command  # noqa: F401  (registers `test` until commands.py imports it)
from meshrules.cli.commands import __all__ as _registered  # noqa: F401  (registers the commands)
from meshrules.resources import bundled_scenario

runner = CliRunner()
BOOKINFO = str(bundled_scenario("bookinfo-multicluster"))
SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schemas"

FAILING = """\
apiVersion: testing.meshrules.io/v1alpha1
kind: ReachabilityTest
metadata: {name: jason-gets-v3, namespace: bookinfo}
spec:
  from: {workload: cluster-1/bookinfo/productpage-v1}
  to: {host: reviews.bookinfo.svc.cluster.local, port: 9080}
  request: {method: GET, path: /reviews/0, headers: {end-user: jason}}
  expect:
    timeout: 2s
    backends: [{destination: cluster-2/bookinfo/reviews, subset: {version: v3}, weight: 100}]
---
apiVersion: testing.meshrules.io/v1alpha1
kind: ReachabilityTest
metadata: {name: jason-gets-v2, namespace: bookinfo}
spec:
  from: {workload: cluster-1/bookinfo/productpage-v1}
  to: {host: reviews.bookinfo.svc.cluster.local, port: 9080}
  request: {method: GET, path: /reviews/0, headers: {end-user: jason}}
  expect: {allowed: true, retries: {attempts: 3}}
---
apiVersion: testing.meshrules.io/v1alpha1
kind: ReachabilityTest
metadata: {name: all-bookinfo-reads-ratings, namespace: bookinfo}
spec:
  from: {selector: {namespaces: [bookinfo]}}
  to: {destination: cluster-2/bookinfo/ratings, port: 9080}
  request: {method: GET, path: /ratings/0}
  expect: {allowed: true}
"""


@pytest.fixture()
def failing_dir(tmp_path: Path) -> Path:
    d = tmp_path / "tests"
    d.mkdir()
    (d / "promises.yaml").write_text(FAILING)
    return d


def test_bundled_tests_pass_with_exit_0() -> None:
    result = runner.invoke(app, ["test", BOOKINFO])
    assert result.exit_code == 0, result.output
    assert "PASS bookinfo/jason-sees-reviews-v2 (tests/bookinfo.yaml:2)" in result.stdout
    assert result.stdout.rstrip().endswith("passed, 0 failed, 0 errors")


def test_failure_prints_expected_versus_actual_and_why(failing_dir: Path) -> None:
    result = runner.invoke(app, ["test", BOOKINFO, "--tests", str(failing_dir)])
    assert result.exit_code == 1, result.output
    out = result.stdout
    block = out[out.index("FAIL bookinfo/jason-gets-v3") :]
    assert block.splitlines()[1:3] == [
        "  cluster-1/bookinfo/productpage-v1 -> reviews.bookinfo.svc.cluster.local:9080 GET /reviews/0",
        "  backends: expected {cluster-2/bookinfo/reviews version=v3 100%}, "
        "got {cluster-2/bookinfo/reviews version=v2 100%}",
    ]
    assert "  why:\n    ALLOWED: cluster-1/bookinfo/productpage-v1 -> reviews" in block
    assert "PASS bookinfo/jason-gets-v2" in out
    assert "  counterexample: cluster-1/bookinfo/details-v1 -> cluster-2/bookinfo/ratings; 3 of 6 pairs fail\n" in out
    assert "  allowed: expected true, got false\n" in out


def test_json_output_follows_the_published_schema(failing_dir: Path) -> None:
    result = runner.invoke(app, ["test", BOOKINFO, "--tests", str(failing_dir), "-o", "json", "--coverage"])
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    schema = json.loads((SCHEMAS / "test.schema.json").read_text())
    why_schema = json.loads((SCHEMAS / "why.schema.json").read_text())
    registry: Registry = Registry().with_resources(
        [
            ("why.schema.json", Resource.from_contents(why_schema)),
            ("https://meshrules.io/schemas/why.schema.json", Resource.from_contents(why_schema)),
        ]
    )
    jsonschema.Draft202012Validator(schema, registry=registry).validate(doc)
    assert doc["summary"] == {"passed": 1, "failed": 2, "error": 0}
    assert doc["coverage"]["percent"] > 0


def _check_junit(root: ET.Element) -> None:
    """The structure CI tools (Jenkins, GitLab, GitHub reporters) read, checked like an XSD would."""
    assert root.tag == "testsuites"
    suites = list(root)
    assert suites and all(s.tag == "testsuite" for s in suites)
    for suite in suites:
        assert {"name", "tests", "failures", "errors", "time"} <= set(suite.attrib)
        cases = list(suite)
        assert all(c.tag == "testcase" for c in cases)
        assert int(suite.attrib["tests"]) == len(cases)
        for attr, tag in (("failures", "failure"), ("errors", "error")):
            assert int(suite.attrib[attr]) == sum(1 for c in cases if c.find(tag) is not None)
        float(suite.attrib["time"])
        for case in cases:
            assert {"name", "classname", "time"} <= set(case.attrib)
            float(case.attrib["time"])
            children = list(case)
            assert len(children) <= 1 and all(ch.tag in ("failure", "error", "skipped") for ch in children)
            for ch in children:
                assert "message" in ch.attrib and "type" in ch.attrib
    for attr in ("tests", "failures", "errors"):
        assert int(root.attrib[attr]) == sum(int(s.attrib[attr]) for s in suites)


def test_junit_report_has_the_structure_ci_tools_read(failing_dir: Path, tmp_path: Path) -> None:
    report = tmp_path / "junit.xml"
    result = runner.invoke(app, ["test", BOOKINFO, "--tests", str(failing_dir), "--junit", str(report)])
    assert result.exit_code == 1, result.output
    root = ET.parse(report).getroot()
    _check_junit(root)
    suite = root.find("testsuite")
    assert suite is not None and suite.attrib["failures"] == "2" and suite.attrib["errors"] == "0"
    cases = {c.attrib["name"]: c for c in suite.iter("testcase")}
    assert cases["bookinfo/jason-gets-v2"].find("failure") is None
    failure = cases["bookinfo/jason-gets-v3"].find("failure")
    assert failure is not None
    assert failure.attrib["message"] == (
        "backends: expected {cluster-2/bookinfo/reviews version=v3 100%}, "
        "got {cluster-2/bookinfo/reviews version=v2 100%}"
    )
    assert failure.text is not None and failure.text.startswith("cluster-1/bookinfo/productpage-v1 -> ")


def test_junit_of_passing_run(tmp_path: Path) -> None:
    report = tmp_path / "junit.xml"
    assert runner.invoke(app, ["test", BOOKINFO, "--junit", str(report)]).exit_code == 0
    root = ET.parse(report).getroot()
    _check_junit(root)
    assert root.attrib["failures"] == "0" and int(root.attrib["tests"]) >= 8


def test_input_error_in_a_test_exits_2(tmp_path: Path) -> None:
    d = tmp_path / "t"
    d.mkdir()
    (d / "bad.yaml").write_text(FAILING.split("---")[1].replace("productpage-v1", "nope"))
    result = runner.invoke(app, ["test", BOOKINFO, "--tests", str(d)])
    assert result.exit_code == 2
    assert "ERROR bookinfo/jason-gets-v2" in result.stdout


def test_coverage_threshold(tmp_path: Path) -> None:
    shown = runner.invoke(app, ["test", BOOKINFO, "--coverage"])
    assert shown.exit_code == 0
    assert "Coverage: " in shown.stdout and "Policies never exercised:" in shown.stdout
    assert runner.invoke(app, ["test", BOOKINFO, "--threshold", "10"]).exit_code == 0
    below = runner.invoke(app, ["test", BOOKINFO, "--threshold", "99"])
    assert below.exit_code == 1
    assert "is below the threshold 99%" in below.output


def test_demo_runs_the_bundled_tests(capsys: pytest.CaptureFixture[str]) -> None:
    from meshrules.cli.test import print_scenario_tests

    assert print_scenario_tests(bundled_scenario("bookinfo-multicluster")) is True
    assert "0 failed, 0 errors" in capsys.readouterr().out


@pytest.mark.parametrize("where", ["dir", "missing/report.xml"])
def test_a_junit_path_that_cannot_be_written_is_an_input_error(tmp_path: Path, where: str) -> None:
    # Regression: IsADirectoryError / FileNotFoundError surfaced as MR9999 ("a bug") with exit 3.
    (tmp_path / "dir").mkdir()
    target = tmp_path / where
    result = runner.invoke(app, ["test", BOOKINFO, "--junit", str(target)])
    assert result.exit_code == 2
    assert f"error: cannot write `--junit {target}`" in result.stderr
    assert "MR9999" not in result.stderr
    assert "PASS " in result.stdout  # the results were still printed
