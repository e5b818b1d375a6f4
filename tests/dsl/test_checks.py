"""One test per static error of the rule language: its code, exact message and position."""

from __future__ import annotations

import pytest

from meshrules.dsl import Program, check, parse, render_diagnostics
from meshrules.dsl import diagnostics as codes
from meshrules.engine import program_from_text, standard_builtins
from meshrules.errors import Diagnostic, RuleError, Severity


def errors_of(text: str, file: str = "t.rules") -> list[Diagnostic]:
    """Every error diagnostic of one rule file (warnings dropped)."""
    with pytest.raises(RuleError) as caught:
        program_from_text({file: text})
    return [d for d in caught.value.diagnostics if d.severity is Severity.ERROR]


def only_error(text: str) -> Diagnostic:
    found = errors_of(text)
    assert len(found) == 1, [str(d) for d in found]
    return found[0]


def at(diagnostic: Diagnostic) -> tuple[int, int]:
    assert diagnostic.location is not None
    return diagnostic.location.line, diagnostic.location.col


def test_undeclared_relation() -> None:
    d = only_error('relation p(a: str)\nrule r "d": p(X) :- q(X).\n')
    assert d.code == codes.UNDECLARED_RELATION
    assert d.message == "undeclared relation `q`"
    assert at(d) == (2, 21)
    assert d.hint == "declare it: `relation q(...)` with a name and type per column"


def test_undeclared_relation_suggests_a_close_name() -> None:
    d = only_error('relation federated(a: str)\nrule r "d": federated(X) :- federatd(X).\n')
    assert d.message == "undeclared relation `federatd`"
    assert d.hint == "did you mean `federated`?"


def test_undeclared_head_relation() -> None:
    d = only_error('relation p(a: str)\nrule r "d": q(X) :- p(X).\n')
    assert (d.code, d.message, at(d)) == (codes.UNDECLARED_RELATION, "undeclared relation `q`", (2, 13))


def test_unknown_builtin() -> None:
    d = only_error('relation p(a: str)\nrule r "d": p(X) :- p(X), startwith(X, "a").\n')
    assert d.code == codes.UNKNOWN_BUILTIN
    assert d.message == "unknown built-in `startwith`"
    assert at(d) == (2, 27)
    assert d.hint == "did you mean `startswith(S, Prefix)`?"


def test_arity_mismatch_of_a_relation() -> None:
    d = only_error('relation p(a: str)\nrule r "d": p(X) :- p(X, _).\n')
    assert d.code == codes.ARITY_MISMATCH
    assert d.message == "`p` takes 1 argument, found 2"
    assert at(d) == (2, 21)
    assert d.hint == "it is `p(a: str)` (declared at t.rules:1:1)"


def test_arity_mismatch_of_a_builtin() -> None:
    d = only_error('relation p(a: str)\nrule r "d": p(X) :- p(X), startswith(X).\n')
    assert (d.code, d.message, at(d)) == (codes.ARITY_MISMATCH, "`startswith` takes 2 arguments, found 1", (2, 27))


def test_type_mismatch_between_columns() -> None:
    d = only_error('relation p(a: Mesh)\nrelation q(a: Destination)\nrule r "d": p(X) :- q(X).\n')
    assert d.code == codes.TYPE_MISMATCH
    assert d.message == "type mismatch: `X` is Destination (from column `a` of `q`) but column `a` of `p` is Mesh"
    assert at(d) == (3, 15)


def test_type_mismatch_of_a_constant() -> None:
    d = only_error('relation p(a: int)\nrule r "d": p(X) :- p(X), p("a").\n')
    assert d.code == codes.TYPE_MISMATCH
    assert d.message == 'type mismatch: `"a"` is str but column `a` of `p` is int'
    assert at(d) == (2, 29)


def test_type_mismatch_in_a_comparison() -> None:
    d = only_error('relation p(a: int)\nrule r "d": p(X) :- p(X), X != "a".\n')
    assert d.message == 'type mismatch: cannot compare `X` (int) with `"a"` (str)'
    assert at(d) == (2, 27)


def test_strings_fit_named_types_but_named_types_do_not_mix() -> None:
    program_from_text({"t.rules": 'relation p(a: Mesh)\nrule r "d": p(X) :- p(X), X != "istiod".\n'})
    d = only_error('relation p(a: Mesh)\nrelation q(a: Cluster)\nrule r "d": p(X) :- p(X), q(X).\n')
    assert d.message == "type mismatch: `X` is Mesh (from column `a` of `p`) but column `a` of `q` is Cluster"


