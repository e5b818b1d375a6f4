"""What the language knows of a built-in predicate: its name, typed parameters and binding modes.

The implementations live in ``meshrules.engine.builtins``; the checker needs only the signature,
so the language layer does not depend on evaluation. A *mode* says which arguments must be bound
when the predicate runs: ``"bbf"`` means the first two are inputs and the third is computed.
A mode of all ``b`` is a test.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BuiltinSignature:
    """The checkable face of a built-in predicate."""

    name: str
    params: tuple[tuple[str, str], ...]  # (parameter name, type)
    modes: frozenset[str]
    description: str = ""

    def __post_init__(self) -> None:
        for mode in self.modes:
            if len(mode) != len(self.params) or set(mode) - {"b", "f"}:
                raise ValueError(f"mode `{mode}` of built-in `{self.name}` does not fit its parameters")

    @property
    def arity(self) -> int:
        """The number of arguments."""
        return len(self.params)

    @property
    def types(self) -> tuple[str, ...]:
        """Parameter types in order."""
        return tuple(t for _, t in self.params)

    def usage(self) -> str:
        """``name(Param, ...)`` as the docs and hints show it."""
        return f"{self.name}({', '.join(n for n, _ in self.params)})"

    def mode_for(self, bound: Sequence[bool]) -> str | None:
        """The runnable mode needing the most inputs among those whose inputs are all bound.

        Preferring more inputs means fewer answers to filter afterwards. ``None`` when no mode
        can run with these arguments bound.
        """
        best: str | None = None
        for mode in sorted(self.modes):
            if all(bound[i] for i, m in enumerate(mode) if m == "b") and (
                best is None or mode.count("b") > best.count("b")
            ):
                best = mode
        return best
