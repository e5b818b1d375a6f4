"""`meshrules diff` through the real command line: witnesses that really flip, and a bad `--with`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from meshrules.cli import app
from meshrules.cli.commands import __all__ as _registered  # noqa: F401  (registers the commands)

runner = CliRunner()
LINKERD = Path(__file__).resolve().parents[1] / "fixtures" / "scenarios" / "linkerd-three-clusters"


def _why(scenario: Path, witness: dict[str, object]) -> dict[str, object]:
    args = ["why", str(scenario), "--from", str(witness["from"]), "--to", str(witness["to"])]
    args += ["--method", str(witness["method"]), "--path", str(witness["path"]), "-o", "json"]
    if witness.get("port"):
        args += ["--port", str(witness["port"])]
    for name, value in witness["headers"].items():  # type: ignore[attr-defined]
        args += ["--header", f"{name}={value}"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_every_witness_answers_as_diff_says_before_and_after(tmp_path: Path) -> None:
    other = tmp_path / "other"
    shutil.copytree(LINKERD / "policies", other)
    access = other / "access.yaml"
    text = access.read_text().replace('allowedPaths: ["/api/*"]', 'allowedPaths: ["/api/*", "/"]')
    access.write_text(text.replace("{name: web, namespace: shop, cluster: west}", "{name: web, namespace: shop}"))
    result = runner.invoke(app, ["diff", str(LINKERD), "--with", str(other), "-o", "json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    after = tmp_path / "after"
    shutil.copytree(LINKERD, after)
    shutil.rmtree(after / "policies")
    shutil.copytree(other, after / "policies")
    assert len(body["changed"]) == 10
    for change in body["changed"]:
        before_got, after_got = _why(LINKERD, change["witness"]), _why(after, change["witness"])
        for key, value in change["before"].items():
            assert before_got[key] == value, (change["witness"], key)
        for key, value in change["after"].items():
            assert after_got[key] == value, (change["witness"], key)
        assert change["before"] != change["after"]


def test_a_with_that_is_not_a_directory_is_an_input_error(tmp_path: Path) -> None:
    for other in (tmp_path / "missing", LINKERD / "policies" / "vm.yaml"):
        result = runner.invoke(app, ["diff", str(LINKERD), "--with", str(other)])
        assert result.exit_code == 2
        assert result.stderr.startswith(f"error: policies directory `{other}` is not a directory")
        assert result.stdout == ""


def test_a_change_that_keeps_the_code_says_what_changed(tmp_path: Path) -> None:
    bookinfo = Path(__file__).resolve().parents[2] / "simulator" / "scenarios" / "bookinfo-multicluster"
    other = tmp_path / "policies"
    shutil.copytree(bookinfo / "policies", other)
    traffic = other / "traffic.yaml"
    traffic.write_text(traffic.read_text().replace("requestTimeout: 5s", "requestTimeout: 6s"))
    result = runner.invoke(app, ["diff", str(bookinfo), "--with", str(other)])
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.stdout.splitlines()[2:] if line.strip()]
    assert rows and all(r[2] == r[3] and r[4] == "timeout" for r in rows), result.stdout