def test_unbound_variable_in_the_head() -> None:
    d = only_error('relation p(a: str, b: str)\nrule r "d": p(X, Y) :- p(X, _).\n')
    assert d.code == codes.UNBOUND_HEAD_VARIABLE
    assert d.message == "variable `Y` of the head is not bound by the body"
    assert at(d) == (2, 18)


def test_unbound_variable_under_not() -> None:
    d = only_error('relation p(a: str)\nrelation q(a: str)\nrule r "d": p(X) :- q(X), not q(Y).\n')
    assert d.code == codes.UNBOUND_NEGATED_VARIABLE
    assert d.message == "variable `Y` under `not` is not bound by a positive literal"
    assert at(d) == (3, 33)
    assert d.hint == "bind `Y` in a positive literal of the body, or write `_` to mean any value"


def test_unbound_variable_in_a_comparison() -> None:
    d = only_error('relation p(a: str)\nrule r "d": p(X) :- p(X), Y != X.\n')
    assert (d.code, d.message, at(d)) == (codes.UNBOUND_VARIABLE, "variable `Y` in a comparison is not bound", (2, 27))


def test_unbound_input_of_a_builtin() -> None:
    d = only_error('relation p(a: str)\nrule r "d": p(X) :- p(X), startswith(Y, X).\n')
    assert d.code == codes.UNBOUND_VARIABLE
    assert d.message == "variable `Y` of `startswith` is not bound"
    assert at(d) == (2, 38)
    assert d.hint == "`startswith(S, Prefix)` needs this argument bound; bind it in a positive literal first"


def test_unbound_group_of_an_aggregate() -> None:
    d = only_error(
        'relation p(a: str, n: int)\nrelation q(a: str)\nrule r "d": p(X, N) :- q(_), N = count : { q(X) }.\n'
    )
    assert d.code == codes.UNBOUND_AGGREGATE_GROUP
    assert d.message == "variable `X` is shared by the aggregate and the rule but is not bound outside the braces"
    assert at(d) == (3, 30)


def test_negation_through_recursion_names_the_cycle() -> None:
    text = (
        "relation p(a: str)\nrelation q(a: str)\nrelation r(a: str)\n"
        'rule a "d": p(X) :- q(X), not r(X).\n'
        'rule b "d": r(X) :- p(X).\n'
        'rule c "d": q(X) :- r(X).\n'
    )
    d = only_error(text)
    assert d.code == codes.NEGATION_THROUGH_RECURSION
    assert d.message == "negation through recursion: `p` → not `r` → `p`"
    assert at(d) == (4, 27)


def test_negation_of_itself() -> None:
    d = only_error('relation p(a: str)\nrelation q(a: str)\nrule r "d": p(X) :- q(X), not p(X).\n')
    assert d.message == "negation through recursion: `p` → not `p`"


def test_aggregation_through_recursion_names_the_cycle() -> None:
    text = (
        "relation p(a: str, n: int)\nrelation q(a: str)\n"
        'rule a "d": p(X, N) :- q(X), N = count : { q(Y), p(Y, _) }.\n'
        'rule b "d": q(X) :- p(X, _).\n'
    )
    d = only_error(text)
    assert d.code == codes.AGGREGATION_THROUGH_RECURSION
    assert d.message == "aggregation through recursion: `p` → count over `q` → `p`"
    assert at(d) == (3, 30)


def test_duplicate_rule_name() -> None:
    d = only_error('relation p(a: str)\nrule r "d": p("a").\nrule r "e": p("b").\n')
    assert d.code == codes.DUPLICATE_RULE
    assert d.message == "duplicate rule name `r`"
    assert at(d) == (3, 1)
    assert d.hint == "first defined at t.rules:2:1; rule names identify explanations"


def test_duplicate_relation() -> None:
    d = only_error("relation p(a: str)\nrelation p(b: int)\n")
    assert (d.code, d.message, at(d)) == (codes.DUPLICATE_RELATION, "relation `p` is declared twice", (2, 1))


def test_relation_shadowing_a_builtin() -> None:
    d = only_error("relation member(a: str)\n")
    assert (d.code, d.message) == (codes.SHADOWS_BUILTIN, "relation `member` has the name of a built-in")


def test_unknown_type() -> None:
    d = only_error("relation p(a: string)\n")
    assert (d.code, d.message, at(d)) == (codes.UNKNOWN_TYPE, "unknown type `string`", (1, 12))
    assert d.hint.startswith("did you mean `str`?")


