"""Built-in predicates: the registry, and the standard set every rule file can use.

A built-in is a relation computed by Python instead of stored: ``startswith(S, "x")`` is true
or false, ``concat(A, B, C)`` computes ``C``. Each ``Builtin`` pairs the language's
``BuiltinSignature`` (names, types, binding modes; what the checker reads) with one Python
function per mode. A mode function takes the bound arguments in order and returns, for a test
mode (all ``b``), a truth value, and otherwise an iterable of tuples of the computed arguments.

Register more with ``BuiltinRegistry.register``; pass the registry to ``load_program`` (so the
checker knows the names) and to ``evaluate``. Built-ins must be pure and deterministic: the
engine may call them in any order, any number of times, and caches nothing but aggregates.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from meshrules.dsl.signatures import BuiltinSignature
from meshrules.engine.values import FrozenMap, freeze

ModeFunction = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class Builtin:
    """A built-in predicate: its signature and one implementation per binding mode.

    With ``uses_objects``, each implementation receives the evaluation's object table (entity
    id → object, see ``Facts.objects``) as its first argument.
    """

    signature: BuiltinSignature
    implementations: Mapping[str, ModeFunction]
    uses_objects: bool = False

    def __post_init__(self) -> None:
        if set(self.implementations) != set(self.signature.modes):
            raise ValueError(f"built-in `{self.signature.name}` needs one implementation per mode")

    @property
    def name(self) -> str:
        """The predicate name rules use."""
        return self.signature.name

    def bind(self, mode: str, objects: Mapping[str, Any]) -> ModeFunction:
        """The callable for ``mode``, with the object table bound when the built-in uses it."""
        fn = self.implementations[mode]
        if not self.uses_objects:
            return fn

        def with_objects(*args: Any) -> Any:
            return fn(objects, *args)

        return with_objects


def define(
    name: str,
    params: str,
    description: str,
    modes: Mapping[str, ModeFunction],
    uses_objects: bool = False,
) -> Builtin:
    """A ``Builtin`` from a compact parameter list: ``define("startswith", "S: str, Prefix: str", ...)``."""
    parsed = tuple((n.strip(), t.strip()) for n, t in (p.split(":") for p in params.split(",")))
    signature = BuiltinSignature(name, parsed, frozenset(modes), description)
    return Builtin(signature, dict(modes), uses_objects)


@dataclass(slots=True)
class BuiltinRegistry:
    """Built-ins by name; ``standard_builtins()`` gives a fresh registry holding the standard set."""

    _builtins: dict[str, Builtin] = field(default_factory=dict)

    def register(self, builtin: Builtin) -> None:
        """Add a built-in; ``ValueError`` when the name is taken."""
        if builtin.name in self._builtins:
            raise ValueError(f"built-in `{builtin.name}` is already registered")
        self._builtins[builtin.name] = builtin

    def get(self, name: str) -> Builtin | None:
        """The built-in called ``name``, or ``None``."""
        return self._builtins.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._builtins

    def __iter__(self) -> Iterator[Builtin]:
        return iter(self._builtins[n] for n in sorted(self._builtins))

    def signatures(self) -> dict[str, BuiltinSignature]:
        """Name → signature, what ``load_program`` and the checks need."""
        return {name: b.signature for name, b in self._builtins.items()}

    def copy(self) -> BuiltinRegistry:
        """A registry with the same built-ins, to extend without touching this one."""
        return BuiltinRegistry(dict(self._builtins))


def _one(fn: Callable[..., Any]) -> ModeFunction:
    """A mode function from a function returning one value, or ``None`` for no answer."""

    def one(*args: Any) -> tuple[tuple[Any], ...]:
        value = fn(*args)
        return () if value is None else ((value,),)

    return one


# Strings ---------------------------------------------------------------------------------------


def _strs(*values: Any) -> bool:
    return all(isinstance(v, str) for v in values)


def _concat_prefix(b: Any, c: Any) -> str | None:
    if not _strs(b, c) or not c.endswith(b):
        return None
    return str(c[: len(c) - len(b)])


def _concat_suffix(a: Any, c: Any) -> str | None:
    if not _strs(a, c) or not c.startswith(a):
        return None
    return str(c[len(a) :])


def _split(s: Any, sep: Any) -> Iterable[tuple[str]]:
    if not _strs(s, sep) or not sep:
        return ()
    return tuple((part,) for part in dict.fromkeys(s.split(sep)))


def _string(x: Any) -> str | None:
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, (int, str)):
        return str(x)
    return None


# Istio path and host patterns -------------------------------------------------------------------


def path_matches(pattern: Any, path: Any) -> bool:
    """Istio path semantics: ``*`` any, ``x*`` prefix, ``*x`` suffix, else exact."""
    if not _strs(pattern, path):
        return False
    if pattern == "*":
        return True
    if pattern.endswith("*"):
        return bool(path.startswith(pattern[:-1]))
    if pattern.startswith("*"):
        return bool(path.endswith(pattern[1:]))
    return bool(pattern == path)


def _pattern_kind(pattern: str) -> tuple[str, str]:
    if pattern == "*":
        return "any", ""
    if pattern.endswith("*"):
        return "prefix", pattern[:-1]
    if pattern.startswith("*"):
        return "suffix", pattern[1:]
    return "exact", pattern


def path_within(inner: Any, outer: Any) -> bool:
    """Every path ``inner`` matches is matched by ``outer`` (``inner`` is at least as specific)."""
    if not _strs(inner, outer):
        return False
    ikind, ival = _pattern_kind(inner)
    okind, oval = _pattern_kind(outer)
    if okind == "any":
        return True
    if ikind == "exact":
        return path_matches(outer, ival)
    if ikind == "any":
        return False
    if okind == ikind == "prefix":
        return ival.startswith(oval)
    if okind == ikind == "suffix":
        return ival.endswith(oval)
    return (okind == "prefix" and oval == "") or (okind == "suffix" and oval == "")


def paths_overlap(left: Any, right: Any) -> bool:
    """Some path is matched by both patterns."""
    if not _strs(left, right):
        return False
    lkind, lval = _pattern_kind(left)
    rkind, rval = _pattern_kind(right)
    if "any" in (lkind, rkind):
        return True
    if lkind == "exact":
        return path_matches(right, lval)
    if rkind == "exact":
        return path_matches(left, rval)
    if lkind == rkind == "prefix":
        return lval.startswith(rval) or rval.startswith(lval)
    if lkind == rkind == "suffix":
        return lval.endswith(rval) or rval.endswith(lval)
    return True  # a prefix and a suffix always share the path prefix + suffix


def host_matches(pattern: Any, host: Any) -> bool:
    """Istio host semantics: ``*`` any, ``*.example.com`` any host under it, else exact (case-insensitive)."""
    if not _strs(pattern, host):
        return False
    pattern, host = pattern.lower(), host.lower()
    if pattern == "*":
        return True
    if pattern.startswith("*."):
        return bool(host.endswith(pattern[1:]))
    return bool(pattern == host)


@lru_cache(maxsize=1024)
def _regex(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:
        return None


def _regex_matches(pattern: Any, s: Any) -> bool:
    if not _strs(pattern, s):
        return False
    compiled = _regex(pattern)
    return compiled is not None and compiled.fullmatch(s) is not None


# Labels and selectors ---------------------------------------------------------------------------


def _mapping(value: Any) -> Mapping[str, Any] | None:
    if value is None:
        return {}
    return value if isinstance(value, Mapping) else None


def labels_match(selector: Any, labels: Any) -> bool:
    """Kubernetes label-selector semantics.

    ``selector`` is either a plain label map (every pair must be present) or a LabelSelector
    with ``matchLabels`` and ``matchExpressions`` (operators In, NotIn, Exists, DoesNotExist).
    An empty selector matches everything.
    """
    sel, labs = _mapping(selector), _mapping(labels)
    if sel is None or labs is None:
        return False
    if "matchLabels" in sel or "matchExpressions" in sel:
        match_labels = _mapping(sel.get("matchLabels")) or {}
        if any(labs.get(k) != v for k, v in match_labels.items()):
            return False
        for expression in sel.get("matchExpressions") or ():
            if not isinstance(expression, Mapping) or not _expression_holds(expression, labs):
                return False
        return True
    return all(labs.get(k) == v for k, v in sel.items())


def _expression_holds(expression: Mapping[str, Any], labels: Mapping[str, Any]) -> bool:
    key, operator = str(expression.get("key")), expression.get("operator")
    values = tuple(expression.get("values") or ())
    if operator == "In":
        return key in labels and labels[key] in values
    if operator == "NotIn":
        return key not in labels or labels[key] not in values
    if operator == "Exists":
        return key in labels
    if operator == "DoesNotExist":
        return key not in labels
    return False


def labels_within(inner: Any, outer: Any) -> bool:
    """Every label set ``inner`` selects, ``outer`` selects too (``inner`` is at least as specific).

    Exact for plain label maps; for LabelSelectors it is the safe approximation "``outer``'s
    matchLabels and matchExpressions all appear in ``inner``".
    """
    i, o = _mapping(inner), _mapping(outer)
    if i is None or o is None:
        return False
    if "matchLabels" in o or "matchExpressions" in o or "matchLabels" in i or "matchExpressions" in i:
        i_labels = _mapping(i.get("matchLabels")) or ({} if "matchExpressions" in i else i)
        o_labels = _mapping(o.get("matchLabels")) or ({} if "matchExpressions" in o else o)
        i_expr = {freeze(e) for e in i.get("matchExpressions") or ()}
        o_expr = {freeze(e) for e in o.get("matchExpressions") or ()}
        return all(i_labels.get(k) == v for k, v in o_labels.items()) and o_expr <= i_expr
    return all(i.get(k) == v for k, v in o.items())


def _entry(value: Any, key: str) -> Any:
    """A field of a mapping or an object (``namespaces`` of a dict or of a pydantic model)."""
    if isinstance(value, Mapping):
        return value.get(key)
    return getattr(value, key, None)


def _allowed(values: Any, value: Any) -> bool:
    """An omitted or empty list allows everything; otherwise ``value`` must be in it."""
    if not values:
        return True
    return isinstance(values, (list, tuple, frozenset, set)) and value in values


def selector_matches(selector: Any, cluster: Any, namespace: Any, labels: Any) -> bool:
    """meshrules ``WorkloadSelector`` / ``DestinationSelector`` semantics (spec §3).

    Every given field must match: ``clusters`` and ``namespaces`` list the allowed values,
    ``labels`` must all be present. Omitted or empty fields match anything.
    """
    if selector is None:
        return True
    wanted = _entry(selector, "labels") or {}
    have = _mapping(labels) or {}
    return (
        _allowed(_entry(selector, "clusters"), cluster)
        and _allowed(_entry(selector, "namespaces"), namespace)
        and isinstance(wanted, Mapping)
        and all(have.get(k) == v for k, v in wanted.items())
    )


def selector_within(inner: Any, outer: Any) -> bool:
    """Every object the meshrules selector ``inner`` selects, ``outer`` selects too.

    Field by field: where ``outer`` restricts clusters or namespaces, ``inner`` restricts them to
    a subset; ``outer``'s labels are all required by ``inner`` too.
    """
    for key in ("clusters", "namespaces"):
        outer_values = _entry(outer, key) if outer is not None else None
        inner_values = _entry(inner, key) if inner is not None else None
        if outer_values and not (inner_values and set(inner_values) <= set(outer_values)):
            return False
    outer_labels = (_entry(outer, "labels") if outer is not None else None) or {}
    inner_labels = (_entry(inner, "labels") if inner is not None else None) or {}
    return all(inner_labels.get(k) == v for k, v in outer_labels.items())


def ref_matches(ref: Any, cluster: Any, namespace: Any, name: Any) -> bool:
    """An ``ObjectRef``/``ClusterObjectRef`` used as a selector: each given field must equal the object's."""
    if ref is None:
        return False
    for key, value in (("cluster", cluster), ("namespace", namespace), ("name", name)):
        wanted = _entry(ref, key)
        if wanted not in (None, "") and wanted != value:
            return False
    return True


