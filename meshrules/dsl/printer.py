"""The syntax tree back to rule text, in one canonical layout.

``parse(format_module(m)) == m`` for every module ``m`` (spans aside): the printer writes only
what the parser reads back to the same tree. Comments come back as the leading comments of
their statement, so a comment written inside a rule body moves above the rule.
"""

from __future__ import annotations

from meshrules.dsl import ast

INDENT = "  "
# Descriptions stay on the declaration line while the line fits this width (pyproject's ruff width).
LINE_WIDTH = 110


def quote(value: str) -> str:
    """A string constant as rule text, escaping what the parser unescapes."""
    escaped = (
        value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")
    )
    return f'"{escaped}"'


def format_term(term: ast.Term) -> str:
    """A variable or constant as rule text."""
    if isinstance(term, ast.Variable):
        return term.name
    value = term.value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return quote(value)


def format_atom(atom: ast.Atom) -> str:
    """``name(arg, ...)``."""
    return f"{atom.predicate}({', '.join(format_term(t) for t in atom.args)})"


def format_literal(literal: ast.Literal) -> str:
    """One body literal as rule text."""
    if isinstance(literal, ast.Atom):
        return format_atom(literal)
    if isinstance(literal, ast.Negation):
        return f"not {format_atom(literal.atom)}"
    if isinstance(literal, ast.Comparison):
        return f"{format_term(literal.left)} {literal.op} {format_term(literal.right)}"
    target = f" {format_term(literal.target)}" if literal.target is not None else ""
    inner = ", ".join(format_literal(lit) for lit in literal.body)
    return f"{literal.result.name} = {literal.function}{target} : {{ {inner} }}"


def format_body(body: tuple[ast.Literal, ...]) -> str:
    """Literals joined by commas, as in a query."""
    return ", ".join(format_literal(lit) for lit in body)


def format_rule(rule: ast.Rule) -> str:
    """A rule: name and description, then the head and one body literal per line."""
    lines = [f"rule {rule.name} {quote(rule.description)}:"]
    if not rule.body:
        lines.append(f"{INDENT}{format_atom(rule.head)}.")
        return "\n".join(lines)
    lines.append(f"{INDENT}{format_atom(rule.head)} :-")
    for i, literal in enumerate(rule.body):
        end = "." if i == len(rule.body) - 1 else ","
        lines.append(f"{INDENT * 2}{format_literal(literal)}{end}")
    return "\n".join(lines)


def format_relation(decl: ast.RelationDecl) -> str:
    """A relation declaration, its description on the same line when it fits."""
    columns = ", ".join(f"{c.name}: {c.type}" for c in decl.columns)
    text = f"relation {decl.name}({columns})"
    if not decl.description:
        return text
    described = f"{text} {quote(decl.description)}"
    if len(described) <= LINE_WIDTH:
        return described
    return f"{text}\n{INDENT}{quote(decl.description)}"


def format_statement(statement: ast.Statement) -> str:
    """Any statement, preceded by its comments."""
    comments = "".join(f"{_comment(c)}\n" for c in statement.comments)
    if isinstance(statement, ast.Rule):
        return comments + format_rule(statement)
    if isinstance(statement, ast.RelationDecl):
        return comments + format_relation(statement)
    return comments + f"include {quote(statement.path)}"


def format_module(module: ast.Module) -> str:
    """A whole rule file: statements separated by blank lines where their kind changes or a rule ends."""
    chunks: list[str] = []
    previous: ast.Statement | None = None
    for statement in module.statements:
        if previous is not None:
            same_group = (
                type(previous) is type(statement) and not isinstance(statement, ast.Rule) and not statement.comments
            )
            chunks.append("\n" if same_group else "\n\n")
        chunks.append(format_statement(statement))
        previous = statement
    if module.trailing_comments:
        if chunks:
            chunks.append("\n\n")
        chunks.append("\n".join(_comment(c) for c in module.trailing_comments))
    text = "".join(chunks)
    return text + "\n" if text else ""


def _comment(text: str) -> str:
    return f"# {text}" if text else "#"
