"""`dump_yaml`'s fast writer produces exactly PyYAML's bytes (`CSafeDumper`, sorted keys, block style).

The reference below is the dumper `dump_yaml` used before it had a fast path: every document, on
any input, must come out byte-for-byte the same (what the writer does not handle it leaves to
PyYAML, so both sides agree there by construction; the properties check what it does handle).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshrules.cli import output
from meshrules.cli.output import dump_yaml

try:
    from yaml import CSafeDumper as Dumper
except ImportError:  # pragma: no cover
    from yaml import SafeDumper as Dumper  # type: ignore[assignment]


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def reference(docs: list[Any]) -> str:
    """What `dump_yaml` wrote before the fast writer: PyYAML over plain copies."""
    return yaml.dump_all(
        [_plain(d) for d in docs], Dumper=Dumper, sort_keys=True, default_flow_style=False, allow_unicode=True
    )


TRICKY = [
    "",
    " ",
    "  ",
    "true",
    "True",
    "TRUE",
    "false",
    "yes",
    "no",
    "on",
    "off",
    "y",
    "n",
    "null",
    "Null",
    "~",
    "1e3",
    "1.5",
    "-1",
    "+1",
    "0x1f",
    "0o17",
    "017",
    "1_000",
    ".5",
    ".inf",
    "-.inf",
    ".nan",
    "1:20",
    "12:30:45",
    "2024-01-01",
    "2024-01-01T10:00:00Z",
    ":",
    "::",
    "a:",
    ":a",
    "a:b",
    "a: b",
    "- x",
    "-",
    "--",
    "---",
    "---x",
    "...",
    "...x",
    "-x",
    "?",
    "? x",
    "?x",
    "#",
    "a#b",
    "a #b",
    "a # b",
    "#a",
    "!",
    "!x",
    "&a",
    "*a",
    "*",
    "@x",
    "`x",
    "%x",
    "|",
    ">",
    "'",
    '"',
    "'x'",
    '"x"',
    "a'b",
    'a"b',
    "[",
    "]",
    "{",
    "}",
    "[x]",
    "{a: b}",
    "a,b",
    ",",
    "a, b",
    " x",
    "x ",
    " x ",
    "a  b",
    "a b",
    "é",
    "naïve",
    "日本語",
    "\u00a0",
    "x\u00a0",
    "\u2028",
    "a\u2029b",
    "\U0001f600",
    "\ufeff",
    "\ue000",
    "\x85",
    "\x7f",
    "\x00",
    "\t",
    "a\tb",
    "a\nb",
    "\n",
    "a\n",
    "\na",
    "line one\nline two\n",
    "a \nb",
    "a\n b",
    "=",
    "<<",
    "x" * 79,
    "x" * 81,
    "x" * 130,
    "a b " * 30,
    "word " * 20,
    "spiffe://cluster.local/ns/default/sa/x",
    "*.global",
    "meshrules.io/owner",
    '{"Destination":["meshrules/x"]}',
    "outbound_.9080_.v1_.reviews.global",
    "10.0.0.1",
    "240.0.0.1",
]

keys = st.one_of(
    st.sampled_from(["apiVersion", "kind", "metadata", "name", "spec", "a", "b", "hosts", "ports"]),
    st.sampled_from(TRICKY),
    st.text(max_size=12),
)
strings = st.one_of(
    st.sampled_from(TRICKY),
    st.text(max_size=40),
    st.text(alphabet="ab :#-'\"\n", max_size=90),
    # Printable text the fast writer handles, long enough to cross libyaml's 80-column folding.
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=100),
    st.text(alphabet="xé日 -:'", min_size=60, max_size=95),
)
scalars = st.one_of(
    strings,
    st.integers(),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.tuples(children, children),
        st.dictionaries(keys, children, max_size=5),
    ),
    max_leaves=30,
)
documents = st.lists(st.dictionaries(keys, values, max_size=6), max_size=3)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_fast_writer_is_byte_identical_to_pyyaml(docs: list[dict[str, Any]]) -> None:
    assert dump_yaml(docs) == reference(docs)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.dictionaries(st.sampled_from(TRICKY), st.sampled_from(TRICKY), max_size=8), max_size=3))
def test_tricky_keys_and_values(docs: list[dict[str, Any]]) -> None:
    assert dump_yaml(docs) == reference(docs)


@pytest.mark.parametrize("text", TRICKY)
@pytest.mark.parametrize("depth", [0, 1, 3, 10])
def test_each_tricky_string_at_several_columns(text: str, depth: int) -> None:
    value: Any = text
    for i in range(depth):
        value = {"k" * (i % 3 + 1): value} if i % 2 else [value, {text: text}]
    docs = [{"key": value, text: [text, {"x": text}]}]
    assert dump_yaml(docs) == reference(docs)


def test_non_plain_values_fall_back_to_pyyaml() -> None:
    # Keys that are not strings, mappings that are not dicts, tuples, and (unrepresentable) objects.
    from types import MappingProxyType

    docs: list[Any] = [{1: "a", "b": (1, 2)}, MappingProxyType({"z": {}, "a": []}), {}]
    assert dump_yaml(docs) == reference(docs)
    with pytest.raises(yaml.representer.RepresenterError):
        dump_yaml([{"a": object()}])


def test_emitted_objects_take_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The objects `translate` writes never need PyYAML (else the fast writer buys nothing)."""
    from meshrules.cli.run import run_pipeline
    from meshrules.resources import bundled_scenario

    tr = run_pipeline(bundled_scenario("bookinfo-multicluster")).translation
    docs = [o for objs in tr.objects.values() for o in objs]
    expected = reference(docs)

    def no_fallback(_: Any) -> str:
        raise AssertionError("fell back to PyYAML")

    monkeypatch.setattr(output, "_pyyaml_dump_all", no_fallback)
    assert dump_yaml(docs) == expected


# Data in the fast writer's domain (printable text, finite numbers) so that most documents take it.
fast_strings = st.one_of(
    st.sampled_from(TRICKY),
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=100),
    st.text(alphabet="xé日 -:'#?", max_size=95),
)
fast_values = st.recursive(
    st.one_of(fast_strings, st.integers(), st.booleans(), st.none(), st.floats(allow_nan=False, allow_infinity=False)),
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(fast_strings, children, max_size=5)),
    max_leaves=30,
)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.dictionaries(fast_strings, fast_values, min_size=1, max_size=6), min_size=1, max_size=3))
def test_fast_domain_is_byte_identical_to_pyyaml(docs: list[dict[str, Any]]) -> None:
    assert dump_yaml(docs) == reference(docs)


def test_fast_path_is_exact_on_a_nested_document() -> None:
    docs = [{"a": ["x y", {"b": 1.5, "c": None}], "d": {"e": [[True, "'q'"]], "f": {}}, "g": [], "h": 1e20}]
    out: list[str] = []
    output._fast_mapping(docs[0], 0, False, out)
    assert "".join(out) == reference(docs)