def _get_value(mapping: Any, key: Any) -> Any:
    if not isinstance(mapping, Mapping) or key not in mapping:
        return None
    return freeze(mapping[key])


def _get_items(mapping: Any) -> Iterable[tuple[Any, Any]]:
    if not isinstance(mapping, Mapping):
        return ()
    return tuple((k, freeze(v)) for k, v in mapping.items())


# Collections ------------------------------------------------------------------------------------


def _collection(value: Any) -> frozenset[Any] | tuple[Any, ...] | None:
    if isinstance(value, (tuple, frozenset)):
        return value
    if isinstance(value, (list, set)):
        return tuple(freeze(v) for v in value)
    if isinstance(value, Mapping):
        return tuple(value)
    return None


def _members(collection: Any) -> Iterable[tuple[Any]]:
    items = _collection(collection)
    return () if items is None else tuple((v,) for v in dict.fromkeys(items))


def _member(x: Any, collection: Any) -> bool:
    items = _collection(collection)
    return items is not None and x in items


def _set_op(op: Callable[[frozenset[Any], frozenset[Any]], frozenset[Any]]) -> Callable[[Any, Any], Any]:
    def apply(a: Any, b: Any) -> frozenset[Any] | None:
        left, right = _collection(a), _collection(b)
        if left is None or right is None:
            return None
        return op(frozenset(left), frozenset(right))

    return apply


