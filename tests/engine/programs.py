"""Random rule programs and facts for property tests: safe and stratified by construction.

Base relations ``b0..b2`` and derived relations ``d0..d3`` hold short strings. A rule for
``dK`` reads base relations and derived relations up to ``dK`` positively (so it may recurse);
negation and aggregates read only base relations and ``d0..d(K-1)``, which keeps every program
stratifiable. A *monotone* program has no negation and no aggregates, and its rules may read
any derived relation (mutual recursion).
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st

from meshrules.engine import Facts

DOMAIN = ("a", "b", "c", "d")
BASE = {"b0": 2, "b1": 2, "b2": 1}
DERIVED = {"d0": 2, "d1": 1, "d2": 2, "d3": 1}
VARIABLES = ("X", "Y", "Z", "W")


@dataclass(frozen=True)
class RandomProgram:
    """Rule text split in statements (so tests can reorder rules) and whether it is monotone."""

    declarations: tuple[str, ...]
    rules: tuple[str, ...]
    monotone: bool

    def text(self, rules: tuple[str, ...] | None = None) -> str:
        return "\n".join(self.declarations + (rules if rules is not None else self.rules)) + "\n"


def _declarations() -> tuple[str, ...]:
    decls = []
    for name, arity in {**BASE, **DERIVED}.items():
        columns = ", ".join(f"c{i}: str" for i in range(arity))
        decls.append(f"relation {name}({columns})")
    return tuple(decls)


@st.composite
def _rule(draw: st.DrawFn, index: int, head: str, monotone: bool) -> str:
    level = list(DERIVED).index(head)
    positive_pool = list(BASE) + (list(DERIVED) if monotone else list(DERIVED)[: level + 1])
    lower_pool = list(BASE) + list(DERIVED)[:level]
    arities = {**BASE, **DERIVED}

    def term(bound: list[str], allow_new: bool) -> str:
        choices = list(bound) + ([v for v in VARIABLES if v not in bound] if allow_new else [])
        if choices and draw(st.integers(0, 4)) > 0:
            return str(draw(st.sampled_from(choices)))
        return f'"{draw(st.sampled_from(DOMAIN))}"'

    body: list[str] = []
    bound: list[str] = []
    for _ in range(draw(st.integers(1, 3))):
        rel = draw(st.sampled_from(positive_pool))
        args = [term(bound, allow_new=True) for _ in range(arities[rel])]
        bound += [a for a in args if a[0].isupper() and a not in bound]
        body.append(f"{rel}({', '.join(args)})")
    if bound and draw(st.booleans()):
        op = draw(st.sampled_from(["!=", "<", "=", ">="]))
        body.append(f"{term(bound, False)} {op} {term(bound, False)}")
    if bound and draw(st.booleans()):
        negated = "not " if not monotone and draw(st.booleans()) else ""
        body.append(f'{negated}startswith({term(bound, False)}, "{draw(st.sampled_from(DOMAIN))}")')
    extra_head: list[str] = []
    if draw(st.booleans()):
        # An assignment binds a new variable the head may use.
        body.append(f"A{index} = {term(bound, False)}")
        extra_head.append(f"A{index}")
    if not monotone:
        if draw(st.booleans()):
            rel = draw(st.sampled_from(lower_pool))
            args = [
                draw(st.sampled_from(["_", *bound])) if bound and draw(st.booleans()) else term(bound, False)
                for _ in range(arities[rel])
            ]
            body.append(f"not {rel}({', '.join(args)})")
        if bound and draw(st.booleans()):
            rel = draw(st.sampled_from([r for r in lower_pool if arities[r] == 2]))
            group = draw(st.sampled_from(bound))
            kind = draw(st.sampled_from(["count", "min", "max"]))
            # Sometimes a second atom shares another bound variable: a group of two variables.
            second = draw(st.sampled_from(bound))
            extra = f", {rel}(V{index}, {second})" if draw(st.booleans()) else ""
            if kind == "count":
                body.append(f"N{index} = count : {{ {rel}({group}, V{index}){extra} }}")
                body.append(f"N{index} >= {draw(st.integers(0, 2))}")
            else:
                body.append(f"M{index} = {kind} V{index} : {{ {rel}({group}, V{index}){extra} }}")
                extra_head.append(f"M{index}")
    head_pool = bound + extra_head
    head_args = [
        str(draw(st.sampled_from(head_pool))) if head_pool and draw(st.integers(0, 5)) > 0 else f'"{DOMAIN[0]}"'
        for _ in range(DERIVED[head])
    ]
    return f'rule r{index} "rule {index}": {head}({", ".join(head_args)}) :- {", ".join(body)}.'


@st.composite
def random_programs(draw: st.DrawFn, monotone: bool | None = None) -> RandomProgram:
    """A program over ``b0..b2`` and ``d0..d3``; ``monotone=None`` lets Hypothesis choose."""
    mono = draw(st.booleans()) if monotone is None else monotone
    count = draw(st.integers(1, 7))
    rules = tuple(draw(_rule(i, draw(st.sampled_from(list(DERIVED))), mono)) for i in range(count))
    return RandomProgram(_declarations(), rules, mono)


@st.composite
def random_facts(draw: st.DrawFn) -> list[tuple[str, tuple[str, ...]]]:
    """Base facts as a list (order matters to tests that shuffle it)."""
    facts: list[tuple[str, tuple[str, ...]]] = []
    for rel, arity in BASE.items():
        rows = draw(st.lists(st.tuples(*[st.sampled_from(DOMAIN)] * arity), max_size=8, unique=True))
        facts += [(rel, row) for row in rows]
    return facts


def to_facts(rows: list[tuple[str, tuple[str, ...]]]) -> Facts:
    """``Facts`` with a source per fact naming it, so explanations can be checked to reach them."""
    facts = Facts()
    for rel, row in rows:
        facts.add(rel, row, source=f"input/{rel}/{'-'.join(row)}")
    return facts
