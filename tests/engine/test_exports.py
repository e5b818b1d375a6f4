"""The public surface of the language and the engine: what other packages may import."""

from __future__ import annotations

import meshrules.dsl
import meshrules.engine


def test_engine_exports() -> None:
    assert sorted(meshrules.engine.__all__) == [
        "Answer",
        "Builtin",
        "BuiltinRegistry",
        "Derivation",
        "EvaluationStats",
        "Facts",
        "FrozenMap",
        "Model",
        "Program",
        "Strategy",
        "StratumStats",
        "define",
        "evaluate",
        "freeze",
        "load_program",
        "program_from_text",
        "show_fact",
        "standard_builtins",
    ]


def test_dsl_exports() -> None:
    assert sorted(meshrules.dsl.__all__) == [
        "Aggregate",
        "Atom",
        "BuiltinSignature",
        "CODES",
        "Column",
        "Comparison",
        "Constant",
        "Include",
        "Literal",
        "Module",
        "Negation",
        "Program",
        "RelationDecl",
        "Rule",
        "Span",
        "Statement",
        "Stratum",
        "Term",
        "Variable",
        "check",
        "check_query",
        "format_body",
        "format_literal",
        "format_module",
        "format_rule",
        "format_term",
        "load_modules",
        "load_program",
        "parse",
        "parse_query",
        "program_from_text",
        "render_diagnostic",
        "render_diagnostics",
        "rule_files",
    ]


def test_every_export_exists() -> None:
    for module in (meshrules.dsl, meshrules.engine):
        for name in module.__all__:
            assert hasattr(module, name), name