def _subset(a: Any, b: Any) -> bool:
    left, right = _collection(a), _collection(b)
    return left is not None and right is not None and frozenset(left) <= frozenset(right)


def _size(value: Any) -> int | None:
    if isinstance(value, (str, tuple, frozenset, list, set, Mapping)):
        return len(value)
    return None


# Fields of objects ------------------------------------------------------------------------------

_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def field_value(objects: Mapping[str, Any], subject: Any, path: Any) -> Any:
    """The value at dotted ``path`` in ``subject`` (an object, a mapping, or an id in ``objects``).

    Segments are keys of mappings, attributes of objects (``requestTimeout`` also finds a
    ``request_timeout`` attribute) or list indexes. Returns ``None`` when any segment is missing.
    """
    if not isinstance(path, str):
        return None
    current = objects.get(subject, subject) if isinstance(subject, str) else subject
    if isinstance(current, str):
        return None  # an id with no object behind it
    for segment in path.split(".") if path else ():
        current = _step(current, segment)
        if current is None:
            return None
    return freeze(current)


def _step(current: Any, segment: str) -> Any:
    if isinstance(current, Mapping):
        return current.get(segment)
    if isinstance(current, (list, tuple)):
        if segment.isdigit() and int(segment) < len(current):
            return current[int(segment)]
        return None
    if isinstance(current, (str, int, float, bool)) or current is None:
        return None
    if hasattr(current, segment):
        return getattr(current, segment)
    snake = _CAMEL.sub("_", segment).lower()
    return getattr(current, snake, None)


