"""`meshrules translate --out`: where it may write, and how it refuses what it may not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from meshrules.cli import app
from meshrules.cli.commands import __all__ as _registered  # noqa: F401  (registers the commands)
from meshrules.cli.translate import MARKER
from meshrules.resources import bundled_scenario

runner = CliRunner()
BOOKINFO = str(bundled_scenario("bookinfo-multicluster"))


def test_out_naming_a_file_is_an_input_error_not_a_crash(tmp_path: Path) -> None:
    # Regression: NotADirectoryError surfaced as MR9999 ("a bug in meshrules") with exit 3.
    target = tmp_path / "out.yaml"
    target.write_text("mine\n")
    result = runner.invoke(app, ["translate", BOOKINFO, "--out", str(target)])
    assert result.exit_code == 2
    assert f"error: `--out {target}` is a file, not a directory (give a new or empty directory" in result.stderr
    assert "MR9999" not in result.stderr
    assert target.read_text() == "mine\n"


def test_out_that_cannot_be_written_is_an_input_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Root writes anywhere, so a read-only disk is simulated.
    def refuse(self: Path, *args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "mkdir", refuse)
    result = runner.invoke(app, ["translate", BOOKINFO, "--out", str(tmp_path / "new")])
    assert result.exit_code == 2
    assert f"error: cannot write `--out {tmp_path / 'new'}`: permission denied" in result.stderr
    assert "MR9999" not in result.stderr


@pytest.mark.parametrize("marker", ["not json", '["../victim.txt"]', json.dumps([""]), '{"a": 1}'])
def test_a_corrupt_marker_never_deletes_outside_the_output(tmp_path: Path, marker: str) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    out = tmp_path / "out"
    assert runner.invoke(app, ["translate", BOOKINFO, "--out", str(out)]).exit_code == 0
    (out / MARKER).write_text(marker)
    result = runner.invoke(app, ["translate", BOOKINFO, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert victim.read_text() == "keep me\n"
    assert json.loads((out / MARKER).read_text())


def test_debug_shows_the_traceback_and_keeps_the_exit_code(tmp_path: Path) -> None:
    # Regression: with --debug the error was re-raised, so an input error exited 1 instead of 2.
    target = tmp_path / "file"
    target.write_text("")
    plain = runner.invoke(app, ["translate", BOOKINFO, "--out", str(target)])
    debug = runner.invoke(app, ["--debug", "translate", BOOKINFO, "--out", str(target)])
    assert (plain.exit_code, debug.exit_code) == (2, 2)
    assert "Traceback" not in plain.stderr
    assert "Traceback (most recent call last)" in debug.stderr
    assert debug.stderr.rstrip().endswith(plain.stderr.rstrip().splitlines()[-1])
