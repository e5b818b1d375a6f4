"""Every code meshrules can report is documented in docs/codes.md."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CODE = re.compile(r"\bMR\d{4}\b")
# Codes as the code base uses them: string literals (prose mentions of ranges do not count).
CODE_LITERAL = re.compile(r"[\"'](MR\d{4})[\"']")
DECISION = re.compile(r'"((?:[A-Z]+_)+(?:NOT_MODELLED|ASSUMED|UNKNOWN))"')


def _documented() -> str:
    return (REPO / "docs" / "codes.md").read_text()


def _used(pattern: re.Pattern[str], *roots: str) -> set[str]:
    found: set[str] = set()
    for root in roots:
        for path in (REPO / root).rglob("*"):
            if path.suffix in (".py", ".rules"):
                found.update(m if isinstance(m, str) else m[0] for m in pattern.findall(path.read_text()))
    return found


def test_every_finding_and_error_code_is_in_docs_codes() -> None:
    used = _used(CODE_LITERAL, "meshrules", "rules")
    assert used, "no codes found: the scan is broken"
    documented = set(CODE.findall(_documented()))
    # MR10xx are documented as a range (their list lives with `check --invariants`).
    missing = sorted(c for c in used - documented if not c.startswith("MR10"))
    assert missing == []


def test_every_assumption_code_is_in_docs_codes() -> None:
    used = _used(DECISION, "meshrules")
    documented = _documented()
    assert sorted(c for c in used if f"| {c} |" not in documented) == []
