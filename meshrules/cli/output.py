"""Printing answers: `-o table|yaml|json`, deterministic bytes, colour only on a terminal."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

try:
    from yaml import CSafeDumper as _Dumper
except ImportError:  # pragma: no cover
    from yaml import SafeDumper as _Dumper  # type: ignore[assignment]


class OutputFormat(StrEnum):
    """The `-o` choices shared by every command that prints objects or answers."""

    table = "table"
    yaml = "yaml"
    json = "json"


def dump_yaml(docs: Iterable[Mapping[str, Any]]) -> str:
    """A multi-document YAML stream with sorted keys: same input, same bytes."""
    return yaml.dump_all(
        [_plain(d) for d in docs], Dumper=_Dumper, sort_keys=True, default_flow_style=False, allow_unicode=True
    )


def dump_json(value: Any) -> str:
    """Stable JSON: sorted keys, two-space indent, trailing newline."""
    return json.dumps(_plain(value), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _plain(value: Any) -> Any:
    """Tuples and other sequences become lists so every dumper writes the same thing."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def console(stderr: bool = False) -> Console:
    """A rich console that only colours a terminal."""
    stream = sys.stderr if stderr else sys.stdout
    return Console(file=stream, highlight=False, soft_wrap=True, no_color=not stream.isatty(), width=200)


def print_table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Print a table (plain text when not on a terminal)."""
    table = Table(title=title, title_justify="left", show_edge=False, pad_edge=False, box=None)
    for col in columns:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    console().print(table)


def write(text: str) -> None:
    """Write to stdout exactly (no rich markup interpretation)."""
    sys.stdout.write(text)
