"""A checked program: declarations, rules and the strata the engine evaluates in order.

``Program`` is what the static checks (``checks.check``) return once a set of rule files has no
errors; the engine reads nothing else. A *stratum* is one strongly connected component of the
relation dependency graph: its relations are computed together, after every stratum they depend
on, which is what makes ``not`` and aggregates well defined.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from meshrules.dsl import ast
from meshrules.dsl.signatures import BuiltinSignature
from meshrules.errors import Diagnostic


@dataclass(frozen=True, slots=True)
class Stratum:
    """Relations computed together, with the rules that derive them."""

    index: int
    relations: tuple[str, ...]
    rules: tuple[ast.Rule, ...]
    recursive: bool


@dataclass(frozen=True, slots=True)
class Program:
    """Checked rules ready to evaluate.

    ``relations`` maps each declared relation to its declaration; ``rules`` keeps file order;
    ``strata`` lists the strata with dependencies first; ``sources`` holds the text of every
    file read, so diagnostics and explanations can quote it; ``warnings`` are the non-fatal
    findings of the checks.
    """

    relations: Mapping[str, ast.RelationDecl]
    rules: tuple[ast.Rule, ...]
    strata: tuple[Stratum, ...]
    builtins: Mapping[str, BuiltinSignature]
    files: tuple[str, ...] = ()
    sources: Mapping[str, str] = field(default_factory=dict)
    warnings: tuple[Diagnostic, ...] = ()

    def __post_init__(self) -> None:
        # INVARIANT: a Program never changes after the checks built it.
        object.__setattr__(self, "relations", MappingProxyType(dict(self.relations)))
        object.__setattr__(self, "builtins", MappingProxyType(dict(self.builtins)))
        object.__setattr__(self, "sources", MappingProxyType(dict(self.sources)))

    def rule(self, name: str) -> ast.Rule:
        """The rule called ``name`` (``KeyError`` when there is none)."""
        for rule in self.rules:
            if rule.name == name:
                return rule
        raise KeyError(name)

    def rules_for(self, relation: str) -> tuple[ast.Rule, ...]:
        """The rules whose head is ``relation``."""
        return tuple(r for r in self.rules if r.head.predicate == relation)

    def depends_on(self, relation: str) -> frozenset[str]:
        """Relations that ``relation`` reads directly (through any rule, negated or aggregated too)."""
        found: set[str] = set()
        for rule in self.rules_for(relation):
            for literal in rule.body:
                found.update(a.predicate for a in ast.literal_atoms(literal) if a.predicate in self.relations)
        return frozenset(found)

    def downstream(self, relations: set[str] | frozenset[str]) -> frozenset[str]:
        """``relations`` and every relation derived from them, directly or not."""
        readers: dict[str, set[str]] = {}
        for rule in self.rules:
            for literal in rule.body:
                for atom in ast.literal_atoms(literal):
                    readers.setdefault(atom.predicate, set()).add(rule.head.predicate)
        seen = set(relations)
        work = list(relations)
        while work:
            for reader in readers.get(work.pop(), ()):
                if reader not in seen:
                    seen.add(reader)
                    work.append(reader)
        return frozenset(seen)
