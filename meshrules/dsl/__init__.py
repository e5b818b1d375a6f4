"""The meshrules rule language: grammar, typed syntax tree, printer and static checks.

Neighbours: ``meshrules.engine`` evaluates the ``Program`` this package checks; this package
knows nothing of facts or evaluation, and reads files only through ``loader``.
"""

from meshrules.dsl.ast import (
    Aggregate,
    Atom,
    Column,
    Comparison,
    Constant,
    Include,
    Literal,
    Module,
    Negation,
    RelationDecl,
    Rule,
    Span,
    Statement,
    Term,
    Variable,
)
from meshrules.dsl.checks import check, check_query
from meshrules.dsl.diagnostics import CODES, render_diagnostic, render_diagnostics
from meshrules.dsl.loader import load_modules, load_program, program_from_text, rule_files
from meshrules.dsl.parser import parse, parse_query
from meshrules.dsl.printer import format_body, format_literal, format_module, format_rule, format_term
from meshrules.dsl.program import Program, Stratum
from meshrules.dsl.signatures import BuiltinSignature

__all__ = [
    "CODES",
    "Aggregate",
    "Atom",
    "BuiltinSignature",
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
