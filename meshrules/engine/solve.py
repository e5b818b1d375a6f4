"""An interpretive matcher of rule bodies that also returns *why*: the facts and tests each answer used.

The fast evaluator (``compiler.py``) generates Python per rule and keeps no reasons. This module
walks a body literal by literal over the same stores and plans, and for each answer yields the
variable bindings, the facts matched (the *premises*) and the tests that held (the
*conditions*). ``provenance.explain`` uses it to rebuild a derivation, ``Model.query`` to
answer queries, and the evaluator falls back to it for bodies too deep to compile.

``below`` restricts matched facts to those stamped at a lower height: explaining a fact derived
in round ``h`` with only facts of rounds ``< h`` can never loop.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from meshrules.dsl import ast
from meshrules.engine.aggregates import NO_VALUE, aggregate_locals, reduce_aggregate
from meshrules.engine.builtins import BuiltinRegistry
from meshrules.engine.plan import Step, plan_body
from meshrules.engine.store import EMPTY, RelationStore
from meshrules.engine.values import Row, show

Premise = tuple[str, Row]

_COMPARE = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


@dataclass(frozen=True, slots=True)
class Solution:
    """One answer of a body: bindings, the facts it matched, the tests that held."""

    env: Mapping[str, Any]
    premises: tuple[Premise, ...]
    conditions: tuple[str, ...]


class Solver:
    """Matches bodies against relation stores; see the module docstring."""

    def __init__(
        self,
        stores: Mapping[str, RelationStore],
        builtins: BuiltinRegistry,
        objects: Mapping[str, Any],
    ) -> None:
        self.stores = stores
        self.builtins = builtins
        self.signatures = builtins.signatures()
        self.objects = objects

    def _size(self, relation: str) -> int:
        store = self.stores.get(relation)
        return len(store) if store is not None else 0

    def solve(
        self,
        body: tuple[ast.Literal, ...],
        env: Mapping[str, Any],
        below: int | None = None,
        outer: set[str] | None = None,
    ) -> Iterator[Solution]:
        """Every answer of ``body`` extending ``env``.

        Answers come in plan order (facts in store order); each answer lists its premises and
        conditions in the order the body is written, which is how a reader follows it.
        """
        steps = plan_body(body, frozenset(env), self.signatures, self._size, outer=outer)
        position = {id(lit): i for i, lit in enumerate(body)}
        order = [position[id(step.literal)] for step in steps]
        yield from self._run(steps, order, 0, dict(env), (), below)

    def _run(
        self,
        steps: list[Step],
        order: list[int],
        k: int,
        env: dict[str, Any],
        parts: tuple[tuple[int, tuple[Premise, ...], tuple[str, ...]], ...],
        below: int | None,
    ) -> Iterator[Solution]:
        if k == len(steps):
            ordered = sorted(parts, key=lambda part: part[0])
            premises = tuple(p for _, ps, _ in ordered for p in ps)
            conditions = tuple(c for _, _, cs in ordered for c in cs)
            yield Solution(dict(env), premises, conditions)
            return
        step = steps[k]
        for new_env, more_premises, more_conditions in self._literal(step, env, below):
            part = (order[k], more_premises, more_conditions)
            yield from self._run(steps, order, k + 1, new_env, (*parts, part), below)

    def _literal(
        self, step: Step, env: dict[str, Any], below: int | None
    ) -> Iterator[tuple[dict[str, Any], tuple[Premise, ...], tuple[str, ...]]]:
        literal = step.literal
        if isinstance(literal, ast.Atom):
            if literal.predicate in self.builtins:
                yield from self._builtin(literal, env)
            else:
                for new_env, row in self.match(literal, env, below):
                    yield new_env, ((literal.predicate, row),), ()
        elif isinstance(literal, ast.Negation):
            if not self._holds(literal.atom, env):
                yield env, (), (instantiate(literal, env),)
        elif isinstance(literal, ast.Comparison):
            yield from self._comparison(literal, env)
        else:
            yield from self._aggregate(literal, step.groups, env)

    def match(
        self, atom: ast.Atom, env: Mapping[str, Any], below: int | None = None
    ) -> Iterator[tuple[dict[str, Any], Row]]:
        """Facts of ``atom``'s relation that fit ``env``, with the bindings each adds."""
        store = self.stores.get(atom.predicate)
        if store is None:
            return
        columns: list[int] = []
        key: list[Any] = []
        for i, term in enumerate(atom.args):
            if isinstance(term, ast.Constant):
                columns.append(i)
                key.append(term.value)
            elif not term.is_wildcard and term.name in env:
                columns.append(i)
                key.append(env[term.name])
        if columns:
            index = store.index(tuple(columns))
            rows: Any = index.get(key[0] if len(key) == 1 else tuple(key), EMPTY)
        else:
            rows = store.facts
        for row in rows:
            if below is not None and store.facts[row][0] >= below:
                continue
            new_env = unify(atom.args, row, env)
            if new_env is not None:
                yield new_env, row

    def _builtin(
        self, atom: ast.Atom, env: dict[str, Any]
    ) -> Iterator[tuple[dict[str, Any], tuple[Premise, ...], tuple[str, ...]]]:
        builtin = self.builtins.get(atom.predicate)
        assert builtin is not None
        bound = tuple(_is_bound(t, env) for t in atom.args)
        mode = builtin.signature.mode_for(bound)
        assert mode is not None, "the plan runs a built-in only when a mode fits"
        fn = builtin.bind(mode, self.objects)
        inputs = [value_of(t, env) for t, m in zip(atom.args, mode, strict=True) if m == "b"]
        outputs = [t for t, m in zip(atom.args, mode, strict=True) if m == "f"]
        if not outputs:
            if fn(*inputs):
                yield env, (), (instantiate(atom, env),)
            return
        for answer in fn(*inputs):
            new_env = unify(tuple(outputs), tuple(answer), env)
            if new_env is not None:
                yield new_env, (), (instantiate(atom, new_env),)

    def _holds(self, atom: ast.Atom, env: Mapping[str, Any]) -> bool:
        """Whether some fact or built-in answer matches ``atom`` (``_`` matching anything)."""
        if atom.predicate in self.builtins:
            return any(True for _ in self._builtin(atom, dict(env)))
        return any(True for _ in self.match(atom, env))

    def _comparison(
        self, literal: ast.Comparison, env: dict[str, Any]
    ) -> Iterator[tuple[dict[str, Any], tuple[Premise, ...], tuple[str, ...]]]:
        left_bound, right_bound = _is_bound(literal.left, env), _is_bound(literal.right, env)
        if literal.op == "=" and not (left_bound and right_bound):
            unbound, other = (literal.left, literal.right) if not left_bound else (literal.right, literal.left)
            assert isinstance(unbound, ast.Variable)
            yield {**env, unbound.name: value_of(other, env)}, (), ()
            return
        if _COMPARE[literal.op](value_of(literal.left, env), value_of(literal.right, env)):
            yield env, (), (instantiate(literal, env),)

    def aggregate_value(
        self, literal: ast.Aggregate, groups: tuple[str, ...], env: Mapping[str, Any]
    ) -> tuple[Any, list[Solution]]:
        """The aggregate's value for the group bound in ``env``, and the body answers it used."""
        group_env = {g: env[g] for g in groups}
        local = aggregate_locals(literal, groups)
        answers: dict[tuple[Any, ...], Solution] = {}
        for solution in self.solve(literal.body, group_env, outer=set(groups)):
            target = value_of(literal.target, solution.env) if literal.target is not None else None
            key = (target, *(solution.env.get(n) for n in local))
            answers.setdefault(key, solution)
        value = reduce_aggregate(literal.function, literal.target is not None, set(answers))
        if literal.function in ("min", "max"):
            used = [s for k, s in answers.items() if k[0] == value][:1]
        else:
            used = list(answers.values())
        return value, used

    def _aggregate(
        self, literal: ast.Aggregate, groups: tuple[str, ...], env: dict[str, Any]
    ) -> Iterator[tuple[dict[str, Any], tuple[Premise, ...], tuple[str, ...]]]:
        value, used = self.aggregate_value(literal, groups, env)
        if value is NO_VALUE:
            return
        name = literal.result.name
        if name in env and env[name] != value:
            return
        premises = tuple(dict.fromkeys(p for s in used for p in s.premises))
        inner = ", ".join(instantiate(lit, env) for lit in literal.body)
        target = ""
        if isinstance(literal.target, ast.Variable):
            target = f" {literal.target.name}"
        elif literal.target is not None:
            target = f" {show(literal.target.value)}"
        condition = f"{name} = {show(value)}, the {literal.function}{target} of {{ {inner} }}"
        yield {**env, name: value}, premises, (condition,)


