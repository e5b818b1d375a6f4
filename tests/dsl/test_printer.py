"""The printer writes what the parser reads back: ``parse(format_module(m)) == m`` for every tree."""

from __future__ import annotations

from hypothesis import given

from meshrules.dsl import Module, format_module, parse
from tests.dsl.strategies import modules


@given(modules)
def test_parse_of_print_is_identity(module: Module) -> None:
    assert parse(format_module(module)) == module


@given(modules)
def test_printing_is_stable(module: Module) -> None:
    text = format_module(module)
    assert format_module(parse(text)) == text


def test_layout_of_a_rule() -> None:
    module = parse(
        'relation p(a: str, b: Mesh) "pairs"\n'
        'rule r "d": p(X, Y) :- q(X), not s(Y), N = count : { q(Z) }, N > 1, Y = "m".'
    )
    assert format_module(module) == (
        'relation p(a: str, b: Mesh) "pairs"\n'
        "\n"
        'rule r "d":\n'
        "  p(X, Y) :-\n"
        "    q(X),\n"
        "    not s(Y),\n"
        "    N = count : { q(Z) },\n"
        "    N > 1,\n"
        '    Y = "m".\n'
    )
