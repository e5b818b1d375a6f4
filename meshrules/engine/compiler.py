"""Rule bodies compiled to Python functions: nested loops over hash indexes, one function per plan.

For a rule and a join plan (``plan.py``) this module writes the Python a person would write by
hand — one ``for`` loop per atom over an index bucket, an ``if … continue`` per test, a tuple
per conclusion — and compiles it once per stratum. Generated code beats walking the syntax tree
per fact by a wide margin in CPython, which is what makes hundreds of thousands of facts fit in
seconds.

Safety: no value from a rule or a fact is ever pasted into source text. Constants, relation
stores, indexes and built-ins enter the generated function as default arguments (fast locals),
and variable names are generated (``v0``, ``v1``…), so rule text cannot inject code.

Each generated function has the signature ``run(DELTA, STAMP)``: ``DELTA`` is the list of last
round's new facts for a semi-naive variant (``None`` otherwise) and ``STAMP`` the provenance
stamp to give new facts. New facts go to the head relation's *pending* dict, never straight
into the store, so a round only ever reads facts of earlier rounds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from meshrules.dsl import ast
from meshrules.dsl.binding import literal_binds
from meshrules.engine.aggregates import NO_VALUE, aggregate_locals, reduce_aggregate
from meshrules.engine.builtins import BuiltinRegistry
from meshrules.engine.plan import Step, plan_body
from meshrules.engine.solve import Solver, unify, value_of
from meshrules.engine.store import EMPTY, RelationStore, Stamp
from meshrules.engine.values import Row

RunFunction = Callable[[list[Row] | None, Stamp], None]

# CPython refuses more than 20 statically nested blocks; bodies deeper than this run through the
# interpretive solver instead (a rule with 18 joins is rare and still correct that way).
MAX_NESTED_LOOPS = 18

_OPERATORS = {"=": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


class _TooDeep(Exception):
    pass


@dataclass(slots=True)
class CompiledRule:
    """A rule's evaluation functions: over whole relations, and one per recursive atom (semi-naive)."""

    rule: ast.Rule
    index: int
    full: RunFunction
    deltas: list[tuple[str, RunFunction]] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)  # the generated Python, for debugging


