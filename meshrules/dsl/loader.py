"""Rule files from disk (directories, single files, and what they ``include``) to checked programs.

This is the only module of the language that reads files, and it reads them through a
``read`` function the caller may replace (tests and the in-memory scenario loader do). A
directory contributes its ``*.rules`` files in name order; an ``include`` is resolved relative
to the file that contains it; each file is read once, so include cycles are harmless.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from meshrules.dsl import ast
from meshrules.dsl.checks import check
from meshrules.dsl.diagnostics import INCLUDE_NOT_FOUND, error, raise_if_errors
from meshrules.dsl.parser import parse
from meshrules.dsl.program import Program
from meshrules.dsl.signatures import BuiltinSignature
from meshrules.errors import Diagnostic, InputError, Location, RuleError

RULE_SUFFIX = ".rules"

Reader = Callable[[str], str]


def read_file(path: str) -> str:
    """Read a rule file as UTF-8 text (the default ``Reader``)."""
    return Path(path).read_text(encoding="utf-8")


def rule_files(paths: Iterable[str | Path]) -> list[str]:
    """The rule files named by ``paths``: a directory gives its ``*.rules`` files in name order.

    Raises ``InputError`` for a path that does not exist, and for a directory without rule files:
    a rule set replaced by nothing would decide nothing and report no finding, silently.
    """
    files: list[str] = []
    for path in paths:
        p = Path(path)
        if p.is_dir():
            found = [str(f) for f in sorted(p.glob(f"*{RULE_SUFFIX}")) if f.is_file()]
            if not found:
                raise InputError(
                    f"rule directory `{path}` has no `*{RULE_SUFFIX}` files",
                    code=INCLUDE_NOT_FOUND,
                    hint="`--rules DIR` replaces the whole default rule set; copy `rules/` and edit the copy",
                )
            files += found
        elif p.is_file():
            files.append(str(p))
        else:
            raise InputError(
                f"no rule file or directory `{path}`",
                code=INCLUDE_NOT_FOUND,
                hint="pass a directory of *.rules files or a .rules file",
            )
    return files


def load_modules(files: Iterable[str], read: Reader = read_file) -> tuple[tuple[ast.Module, ...], dict[str, str]]:
    """Parse ``files`` and every file they include, each once.

    Returns the modules in load order (a file before the files it includes) and the text of
    each file. Raises ``RuleError`` with the syntax errors of all files.
    """
    modules: list[ast.Module] = []
    sources: dict[str, str] = {}
    found: list[Diagnostic] = []
    queue: list[tuple[str, Location | None]] = [(os.path.normpath(f), None) for f in files]
    while queue:
        file, included_at = queue.pop(0)
        if file in sources:
            continue
        try:
            text = read(file)
        except (OSError, UnicodeDecodeError) as exc:
            where = included_at or Location(file=file)
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not readable as UTF-8 text"
            if isinstance(exc, FileNotFoundError):
                reason = "no such file"
            found.append(
                error(
                    INCLUDE_NOT_FOUND,
                    where,
                    f"cannot read rule file `{file}`: {reason.lower()}",
                    "an include path is relative to the file that includes it",
                )
            )
            sources[file] = ""
            continue
        sources[file] = text
        try:
            module = parse(text, file)
        except RuleError as exc:
            found += exc.diagnostics
            continue
        modules.append(module)
        base = os.path.dirname(file)
        for include in module.includes:
            target = os.path.normpath(os.path.join(base, include.path))
            queue.append((target, include.span.location()))
    raise_if_errors(found)
    return tuple(modules), sources


def load_program(
    paths: Iterable[str | Path],
    builtins: Mapping[str, BuiltinSignature],
    extra: Iterable[str | Path] = (),
    read: Reader = read_file,
) -> Program:
    """Load, parse and check the rule files under ``paths`` plus ``extra`` files.

    ``paths`` is usually the default rule directory (or the one ``--rules DIR`` names);
    ``extra`` holds a scenario's ``policies/*.rules``. Raises ``RuleError`` with every
    diagnostic when any file has errors.
    """
    files = rule_files(list(paths)) + rule_files(list(extra))
    modules, sources = load_modules(files, read)
    return check(modules, builtins, sources)


def program_from_text(texts: Mapping[str, str], builtins: Mapping[str, BuiltinSignature]) -> Program:
    """Parse and check rule files held in memory (``{file name: text}``), resolving includes among them."""

    normalized = {os.path.normpath(name): text for name, text in texts.items()}

    def read(path: str) -> str:
        if path not in normalized:
            raise FileNotFoundError(path)
        return normalized[path]

    modules, sources = load_modules(list(normalized), read)
    return check(modules, builtins, sources)