# Durations --------------------------------------------------------------------------------------

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_MS = {"ns": 1e-6, "us": 1e-3, "µs": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0, "h": 3600000.0}


def duration_ms(text: Any) -> int | None:
    """Milliseconds in an Istio/Go duration (``250ms``, ``1.5s``, ``1h30m``), rounded down."""
    if not isinstance(text, str) or not text:
        return None
    position, total = 0, 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != position:
            return None
        total += float(match.group(1)) * _UNIT_MS[match.group(2)]
        position = match.end()
    if position != len(text):
        return None
    return int(total)


# The standard set -------------------------------------------------------------------------------


def _test(fn: Callable[..., Any]) -> ModeFunction:
    return fn


def _standard() -> list[Builtin]:
    def concat_check(a: Any, b: Any, c: Any) -> bool:
        return _strs(a, b, c) and a + b == c

    def add_check(a: Any, b: Any, c: Any) -> bool:
        return _ints(a, b, c) and a + b == c

    def lower_of(s: Any) -> str | None:
        return s.lower() if isinstance(s, str) else None

    return [
        define(
            "concat",
            "A: str, B: str, C: str",
            "C is A followed by B; any one of the three may be computed from the other two",
            {
                "bbf": _one(lambda a, b: a + b if _strs(a, b) else None),
                "bbb": concat_check,
                "fbb": _one(_concat_prefix),
                "bfb": _one(_concat_suffix),
            },
        ),
        define(
            "startswith",
            "S: str, Prefix: str",
            "S begins with Prefix",
            {"bb": lambda s, p: _strs(s, p) and s.startswith(p)},
        ),
        define(
            "endswith",
            "S: str, Suffix: str",
            "S ends with Suffix",
            {"bb": lambda s, p: _strs(s, p) and s.endswith(p)},
        ),
        define(
            "contains",
            "S: str, Part: str",
            "Part occurs in S",
            {"bb": lambda s, p: _strs(s, p) and p in s},
        ),
        define(
            "lower",
            "S: str, Lower: str",
            "Lower is S in lower case",
            {"bf": _one(lower_of), "bb": lambda s, low: lower_of(s) == low},
        ),
        define(
            "split",
            "S: str, Separator: str, Part: str",
            "Part is one of the pieces of S cut at Separator",
            {"bbf": _split, "bbb": lambda s, sep, part: (part,) in _split(s, sep)},
        ),
        define(
            "string",
            "X: any, S: str",
            "S is X written as text (integers in decimal, booleans as true/false)",
            {"bf": _one(_string), "bb": lambda x, s: _string(x) == s},
        ),
        define(
            "add",
            "A: int, B: int, C: int",
            "A + B = C; any one of the three may be computed from the other two",
            {
                "bbf": _one(lambda a, b: a + b if _ints(a, b) else None),
                "bfb": _one(lambda a, c: c - a if _ints(a, c) else None),
                "fbb": _one(lambda b, c: c - b if _ints(b, c) else None),
                "bbb": add_check,
            },
        ),
        define(
            "path_matches",
            "Pattern: str, Path: str",
            "Path matches an Istio path pattern: exact, prefix `x*`, suffix `*x`, or `*`",
            {"bb": path_matches},
        ),
        define(
            "path_within",
            "Inner: str, Outer: str",
            "every path the Inner pattern matches, the Outer pattern matches too",
            {"bb": path_within},
        ),
        define(
            "paths_overlap",
            "A: str, B: str",
            "some path matches both patterns",
            {"bb": paths_overlap},
        ),
        define(
            "host_matches",
            "Pattern: str, Host: str",
            "Host matches an Istio host pattern: exact, `*.suffix`, or `*`",
            {"bb": host_matches},
        ),
        define(
            "regex_matches",
            "Pattern: str, S: str",
            "the whole of S matches the regular expression Pattern",
            {"bb": _regex_matches},
        ),
        define(
            "labels_match",
            "Selector: any, Labels: any",
            "a label map or LabelSelector selects a label map (an empty selector selects all)",
            {"bb": labels_match},
        ),
        define(
            "labels_within",
            "Inner: any, Outer: any",
            "every label map Inner selects, Outer selects too",
            {"bb": labels_within},
        ),
        define(
            "selector_matches",
            "Selector: any, Cluster: str, Namespace: str, Labels: any",
            "a meshrules selector `{clusters, namespaces, labels}` selects an object; omitted or empty fields"
            " match anything",
            {"bbbb": selector_matches},
        ),
        define(
            "selector_within",
            "Inner: any, Outer: any",
            "every object the meshrules selector Inner selects, Outer selects too",
            {"bb": selector_within},
        ),
        define(
            "ref_matches",
            "Ref: any, Cluster: str, Namespace: str, Name: str",
            "an ObjectRef or ClusterObjectRef used as a selector names an object; omitted fields match anything",
            {"bbbb": ref_matches},
        ),
        define(
            "get",
            "Map: any, Key: str, Value: any",
            "Value is the entry Key of a mapping; with Key unbound, every entry",
            {
                "bbf": _one(_get_value),
                "bbb": lambda m, k, v: _get_value(m, k) == v and _get_value(m, k) is not None,
                "bff": _get_items,
            },
        ),
        define(
            "member",
            "X: any, Collection: any",
            "X is an element of a list or set (a key of a mapping); with X unbound, every element",
            {"fb": _members, "bb": _member},
        ),
        define(
            "subset",
            "A: any, B: any",
            "every element of A is in B",
            {"bb": _subset},
        ),
        define(
            "size",
            "X: any, N: int",
            "N is the number of elements of a collection or characters of a string",
            {"bf": _one(_size), "bb": lambda x, n: _size(x) == n},
        ),
        define(
            "union",
            "A: any, B: any, C: any",
            "C is the set of elements in A or B",
            {"bbf": _one(_set_op(frozenset.union))},
        ),
        define(
            "intersection",
            "A: any, B: any, C: any",
            "C is the set of elements in both A and B",
            {"bbf": _one(_set_op(frozenset.intersection))},
        ),
        define(
            "difference",
            "A: any, B: any, C: any",
            "C is the set of elements of A not in B",
            {"bbf": _one(_set_op(frozenset.difference))},
        ),
        define(
            "field",
            "Object: any, Path: str, Value: any",
            "Value is at the dotted Path of an object (or of the object an entity id names)",
            {
                "bbf": _one(field_value),
                "bbb": lambda objects, o, p, v: (found := field_value(objects, o, p)) is not None and found == v,
            },
            uses_objects=True,
        ),
        define(
            "duration_ms",
            "Duration: str, Ms: int",
            "Ms is the Istio duration (`250ms`, `10s`, `1m`) in whole milliseconds",
            {"bf": _one(duration_ms), "bb": lambda d, ms: duration_ms(d) == ms},
        ),
    ]


def _ints(*values: Any) -> bool:
    return all(isinstance(v, int) and not isinstance(v, bool) for v in values)


def standard_builtins() -> BuiltinRegistry:
    """A fresh registry with the standard built-ins; extend it freely."""
    registry = BuiltinRegistry()
    for builtin in _standard():
        registry.register(builtin)
    return registry


__all__ = ["Builtin", "BuiltinRegistry", "FrozenMap", "define", "standard_builtins"]