class RuleCompiler:
    """Compiles the rules of one stratum against the stores they read and the pending dicts they fill."""

    def __init__(
        self,
        stores: Mapping[str, RelationStore],
        builtins: BuiltinRegistry,
        objects: Mapping[str, Any],
        pending: Mapping[str, dict[Row, Stamp]],
    ) -> None:
        self.stores = stores
        self.builtins = builtins
        self.signatures = builtins.signatures()
        self.objects = objects
        self.pending = pending
        self.solver = Solver(stores, builtins, objects)

    def _size(self, relation: str) -> int:
        return len(self.stores[relation]) if relation in self.stores else 0

    def compile_rule(self, rule: ast.Rule, index: int, recursive: frozenset[str]) -> CompiledRule:
        """Compile ``rule``: a full variant, plus a delta variant per atom of a relation in ``recursive``."""
        head_vars = set(ast.term_variables(rule.head.args))
        full, source = self._variant(rule, None, head_vars)
        compiled = CompiledRule(rule, index, full, sources=[source])
        for position, literal in enumerate(rule.body):
            if isinstance(literal, ast.Atom) and literal.predicate in recursive:
                fn, source = self._variant(rule, position, head_vars)
                compiled.deltas.append((literal.predicate, fn))
                compiled.sources.append(source)
        return compiled

    def _variant(self, rule: ast.Rule, delta: int | None, head_vars: set[str]) -> tuple[RunFunction, str]:
        steps = plan_body(rule.body, frozenset(), self.signatures, self._size, delta=delta, outer=head_vars)
        writer = _Writer(self, f"rule {rule.name}")
        try:
            writer.body(steps)
            writer.conclude(rule.head, self.stores[rule.head.predicate].facts, self.pending[rule.head.predicate])
            return writer.build("DELTA, STAMP"), writer.source
        except _TooDeep:
            return self._interpreted(rule, steps), f"# rule {rule.name}: interpreted ({len(steps)} steps)"

    def _interpreted(self, rule: ast.Rule, steps: list[Step]) -> RunFunction:
        head_facts = self.stores[rule.head.predicate].facts
        pending = self.pending[rule.head.predicate]
        delta_step = steps[0] if steps and steps[0].delta else None

        def run(rows: list[Row] | None, stamp: Stamp) -> None:
            for env in self._interpreted_envs(rule, delta_step, rows):
                head = tuple(value_of(t, env) for t in rule.head.args)
                if head not in head_facts and head not in pending:
                    pending[head] = stamp

        return run

    def _interpreted_envs(
        self, rule: ast.Rule, delta_step: Step | None, rows: list[Row] | None
    ) -> Iterator[Mapping[str, Any]]:
        head_vars = set(ast.term_variables(rule.head.args))
        if delta_step is None:
            for solution in self.solver.solve(rule.body, {}, outer=head_vars):
                yield solution.env
            return
        atom = delta_step.literal
        assert isinstance(atom, ast.Atom)
        rest = tuple(lit for lit in rule.body if lit is not atom)
        # The delta atom is outside every aggregate of the rule: its variables group them too.
        outer = head_vars | set(ast.term_variables(atom.args))
        for row in rows or ():
            env = unify(atom.args, row, {})
            if env is None:
                continue
            for solution in self.solver.solve(rest, env, outer=outer):
                yield solution.env

    def compile_aggregate(self, literal: ast.Aggregate, groups: tuple[str, ...]) -> Callable[..., Any]:
        """A memoised function from the group's values to the aggregate's value (or ``NO_VALUE``).

        The memo is safe because an aggregate reads only relations of earlier strata, which are
        complete before this stratum starts.
        """
        local = aggregate_locals(literal, groups)
        steps = plan_body(literal.body, frozenset(groups), self.signatures, self._size, outer=set(groups))
        writer = _Writer(self, f"aggregate {literal.function}", params=groups)
        inner: Callable[..., Iterator[tuple[Any, ...]]]
        try:
            writer.body(steps)
            target = writer.term(literal.target) if literal.target is not None else "None"
            writer.line(f"yield ({target}, {''.join(writer.term(ast.Variable(n)) + ', ' for n in local)})")
            inner = writer.build(", ".join(writer.param_names))
        except _TooDeep:
            inner = self._interpreted_aggregate(literal, groups, local)
        memo: dict[tuple[Any, ...], Any] = {}
        function, has_target = literal.function, literal.target is not None

        def aggregate(*group: Any) -> Any:
            value = memo.get(group, memo)
            if value is memo:
                value = reduce_aggregate(function, has_target, set(inner(*group)))
                memo[group] = value
            return value

        return aggregate

    def _interpreted_aggregate(
        self, literal: ast.Aggregate, groups: tuple[str, ...], local: tuple[str, ...]
    ) -> Callable[..., Iterator[tuple[Any, ...]]]:
        def inner(*group: Any) -> Iterator[tuple[Any, ...]]:
            env = dict(zip(groups, group, strict=True))
            for solution in self.solver.solve(literal.body, env, outer=set(groups)):
                target = value_of(literal.target, solution.env) if literal.target is not None else None
                yield (target, *(solution.env[n] for n in local))

        return inner

    def negated_builtin(self, atom: ast.Atom, mode: str) -> Callable[..., bool]:
        """A test ``holds(*args)`` for ``not builtin(...)`` whose mode computes some arguments.

        ``args`` are all argument values in order (``None`` for ``_``); an answer matches when
        it equals every bound computed argument.
        """
        builtin = self.builtins.get(atom.predicate)
        assert builtin is not None
        fn = builtin.bind(mode, self.objects)
        inputs = [i for i, m in enumerate(mode) if m == "b"]
        outputs = [i for i, m in enumerate(mode) if m == "f"]
        checked = [(j, i) for j, i in enumerate(outputs) if not _is_wildcard(atom.args[i])]

        def holds(*args: Any) -> bool:
            answers = fn(*(args[i] for i in inputs))
            if not outputs:
                return bool(answers)
            return any(all(answer[j] == args[i] for j, i in checked) for answer in answers)

        return holds


def _is_wildcard(term: ast.Term) -> bool:
    return isinstance(term, ast.Variable) and term.is_wildcard


