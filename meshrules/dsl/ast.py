"""The typed syntax tree of a rule file, as the parser builds it and the printer writes it.

Every node is a frozen, slotted dataclass. Each node carries a ``span`` (where it was written);
spans never take part in equality, so a tree parsed from printed text equals the tree that was
printed (``parse(format_module(m)) == m``). Comments are kept as the leading comments of the
statement that follows them, which is where the printer puts them back.

The tree is what the static checks (``meshrules.dsl.checks``) read and what the engine plans
from; nothing here knows about facts or evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeAlias

from meshrules.errors import Location

WILDCARD = "_"
PRIMITIVE_TYPES = ("str", "int", "bool", "any")
COMPARISON_OPERATORS = ("=", "!=", "<", "<=", ">", ">=")
AGGREGATE_FUNCTIONS = ("count", "sum", "min", "max", "set")


@dataclass(frozen=True, slots=True)
class Span:
    """Where a node was written: 1-based line and column of its first and last character."""

    file: str = ""
    line: int = 0
    col: int = 0
    end_line: int = 0
    end_col: int = 0

    def location(self) -> Location:
        """The start of the span as an error location."""
        return Location(file=self.file, line=self.line, col=self.col)


NO_SPAN = Span()


@dataclass(frozen=True, slots=True)
class Variable:
    """A logic variable (``D``, ``Mesh``); ``_`` is the anonymous variable, distinct at each use."""

    name: str
    span: Span = field(default=NO_SPAN, compare=False, repr=False)

    @property
    def is_wildcard(self) -> bool:
        """Whether this is ``_``, which matches anything and binds nothing."""
        return self.name == WILDCARD


ConstantValue: TypeAlias = str | int | bool


@dataclass(frozen=True, slots=True, eq=False)
class Constant:
    """A string, integer or boolean written in a rule.

    Equality includes the Python type because ``1 == True`` in Python but not in a rule.
    """

    value: ConstantValue
    span: Span = field(default=NO_SPAN, compare=False, repr=False)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Constant) and type(self.value) is type(other.value) and self.value == other.value

    def __hash__(self) -> int:
        return hash((type(self.value).__name__, self.value))

    @property
    def type_name(self) -> str:
        """The rule-language type of the constant: ``str``, ``int`` or ``bool``."""
        if isinstance(self.value, bool):
            return "bool"
        if isinstance(self.value, int):
            return "int"
        return "str"


Term: TypeAlias = Variable | Constant


@dataclass(frozen=True, slots=True)
class Atom:
    """``name(term, ...)``: a relation or a built-in predicate applied to terms."""

    predicate: str
    args: tuple[Term, ...]
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Negation:
    """``not atom``: true when no fact (or built-in answer) matches the atom."""

    atom: Atom
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Comparison:
    """``left op right`` with ``op`` one of ``= != < <= > >=``; ``=`` may bind one side."""

    op: str
    left: Term
    right: Term
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Aggregate:
    """``Result = function [Target] : { body }`` computed once per binding of the outer variables.

    Variables of ``body`` that also occur outside the braces group the aggregate; the others are
    local to it. ``count`` counts distinct local bindings (or distinct ``Target`` values when a
    target is given), ``sum`` adds ``Target`` over distinct local bindings, ``min``/``max`` pick the
    extreme ``Target`` and ``set`` collects the distinct ``Target`` values.
    """

    result: Variable
    function: str
    target: Term | None
    body: tuple[Literal, ...]
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


Literal: TypeAlias = Atom | Negation | Comparison | Aggregate


@dataclass(frozen=True, slots=True)
class Column:
    """One typed column of a relation declaration: ``mesh: Mesh``."""

    name: str
    type: str
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class RelationDecl:
    """``relation name(column: Type, ...) "description"``."""

    name: str
    columns: tuple[Column, ...]
    description: str = ""
    comments: tuple[str, ...] = ()
    span: Span = field(default=NO_SPAN, compare=False, repr=False)

    @property
    def arity(self) -> int:
        """The number of columns."""
        return len(self.columns)

    @property
    def types(self) -> tuple[str, ...]:
        """The column types in order."""
        return tuple(c.type for c in self.columns)


@dataclass(frozen=True, slots=True)
class Rule:
    """``rule name "description": head :- body.``; a rule without a body states one fact."""

    name: str
    description: str
    head: Atom
    body: tuple[Literal, ...] = ()
    comments: tuple[str, ...] = ()
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Include:
    """``include "path"``: another rule file, relative to the including file."""

    path: str
    comments: tuple[str, ...] = ()
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


Statement: TypeAlias = Include | RelationDecl | Rule


@dataclass(frozen=True, slots=True)
class Module:
    """One rule file: its statements in order, and the comments after the last statement."""

    statements: tuple[Statement, ...]
    trailing_comments: tuple[str, ...] = ()
    file: str = field(default="", compare=False)

    @property
    def relations(self) -> tuple[RelationDecl, ...]:
        """The relation declarations of this file."""
        return tuple(s for s in self.statements if isinstance(s, RelationDecl))

    @property
    def rules(self) -> tuple[Rule, ...]:
        """The rules of this file."""
        return tuple(s for s in self.statements if isinstance(s, Rule))

    @property
    def includes(self) -> tuple[Include, ...]:
        """The include statements of this file."""
        return tuple(s for s in self.statements if isinstance(s, Include))


def literal_atoms(literal: Literal) -> tuple[Atom, ...]:
    """The atoms a literal mentions, including those inside an aggregate."""
    if isinstance(literal, Atom):
        return (literal,)
    if isinstance(literal, Negation):
        return (literal.atom,)
    if isinstance(literal, Aggregate):
        return tuple(a for inner in literal.body for a in literal_atoms(inner))
    return ()


def term_variables(terms: tuple[Term, ...] | list[Term]) -> list[str]:
    """Names of the non-anonymous variables among ``terms``, in order of first occurrence."""
    seen: dict[str, None] = {}
    for term in terms:
        if isinstance(term, Variable) and not term.is_wildcard:
            seen.setdefault(term.name, None)
    return list(seen)


def literal_variables(literal: Literal) -> list[str]:
    """Variables a literal mentions, in order; for an aggregate, its result and grouping candidates."""
    if isinstance(literal, Atom):
        return term_variables(literal.args)
    if isinstance(literal, Negation):
        return term_variables(literal.atom.args)
    if isinstance(literal, Comparison):
        return term_variables([literal.left, literal.right])
    names = [literal.result.name]
    if literal.target is not None:
        names += term_variables([literal.target])
    for inner in literal.body:
        names += literal_variables(inner)
    return list(dict.fromkeys(names))


def aggregate_groups(literal: Aggregate, outer: set[str]) -> list[str]:
    """The variables of an aggregate's body that also occur outside it: they group the aggregate."""
    inner: list[str] = []
    if literal.target is not None:
        inner += term_variables([literal.target])
    for lit in literal.body:
        inner += literal_variables(lit)
    return [v for v in dict.fromkeys(inner) if v in outer]


def rule_outer_variables(rule: Rule, skip: int) -> set[str]:
    """Variables of a rule outside body literal number ``skip`` (head included)."""
    names = set(term_variables(rule.head.args))
    for i, lit in enumerate(rule.body):
        if i == skip:
            if isinstance(lit, Aggregate):
                names.add(lit.result.name)
            continue
        if isinstance(lit, Aggregate):
            names.add(lit.result.name)
            continue
        names.update(literal_variables(lit))
    return names
