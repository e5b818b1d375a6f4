"""When a literal can run and which variables it binds: the range-restriction facts.

A rule is *safe* when its literals can be put in an order in which each runs only after the
variables it needs are bound. The checker uses this to find unsafe rules; the engine's planner
uses the same answers to pick an evaluation order, so the two can never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping

from meshrules.dsl import ast
from meshrules.dsl.signatures import BuiltinSignature


def term_bound(term: ast.Term, bound: set[str] | frozenset[str]) -> bool:
    """A constant is bound; a variable is bound once a literal has bound it; ``_`` never is."""
    if isinstance(term, ast.Constant):
        return True
    return not term.is_wildcard and term.name in bound


def atom_bound_pattern(atom: ast.Atom, bound: set[str] | frozenset[str]) -> tuple[bool, ...]:
    """Per argument, whether it is bound."""
    return tuple(term_bound(t, bound) for t in atom.args)


def literal_ready(
    literal: ast.Literal,
    bound: set[str] | frozenset[str],
    builtins: Mapping[str, BuiltinSignature],
    groups: list[str] | None = None,
) -> bool:
    """Whether ``literal`` can run once ``bound`` are bound.

    ``groups`` gives, for an aggregate, the variables it shares with the rest of its rule.
    """
    if isinstance(literal, ast.Atom):
        signature = builtins.get(literal.predicate)
        if signature is None or signature.arity != len(literal.args):
            return True  # a relation enumerates its facts; bad arities are reported elsewhere
        return signature.mode_for(atom_bound_pattern(literal, bound)) is not None
    if isinstance(literal, ast.Negation):
        atom = literal.atom
        names = ast.term_variables(atom.args)
        if any(n not in bound for n in names):
            return False
        signature = builtins.get(atom.predicate)
        if signature is None or signature.arity != len(atom.args):
            return True
        return signature.mode_for(atom_bound_pattern(atom, bound)) is not None
    if isinstance(literal, ast.Comparison):
        left, right = term_bound(literal.left, bound), term_bound(literal.right, bound)
        if literal.op == "=":
            return (left or right) and not _wildcard(literal.left) and not _wildcard(literal.right)
        return left and right
    return all(g in bound for g in (groups or []))


def literal_binds(literal: ast.Literal) -> set[str]:
    """The variables bound after ``literal`` ran (an aggregate binds only its result)."""
    if isinstance(literal, ast.Aggregate):
        return {literal.result.name}
    if isinstance(literal, ast.Negation):
        return set()
    return set(ast.literal_variables(literal))


def _wildcard(term: ast.Term) -> bool:
    return isinstance(term, ast.Variable) and term.is_wildcard
