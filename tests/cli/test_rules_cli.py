"""`meshrules rules check|eval|explain` through the real command line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import typer
from typer.testing import CliRunner

from meshrules.cli import app
from meshrules.cli.commands import __all__ as _registered  # noqa: F401  (registers the commands)
from meshrules.cli.rules import rules_app
from meshrules.resources import bundled_scenario, default_rules_dir

runner = CliRunner()
BOOKINFO = str(bundled_scenario("bookinfo-multicluster"))
FEDERATED = 'federated("reviews-bookinfo-cluster-2", "istiod-istio-system-cluster-1")'


def _app() -> typer.Typer:
    """The `meshrules` app with `rules` registered (the lead registers it in commands.py)."""
    if not any(group.name == "rules" for group in app.registered_groups):
        app.add_typer(rules_app, name="rules")
    return app


def test_check_accepts_the_default_rules() -> None:
    result = runner.invoke(_app(), ["rules", "check"])
    assert result.exit_code == 0, result.output
    assert "ok — 5 files" in result.stdout


def test_check_reports_every_error_with_a_caret_and_exits_2(tmp_path: Path) -> None:
    (tmp_path / "bad.rules").write_text(
        "relation p(x: str)\n"
        'rule r "uses an undeclared relation": p(X) :- federatd(X).\n'
        'rule s "unbound": p(Y) :- p(_).\n'
    )
    result = runner.invoke(_app(), ["rules", "check", str(tmp_path)])
    assert result.exit_code == 2
    err = result.stderr
    assert "bad.rules:2:47: undeclared relation `federatd` [MR0504]" in err
    assert "^" in err and "bad.rules:3:" in err and "[MR0510]" in err
    assert "2 errors" in err


def test_check_of_a_missing_directory_is_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(_app(), ["rules", "check", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "no rule file or directory" in result.stderr


def test_eval_answers_a_query_as_a_table_and_as_json() -> None:
    table = runner.invoke(_app(), ["rules", "eval", BOOKINFO, "--query", "federated(D, M)"])
    assert table.exit_code == 0, table.output
    assert "5 answers" in table.stdout and "reviews-bookinfo-cluster-2" in table.stdout
    as_json = runner.invoke(
        _app(),
        ["rules", "eval", BOOKINFO, "-q", 'federated_host(D, M, H), M = "istiod-istio-system-cluster-1"', "-o", "json"],
    )
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.stdout)
    assert data["variables"] == ["D", "M", "H"]
    assert {a["H"] for a in data["answers"]} == {
        "ratings.bookinfo.svc.cluster-2.global",
        "reviews.bookinfo.svc.cluster-2.global",
    }


def test_eval_of_an_invalid_query_is_a_usage_error() -> None:
    result = runner.invoke(_app(), ["rules", "eval", BOOKINFO, "-q", "federatd(D, M)"])
    assert result.exit_code == 2
    assert "undeclared relation `federatd`" in result.stderr


def test_explain_prints_the_derivation_down_to_the_policy_line() -> None:
    result = runner.invoke(_app(), ["rules", "explain", BOOKINFO, FEDERATED])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.startswith(FEDERATED)
    assert "by rule federate-selected-destinations" in out
    assert "[policies/virtual-meshes.yaml:12]" in out and "[policies/virtual-meshes.yaml:21]" in out
    assert "[cluster-2/Service/bookinfo/reviews]" in out


def test_explain_as_json_and_of_a_fact_that_does_not_hold() -> None:
    result = runner.invoke(_app(), ["rules", "explain", BOOKINFO, FEDERATED, "-o", "json"])
    assert result.exit_code == 0, result.output
    tree = json.loads(result.stdout)
    assert tree["rule"] == "federate-selected-destinations" and tree["premises"]
    missing = runner.invoke(_app(), ["rules", "explain", BOOKINFO, 'federated("x", "y")'])
    assert missing.exit_code == 2 and "does not hold" in missing.stderr


def test_rules_dir_replaces_the_defaults_on_the_command_line(tmp_path: Path) -> None:
    mine = tmp_path / "rules"
    shutil.copytree(default_rules_dir(), mine)
    (mine / "federation.rules").write_text(
        (mine / "federation.rules")
        .read_text()
        .replace(
            'vm_hostname_suffix(VM, Suffix),\n    format4("{}.{}.svc.{}.{}"',
            'vm_hostname_suffix(VM, Suffix),\n    format4("{}.{}.{}.{}"',
        )
    )
    result = runner.invoke(
        _app(), ["rules", "eval", BOOKINFO, "-q", "federated_host(D, M, H)", "-o", "json", "--rules", str(mine)]
    )
    assert result.exit_code == 0, result.output
    assert "reviews.bookinfo.cluster-2.global" in {a["H"] for a in json.loads(result.stdout)["answers"]}


def test_an_empty_rules_dir_is_a_usage_error_not_an_empty_rule_set(tmp_path: Path) -> None:
    # Regression: `--rules EMPTY` decided nothing and `check` printed "0 errors" with exit 0.
    for args in (["check", BOOKINFO, "--rules", str(tmp_path)], ["rules", "check", str(tmp_path)]):
        result = runner.invoke(_app(), args)
        assert result.exit_code == 2, args
        assert f"rule directory `{tmp_path}` has no `*.rules` files" in result.stderr
        assert "Traceback" not in result.output


def test_warnings_of_a_rule_set_that_fails_are_printed_as_warnings(tmp_path: Path) -> None:
    # Regression: every diagnostic of a failed rule set was printed as `error:`, MR0520 included.
    shutil.copytree(BOOKINFO, tmp_path / "s")
    (tmp_path / "s/policies/extra.rules").write_text(
        'relation baz(a: str)\nrule r2 "y":\n  baz(X) :- destination(X, M).\n'
    )
    result = runner.invoke(_app(), ["check", str(tmp_path / "s")])
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert any(line.startswith("error: policies/extra.rules:3:13:") for line in lines)
    assert any(line.startswith("warning: policies/extra.rules:3:28: variable `M` occurs only once") for line in lines)