def test_rule_defining_a_builtin() -> None:
    d = only_error('relation p(a: str)\nrule r "d": startswith("a", "b").\n')
    assert (d.code, d.message, at(d)) == (codes.BUILTIN_IN_HEAD, "a rule cannot define built-in `startswith`", (2, 13))


def test_duplicate_column() -> None:
    d = only_error("relation p(a: str, a: int)\n")
    assert (d.code, d.message, at(d)) == (codes.DUPLICATE_COLUMN, "column `a` of `p` is declared twice", (1, 20))


def test_wildcard_in_head() -> None:
    d = only_error('relation p(a: str)\nrule r "d": p(_) :- p(_).\n')
    assert (d.code, d.message, at(d)) == (codes.WILDCARD_IN_HEAD, "`_` in the head of a rule for `p`", (2, 15))


def test_missing_include() -> None:
    d = only_error('include "nope.rules"\n')
    assert (d.code, d.message, at(d)) == (
        codes.INCLUDE_NOT_FOUND,
        "cannot read rule file `nope.rules`: no such file",
        (1, 1),
    )


def test_singleton_variable_is_a_warning_not_an_error() -> None:
    program = program_from_text(
        {"t.rules": 'relation p(a: str)\nrelation q(a: str, b: str)\nrule r "d": p(X) :- q(X, Y).\n'}
    )
    assert [(w.code, w.message) for w in program.warnings] == [
        (codes.SINGLETON_VARIABLE, "variable `Y` occurs only once in rule `r`")
    ]


def test_all_errors_of_a_file_are_reported_in_order() -> None:
    text = 'relation p(a: str)\nrule a "d": p(X) :- q(X).\nrule b "d": p(X) :- p(X, Y).\nrule a "d": p(Y) :- p(X).\n'
    found = errors_of(text)
    assert [(d.code, at(d)) for d in found] == [
        (codes.UNDECLARED_RELATION, (2, 21)),
        (codes.ARITY_MISMATCH, (3, 21)),
        (codes.DUPLICATE_RULE, (4, 1)),
        (codes.UNBOUND_HEAD_VARIABLE, (4, 15)),
    ]


def test_errors_of_several_files_are_reported_together() -> None:
    with pytest.raises(RuleError) as caught:
        program_from_text(
            {"a.rules": 'relation p(a: str)\nrule r "d": p(X) :- q(X).\n', "b.rules": "relation p(b: str)\n"}
        )
    assert [(d.location.file if d.location else "", d.code) for d in caught.value.diagnostics] == [
        ("a.rules", codes.UNDECLARED_RELATION),
        ("b.rules", codes.DUPLICATE_RELATION),
    ]


def test_rule_error_summarises_the_first_error() -> None:
    with pytest.raises(RuleError) as caught:
        program_from_text({"t.rules": 'relation p(a: str)\nrule r "d": p(X) :- q(X), s(X).\n'})
    error = caught.value
    assert error.code == codes.UNDECLARED_RELATION
    assert error.message == "rule files have 2 errors; the first: undeclared relation `q`"
    assert str(error.location) == "t.rules:2:21"


def test_rendered_diagnostic_shows_the_line_and_a_caret() -> None:
    text = 'relation p(a: str)\nrule r "d": p(X) :- q(X).\n'
    with pytest.raises(RuleError) as caught:
        program_from_text({"t.rules": text})
    assert render_diagnostics(caught.value.diagnostics, {"t.rules": text}) == (
        "t.rules:2:21: undeclared relation `q` [MR0504]\n"
        '    2 | rule r "d": p(X) :- q(X).\n'
        "      |                     ^\n"
        "  hint: declare it: `relation q(...)` with a name and type per column"
    )


def test_every_code_is_documented() -> None:
    from pathlib import Path

    docs = (Path(__file__).resolve().parents[2] / "docs" / "rules.md").read_text(encoding="utf-8")
    missing = [code for code in codes.CODES if code not in docs]
    assert not missing


def test_check_returns_strata_in_dependency_order() -> None:
    module = parse(
        "relation e(a: str, b: str)\nrelation p(a: str, b: str)\nrelation n(a: str)\n"
        'rule p1 "d": p(X, Y) :- e(X, Y).\n'
        'rule p2 "d": p(X, Z) :- p(X, Y), e(Y, Z).\n'
        'rule n1 "d": n(X) :- e(X, _), not p(X, X).\n',
        "t.rules",
    )
    program = check([module], standard_builtins().signatures())
    assert isinstance(program, Program)
    assert [(s.relations, s.recursive) for s in program.strata] == [(("p",), True), (("n",), False)]
