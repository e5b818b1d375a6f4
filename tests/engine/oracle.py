"""An independent, brute-force model of a program: the reference the engine's evaluators are tested against.

It shares only the checked ``Program`` (syntax tree and strata) and the built-in functions with
the engine. No plans, no indexes, no generated code: every atom scans every fact of its
relation, literals run in written order as soon as their variables are bound, and each stratum
repeats all its rules until nothing changes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from meshrules.dsl import ast
from meshrules.dsl.binding import literal_binds, literal_ready
from meshrules.dsl.program import Program
from meshrules.engine import BuiltinRegistry, standard_builtins

Model = dict[str, set[tuple[Any, ...]]]

_OPS = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _value(term: ast.Term, env: Mapping[str, Any]) -> Any:
    return term.value if isinstance(term, ast.Constant) else env[term.name]


def _bound(term: ast.Term, env: Mapping[str, Any]) -> bool:
    return isinstance(term, ast.Constant) or (not term.is_wildcard and term.name in env)


def _match(args: tuple[ast.Term, ...], row: tuple[Any, ...], env: dict[str, Any]) -> dict[str, Any] | None:
    out = dict(env)
    for term, value in zip(args, row, strict=True):
        if isinstance(term, ast.Variable) and term.is_wildcard:
            continue
        if _bound(term, out):
            if _value(term, out) != value:
                return None
        else:
            out[term.name] = value
    return out


class Oracle:
    """Brute-force evaluation; see the module docstring."""

    def __init__(self, program: Program, builtins: BuiltinRegistry | None = None) -> None:
        self.program = program
        self.builtins = builtins or standard_builtins()
        self.signatures = self.builtins.signatures()

    def model(self, facts: Mapping[str, set[tuple[Any, ...]]]) -> Model:
        model: Model = {name: set(facts.get(name, set())) for name in self.program.relations}
        for stratum in self.program.strata:
            changed = True
            while changed:
                changed = False
                for rule in stratum.rules:
                    outer = set(ast.term_variables(rule.head.args))
                    for env in self.solve(rule.body, {}, model, outer):
                        fact = tuple(_value(t, env) for t in rule.head.args)
                        if fact not in model[rule.head.predicate]:
                            model[rule.head.predicate].add(fact)
                            changed = True
        return model

    def solve(
        self, body: tuple[ast.Literal, ...], env: dict[str, Any], model: Model, outer: set[str]
    ) -> Iterator[dict[str, Any]]:
        if not body:
            yield env
            return
        for i, literal in enumerate(body):
            groups = self._groups(literal, body, outer)
            if literal_ready(literal, set(env), self.signatures, groups):
                rest = body[:i] + body[i + 1 :]
                for new_env in self.literal(literal, env, model, groups or []):
                    yield from self.solve(rest, new_env, model, outer | literal_binds(literal))
                return
        raise AssertionError("unsafe body reached the oracle")

    def _groups(self, literal: ast.Literal, body: tuple[ast.Literal, ...], outer: set[str]) -> list[str] | None:
        if not isinstance(literal, ast.Aggregate):
            return None
        others = set(outer)
        for other in body:
            if other is literal:
                continue
            others |= {other.result.name} if isinstance(other, ast.Aggregate) else set(ast.literal_variables(other))
        return ast.aggregate_groups(literal, others)

    def literal(
        self, literal: ast.Literal, env: dict[str, Any], model: Model, groups: list[str]
    ) -> Iterator[dict[str, Any]]:
        if isinstance(literal, ast.Atom):
            yield from self.atom(literal, env, model)
        elif isinstance(literal, ast.Negation):
            if not any(True for _ in self.atom(literal.atom, env, model)):
                yield env
        elif isinstance(literal, ast.Comparison):
            if literal.op == "=" and not (_bound(literal.left, env) and _bound(literal.right, env)):
                var, other = (
                    (literal.left, literal.right) if not _bound(literal.left, env) else (literal.right, literal.left)
                )
                assert isinstance(var, ast.Variable)
                yield {**env, var.name: _value(other, env)}
            elif _OPS[literal.op](_value(literal.left, env), _value(literal.right, env)):
                yield env
        else:
            value = self.aggregate(literal, {g: env[g] for g in groups}, model)
            if value is None:
                return
            name = literal.result.name
            if name in env:
                if env[name] == value:
                    yield env
            else:
                yield {**env, name: value}

    def aggregate(self, literal: ast.Aggregate, group_env: dict[str, Any], model: Model) -> Any:
        inner_vars = [v for lit in literal.body for v in ast.literal_variables(lit)]
        local = [v for v in dict.fromkeys(inner_vars) if v not in group_env]
        rows = set()
        for env in self.solve(literal.body, dict(group_env), model, set(group_env)):
            target = _value(literal.target, env) if literal.target is not None else None
            rows.add((target, *(env[v] for v in local)))
        if literal.function == "count":
            return len({r[0] for r in rows}) if literal.target is not None else len(rows)
        if literal.function == "sum":
            return sum(r[0] for r in rows)
        if literal.function == "set":
            return frozenset(r[0] for r in rows)
        if not rows:
            return None
        values = [r[0] for r in rows]
        return min(values) if literal.function == "min" else max(values)

    def atom(self, atom: ast.Atom, env: dict[str, Any], model: Model) -> Iterator[dict[str, Any]]:
        builtin = self.builtins.get(atom.predicate)
        if builtin is None:
            for row in list(model.get(atom.predicate, ())):
                new_env = _match(atom.args, row, env)
                if new_env is not None:
                    yield new_env
            return
        bound = tuple(_bound(t, env) for t in atom.args)
        mode = builtin.signature.mode_for(bound)
        assert mode is not None
        fn = builtin.bind(mode, {})
        inputs = [_value(t, env) for t, m in zip(atom.args, mode, strict=True) if m == "b"]
        outputs = tuple(t for t, m in zip(atom.args, mode, strict=True) if m == "f")
        if not outputs:
            if fn(*inputs):
                yield env
            return
        for answer in fn(*inputs):
            new_env = _match(outputs, tuple(answer), env)
            if new_env is not None:
                yield new_env
