"""The property tests `docs/testing.md` shows users run here, exactly as written there.

Every ```python block of the page is extracted and executed in one namespace (the second block
uses names of the first), then each `test_*` function it defines is called. Editing an example in
the doc edits this test; an example that stops working fails CI.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

DOC = Path(__file__).resolve().parents[2] / "docs" / "testing.md"
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def _examples() -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "docs_testing_examples"}
    blocks = BLOCK.findall(DOC.read_text(encoding="utf-8"))
    assert len(blocks) >= 2, "docs/testing.md lost its example property tests"
    exec(compile("\n".join(blocks), str(DOC), "exec"), namespace)  # our own documentation, not user input
    return namespace


def test_docs_examples_run() -> None:
    namespace = _examples()
    tests = sorted(name for name, value in namespace.items() if name.startswith("test_") and callable(value))
    assert tests == ["test_jason_always_reaches_reviews_v2", "test_productpage_only_reads_reviews"]
    for name in tests:
        namespace[name]()
