"""The static checks, as a pipeline of named pure stages: resolve → range-restriction → stratify → type-check.

Each stage reads the parsed modules and returns its diagnostics instead of raising, so one run
reports every problem of every file; ``check`` sorts them by location and raises a single
``RuleError`` when any is an error, or returns the ``Program`` the engine evaluates.

- ``resolve``: every name means something — relations declared once, with known column types;
  atoms name a declared relation or a built-in, with the right number of arguments; rule names
  are unique.
- ``range_restriction``: every variable is bound before it is needed — in the head, under
  ``not``, in comparisons, built-ins and aggregates (``binding.py`` decides what "bound" means).
- ``stratify``: no relation depends on its own negation or aggregate; the strata come out in
  dependency order.
- ``type_check``: each variable has one type across its uses; constants fit their columns.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from meshrules.dsl import ast
from meshrules.dsl import diagnostics as codes
from meshrules.dsl.binding import literal_binds, literal_ready
from meshrules.dsl.diagnostics import error, raise_if_errors, sort_diagnostics, warning
from meshrules.dsl.program import Program, Stratum
from meshrules.dsl.signatures import BuiltinSignature
from meshrules.errors import Diagnostic, Location, Severity

ANY = "any"


@dataclass(frozen=True, slots=True)
class Scope:
    """What the resolve stage learnt: the first declaration of each relation, the rules in order."""

    relations: Mapping[str, ast.RelationDecl]
    rules: tuple[ast.Rule, ...]
    builtins: Mapping[str, BuiltinSignature]


def check(
    modules: Sequence[ast.Module],
    builtins: Mapping[str, BuiltinSignature],
    sources: Mapping[str, str] | None = None,
) -> Program:
    """Run every stage over ``modules``; return the ``Program`` or raise ``RuleError`` with all errors."""
    scope, found = resolve(modules, builtins)
    found += range_restriction(scope)
    strata, stratify_found = stratify(scope)
    found += stratify_found
    found += type_check(scope)
    ordered = sort_diagnostics(found)
    raise_if_errors(ordered)
    return Program(
        relations=scope.relations,
        rules=scope.rules,
        strata=strata,
        builtins=builtins,
        files=tuple(m.file for m in modules),
        sources=dict(sources or {}),
        warnings=tuple(d for d in ordered if d.severity is not Severity.ERROR),
    )


def check_query(
    body: tuple[ast.Literal, ...], relations: Mapping[str, ast.RelationDecl], builtins: Mapping[str, BuiltinSignature]
) -> list[Diagnostic]:
    """The diagnostics of a query (a rule body with no head) against a checked program."""
    rule = ast.Rule("query", "", ast.Atom("query", ()), body)
    scope = Scope(relations, (rule,), builtins)
    found = [d for d in _resolve_rule(rule, scope, head=False)]
    found += _rule_range_restriction(rule, scope)
    found += _rule_types(rule, scope)
    return [d for d in sort_diagnostics(found) if d.severity is Severity.ERROR]


# Stage 1: resolve ------------------------------------------------------------------------------


def resolve(modules: Sequence[ast.Module], builtins: Mapping[str, BuiltinSignature]) -> tuple[Scope, list[Diagnostic]]:
    """Declarations, names and arities; returns the scope later stages read."""
    found: list[Diagnostic] = []
    relations: dict[str, ast.RelationDecl] = {}
    for module in modules:
        for decl in module.relations:
            found += _declaration(decl, relations, builtins)
            relations.setdefault(decl.name, decl)
    rules: list[ast.Rule] = []
    names: dict[str, ast.Rule] = {}
    for module in modules:
        for rule in module.rules:
            if rule.name in names:
                first = names[rule.name]
                found.append(
                    error(
                        codes.DUPLICATE_RULE,
                        rule.span.location(),
                        f"duplicate rule name `{rule.name}`",
                        f"first defined at {first.span.location()}; rule names identify explanations",
                    )
                )
            else:
                names[rule.name] = rule
            rules.append(rule)
    scope = Scope(relations, tuple(rules), builtins)
    for rule in rules:
        found += _resolve_rule(rule, scope, head=True)
    return scope, found


def _declaration(
    decl: ast.RelationDecl, relations: Mapping[str, ast.RelationDecl], builtins: Mapping[str, BuiltinSignature]
) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    if decl.name in relations:
        found.append(
            error(
                codes.DUPLICATE_RELATION,
                decl.span.location(),
                f"relation `{decl.name}` is declared twice",
                f"first declared at {relations[decl.name].span.location()}",
            )
        )
    if decl.name in builtins:
        found.append(
            error(
                codes.SHADOWS_BUILTIN,
                decl.span.location(),
                f"relation `{decl.name}` has the name of a built-in",
                f"`{builtins[decl.name].usage()}` is built in; choose another name",
            )
        )
    seen: set[str] = set()
    for column in decl.columns:
        if column.name in seen:
            found.append(
                error(
                    codes.DUPLICATE_COLUMN,
                    column.span.location(),
                    f"column `{column.name}` of `{decl.name}` is declared twice",
                    "give each column its own name",
                )
            )
        seen.add(column.name)
        if column.type not in ast.PRIMITIVE_TYPES and not column.type[:1].isupper():
            close = difflib.get_close_matches(column.type, ast.PRIMITIVE_TYPES, n=1)
            suggestion = f"did you mean `{close[0]}`? " if close else ""
            found.append(
                error(
                    codes.UNKNOWN_TYPE,
                    column.span.location(),
                    f"unknown type `{column.type}`",
                    f"{suggestion}types are str, int, bool, any, or a capitalised entity name like `Destination`",
                )
            )
    return found


def _resolve_rule(rule: ast.Rule, scope: Scope, head: bool) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    if head:
        found += _resolve_head(rule.head, scope)
    for literal in rule.body:
        for atom in ast.literal_atoms(literal):
            found += _resolve_atom(atom, scope)
    return found


def _resolve_head(atom: ast.Atom, scope: Scope) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    for term in atom.args:
        if isinstance(term, ast.Variable) and term.is_wildcard:
            found.append(
                error(
                    codes.WILDCARD_IN_HEAD,
                    term.span.location(),
                    f"`_` in the head of a rule for `{atom.predicate}`",
                    "a conclusion needs a value in every column; name the variable and bind it in the body",
                )
            )
    if atom.predicate in scope.builtins:
        found.append(
            error(
                codes.BUILTIN_IN_HEAD,
                atom.span.location(),
                f"a rule cannot define built-in `{atom.predicate}`",
                "built-ins are computed, not derived; declare a relation of your own",
            )
        )
        return found
    decl = scope.relations.get(atom.predicate)
    if decl is None:
        found.append(_undeclared(atom, scope))
    else:
        found += _arity(atom, decl.arity, _declaration_text(decl), decl.span.location())
    return found


def _resolve_atom(atom: ast.Atom, scope: Scope) -> list[Diagnostic]:
    signature = scope.builtins.get(atom.predicate)
    if signature is not None:
        return _arity(atom, signature.arity, signature.usage(), None)
    decl = scope.relations.get(atom.predicate)
    if decl is not None:
        return _arity(atom, decl.arity, _declaration_text(decl), decl.span.location())
    close_builtin = difflib.get_close_matches(atom.predicate, list(scope.builtins), n=1, cutoff=0.8)
    close_relation = difflib.get_close_matches(atom.predicate, list(scope.relations), n=1, cutoff=0.8)
    if close_builtin and not close_relation:
        return [
            error(
                codes.UNKNOWN_BUILTIN,
                atom.span.location(),
                f"unknown built-in `{atom.predicate}`",
                f"did you mean `{scope.builtins[close_builtin[0]].usage()}`?",
            )
        ]
    return [_undeclared(atom, scope)]


def _undeclared(atom: ast.Atom, scope: Scope) -> Diagnostic:
    close = difflib.get_close_matches(atom.predicate, list(scope.relations), n=1, cutoff=0.75)
    hint = (
        f"did you mean `{close[0]}`?"
        if close
        else f"declare it: `relation {atom.predicate}(...)` with a name and type per column"
    )
    return error(codes.UNDECLARED_RELATION, atom.span.location(), f"undeclared relation `{atom.predicate}`", hint)


def _arity(atom: ast.Atom, expected: int, usage: str, where: Location | None) -> list[Diagnostic]:
    if len(atom.args) == expected:
        return []
    declared = f" (declared at {where})" if where is not None else ""
    plural = "argument" if expected == 1 else "arguments"
    return [
        error(
            codes.ARITY_MISMATCH,
            atom.span.location(),
            f"`{atom.predicate}` takes {expected} {plural}, found {len(atom.args)}",
            f"it is `{usage}`{declared}",
        )
    ]


def _declaration_text(decl: ast.RelationDecl) -> str:
    columns = ", ".join(f"{c.name}: {c.type}" for c in decl.columns)
    return f"{decl.name}({columns})"


# Stage 2: range restriction -------------------------------------------------------------------


def range_restriction(scope: Scope) -> list[Diagnostic]:
    """Every variable bound before use, in every rule; also warns of variables used only once."""
    found: list[Diagnostic] = []
    for rule in scope.rules:
        found += _rule_range_restriction(rule, scope)
        found += _singletons(rule)
    return found


def _rule_range_restriction(rule: ast.Rule, scope: Scope) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    bound = _order_body(rule, rule.body, set(), scope, found)
    for term in rule.head.args:
        if isinstance(term, ast.Variable) and not term.is_wildcard and term.name not in bound:
            found.append(
                error(
                    codes.UNBOUND_HEAD_VARIABLE,
                    term.span.location(),
                    f"variable `{term.name}` of the head is not bound by the body",
                    f"use `{term.name}` in a positive literal of the body of rule `{rule.name}`",
                )
            )
    return found


def _order_body(
    rule: ast.Rule,
    body: tuple[ast.Literal, ...],
    bound: set[str],
    scope: Scope,
    found: list[Diagnostic],
) -> set[str]:
    """Simulate evaluation: run any ready literal until none is left; report the stuck ones.

    Binding only grows, so running whatever is ready first never blocks a later literal: if
    this loop gets stuck, no order works.
    """
    bound = set(bound)
    pending = list(body)
    while pending:
        ready = next(
            (lit for lit in pending if literal_ready(lit, bound, scope.builtins, _groups(rule, lit))),
            None,
        )
        if ready is None:
            stuck = pending[0]
            found += _unbound(rule, stuck, bound, scope)
            bound |= set(ast.literal_variables(stuck))
            pending.remove(stuck)
            continue
        if isinstance(ready, ast.Aggregate):
            _check_aggregate(rule, ready, bound, scope, found)
        bound |= literal_binds(ready)
        pending.remove(ready)
    return bound


def _groups(rule: ast.Rule, literal: ast.Literal) -> list[str] | None:
    if not isinstance(literal, ast.Aggregate):
        return None
    index = next((i for i, lit in enumerate(rule.body) if lit is literal), -1)
    return ast.aggregate_groups(literal, ast.rule_outer_variables(rule, index))


def _check_aggregate(
    rule: ast.Rule, literal: ast.Aggregate, bound: set[str], scope: Scope, found: list[Diagnostic]
) -> None:
    groups = set(_groups(rule, literal) or [])
    inner_bound = _order_body(rule, literal.body, bound & groups, scope, found)
    target = literal.target
    if isinstance(target, ast.Variable) and not target.is_wildcard and target.name not in inner_bound:
        found.append(
            error(
                codes.UNBOUND_VARIABLE,
                target.span.location(),
                f"variable `{target.name}` that `{literal.function}` aggregates is not bound inside the braces",
                f"bind `{target.name}` in a positive literal between `{{` and `}}`",
            )
        )
    if literal.function in ("sum", "min", "max", "set") and target is None:
        found.append(
            error(
                codes.UNBOUND_VARIABLE,
                literal.span.location(),
                f"`{literal.function}` needs a value to aggregate",
                f"write `{literal.result.name} = {literal.function} X : {{ ... }}` with `X` bound inside",
            )
        )


def _unbound(rule: ast.Rule, literal: ast.Literal, bound: set[str], scope: Scope) -> list[Diagnostic]:
    def missing(terms: Iterable[ast.Term]) -> list[ast.Variable]:
        out: dict[str, ast.Variable] = {}
        for term in terms:
            if isinstance(term, ast.Variable) and not term.is_wildcard and term.name not in bound:
                out.setdefault(term.name, term)
        return list(out.values())

    if isinstance(literal, ast.Negation):
        names = missing(literal.atom.args)
        if not names:
            return _builtin_unbound(literal.atom, bound, scope)
        return [
            error(
                codes.UNBOUND_NEGATED_VARIABLE,
                v.span.location(),
                f"variable `{v.name}` under `not` is not bound by a positive literal",
                f"bind `{v.name}` in a positive literal of the body, or write `_` to mean any value",
            )
            for v in names
        ]
    if isinstance(literal, ast.Comparison):
        terms = [literal.left, literal.right]
        wild = [t for t in terms if isinstance(t, ast.Variable) and t.is_wildcard]
        if wild:
            return [
                error(
                    codes.UNBOUND_VARIABLE,
                    wild[0].span.location(),
                    "`_` cannot be compared",
                    "compare a named variable that a positive literal binds",
                )
            ]
        return [
            error(
                codes.UNBOUND_VARIABLE,
                v.span.location(),
                f"variable `{v.name}` in a comparison is not bound",
                f"bind `{v.name}` in a positive literal first"
                + (", or give it a value with `=`" if literal.op == "=" else ""),
            )
            for v in missing(terms)
        ]
    if isinstance(literal, ast.Aggregate):
        groups = _groups(rule, literal) or []
        return [
            error(
                codes.UNBOUND_AGGREGATE_GROUP,
                literal.span.location(),
                f"variable `{name}` is shared by the aggregate and the rule but is not bound outside the braces",
                f"bind `{name}` with a positive literal before the aggregate, or rename it inside the braces",
            )
            for name in groups
            if name not in bound
        ]
    return _builtin_unbound(literal, bound, scope)


def _builtin_unbound(atom: ast.Atom, bound: set[str], scope: Scope) -> list[Diagnostic]:
    signature = scope.builtins[atom.predicate]
    # Name what the most permissive mode still lacks: the smallest change that makes it run.
    best: list[ast.Variable] | None = None
    for mode in sorted(signature.modes):
        lacking = [
            t
            for t, m in zip(atom.args, mode, strict=True)
            if m == "b" and isinstance(t, ast.Variable) and (t.is_wildcard or t.name not in bound)
        ]
        if best is None or len(lacking) < len(best):
            best = lacking
    out: list[Diagnostic] = []
    for term in best or []:
        label = "`_`" if term.is_wildcard else f"variable `{term.name}`"
        out.append(
            error(
                codes.UNBOUND_VARIABLE,
                term.span.location(),
                f"{label} of `{atom.predicate}` is not bound",
                f"`{signature.usage()}` needs this argument bound; bind it in a positive literal first",
            )
        )
    return out


def _singletons(rule: ast.Rule) -> list[Diagnostic]:
    """Named variables used once outside aggregates: almost always a typo."""
    counts: dict[str, list[ast.Variable]] = {}
    terms: list[ast.Term] = list(rule.head.args)
    for literal in rule.body:
        if isinstance(literal, ast.Atom):
            terms += literal.args
        elif isinstance(literal, ast.Negation):
            terms += literal.atom.args
        elif isinstance(literal, ast.Comparison):
            terms += [literal.left, literal.right]
        else:
            terms.append(literal.result)
            # Inner variables count where they meet the rest of the rule (grouping variables).
            inner = ast.literal_variables(literal)
            terms += [ast.Variable(n) for n in inner if n != literal.result.name]
    for term in terms:
        if isinstance(term, ast.Variable) and not term.name.startswith("_"):
            counts.setdefault(term.name, []).append(term)
    return [
        warning(
            codes.SINGLETON_VARIABLE,
            uses[0].span.location(),
            f"variable `{name}` occurs only once in rule `{rule.name}`",
            f"write `_` (or `_{name}`) if any value will do",
        )
        for name, uses in counts.items()
        if len(uses) == 1 and uses[0].span.line
    ]


# Stage 3: stratify ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Edge:
    head: str
    body: str
    kind: str  # "positive", "negative" or "aggregate"
    literal: ast.Literal


def stratify(scope: Scope) -> tuple[tuple[Stratum, ...], list[Diagnostic]]:
    """Strongly connected components in dependency order; reject negation or aggregation in a cycle."""
    edges: list[_Edge] = []
    for rule in scope.rules:
        head = rule.head.predicate
        if head not in scope.relations:
            continue
        for literal in rule.body:
            if isinstance(literal, ast.Atom):
                kind = "positive"
            elif isinstance(literal, ast.Negation):
                kind = "negative"
            elif isinstance(literal, ast.Aggregate):
                kind = "aggregate"
            else:
                continue
            for atom in ast.literal_atoms(literal):
                if atom.predicate in scope.relations:
                    edges.append(_Edge(head, atom.predicate, kind, literal))
    graph: dict[str, list[str]] = {name: [] for name in sorted(scope.relations)}
    for edge in edges:
        if edge.body not in graph[edge.head]:
            graph[edge.head].append(edge.body)
    for targets in graph.values():
        targets.sort()
    components = _strongly_connected(graph)
    component_of = {name: i for i, comp in enumerate(components) for name in comp}

    found: list[Diagnostic] = []
    reported: set[int] = set()  # one diagnostic per literal, naming its first cycle
    for edge in edges:
        if edge.kind == "positive" or component_of[edge.head] != component_of[edge.body]:
            continue
        if id(edge.literal) in reported:
            continue
        reported.add(id(edge.literal))
        cycle = _cycle(graph, edge.body, edge.head, component_of)
        if edge.kind == "negative":
            path = " → ".join([f"`{edge.head}`", f"not `{edge.body}`", *(f"`{n}`" for n in cycle[1:])])
            found.append(
                error(
                    codes.NEGATION_THROUGH_RECURSION,
                    edge.literal.span.location(),
                    f"negation through recursion: {path}",
                    f"`{edge.head}` cannot depend on the negation of a relation that depends on it;"
                    " derive the negated relation without it",
                )
            )
        else:
            assert isinstance(edge.literal, ast.Aggregate)
            fn = edge.literal.function
            path = " → ".join([f"`{edge.head}`", f"{fn} over `{edge.body}`", *(f"`{n}`" for n in cycle[1:])])
            found.append(
                error(
                    codes.AGGREGATION_THROUGH_RECURSION,
                    edge.literal.span.location(),
                    f"aggregation through recursion: {path}",
                    f"`{edge.head}` cannot aggregate over a relation that depends on it;"
                    " aggregate over relations computed before it",
                )
            )

    rules_by_head: dict[str, list[ast.Rule]] = {}
    for rule in scope.rules:
        rules_by_head.setdefault(rule.head.predicate, []).append(rule)
    strata: list[Stratum] = []
    for comp in components:
        rules = tuple(r for name in comp for r in rules_by_head.get(name, []))
        if not rules:
            continue  # base relations only: nothing to compute
        recursive = len(comp) > 1 or comp[0] in graph[comp[0]]
        strata.append(Stratum(len(strata), tuple(comp), rules, recursive))
    return tuple(strata), found


def _strongly_connected(graph: Mapping[str, list[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; components come out dependencies first, each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node, child = work.pop()
            if child == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            targets = graph[node]
            if child < len(targets):
                work.append((node, child + 1))
                target = targets[child]
                if target not in index:
                    work.append((target, 0))
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
                continue
            if low[node] == index[node]:
                comp: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    comp.append(member)
                    if member == node:
                        break
                components.append(sorted(comp))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return components


def _cycle(graph: Mapping[str, list[str]], start: str, goal: str, component_of: Mapping[str, int]) -> list[str]:
    """The shortest dependency path from ``start`` to ``goal`` inside their component, both included."""
    if start == goal:
        return [goal]
    comp = component_of[goal]
    previous: dict[str, str] = {start: start}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for target in graph[node]:
            if component_of[target] != comp or target in previous:
                continue
            previous[target] = node
            if target == goal:
                path = [goal]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                return list(reversed(path))
            queue.append(target)
    return [start, goal]  # pragma: no cover - a component always has the path


# Stage 4: type check ----------------------------------------------------------------------------


def compatible(left: str, right: str) -> bool:
    """Whether values of the two types may meet: equal, ``any``, or str with a named entity type."""
    if left == right or ANY in (left, right):
        return True
    return (left == "str" and _is_entity(right)) or (right == "str" and _is_entity(left))


def _meet(left: str, right: str) -> str:
    if left == ANY:
        return right
    if right == ANY or left == right:
        return left
    return right if left == "str" else left


def _is_entity(type_name: str) -> bool:
    return type_name[:1].isupper()


def type_check(scope: Scope) -> list[Diagnostic]:
    """One type per variable per rule; constants and variables fit the columns they fill."""
    found: list[Diagnostic] = []
    for rule in scope.rules:
        found += _rule_types(rule, scope)
    return found


@dataclass(slots=True)
class _Typed:
    type: str
    origin: str  # how the type was learnt, for the message


def _rule_types(rule: ast.Rule, scope: Scope) -> list[Diagnostic]:
    env: dict[str, _Typed] = {}
    found: list[Diagnostic] = []
    for literal in rule.body:
        _literal_types(literal, env, scope, found)
    if rule.head.predicate in scope.relations:
        _atom_types(rule.head, env, scope, found)
    return found


def _slot_types(atom: ast.Atom, scope: Scope) -> list[tuple[str, str]] | None:
    signature = scope.builtins.get(atom.predicate)
    if signature is not None and signature.arity == len(atom.args):
        return [(t, f"argument `{n}` of `{atom.predicate}`") for n, t in signature.params]
    decl = scope.relations.get(atom.predicate)
    if decl is not None and decl.arity == len(atom.args):
        return [(c.type, f"column `{c.name}` of `{atom.predicate}`") for c in decl.columns]
    return None


def _atom_types(atom: ast.Atom, env: dict[str, _Typed], scope: Scope, found: list[Diagnostic]) -> None:
    slots = _slot_types(atom, scope)
    if slots is None:
        return
    for term, (expected, where) in zip(atom.args, slots, strict=True):
        _fit(term, expected, where, env, found)


def _fit(term: ast.Term, expected: str, where: str, env: dict[str, _Typed], found: list[Diagnostic]) -> None:
    if isinstance(term, ast.Constant):
        if not compatible(term.type_name, expected):
            found.append(
                error(
                    codes.TYPE_MISMATCH,
                    term.span.location(),
                    f"type mismatch: `{_show(term)}` is {term.type_name} but {where} is {expected}",
                    f"write a value of type {expected} here",
                )
            )
        return
    if term.is_wildcard:
        return
    known = env.get(term.name)
    if known is None:
        env[term.name] = _Typed(expected, where)
        return
    if compatible(known.type, expected):
        known.type = _meet(known.type, expected)
        return
    found.append(
        error(
            codes.TYPE_MISMATCH,
            term.span.location(),
            f"type mismatch: `{term.name}` is {known.type} (from {known.origin}) but {where} is {expected}",
            "a variable holds one type of value; use two variables, or fix the column type",
        )
    )


def _literal_types(literal: ast.Literal, env: dict[str, _Typed], scope: Scope, found: list[Diagnostic]) -> None:
    if isinstance(literal, ast.Atom):
        _atom_types(literal, env, scope, found)
    elif isinstance(literal, ast.Negation):
        _atom_types(literal.atom, env, scope, found)
    elif isinstance(literal, ast.Comparison):
        _comparison_types(literal, env, found)
    else:
        for inner in literal.body:
            _literal_types(inner, env, scope, found)
        target_type = _term_type(literal.target, env) if literal.target is not None else ANY
        if literal.function in ("count", "sum"):
            if literal.function == "sum" and literal.target is not None:
                _fit(literal.target, "int", "the value `sum` adds", env, found)
            _fit(literal.result, "int", f"the result of `{literal.function}`", env, found)
        elif literal.function in ("min", "max"):
            if target_type == "bool":
                found.append(
                    error(
                        codes.TYPE_MISMATCH,
                        literal.span.location(),
                        f"type mismatch: `{literal.function}` orders values but its value is bool",
                        "aggregate an int or a string",
                    )
                )
            _fit(literal.result, target_type, f"the result of `{literal.function}`", env, found)
        else:
            _fit(literal.result, ANY, "the result of `set`", env, found)


def _term_type(term: ast.Term, env: Mapping[str, _Typed]) -> str:
    if isinstance(term, ast.Constant):
        return term.type_name
    known = env.get(term.name)
    return known.type if known is not None else ANY


def _comparison_types(literal: ast.Comparison, env: dict[str, _Typed], found: list[Diagnostic]) -> None:
    left, right = _term_type(literal.left, env), _term_type(literal.right, env)
    if not compatible(left, right):
        found.append(
            error(
                codes.TYPE_MISMATCH,
                literal.span.location(),
                f"type mismatch: cannot compare `{_show(literal.left)}` ({left})"
                f" with `{_show(literal.right)}` ({right})",
                "both sides of a comparison hold the same type of value",
            )
        )
        return
    if literal.op not in ("=", "!=") and "bool" in (left, right):
        found.append(
            error(
                codes.TYPE_MISMATCH,
                literal.span.location(),
                f"type mismatch: `{literal.op}` orders values but `{_show(literal.left)}` is bool",
                "order ints or strings; compare booleans with `=` or `!=`",
            )
        )
        return
    met = _meet(left, right)
    for term in (literal.left, literal.right):
        if isinstance(term, ast.Variable) and not term.is_wildcard:
            origin = f"the comparison at {literal.span.line}:{literal.span.col}"
            known = env.get(term.name)
            if known is None:
                env[term.name] = _Typed(met, origin)
            else:
                known.type = _meet(known.type, met)


def _show(term: ast.Term) -> str:
    if isinstance(term, ast.Variable):
        return term.name
    if isinstance(term.value, bool):
        return "true" if term.value else "false"
    if isinstance(term.value, int):
        return str(term.value)
    return f'"{term.value}"'
