"""Where the data meshrules ships lives: the default rule set and the bundled scenarios.

Installed, they are package data under `meshrules/_data/`; in a source checkout (an editable
install), they are the repository's top-level `rules/` and `simulator/` folders.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _data_dir(name: str) -> Path:
    installed = _PACKAGE / "_data" / name
    return installed if installed.is_dir() else _PACKAGE.parent / name


def default_rules_dir() -> Path:
    """The directory of the default rule set."""
    return _data_dir("rules")


def bundled_scenario(name: str) -> Path:
    """The directory of a bundled scenario, e.g. `bookinfo-multicluster`."""
    return _data_dir("simulator") / "scenarios" / name
