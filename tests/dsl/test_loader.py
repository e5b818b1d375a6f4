"""Loading rule files: directories, extra files, includes (relative, once each) and unreadable files."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshrules.dsl.diagnostics import INCLUDE_NOT_FOUND
from meshrules.engine import load_program
from meshrules.errors import InputError, RuleError


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_directory_gives_its_rule_files_in_name_order(tmp_path: Path) -> None:
    write(tmp_path / "rules" / "b.rules", 'rule b "from b": p("b").\n')
    write(tmp_path / "rules" / "a.rules", 'relation p(x: str)\nrule a "from a": p("a").\n')
    write(tmp_path / "rules" / "notes.txt", "not a rule file")
    program = load_program([tmp_path / "rules"])
    assert [r.name for r in program.rules] == ["a", "b"]
    assert [Path(f).name for f in program.files] == ["a.rules", "b.rules"]


def test_extra_files_add_rules_to_the_defaults(tmp_path: Path) -> None:
    write(tmp_path / "rules" / "base.rules", 'relation exported(x: str)\nrule base "d": exported("a").\n')
    extra = write(tmp_path / "scenario" / "policies" / "export.rules", 'rule also "d": exported("b").\n')
    program = load_program([tmp_path / "rules"], extra=[extra])
    assert [r.name for r in program.rules] == ["base", "also"]


def test_includes_are_relative_and_read_once(tmp_path: Path) -> None:
    write(tmp_path / "main.rules", 'include "lib/common.rules"\ninclude "lib/common.rules"\nrule m "d": p("m").\n')
    write(tmp_path / "lib" / "common.rules", 'include "../main.rules"\nrelation p(x: str)\n')
    program = load_program([tmp_path / "main.rules"])
    assert list(program.relations) == ["p"]
    assert len(program.files) == 2


def test_missing_include_points_at_the_include(tmp_path: Path) -> None:
    main = write(tmp_path / "main.rules", 'relation p(x: str)\n\ninclude "missing.rules"\n')
    with pytest.raises(RuleError) as caught:
        load_program([main])
    (d,) = caught.value.diagnostics
    assert d.code == INCLUDE_NOT_FOUND
    assert d.message == f"cannot read rule file `{tmp_path / 'missing.rules'}`: no such file"
    assert d.location is not None and (d.location.file, d.location.line) == (str(main), 3)


def test_missing_rule_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        load_program([tmp_path / "nowhere"])
    assert caught.value.message == f"no rule file or directory `{tmp_path / 'nowhere'}`"


def test_syntax_errors_of_several_files_are_reported_together(tmp_path: Path) -> None:
    write(tmp_path / "a.rules", 'rule a "d": p(X) :- q(X)\n')
    write(tmp_path / "b.rules", "relation p(x: str\n")
    with pytest.raises(RuleError) as caught:
        load_program([tmp_path])
    assert [Path(d.location.file).name for d in caught.value.diagnostics if d.location] == ["a.rules", "b.rules"]