def _is_bound(term: ast.Term, env: Mapping[str, Any]) -> bool:
    return isinstance(term, ast.Constant) or (not term.is_wildcard and term.name in env)


def value_of(term: ast.Term, env: Mapping[str, Any]) -> Any:
    """The value of a bound term."""
    if isinstance(term, ast.Constant):
        return term.value
    return env[term.name]


def unify(terms: tuple[ast.Term, ...], row: Row, env: Mapping[str, Any]) -> dict[str, Any] | None:
    """``env`` extended so that ``terms`` equal ``row``, or ``None`` when they cannot."""
    new_env: dict[str, Any] | None = None
    for term, value in zip(terms, row, strict=True):
        if isinstance(term, ast.Constant):
            if term.value != value:
                return None
            continue
        if term.is_wildcard:
            continue
        current = (new_env or env).get(term.name, _UNSET)
        if current is _UNSET:
            if new_env is None:
                new_env = dict(env)
            new_env[term.name] = value
        elif current != value:
            return None
    return new_env if new_env is not None else dict(env)


_UNSET: Any = object()


def instantiate(literal: ast.Literal | ast.Atom, env: Mapping[str, Any]) -> str:
    """A literal as rule text with its bound variables replaced by their values."""

    def term(t: ast.Term) -> str:
        if isinstance(t, ast.Constant):
            return show(t.value)
        return show(env[t.name]) if t.name in env else t.name

    if isinstance(literal, ast.Atom):
        return f"{literal.predicate}({', '.join(term(t) for t in literal.args)})"
    if isinstance(literal, ast.Negation):
        return "not " + instantiate(literal.atom, env)
    if isinstance(literal, ast.Comparison):
        return f"{term(literal.left)} {literal.op} {term(literal.right)}"
    inner = ", ".join(instantiate(lit, env) for lit in literal.body)
    return f"{literal.result.name} = {literal.function} : {{ {inner} }}"
