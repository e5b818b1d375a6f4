"""The algebra of TrafficPolicy request spaces: source selectors and HTTP request matchers.

Spec §3.2 merges two policies at one destination by how their request spaces relate — one inside
the other (more specific), identical, overlapping, or disjoint. A request space is a list of
source selectors (``WorkloadSelector`` wire form, ``[]`` = every source) and a list of request
matchers (``HttpRequestMatcher`` wire form, ``[]`` = every request). The default rule set
(``rules/traffic.rules``) asks these four questions through the built-ins of
``meshrules.engine.mesh_builtins``:

- ``sources_within(A, B)``, ``matchers_within(A, B)``: every source/request A covers, B covers;
- ``sources_overlap(A, B)``, ``matchers_overlap(A, B)``: some source/request is in both.

The answers are *safe approximations*: ``within`` is only claimed when it surely holds (a regex is
within another regex only when they are equal), ``overlap`` is claimed unless the two surely
exclude each other (a prefix and a regex are assumed to overlap). A wrong "overlap" costs a
warning; a wrong "within" would silently hand a field to the wrong policy.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

# --- selectors -------------------------------------------------------------------------------------


def _get(value: Any, key: str) -> Any:
    return value.get(key) if isinstance(value, Mapping) else None


def _items(value: Any) -> Sequence[Any]:
    if isinstance(value, (list, tuple)):
        return value
    return ()


def _selector_unrestricted(selector: Any) -> bool:
    """A selector with no clusters, namespaces or labels selects every workload."""
    return not (_get(selector, "clusters") or _get(selector, "namespaces") or _get(selector, "labels"))


def _selector_within(inner: Any, outer: Any) -> bool:
    for key in ("clusters", "namespaces"):
        allowed = _get(outer, key)
        if allowed and not (_get(inner, key) and set(_get(inner, key)) <= set(allowed)):
            return False
    inner_labels = _get(inner, "labels") or {}
    return all(inner_labels.get(k) == v for k, v in (_get(outer, "labels") or {}).items())


def _selectors_overlap(left: Any, right: Any) -> bool:
    for key in ("clusters", "namespaces"):
        a, b = _get(left, key), _get(right, key)
        if a and b and not set(a) & set(b):
            return False
    a_labels, b_labels = _get(left, "labels") or {}, _get(right, "labels") or {}
    return all(b_labels.get(k, v) == v for k, v in a_labels.items())


def sources_within(inner: Any, outer: Any) -> bool:
    """Every workload the selector list ``inner`` selects, ``outer`` selects too."""
    outer_items, inner_items = _items(outer), _items(inner)
    if not outer_items or any(_selector_unrestricted(o) for o in outer_items):
        return True
    if not inner_items:
        return False  # inner selects everything, outer does not
    return all(any(_selector_within(i, o) for o in outer_items) for i in inner_items)


def sources_overlap(left: Any, right: Any) -> bool:
    """Some workload could be selected by both selector lists."""
    a, b = _items(left), _items(right)
    if not a or not b:
        return True
    return any(_selectors_overlap(x, y) for x in a for y in b)


# --- request matchers ------------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _regex(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:
        return None


def _fullmatch(pattern: str, text: str) -> bool:
    compiled = _regex(pattern)
    return compiled is not None and compiled.fullmatch(text) is not None


def _string_match(value: Any) -> tuple[str, str] | None:
    """``("exact"|"prefix"|"regex", value)`` of a StringMatch, ``None`` when absent."""
    for kind in ("exact", "prefix", "regex"):
        found = _get(value, kind)
        if isinstance(found, str):
            return kind, found
    return None


def _uri_within(inner: tuple[str, str], outer: tuple[str, str]) -> bool:
    ikind, ival = inner
    okind, oval = outer
    if okind == "exact":
        return ikind == "exact" and ival == oval
    if okind == "prefix":
        return ikind in ("exact", "prefix") and ival.startswith(oval)
    if ikind == "exact":
        return _fullmatch(oval, ival)
    return ikind == "regex" and ival == oval


def _uri_overlap(left: tuple[str, str], right: tuple[str, str]) -> bool:
    (lkind, lval), (rkind, rval) = sorted((left, right))  # exact < prefix < regex
    if lkind == "exact":
        if rkind == "exact":
            return lval == rval
        return lval.startswith(rval) if rkind == "prefix" else _fullmatch(rval, lval)
    if lkind == rkind == "prefix":
        return lval.startswith(rval) or rval.startswith(lval)
    return True  # a prefix and a regex, or two regexes: assume they meet


def _conditions(matcher: Any, key: str) -> list[Mapping[str, Any]]:
    """The header or query conditions of a matcher, normalised: ``{name, value, regex, invertMatch}``.

    Header names compare case-insensitively (HTTP; the emitters lower-case them), query parameter
    names as written. Omitted flags are false.
    """
    out: list[Mapping[str, Any]] = []
    for c in _items(_get(matcher, key)):
        if not isinstance(c, Mapping):
            continue
        name = str(c.get("name", ""))
        out.append(
            {
                "name": name.lower() if key == "headers" else name,
                "value": str(c.get("value") or ""),
                "regex": bool(c.get("regex")),
                "invertMatch": bool(c.get("invertMatch")),
            }
        )
    return out


def _is_presence(condition: Mapping[str, Any]) -> bool:
    # An empty, non-regex value tests presence only (`meshrules.emit.conditions._value_condition`).
    return not condition["regex"] and not condition["value"]


def _condition_implies(inner: Mapping[str, Any], outer: Mapping[str, Any]) -> bool:
    """A request meeting header/query condition ``inner`` surely meets ``outer``.

    Non-inverted tests need the header present; an inverted presence test means "absent", an
    inverted value test "present and fails the test" (Istio `withoutHeaders`).
    """
    if inner["name"] != outer["name"]:
        return False
    if dict(inner) == dict(outer):
        return True
    if outer["invertMatch"]:
        return False
    if _is_presence(outer):
        # every positive test and every "present and fails" test needs the header present
        return not (inner["invertMatch"] and _is_presence(inner))
    return (
        not inner["invertMatch"]
        and not inner["regex"]
        and bool(inner["value"])
        and outer["regex"]
        and _fullmatch(str(outer["value"]), str(inner["value"]))
    )


def _conditions_exclude(left: Mapping[str, Any], right: Mapping[str, Any]) -> bool:
    """No request can meet both conditions (same header or parameter, incompatible values)."""
    if left["name"] != right["name"]:
        return False
    absent = [c["invertMatch"] and _is_presence(c) for c in (left, right)]
    if absent[0] != absent[1]:
        return True  # "absent" against any test that needs the header present
    if any(absent) or any(_is_presence(c) for c in (left, right)):
        return False
    lv, rv = str(left["value"]), str(right["value"])
    linv, rinv = bool(left["invertMatch"]), bool(right["invertMatch"])
    lre, rre = bool(left["regex"]), bool(right["regex"])
    if not linv and not rinv:
        if not lre and not rre:
            return lv != rv
        if lre != rre:
            pattern, text = (lv, rv) if lre else (rv, lv)
            return not _fullmatch(pattern, text)
        return False
    if linv != rinv and not lre and not rre:
        return lv == rv  # `= v` and `!= v`
    return False


def _method(matcher: Any) -> str | None:
    method = _get(matcher, "method")
    return method.upper() if isinstance(method, str) and method else None


def _matcher_unrestricted(matcher: Any) -> bool:
    return (
        _string_match(_get(matcher, "uri")) is None
        and _method(matcher) is None
        and not _conditions(matcher, "headers")
        and not _conditions(matcher, "queryParameters")
    )


def _matcher_within(inner: Any, outer: Any) -> bool:
    ouri, iuri = _string_match(_get(outer, "uri")), _string_match(_get(inner, "uri"))
    if ouri is not None and (iuri is None or not _uri_within(iuri, ouri)):
        return False
    omethod = _method(outer)
    if omethod is not None and _method(inner) != omethod:
        return False
    for key in ("headers", "queryParameters"):
        inner_conditions = _conditions(inner, key)
        if not all(any(_condition_implies(i, o) for i in inner_conditions) for o in _conditions(outer, key)):
            return False
    return True


def _matchers_meet(left: Any, right: Any) -> bool:
    luri, ruri = _string_match(_get(left, "uri")), _string_match(_get(right, "uri"))
    if luri is not None and ruri is not None and not _uri_overlap(luri, ruri):
        return False
    lmethod, rmethod = _method(left), _method(right)
    if lmethod is not None and rmethod is not None and lmethod != rmethod:
        return False
    for key in ("headers", "queryParameters"):
        if any(_conditions_exclude(a, b) for a in _conditions(left, key) for b in _conditions(right, key)):
            return False
    return True


def matchers_within(inner: Any, outer: Any) -> bool:
    """Every request the matcher list ``inner`` matches, ``outer`` matches too."""
    outer_items, inner_items = _items(outer), _items(inner)
    if not outer_items or any(_matcher_unrestricted(o) for o in outer_items):
        return True
    if not inner_items:
        return False
    return all(any(_matcher_within(i, o) for o in outer_items) for i in inner_items)


def matchers_overlap(left: Any, right: Any) -> bool:
    """Some request could match both matcher lists."""
    a, b = _items(left), _items(right)
    if not a or not b:
        return True
    return any(_matchers_meet(x, y) for x in a for y in b)


__all__ = ["matchers_overlap", "matchers_within", "sources_overlap", "sources_within"]
