"""Printing answers: `-o table|yaml|json`, deterministic bytes, colour only on a terminal."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
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
    """A multi-document YAML stream with sorted keys: same input, same bytes.

    The bytes are PyYAML's (`CSafeDumper`, sorted keys, block style, unicode). Most documents are
    written by `_fast_mapping`, a writer for plain data that produces exactly those bytes; a
    document holding anything it does not handle is dumped by PyYAML itself.
    """
    docs = list(docs)
    if not all(isinstance(d, Mapping) and d for d in docs):
        # Only a non-empty mapping is a block node, which a `---` line of its own precedes.
        return _pyyaml_dump_all(docs)
    parts: list[str] = []
    for index, doc in enumerate(docs):
        if index:
            parts.append("---\n")
        try:
            out: list[str] = []
            _fast_mapping(doc, 0, False, out)
            parts.append("".join(out))
        except _Unsupported:
            parts.append(_pyyaml_dump_all([doc]))
    return "".join(parts)


def _pyyaml_dump_all(docs: Iterable[Any]) -> str:
    return yaml.dump_all(
        [_plain(d) for d in docs], Dumper=_Dumper, sort_keys=True, default_flow_style=False, allow_unicode=True
    )


# The resolver CSafeDumper uses: a string that would read back as another type is quoted.
_RESOLVE: Callable[[type[yaml.Node], str, tuple[bool, bool]], str] = yaml.resolver.Resolver().resolve
_STR_TAG = "tag:yaml.org,2002:str"
_FLOAT_TAG = "tag:yaml.org,2002:float"
# Characters the fast writer renders; anything else (line breaks, tabs, control characters, BOM,
# U+2028/U+2029, private-use or astral code points) leaves the document to PyYAML.
_SAFE_TEXT = re.compile("[\x20-\x7e\xa0-\u2027\u202a-\ud7ff]+")
_BLANKZ = " \t\r\n\x85\u2028\u2029\0"
# libyaml's best width: a plain or single-quoted scalar may be folded at a space past this column.
_WIDTH = 80
# Longer keys are not simple keys for libyaml (it writes `? key`): left to PyYAML.
_MAX_KEY_BYTES = 120
# Rendering of each string and key seen; bounded so a huge run does not hoard memory.
_SCALARS: dict[str, str] = {}
_KEYS: dict[str, str] = {}
_SCALAR_CACHE_LIMIT = 1 << 18


class _Unsupported(Exception):
    """A value the fast writer would not render exactly like PyYAML: its document falls back."""


def _plain_allowed(text: str) -> bool:
    """libyaml's rule for a block plain scalar, for a non-empty printable text without line breaks."""
    if text[0] == " " or text[-1] == " " or text.startswith(("---", "...")):
        return False
    n = len(text)
    preceded = True
    for i, ch in enumerate(text):
        followed = i + 1 >= n or text[i + 1] in _BLANKZ
        if i == 0:
            if ch in "#,[]{}&*!|>'\"%@`":
                return False
            if ch in "?:-" and followed:
                return False
        elif (ch == ":" and followed) or (ch == "#" and preceded):
            return False
        preceded = ch in _BLANKZ
    return True


def _render_str(text: str) -> str | None:
    """``text`` as PyYAML writes a string scalar (plain or single-quoted), or None if not handled."""
    if not text:
        return "''"
    if _SAFE_TEXT.fullmatch(text) is None:
        return None
    implicit = _RESOLVE(yaml.ScalarNode, text, (True, False)) == _STR_TAG
    if implicit and _plain_allowed(text):
        return text
    return "'" + text.replace("'", "''") + "'"


def _str(text: str) -> str:
    """A string's rendering (cached); raises `_Unsupported` for one left to PyYAML."""
    rendered = _SCALARS.get(text)
    if rendered is None:
        rendered = _render_str(text)
        if rendered is None:
            raise _Unsupported
        if len(_SCALARS) >= _SCALAR_CACHE_LIMIT:
            _SCALARS.clear()
        _SCALARS[text] = rendered
    return rendered


