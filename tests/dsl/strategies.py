"""Hypothesis strategies for syntax trees of the rule language (any tree the printer can write)."""

from __future__ import annotations

from hypothesis import strategies as st

from meshrules.dsl import ast

# Words the grammar reserves: they cannot name a relation, a rule, a column or a variable.
KEYWORDS = {"rule", "relation", "include", "not", "true", "false"}

relation_names = st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True).filter(lambda s: s not in KEYWORDS)
variable_names = st.from_regex(r"[A-Z][A-Za-z0-9_]{0,4}|_[A-Za-z0-9_]{0,3}", fullmatch=True)
rule_names = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,5}(-[A-Za-z0-9_]{1,4}){0,2}", fullmatch=True).filter(
    lambda s: s not in KEYWORDS
)
type_names = st.sampled_from(ast.PRIMITIVE_TYPES) | st.from_regex(r"[A-Z][A-Za-z0-9]{0,6}", fullmatch=True)
texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
comments = st.lists(
    st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\n"), max_size=10).map(str.strip), max_size=2
).map(tuple)

constants = st.one_of(
    texts.map(ast.Constant),
    st.integers(min_value=-(10**12), max_value=10**12).map(ast.Constant),
    st.booleans().map(ast.Constant),
)
variables = variable_names.map(ast.Variable)
terms: st.SearchStrategy[ast.Term] = st.one_of(variables, constants)
atoms = st.builds(ast.Atom, relation_names, st.lists(terms, max_size=4).map(tuple))
comparisons = st.builds(ast.Comparison, st.sampled_from(ast.COMPARISON_OPERATORS), terms, terms)
simple_literals: st.SearchStrategy[ast.Literal] = st.one_of(atoms, atoms.map(ast.Negation), comparisons)
aggregates = st.builds(
    ast.Aggregate,
    variable_names.filter(lambda n: n != "_").map(ast.Variable),
    st.sampled_from(ast.AGGREGATE_FUNCTIONS),
    st.none() | terms,
    st.lists(simple_literals, min_size=1, max_size=3).map(tuple),
)
literals = st.one_of(simple_literals, aggregates)

rules = st.builds(
    ast.Rule,
    rule_names,
    texts,
    atoms,
    st.lists(literals, max_size=4).map(tuple),
    comments,
)
columns = st.builds(ast.Column, relation_names, type_names)
relations = st.builds(ast.RelationDecl, relation_names, st.lists(columns, max_size=4).map(tuple), texts, comments)
includes = st.builds(ast.Include, texts, comments)
statements: st.SearchStrategy[ast.Statement] = st.one_of(rules, relations, includes)
modules = st.builds(ast.Module, st.lists(statements, max_size=5).map(tuple), comments)
