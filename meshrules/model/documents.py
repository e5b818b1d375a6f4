"""YAML text to documents that remember where each field was written.

libyaml (PyYAML's C loader) parses; line numbers come from the node marks it leaves, so we get
`file:line: field` errors without paying for a round-trip loader. Only meshrules kinds get a full
field → line map (their errors point at fields); other objects get their top levels, which is all
discovery's findings need, and keeps loading a 50-cluster snapshot fast.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from meshrules.errors import Diagnostic, Location

try:  # libyaml is part of every PyYAML wheel; the pure loader is a slow fallback.
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

MESHRULES_GROUP_SUFFIX = ".meshrules.io"
# Depth of the field → line map for objects meshrules reads tolerantly (metadata.*, spec.*).
SHALLOW_DEPTH = 3

YAML_SYNTAX = "MR0001"
NOT_AN_OBJECT = "MR0002"
UNREADABLE_FILE = "MR0003"
DUPLICATE_KEY = "MR0019"


@dataclass(frozen=True, slots=True)
class Document:
    """One object of a YAML stream, with where it starts and where its fields are."""

    body: Mapping[str, Any]
    location: Location
    lines: Mapping[str, int]

    @property
    def api_version(self) -> str:
        """`apiVersion` as written (empty when missing or not a string)."""
        value = self.body.get("apiVersion")
        return value if isinstance(value, str) else ""

    @property
    def kind(self) -> str:
        """`kind` as written (empty when missing or not a string)."""
        value = self.body.get("kind")
        return value if isinstance(value, str) else ""

    @property
    def is_meshrules(self) -> bool:
        """Whether the object belongs to one of meshrules' API groups."""
        return self.api_version.split("/")[0].endswith(MESHRULES_GROUP_SUFFIX)

    def line_of(self, path: str) -> int:
        """The line of ``path`` or of its nearest written ancestor."""
        while path:
            if path in self.lines:
                return self.lines[path]
            cut = max(path.rfind("."), path.rfind("["))
            path = path[:cut] if cut > 0 else ""
        return self.location.line


def parse_documents(text: str, file: str) -> tuple[list[Document], list[Diagnostic]]:
    """Parse a multi-document YAML stream; `kind: List` is flattened into its items.

    A syntax error costs only the documents it breaks: parsing resumes at the next `---` line
    after it, so one broken document of a `kubectl get -o yaml` dump does not hide the others.
    """
    docs: list[Document] = []
    diags: list[Diagnostic] = []
    lines = _LINE.findall(text)
    separators = [i for i, line in enumerate(lines) if _SEPARATOR.match(line)]
    start = 0
    while True:
        # Blank lines stand in for what was already read, so node marks keep the file's line numbers.
        error = _parse_stream("\n" * start + "".join(lines[start:]), file, docs, diags)
        if error is None:
            return docs, diags
        resume = [i for i in separators if i >= error and i > start]
        if not resume:
            return docs, diags
        start = resume[0]


# Lines as YAML counts them (libyaml breaks lines on CR, LF and CRLF, and on NEL, LS and PS).
_LINE = re.compile(r"[^\r\n\x85\u2028\u2029]*(?:\r\n|[\r\n\x85\u2028\u2029])|[^\r\n\x85\u2028\u2029]+\Z")
_SEPARATOR = re.compile(r"---(?:[ \t\r\n\x85\u2028\u2029]|\Z)")