def _key(key: Any) -> str:
    """A mapping key's rendering (cached); only strings short enough to be simple keys."""
    if type(key) is not str:
        raise _Unsupported  # PyYAML's caller writes `str(key)`
    rendered = _KEYS.get(key)
    if rendered is None:
        if len(key.encode("utf-8")) > _MAX_KEY_BYTES:
            raise _Unsupported
        rendered = _str(key)
        if len(_KEYS) >= _SCALAR_CACHE_LIMIT:
            _KEYS.clear()
        _KEYS[key] = rendered
    return rendered


def _scalar(value: Any) -> str:
    """A non-string scalar's rendering; raises `_Unsupported` for what is left to PyYAML."""
    kind = type(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if value is None:
        return "null"
    if kind is float:
        return _float(value)
    raise _Unsupported


def _float(value: float) -> str:
    """SafeRepresenter's float text, when it resolves back to a float as a plain scalar."""
    if value != value or value in (float("inf"), float("-inf")):
        raise _Unsupported
    text = repr(value).lower()
    if "." not in text and "e" in text:
        text = text.replace("e", ".0e", 1)
    if _RESOLVE(yaml.ScalarNode, text, (True, False)) != _FLOAT_TAG or not _plain_allowed(text):
        raise _Unsupported
    return text


def _inline(value: Any, column: int) -> str | None:
    """The rendering of a scalar or empty collection written at ``column``; None for a block."""
    kind = type(value)
    if kind is str:
        rendered = _str(value)
        if column + len(rendered) > _WIDTH and " " in rendered:
            raise _Unsupported  # libyaml might fold it at a space
        return rendered
    if kind is dict or kind is list or kind is tuple or isinstance(value, Mapping | list | tuple):
        if value:
            return None
        return "{}" if isinstance(value, Mapping) else "[]"
    return _scalar(value)


def _fast_mapping(mapping: Mapping[Any, Any], indent: int, inline: bool, out: list[str]) -> None:
    """A block mapping at ``indent``; with ``inline`` its first key follows a `- ` already written."""
    pad = " " * indent
    try:
        keys = sorted(mapping)
    except TypeError:
        raise _Unsupported from None
    for key in keys:
        rendered_key = _KEYS.get(key) if type(key) is str else None
        if rendered_key is None:
            rendered_key = _key(key)
        value = mapping[key]
        head = rendered_key if inline else pad + rendered_key
        inline = False
        # The common cases first (a known string, a non-empty dict or list); the rest via `_inline`.
        kind = type(value)
        if kind is dict and value:
            out.append(head + ":\n")
            _fast_mapping(value, indent + 2, False, out)
            continue
        if kind is list and value:
            out.append(head + ":\n")
            _fast_sequence(value, indent, False, out)
            continue
        rendered = _SCALARS.get(value) if kind is str else None
        if rendered is not None:
            if indent + len(rendered_key) + 2 + len(rendered) > _WIDTH and " " in rendered:
                raise _Unsupported  # libyaml might fold it at a space
        else:
            rendered = _inline(value, indent + len(rendered_key) + 2)
        if rendered is not None:
            out.append(f"{head}: {rendered}\n")
        elif type(value) is dict or isinstance(value, Mapping):
            out.append(head + ":\n")
            _fast_mapping(value, indent + 2, False, out)
        else:
            out.append(head + ":\n")
            _fast_sequence(value, indent, False, out)


def _fast_sequence(items: Sequence[Any], indent: int, inline: bool, out: list[str]) -> None:
    """A block sequence at ``indent`` (`- item`); with ``inline`` its first item follows a `- `."""
    pad = " " * indent
    for item in items:
        head = "- " if inline else pad + "- "
        inline = False
        kind = type(item)
        if kind is dict and item:
            out.append(head)
            _fast_mapping(item, indent + 2, True, out)
            continue
        rendered = _SCALARS.get(item) if kind is str else None
        if rendered is not None:
            if indent + 2 + len(rendered) > _WIDTH and " " in rendered:
                raise _Unsupported  # libyaml might fold it at a space
        else:
            rendered = _inline(item, indent + 2)
        if rendered is not None:
            out.append(f"{head}{rendered}\n")
        elif type(item) is dict or isinstance(item, Mapping):
            out.append(head)
            _fast_mapping(item, indent + 2, True, out)
        else:
            out.append(head)
            _fast_sequence(item, indent + 2, True, out)


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
