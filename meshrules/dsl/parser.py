"""Rule text to the typed syntax tree (``ast.py``), with every syntax error of a file reported.

The grammar lives in ``grammar.lark`` beside this module; lark's LALR(1) parser with its
contextual lexer parses it. Syntax errors are reported the way lark's
``examples/advanced/error_reporting_lalr.py`` suggests: common mistakes are recognised by example
(``match_examples``) and get a named message; anything else says which token was unexpected and
what the grammar would have accepted.

To report all syntax errors of a file, not only the first, the parser recovers by statement:
after an error it blanks the statement that holds it (keeping line breaks, so positions stay
true) and parses again. Statements start with a keyword at the start of a line, which makes
them easy to find even in broken text.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from lark import Lark, Token, Transformer, UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, v_args
from lark.exceptions import UnexpectedToken
from lark.tree import Meta

from meshrules.dsl import ast
from meshrules.dsl.diagnostics import SYNTAX_ERROR, error, raise_if_errors
from meshrules.errors import Diagnostic, Location

GRAMMAR = Path(__file__).with_name("grammar.lark")

# A file with more broken statements than this is reported up to here; each recovery re-parses
# the file, so the bound also keeps a garbage file from costing quadratic time.
MAX_SYNTAX_ERRORS = 50

_STATEMENT_START = re.compile(r"^[ \t]*(rule|relation|include)\b", re.MULTILINE)

# How each terminal is named to a reader when the parser says what it expected.
_TERMINAL_NAMES = {
    "NAME": "a relation name",
    "VARIABLE": "a variable",
    "STRING": "a quoted string",
    "INT": "an integer",
    "TRUE": "`true`",
    "FALSE": "`false`",
    "RULE_NAME": "a rule name",
    "TYPE": "a type",
    "IF": "`:-`",
    "NOT": "`not`",
    "COMPARE": "a comparison (`=`, `!=`, `<`, `<=`, `>`, `>=`)",
    "AGGREGATE": "an aggregate (`count`, `sum`, `min`, `max`, `set`)",
    "COMMA": "`,`",
    "DOT": "`.`",
    "COLON": "`:`",
    "LPAR": "`(`",
    "RPAR": "`)`",
    "LBRACE": "`{`",
    "RBRACE": "`}`",
    "RULE": "`rule`",
    "RELATION": "`relation`",
    "INCLUDE": "`include`",
    "$END": "the end of the file",
}

# Common mistakes, recognised by the parser state they leave (lark's ``match_examples``).
# The label is the message; the hint says how to write it.
_MISTAKES: dict[tuple[str, str], list[str]] = {
    (
        "a rule must end with `.`",
        "finish the rule with a dot after its last literal",
    ): [
        'rule a "d": p(X) :- q(X)\nrule',
        'rule a "d": p(X) :- q(X)',
        'rule a "d": p(X)',
        'rule a "d": p(X)\nrule',
        'rule a "d": p(X) :- q(X), X = 1',
        'rule a "d": p(X) :- q(X), X = 1\nrule',
        'rule a "d": p(X) :- q(X), not r(X)\nrule',
        'rule a "d": p(X) :- q(X), not r(X)',
    ],
    (
        "a rule needs a description in quotes after its name",
        'write `rule name "what the rule decides": head :- body.`',
    ): [
        "rule a: p(X).",
        "rule a p(X).",
    ],
    (
        "expected `:` after the rule description",
        'write `rule name "what the rule decides": head :- body.`',
    ): [
        'rule a "d" p(X).',
    ],
    (
        "this is not a term",
        'variables start with an upper-case letter (`Mesh`), strings are quoted (`"istio"`)',
    ): [
        'rule a "d": p(x).',
        'rule a "d": p(X, x).',
        'rule a "d": p(X) :- q(x).',
        'rule a "d": p(X) :- q(Y, x).',
    ],
    (
        "literals of a rule body are separated by `,`",
        "there is no `and`: write `a(X), b(X)`",
    ): [
        'rule a "d": p(X) :- q(X) r(X).',
        'rule a "d": p(X) :- q(X) and r(X).',
        'rule a "d": p(X) :- X = 1 r(X).',
    ],
    (
        "expected `:-` between the head and the body",
        "a rule reads `head :- body.`; there is no `if` or `<-`",
    ): [
        'rule a "d": p(X) if q(X).',
        'rule a "d": p(X) <- q(X).',
    ],
    (
        "expected a term after the comparison",
        "compare with a single `=` (`X = Y`); terms are variables, strings, integers, true and false",
    ): [
        'rule a "d": p(X) :- q(X), X == 1.',
        'rule a "d": p(X) :- q(X), X = .',
    ],
}


@lru_cache(maxsize=1)
def _lark() -> Lark:
    return Lark(
        GRAMMAR.read_text(encoding="utf-8"),
        parser="lalr",
        lexer="contextual",
        propagate_positions=True,
        start=["start", "query"],
        maybe_placeholders=True,
    )


def parse(text: str, file: str = "<input>") -> ast.Module:
    """Parse one rule file into a ``Module``.

    Raises ``RuleError`` carrying every syntax error of the text (not only the first), each with
    its position, what was expected and a hint.
    """
    diagnostics: list[Diagnostic] = []
    tree = _parse_recovering(text, file, "start", diagnostics)
    if tree is None:
        raise_if_errors(diagnostics)
        raise AssertionError("unreachable: a failed parse always records a diagnostic")
    builder = _TreeToAst(file)
    module = builder.transform(tree)
    diagnostics += builder.diagnostics
    raise_if_errors(diagnostics)
    assert isinstance(module, ast.Module)
    return _attach_comments(module, _comments(text), file)


def parse_query(text: str, file: str = "<query>") -> tuple[ast.Literal, ...]:
    """Parse a query: literals separated by commas, as in a rule body, without a final dot.

    ``federated(D, M), M != "istiod-istio-system-cluster-1"``. Raises ``RuleError`` on a syntax
    error.
    """
    diagnostics: list[Diagnostic] = []
    stripped = text.strip()
    if stripped.endswith("."):
        stripped = stripped[:-1]
    tree = _parse_recovering(stripped, file, "query", diagnostics, recover=False)
    if tree is None:
        raise_if_errors(diagnostics)
        raise AssertionError("unreachable: a failed parse always records a diagnostic")
    builder = _TreeToAst(file)
    body = builder.transform(tree)
    raise_if_errors(builder.diagnostics)
    return tuple(body)


def _parse_recovering(text: str, file: str, start: str, diagnostics: list[Diagnostic], recover: bool = True) -> Any:
    parser = _lark()
    work = text
    for _ in range(MAX_SYNTAX_ERRORS):
        try:
            return parser.parse(work, start=start)
        except UnexpectedInput as exc:
            offset = _error_offset(exc, work)
            begin, end = _broken_statement(work, offset)
            mistake = _known_mistake(work, begin, end, offset) if start == "start" else None
            diagnostics.append(_syntax_diagnostic(exc, work, file, mistake))
            if not recover or begin >= end:
                return None
            work = work[:begin] + re.sub(r"[^\n]", " ", work[begin:end]) + work[end:]
    return None


def _error_offset(exc: UnexpectedInput, text: str) -> int:
    if isinstance(exc, UnexpectedToken) and exc.token.type != "$END":
        return int(exc.token.start_pos or 0)
    if isinstance(exc, UnexpectedCharacters) and exc.pos_in_stream is not None:
        return exc.pos_in_stream
    return len(text)


def _broken_statement(text: str, offset: int) -> tuple[int, int]:
    """The offsets ``[begin, end)`` of the statement that holds the error at ``offset``."""
    starts = [m.start(1) for m in _STATEMENT_START.finditer(text)]
    index = -1
    for i, start in enumerate(starts):
        if start <= offset:
            index = i
    if index > 0 and starts[index] == offset:
        # The error is the keyword that starts a statement: the one before it did not end.
        index -= 1
    if offset >= len(text.rstrip()) and starts:
        index = len(starts) - 1
    if index < 0:
        return 0, starts[0] if starts else len(text)
    end = starts[index + 1] if index + 1 < len(starts) else len(text)
    return starts[index], end


def _known_mistake(text: str, begin: int, end: int, offset: int) -> tuple[str, str] | None:
    """Match the broken statement, parsed alone, against the examples of common mistakes.

    Parsing it alone matters: ``match_examples`` compares parser states, and the parser's stack
    is one level deeper after the first statement of a file than before it.
    """
    isolated = text[begin:end]
    if offset >= end:
        word = re.match(r"\S+", text[offset:])
        isolated = text[begin:offset] + (word.group(0) if word else "")
    parser = _lark()
    try:
        parser.parse(isolated, start="start")
    except UnexpectedInput as exc:
        if exc.state is None:  # pragma: no cover - LALR errors always carry a state
            return None
        found: tuple[str, str] | None = exc.match_examples(
            lambda t: parser.parse(t, start="start"),
            _MISTAKES,  # type: ignore[arg-type]  # lark's stub types the labels as Never
            token_type_match_fallback=True,
            use_accepts=True,
        )
        return found
    return None


def _position(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, col


def _syntax_diagnostic(exc: UnexpectedInput, text: str, file: str, mistake: tuple[str, str] | None) -> Diagnostic:
    offset = _error_offset(exc, text)
    at_end = offset >= len(text.rstrip())
    if at_end:
        # Point just after the last written character: where the missing piece belongs.
        offset = len(text.rstrip())
    line, col = _position(text, offset)
    location = Location(file=file, line=line, col=col)
    found = _found(exc, text, at_end)
    if isinstance(exc, UnexpectedCharacters) and text[offset : offset + 1] == '"':
        return error(SYNTAX_ERROR, location, "a string does not end on its line", 'close it with `"`')
    if mistake is not None:
        message, hint = mistake
        return error(SYNTAX_ERROR, location, f"{message}, found {found}", hint)
    expected = _expected(exc)
    hint = f"expected {expected}" if expected else ""
    if at_end:
        return error(SYNTAX_ERROR, location, "the text ends too early", hint)
    return error(SYNTAX_ERROR, location, f"unexpected {found}", hint)


def _found(exc: UnexpectedInput, text: str, at_end: bool) -> str:
    if at_end:
        return "the end of the file"
    if isinstance(exc, UnexpectedToken):
        return f"`{exc.token}`"
    if isinstance(exc, UnexpectedCharacters):
        pos = exc.pos_in_stream or 0
        if text[pos] == '"':
            return "a string that does not end on its line"
        word = re.match(r"[A-Za-z0-9_]+|\S", text[pos:])
        return f"`{word.group(0) if word else text[pos]}`"
    return "the end of the file"


def _expected(exc: UnexpectedInput) -> str:
    names: set[str] = set()
    if isinstance(exc, UnexpectedToken):
        names = set(exc.accepts or exc.expected)
    elif isinstance(exc, UnexpectedCharacters):
        names = set(exc.allowed or ())
    elif isinstance(exc, UnexpectedEOF):
        names = set(exc.expected)
    shown = sorted({_TERMINAL_NAMES.get(n, f"`{n}`") for n in names if n not in ("COMMENT", "WS")})
    if not shown:
        return ""
    if len(shown) == 1:
        return shown[0]
    return ", ".join(shown[:-1]) + " or " + shown[-1]


def _span(file: str, meta: Meta | Token) -> ast.Span:
    if isinstance(meta, Token):
        return ast.Span(
            file=file,
            line=meta.line or 0,
            col=meta.column or 0,
            end_line=meta.end_line or 0,
            end_col=(meta.end_column or 1) - 1,
        )
    if getattr(meta, "empty", True):
        return ast.Span(file=file)
    return ast.Span(file=file, line=meta.line, col=meta.column, end_line=meta.end_line, end_col=meta.end_column - 1)


def unquote(token: str) -> str:
    """The value of a quoted string as written in a rule file (``\\"``, ``\\\\``, ``\\n``, ``\\t``)."""
    body = token[1:-1]
    if "\\" not in body:
        return body
    out: list[str] = []
    i = 0
    while i < len(body):
        char = body[i]
        if char == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            # Unknown escapes keep their backslash, so regular expressions read naturally.
            out.append({"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}.get(nxt, "\\" + nxt))
            i += 2
            continue
        out.append(char)
        i += 1
    return "".join(out)


class _TreeToAst(Transformer[Token, Any]):
    """lark's parse tree to ``ast`` nodes; records grammar rules lark cannot express."""

    def __init__(self, file: str) -> None:
        super().__init__()
        self.file = file
        self.diagnostics: list[Diagnostic] = []

    # Terms ----------------------------------------------------------------------------------

    def variable(self, children: list[Token]) -> ast.Variable:
        tok = children[0]
        return ast.Variable(str(tok), span=_span(self.file, tok))

    def string(self, children: list[Token]) -> ast.Constant:
        tok = children[0]
        return ast.Constant(unquote(str(tok)), span=_span(self.file, tok))

    def integer(self, children: list[Token]) -> ast.Constant:
        tok = children[0]
        return ast.Constant(int(str(tok)), span=_span(self.file, tok))

    def true(self, children: list[Token]) -> ast.Constant:
        return ast.Constant(True, span=_span(self.file, children[0]))

    def false(self, children: list[Token]) -> ast.Constant:
        return ast.Constant(False, span=_span(self.file, children[0]))

    # Literals -------------------------------------------------------------------------------

    @v_args(meta=True)
    def atom(self, meta: Meta, children: list[Any]) -> ast.Atom:
        name, *args = children
        terms = tuple(a for a in args if a is not None)
        return ast.Atom(str(name), terms, span=_span(self.file, meta))

    @v_args(meta=True)
    def negation(self, meta: Meta, children: list[Any]) -> ast.Negation:
        return ast.Negation(children[1], span=_span(self.file, meta))

    @v_args(meta=True)
    def comparison(self, meta: Meta, children: list[Any]) -> ast.Comparison:
        left, op, right = children
        return ast.Comparison(str(op), left, right, span=_span(self.file, meta))

    @v_args(meta=True)
    def aggregate(self, meta: Meta, children: list[Any]) -> ast.Aggregate:
        left, op, function, target, body = children
        span = _span(self.file, meta)
        if str(op) != "=" or not isinstance(left, ast.Variable) or left.is_wildcard:
            self.diagnostics.append(
                error(
                    SYNTAX_ERROR,
                    span.location(),
                    f"an aggregate must be assigned to a variable with `=`, found `{op}`"
                    if str(op) != "="
                    else "an aggregate must be assigned to a named variable",
                    "write `N = count : { ... }`",
                )
            )
            left = left if isinstance(left, ast.Variable) else ast.Variable("_", span=span)
        if any(isinstance(lit, ast.Aggregate) for lit in body):
            self.diagnostics.append(
                error(
                    SYNTAX_ERROR,
                    span.location(),
                    "an aggregate cannot contain another aggregate",
                    "compute the inner aggregate in a rule of its own and use its relation here",
                )
            )
            body = [lit for lit in body if not isinstance(lit, ast.Aggregate)]
        return ast.Aggregate(left, str(function), target, tuple(body), span=span)

    def body(self, children: list[Any]) -> list[ast.Literal]:
        return list(children)

    def query(self, children: list[Any]) -> list[ast.Literal]:
        return list(children[0])

    # Statements -----------------------------------------------------------------------------

    @v_args(meta=True)
    def rule(self, meta: Meta, children: list[Any]) -> ast.Rule:
        name, description, head, _if, body = children
        return ast.Rule(
            name=str(name),
            description=unquote(str(description)),
            head=head,
            body=tuple(body or ()),
            span=_span(self.file, meta),
        )

    @v_args(meta=True)
    def column(self, meta: Meta, children: list[Token]) -> ast.Column:
        name, type_ = children
        return ast.Column(str(name), str(type_), span=_span(self.file, meta))

    @v_args(meta=True)
    def relation(self, meta: Meta, children: list[Any]) -> ast.RelationDecl:
        name, *rest = children
        description = rest.pop()  # the optional description; None when absent (placeholders)
        columns = tuple(c for c in rest if c is not None)
        return ast.RelationDecl(
            str(name),
            columns,
            description=unquote(str(description)) if description is not None else "",
            span=_span(self.file, meta),
        )

    @v_args(meta=True)
    def include(self, meta: Meta, children: list[Token]) -> ast.Include:
        return ast.Include(unquote(str(children[0])), span=_span(self.file, meta))

    def start(self, children: list[ast.Statement]) -> ast.Module:
        return ast.Module(tuple(children), file=self.file)


def _comments(text: str) -> list[tuple[int, str]]:
    """``(line, text)`` of every ``#`` comment, found outside strings (strings never span lines)."""
    found: list[tuple[int, str]] = []
    # split("\n"), not splitlines(): lark counts lines by "\n" only, and strings may hold "\x0c".
    for number, line in enumerate(text.split("\n"), start=1):
        if "#" not in line:
            continue
        in_string = False
        i = 0
        while i < len(line):
            char = line[i]
            if in_string and char == "\\":
                i += 2
                continue
            if char == '"':
                in_string = not in_string
            elif char == "#" and not in_string:
                found.append((number, line[i + 1 :].strip()))
                break
            i += 1
    return found


def _attach_comments(module: ast.Module, comments: list[tuple[int, str]], file: str) -> ast.Module:
    """Give each statement the comments written before its end, and the module the rest."""
    statements: list[ast.Statement] = []
    remaining = list(comments)
    for statement in module.statements:
        last_line = statement.span.end_line or statement.span.line
        mine = tuple(c for line, c in remaining if line <= last_line)
        remaining = [(line, c) for line, c in remaining if line > last_line]
        if mine:
            statement = _with_comments(statement, mine)
        statements.append(statement)
    return ast.Module(tuple(statements), tuple(c for _, c in remaining), file=file)


def _with_comments(statement: ast.Statement, comments: tuple[str, ...]) -> ast.Statement:
    if isinstance(statement, ast.Rule):
        return ast.Rule(statement.name, statement.description, statement.head, statement.body, comments, statement.span)
    if isinstance(statement, ast.RelationDecl):
        return ast.RelationDecl(statement.name, statement.columns, statement.description, comments, statement.span)
    return ast.Include(statement.path, comments, statement.span)