class _Writer:
    """Writes one generated function; see the module docstring for its shape."""

    def __init__(self, compiler: RuleCompiler, label: str, params: tuple[str, ...] = ()) -> None:
        self.compiler = compiler
        self.label = label
        self.lines: list[str] = []
        self.depth = 1
        self.loops = 0
        self.names: dict[str, str] = {}
        self.namespace: dict[str, Any] = {"EMPTY": EMPTY, "NO_VALUE": NO_VALUE}
        self._by_id: dict[int, str] = {}
        self.counter = 0
        self.param_names: list[str] = []
        for param in params:
            name = self.fresh("g")
            self.names[param] = name
            self.param_names.append(name)
        self.source = ""

    def fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def obj(self, prefix: str, value: Any) -> str:
        """A name for ``value`` passed in as a default argument (each object once)."""
        name = self._by_id.get(id(value))
        if name is None:
            name = self.fresh(prefix)
            self._by_id[id(value)] = name
            self.namespace[name] = value
        return name

    def const(self, value: Any) -> str:
        name = self.fresh("c")
        self.namespace[name] = value
        return name

    def line(self, text: str) -> None:
        self.lines.append("    " * self.depth + text)

    def skip(self, condition: str) -> None:
        """Abandon the current candidate when ``condition`` holds."""
        self.line(f"if {condition}: {'continue' if self.loops else 'return'}")

    def loop(self, target: str, iterable: str) -> None:
        if self.loops >= MAX_NESTED_LOOPS:
            raise _TooDeep
        self.line(f"for {target} in {iterable}:")
        self.depth += 1
        self.loops += 1

    def term(self, term: ast.Term) -> str:
        if isinstance(term, ast.Constant):
            return self.const(term.value)
        return self.names[term.name]

    def bind(self, name: str) -> str:
        local = self.fresh("v")
        self.names[name] = local
        return local

    def body(self, steps: list[Step]) -> None:
        for step in steps:
            literal = step.literal
            if isinstance(literal, ast.Atom):
                if literal.predicate in self.compiler.builtins:
                    self.builtin(literal)
                else:
                    self.atom(literal, step.delta)
            elif isinstance(literal, ast.Negation):
                self.negation(literal.atom)
            elif isinstance(literal, ast.Comparison):
                self.comparison(literal)
            else:
                self.aggregate(literal, step.groups)

    def _pattern(self, terms: list[tuple[int, ast.Term]], key_positions: set[int]) -> tuple[list[str], list[str]]:
        """Loop targets for ``terms`` and the checks to run after unpacking."""
        targets: list[str] = []
        checks: list[str] = []
        bound_here: set[str] = set()
        for position, term in terms:
            if position in key_positions or (isinstance(term, ast.Variable) and term.is_wildcard):
                targets.append("_")
            elif isinstance(term, ast.Constant) or term.name in self.names:
                temp = self.fresh("t")
                targets.append(temp)
                checks.append(f"{temp} != {self.term(term)}")
            elif term.name in bound_here:
                temp = self.fresh("t")
                targets.append(temp)
                checks.append(f"{temp} != {self.names[term.name]}")
            else:
                bound_here.add(term.name)
                targets.append(self.bind(term.name))
        return targets, checks

    @staticmethod
    def _tuple(items: list[str]) -> str:
        if len(items) == 1:
            return f"({items[0]},)"
        return f"({', '.join(items)})"

    def atom(self, atom: ast.Atom, delta: bool) -> None:
        store = self.compiler.stores[atom.predicate]
        facts = self.obj("F", store.facts)
        key_positions: list[int] = []
        key_exprs: list[str] = []
        free = False
        for i, term in enumerate(atom.args):
            if isinstance(term, ast.Constant) or (not term.is_wildcard and term.name in self.names):
                key_positions.append(i)
                key_exprs.append(self.term(term))
            else:
                free = True
        if delta:
            targets, checks = self._pattern(list(enumerate(atom.args)), set())
            self.loop(self._tuple(targets), "DELTA")
        elif not key_positions:
            targets, checks = self._pattern(list(enumerate(atom.args)), set())
            self.loop(self._tuple(targets), facts)
        elif not free:
            self.skip(f"{self._tuple(key_exprs)} not in {facts}")
            return
        else:
            index = self.obj("I", store.index(tuple(key_positions)))
            key = key_exprs[0] if len(key_exprs) == 1 else self._tuple(key_exprs)
            targets, checks = self._pattern(list(enumerate(atom.args)), set(key_positions))
            self.loop(self._tuple(targets), f"{index}.get({key}, EMPTY)")
        for check in checks:
            self.skip(check)

    def negation(self, atom: ast.Atom) -> None:
        if atom.predicate in self.compiler.builtins:
            signature = self.compiler.signatures[atom.predicate]
            bound = [not (isinstance(t, ast.Variable) and t.is_wildcard) for t in atom.args]
            mode = signature.mode_for(bound)
            assert mode is not None
            holds = self.obj("H", self.compiler.negated_builtin(atom, mode))
            args = ", ".join(
                "None" if isinstance(t, ast.Variable) and t.is_wildcard else self.term(t) for t in atom.args
            )
            self.skip(f"{holds}({args})")
            return
        store = self.compiler.stores[atom.predicate]
        positions = [i for i, t in enumerate(atom.args) if not (isinstance(t, ast.Variable) and t.is_wildcard)]
        exprs = [self.term(atom.args[i]) for i in positions]
        if len(positions) == len(atom.args):
            self.skip(f"{self._tuple(exprs)} in {self.obj('F', store.facts)}")
        elif positions:
            index = self.obj("I", store.index(tuple(positions)))
            key = exprs[0] if len(exprs) == 1 else self._tuple(exprs)
            self.skip(f"{key} in {index}")
        else:
            self.skip(self.obj("F", store.facts))

    def builtin(self, atom: ast.Atom) -> None:
        builtin = self.compiler.builtins.get(atom.predicate)
        assert builtin is not None
        bound = [isinstance(t, ast.Constant) or (not t.is_wildcard and t.name in self.names) for t in atom.args]
        mode = builtin.signature.mode_for(bound)
        assert mode is not None, "the plan runs a built-in only when a mode fits"
        fn = self.obj("B", builtin.bind(mode, self.compiler.objects))
        inputs = ", ".join(self.term(t) for t, m in zip(atom.args, mode, strict=True) if m == "b")
        outputs = [(i, t) for i, (t, m) in enumerate(zip(atom.args, mode, strict=True)) if m == "f"]
        if not outputs:
            self.skip(f"not {fn}({inputs})")
            return
        targets, checks = self._pattern(outputs, set())
        self.loop(self._tuple(targets), f"{fn}({inputs})")
        for check in checks:
            self.skip(check)

    def comparison(self, literal: ast.Comparison) -> None:
        def is_bound(t: ast.Term) -> bool:
            return isinstance(t, ast.Constant) or t.name in self.names

        if literal.op == "=" and not (is_bound(literal.left) and is_bound(literal.right)):
            unbound, other = (
                (literal.left, literal.right) if not is_bound(literal.left) else (literal.right, literal.left)
            )
            assert isinstance(unbound, ast.Variable)
            value = self.term(other)
            self.line(f"{self.bind(unbound.name)} = {value}")
            return
        op = _OPERATORS[literal.op]
        self.skip(f"not ({self.term(literal.left)} {op} {self.term(literal.right)})")

    def aggregate(self, literal: ast.Aggregate, groups: tuple[str, ...]) -> None:
        fn = self.obj("A", self.compiler.compile_aggregate(literal, groups))
        result = self.fresh("r")
        self.line(f"{result} = {fn}({''.join(self.names[g] + ', ' for g in groups)})")
        self.skip(f"{result} is NO_VALUE")
        name = literal.result.name
        if name in self.names:
            self.skip(f"{result} != {self.names[name]}")
        else:
            self.names[name] = result
        assert literal_binds(literal) == {name}

    def conclude(self, head: ast.Atom, facts: dict[Row, Stamp], pending: dict[Row, Stamp]) -> None:
        fact = self.fresh("h")
        self.line(f"{fact} = {self._tuple([self.term(t) for t in head.args]) if head.args else '()'}")
        known, new = self.obj("F", facts), self.obj("N", pending)
        self.line(f"if {fact} not in {known} and {fact} not in {new}: {new}[{fact}] = STAMP")

    def build(self, params: str) -> Any:
        arguments = [params] if params else []
        arguments += [f"{name}={name}" for name in self.namespace]
        header = f"def generated({', '.join(arguments)}):"
        self.source = "\n".join([header, *(self.lines or ["    pass"])])
        code = compile(self.source, f"<{self.label}>", "exec")
        namespace = dict(self.namespace)
        exec(code, namespace)
        return namespace["generated"]
