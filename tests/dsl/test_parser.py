"""Parsing rule text: the tree, positions, comments, strings, and every syntax error of a file."""

from __future__ import annotations

import pytest

from meshrules.dsl import (
    Aggregate,
    Atom,
    Comparison,
    Constant,
    Include,
    Negation,
    RelationDecl,
    Rule,
    Variable,
    format_module,
    parse,
    parse_query,
)
from meshrules.dsl.diagnostics import SYNTAX_ERROR
from meshrules.errors import Diagnostic, RuleError

FEDERATION = """\
# Federation: which destination is visible in which mesh.
include "common.rules"

relation federated(destination: Destination, mesh: Mesh) "a destination visible in a mesh other than its own"

rule federate-selected-destinations "a destination is visible in every other member mesh its VirtualMesh selects":
  federated(D, M) :-
    destination_mesh(D, Home),   # where it runs
    member(VM, Home),
    member(VM, M),
    M != Home,
    not excluded(D, "legacy"),
    N = count : { member(VM, X) },
    N >= 2.
"""


def syntax_errors(text: str) -> list[Diagnostic]:
    with pytest.raises(RuleError) as caught:
        parse(text, "t.rules")
    assert all(d.code == SYNTAX_ERROR for d in caught.value.diagnostics)
    return list(caught.value.diagnostics)


def where(d: Diagnostic) -> tuple[int, int]:
    assert d.location is not None
    return d.location.line, d.location.col


def test_parse_builds_the_typed_tree() -> None:
    module = parse(FEDERATION, "federation.rules")
    include, decl, rule = module.statements
    assert include == Include("common.rules", comments=("Federation: which destination is visible in which mesh.",))
    assert isinstance(decl, RelationDecl)
    assert decl.name == "federated"
    assert [(c.name, c.type) for c in decl.columns] == [("destination", "Destination"), ("mesh", "Mesh")]
    assert decl.description == "a destination visible in a mesh other than its own"
    assert isinstance(rule, Rule)
    assert rule.name == "federate-selected-destinations"
    assert rule.head == Atom("federated", (Variable("D"), Variable("M")))
    assert rule.body[3] == Comparison("!=", Variable("M"), Variable("Home"))
    assert rule.body[4] == Negation(Atom("excluded", (Variable("D"), Constant("legacy"))))
    assert rule.body[5] == Aggregate(Variable("N"), "count", None, (Atom("member", (Variable("VM"), Variable("X"))),))
    assert rule.comments == ("where it runs",)


def test_nodes_carry_their_positions() -> None:
    rule = parse(FEDERATION, "federation.rules").rules[0]
    assert (rule.span.file, rule.span.line, rule.span.col) == ("federation.rules", 6, 1)
    literal = rule.body[1]
    assert isinstance(literal, Atom)
    assert (literal.span.line, literal.span.col) == (9, 5)
    assert (literal.args[1].span.line, literal.args[1].span.col) == (9, 16)


def test_positions_do_not_take_part_in_equality() -> None:
    assert parse("relation p(a: str)\n", "a.rules") == parse("\n\n   relation   p( a :str )", "b.rules")


def test_printed_module_parses_back_to_the_same_tree() -> None:
    module = parse(FEDERATION)
    assert parse(format_module(module)) == module


def test_constants_keep_their_types() -> None:
    rule = parse('rule r "d": p("1", 1, true, false, -3).').rules[0]
    assert [type(t.value) for t in rule.head.args if isinstance(t, Constant)] == [str, int, bool, bool, int]
    assert Constant(1) != Constant(True)


def test_string_escapes() -> None:
    rule = parse(r'rule r "say \"hi\"\n": p("a\\b", "\.\*", "tab\t").').rules[0]
    assert rule.description == 'say "hi"\n'
    assert [t.value for t in rule.head.args if isinstance(t, Constant)] == ["a\\b", "\\.\\*", "tab\t"]


def test_a_rule_without_body_states_a_fact() -> None:
    rule = parse('rule default-suffix "the default hostname suffix": default_suffix("global").').rules[0]
    assert rule.body == ()


def test_parse_query() -> None:
    assert parse_query('federated(D, "mesh-a"), D != "x"') == (
        Atom("federated", (Variable("D"), Constant("mesh-a"))),
        Comparison("!=", Variable("D"), Constant("x")),
    )


def test_missing_dot_before_the_next_rule() -> None:
    (d,) = syntax_errors('rule a "d": p(X) :- q(X)\nrule b "d": p(X) :- q(X).\n')
    assert d.message == "a rule must end with `.`, found `rule`"
    assert where(d) == (2, 1)
    assert d.hint == "finish the rule with a dot after its last literal"


def test_missing_dot_at_the_end_of_the_file() -> None:
    (d,) = syntax_errors('rule a "d": p(X) :- q(X)\n')
    assert d.message == "a rule must end with `.`, found the end of the file"
    assert where(d) == (1, 25)


def test_missing_description() -> None:
    (d,) = syntax_errors("rule a: p(X) :- q(X).\n")
    assert d.message == "a rule needs a description in quotes after its name, found `:`"
    assert where(d) == (1, 7)


def test_lower_case_variable() -> None:
    (d,) = syntax_errors('rule a "d": p(X) :- q(x).\n')
    assert d.message == "this is not a term, found `x`"
    assert where(d) == (1, 23)
    assert d.hint == 'variables start with an upper-case letter (`Mesh`), strings are quoted (`"istio"`)'


def test_and_instead_of_comma() -> None:
    (d,) = syntax_errors('rule a "d": p(X) :- q(X) and r(X).\n')
    assert d.message == "literals of a rule body are separated by `,`, found `and`"
    assert where(d) == (1, 26)


def test_if_instead_of_turnstile() -> None:
    (d,) = syntax_errors('rule a "d": p(X) if q(X).\n')
    assert d.message == "expected `:-` between the head and the body, found `if`"


def test_double_equals() -> None:
    (d,) = syntax_errors('rule a "d": p(X) :- q(X), X == 1.\n')
    assert d.message == "expected a term after the comparison, found `=`"
    assert where(d) == (1, 30)


def test_unexpected_token_says_what_was_expected() -> None:
    (d,) = syntax_errors("relation p(a: str\nrelation q(a: str)\n")
    assert d.message == "unexpected `relation`"
    assert d.hint == "expected `)` or `,`"
    assert where(d) == (2, 1)


def test_unterminated_string() -> None:
    (d,) = syntax_errors('rule a "d: p(X).\n')
    assert d.message == "a string does not end on its line"
    assert where(d) == (1, 8)


def test_aggregate_must_be_assigned_with_equals() -> None:
    (d,) = syntax_errors('rule a "d": p(N) :- N != count : { q(X) }.\n')
    assert d.message == "an aggregate must be assigned to a variable with `=`, found `!=`"
    assert where(d) == (1, 21)


def test_aggregates_do_not_nest() -> None:
    (d,) = syntax_errors('rule a "d": p(N) :- N = count : { q(X), M = count : { q(Y) } }.\n')
    assert d.message == "an aggregate cannot contain another aggregate"


def test_every_broken_statement_of_a_file_is_reported() -> None:
    text = (
        'rule a "d": p(X) :- q(X)\n'
        'rule b "d": p(x).\n'
        'rule c "d": p(X) :- q(X).\n'
        "relation r(a: str\n"
        'rule e "d": p(X) :- q(X) and r(X).\n'
    )
    assert [where(d) for d in syntax_errors(text)] == [(2, 1), (2, 15), (5, 1), (5, 26)]