def _parse_stream(text: str, file: str, docs: list[Document], diags: list[Diagnostic]) -> int | None:
    """Append the documents of ``text`` to ``docs``; return the 0-based line of a syntax error, if any."""
    loader = _Loader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:  # pragma: no cover - check_node guarantees a node
                continue
            body = loader.construct_document(node)
            if body is None:  # an empty document between `---` separators
                continue
            if not isinstance(body, dict) or not isinstance(node, yaml.MappingNode):
                diags.append(
                    Diagnostic(
                        code=NOT_AN_OBJECT,
                        message="document is not an object",
                        location=Location(file=file, line=node.start_mark.line + 1),
                        hint="each YAML document must be a mapping with `apiVersion`, `kind` and `metadata`",
                    )
                )
                continue
            docs.extend(_documents(body, node, file, diags))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else 0
        col = mark.column + 1 if mark is not None else 0
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        diags.append(
            Diagnostic(
                code=YAML_SYNTAX,
                message=f"invalid YAML: {problem}",
                location=Location(file=file, line=line, col=col),
                hint=_syntax_hint(text, mark),
            )
        )
        return mark.line if mark is not None else len(text)
    finally:
        loader.dispose()
    return None


def _syntax_hint(text: str, mark: Any) -> str:
    hint = "the other documents of the file were loaded; fix this one and run again"
    if mark is not None:
        lines = text.splitlines()
        if mark.line < len(lines) and lines[mark.line][: mark.column + 1].count("\t"):
            return f"YAML indents with spaces, not tabs; {hint}"
    return hint


def _documents(body: dict[str, Any], node: yaml.MappingNode, file: str, diags: list[Diagnostic]) -> Iterator[Document]:
    if body.get("kind") == "List" and isinstance(body.get("items"), list):
        items_node = _child(node, "items")
        item_nodes = items_node.value if isinstance(items_node, yaml.SequenceNode) else []
        for item, item_node in zip(body["items"], item_nodes, strict=False):
            if isinstance(item, dict) and isinstance(item_node, yaml.MappingNode):
                yield from _document(item, item_node, file, diags)
        return
    yield from _document(body, node, file, diags)


def _document(body: dict[str, Any], node: yaml.MappingNode, file: str, diags: list[Diagnostic]) -> Iterator[Document]:
    api_version = body.get("apiVersion")
    strict = isinstance(api_version, str) and api_version.split("/")[0].endswith(MESHRULES_GROUP_SUFFIX)
    lines: dict[str, int] = {}
    duplicates: list[tuple[str, int, int]] = []
    _walk(node, "", lines, depth=0, max_depth=10_000 if strict else SHALLOW_DEPTH, duplicates=duplicates)
    if strict and duplicates:
        # YAML would silently keep the last value (kubectl refuses the object): a meshrules object
        # with a key written twice is ambiguous, so it is not loaded, like any other syntax error.
        for field_path, line, first in duplicates:
            key = field_path.rsplit(".", 1)[-1]
            diags.append(
                Diagnostic(
                    code=DUPLICATE_KEY,
                    message=f"key `{key}` is written twice (first at line {first})",
                    location=Location(file=file, line=line),
                    field=field_path,
                    hint="YAML would keep only the last value, so the object was not loaded; remove one of them",
                )
            )
        return
    yield Document(body=body, location=Location(file=file, line=node.start_mark.line + 1), lines=lines)


def _child(node: yaml.MappingNode, key: str) -> yaml.Node | None:
    for k, v in node.value:
        if isinstance(k, yaml.ScalarNode) and k.value == key and isinstance(v, yaml.Node):
            return v
    return None


def _walk(
    node: yaml.Node,
    path: str,
    lines: dict[str, int],
    depth: int,
    max_depth: int,
    duplicates: list[tuple[str, int, int]],
) -> None:
    if depth >= max_depth:
        return
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode):
                continue
            sub = f"{path}.{key.value}" if path else str(key.value)
            line = key.start_mark.line + 1
            if key.value in seen and key.tag != "tag:yaml.org,2002:merge":
                duplicates.append((sub, line, seen[key.value]))
            seen.setdefault(key.value, line)
            lines[sub] = line
            _walk(value, sub, lines, depth + 1, max_depth, duplicates)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            sub = f"{path}[{i}]"
            lines[sub] = item.start_mark.line + 1
            _walk(item, sub, lines, depth + 1, max_depth, duplicates)
