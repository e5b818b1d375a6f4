"""The built-ins the default rule set needs beyond the standard ones.

``mesh_builtins()`` is the registry ``rules/`` is checked and evaluated with: the standard set
(``builtins.standard_builtins``) plus

- request-space algebra for TrafficPolicy merging (``request_space``): ``sources_within``,
  ``sources_overlap``, ``matchers_within``, ``matchers_overlap``;
- ``coalesce(Given, Default, Value)``: ``Given`` unless it is ``""`` (an omitted ref field);
- ``format(Template, A, Text)`` … ``format4(Template, A, B, C, D, Text)``: ``Template`` with each
  ``{}`` replaced by the next argument, so messages are written next to the rule that decides
  (``format2("`{}` conflicts with `{}`", P, Q, Message)``).

Every program meshrules evaluates for a scenario — the defaults, ``--rules DIR``, a scenario's
extra files — is loaded with this registry, so extensions may use all of these too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from meshrules.engine.builtins import Builtin, BuiltinRegistry, define, standard_builtins
from meshrules.engine.request_space import matchers_overlap, matchers_within, sources_overlap, sources_within
from meshrules.engine.values import sort_key


def text(value: Any) -> str:
    """A value as message text: strings as they are, collections as comma-separated items."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (tuple, list, frozenset, set)):
        items = sorted(value, key=sort_key) if isinstance(value, (frozenset, set)) else value
        return ", ".join(text(v) for v in items)
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={text(value[k])}" for k in sorted(value, key=str))
    return str(value)


def fill(template: Any, *values: Any) -> str | None:
    """``template`` with its ``{}`` placeholders replaced in order; ``None`` when the counts differ."""
    if not isinstance(template, str):
        return None
    parts = template.split("{}")
    if len(parts) != len(values) + 1:
        return None
    out = [parts[0]]
    for value, part in zip(values, parts[1:], strict=True):
        out += [text(value), part]
    return "".join(out)


def _formatter(arity: int) -> Builtin:
    letters = "ABCD"[:arity]
    name = "format" if arity == 1 else f"format{arity}"
    params = ", ".join(["Template: str", *(f"{x}: any" for x in letters), "Text: str"])

    def compute(template: Any, *values: Any) -> tuple[tuple[str], ...]:
        found = fill(template, *values)
        return () if found is None else ((found,),)

    def check(template: Any, *args: Any) -> bool:
        return bool(fill(template, *args[:-1]) == args[-1])

    return define(
        name,
        params,
        f"Text is Template with its {arity} `{{}}` placeholder{'s' if arity > 1 else ''} filled in order",
        {"b" * (arity + 1) + "f": compute, "b" * (arity + 2): check},
    )


def _coalesce(given: Any, default: Any) -> tuple[tuple[Any], ...]:
    return (((default if given in ("", None) else given),),)


def mesh_builtins() -> BuiltinRegistry:
    """A fresh registry: the standard built-ins plus those the default rule set uses."""
    registry = standard_builtins()
    registry.register(
        define(
            "sources_within",
            "Inner: any, Outer: any",
            "every workload the source selector list Inner selects, Outer selects too ([] selects all)",
            {"bb": sources_within},
        )
    )
    registry.register(
        define(
            "sources_overlap",
            "A: any, B: any",
            "some workload could be selected by both source selector lists",
            {"bb": sources_overlap},
        )
    )
    registry.register(
        define(
            "matchers_within",
            "Inner: any, Outer: any",
            "every request the matcher list Inner matches, Outer matches too ([] matches all)",
            {"bb": matchers_within},
        )
    )
    registry.register(
        define(
            "matchers_overlap",
            "A: any, B: any",
            "some request could match both matcher lists",
            {"bb": matchers_overlap},
        )
    )
    registry.register(
        define(
            "coalesce",
            "Given: str, Default: str, Value: str",
            'Value is Given, or Default when Given is "" (an omitted field)',
            {"bbf": _coalesce, "bbb": lambda g, d, v: _coalesce(g, d)[0][0] == v},
        )
    )
    for arity in (1, 2, 3, 4):
        registry.register(_formatter(arity))
    return registry


__all__ = ["fill", "mesh_builtins", "text"]
