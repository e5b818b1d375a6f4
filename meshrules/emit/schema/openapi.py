"""Validation of one object against a CRD's structural OpenAPI v3 schema, as the API server does it.

Place: the middle of ``meshrules.emit.schema``. ``crd.py`` picks the schema for an object's
apiVersion and kind and calls :func:`validate_object`; this module walks the object once, and
hands every ``x-kubernetes-validations`` rule it meets to ``cel.py`` with the value the rule sees.

What the API server does on create, and so what this module does, in order:

1. defaults are filled in (``default:``), so rules and ``required`` see them;
2. the object is checked against the schema (types, ``required``, ``enum``, formats Kubernetes
   enforces, bounds, lengths, ``pattern``, ``oneOf``/``anyOf``/``allOf``/``not``, list-type set and
   map uniqueness, ``maxProperties``...), and ``metadata`` against ObjectMeta's own rules;
3. CEL rules run where their field is present, unless step 2 found a type or enum error (the API
   server then skips them, since rules are typed by the schema).

Fields the schema does not declare are pruned by the API server, not refused; an emitter that
writes one has a bug all the same, so they are reported in their own category,
:attr:`Category.PRUNED`. Messages are the API server's own words (``spec.hosts: Required value``),
so an error can be matched with what ``kubectl apply`` would print.
"""

from __future__ import annotations

import base64
import datetime as _dt
import ipaddress
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any

import re2 as _re2  # type: ignore[import-untyped]

from meshrules.emit.schema import cel, library, names

__all__ = ["Category", "Node", "SchemaViolation", "compile_schema", "validate_object"]


class Category(StrEnum):
    """What kind of rule an object breaks."""

    SCHEMA = "schema"  # the OpenAPI schema or ObjectMeta: the API server refuses the object
    CEL = "cel"  # an x-kubernetes-validations rule: the API server refuses the object
    PRUNED = "pruned"  # an undeclared field: the API server silently drops it
    UNKNOWN_KIND = "unknown-kind"  # no CRD serves this apiVersion and kind


@dataclass(frozen=True, slots=True, order=True)
class SchemaViolation:
    """One way an object breaks its CRD: where, the API server's message, and which category.

    ``path`` is a Kubernetes field path (``spec.http[0].route[1].weight``; map keys in brackets);
    ``rule`` is the CEL source for :attr:`Category.CEL`.
    """

    path: str
    message: str
    category: Category = Category.SCHEMA
    rule: str = ""

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


# --------------------------------------------------------------------------------------------
# Formats Kubernetes enforces (apiextensions-apiserver strips every other one)
# --------------------------------------------------------------------------------------------

_STRFMT_DURATION = re.compile(r"(\d+)\s*([A-Za-zµ]+)")
_STRFMT_UNITS = (
    (("ns", "nanoseconds"), 1),
    (("us", "µs", "microseconds"), 10**3),
    (("ms", "milliseconds"), 10**6),
    (("s", "seconds"), 10**9),
    (("m", "minutes"), 60 * 10**9),
    (("h", "hours"), 3600 * 10**9),
    (("d", "days"), 86400 * 10**9),
    (("w", "weeks"), 7 * 86400 * 10**9),
)


def strfmt_duration_ns(text: str) -> int | None:
    """Nanoseconds of a go-openapi ``duration`` (Go's syntax, or ``3 days``-style), or ``None``."""
    ns = library.go_duration_ns(text)
    if ns is not None:
        return ns
    total, ok = 0, False
    for factor, unit in _STRFMT_DURATION.findall(text):
        unit = unit.lower()
        for variants, mult in _STRFMT_UNITS:
            last = len(variants) - 1
            if any(unit == v.lower() or (k == last and unit.startswith(v)) for k, v in enumerate(variants)):
                ok = True
                total += int(factor) * mult
    return total if ok else None


_UUID = re.compile(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}")
_MAC = re.compile(r"(?:[0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}")
_HOSTNAME = re.compile(
    r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*\.?"
)
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")


def _is_ipv4(s: str) -> bool:
    try:
        ipaddress.IPv4Address(s)
    except ValueError:
        return False
    return True


def _is_ipv6(s: str) -> bool:
    if "%" in s or ":" not in s:
        return False
    try:
        ipaddress.IPv6Address(s)
    except ValueError:
        return False
    return True


def _is_cidr(s: str) -> bool:
    try:
        ipaddress.ip_network(s, strict=False)
    except ValueError:
        return False
    return "/" in s


def _is_uri(s: str) -> bool:
    return not library.uri_errors(s)


_FORMAT_CHECKS: dict[str, Callable[[str], bool]] = {
    "date-time": lambda s: library.parse_date_time(s) is not None,
    "datetime": lambda s: library.parse_date_time(s) is not None,
    "date": library.is_date,
    "duration": lambda s: strfmt_duration_ns(s) is not None,
    "byte": library.is_base64,
    "ipv4": _is_ipv4,
    "ipv6": _is_ipv6,
    "cidr": _is_cidr,
    "uuid": lambda s: _UUID.fullmatch(s) is not None,
    "uuid3": lambda s: _UUID.fullmatch(s) is not None,
    "uuid4": lambda s: _UUID.fullmatch(s) is not None,
    "uuid5": lambda s: _UUID.fullmatch(s) is not None,
    "mac": lambda s: _MAC.fullmatch(s) is not None,
    "hostname": lambda s: len(s) <= 255 and _HOSTNAME.fullmatch(s) is not None,
    "email": lambda s: _EMAIL.fullmatch(s) is not None,
    "uri": _is_uri,
}


@lru_cache(maxsize=2048)
def _pattern(source: str) -> Any:
    # Go's regexp is RE2; Python's `re` differs (`$` before a final newline, Unicode `\d`).
    return _re2.compile(source)


# --------------------------------------------------------------------------------------------
# Compiled schema
# --------------------------------------------------------------------------------------------

_JSON_TYPE_OK: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, (list, tuple)),
    "string": lambda v: isinstance(v, str),
    # JSON has one number type: 3.0 is an integer to go-openapi.
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer()),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
}


def _json_type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, (list, tuple)):
        return "array"
    if isinstance(v, dict):
        return "object"
    return type(v).__name__


def _dumps(v: Any) -> str:
    try:
        return json.dumps(v, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)
    except (TypeError, ValueError):  # keys of mixed types cannot be sorted; a cycle cannot be dumped
        return repr(v)


def _enum_key(v: Any) -> Any:
    # JSON equality: true is not 1, 1 is 1.0, containers compare by content.
    if isinstance(v, bool):
        return ("b", v)
    if isinstance(v, (int, float)):
        return ("n", v)
    if isinstance(v, str):
        return ("s", v)
    return ("j", _dumps(v))


def _show(v: Any) -> str:
    """A value as Kubernetes quotes it in a message: strings quoted, numbers bare."""
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    text = _dumps(v)
    return text if len(text) <= 200 else text[:197] + "..."


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e15 else repr(v)


class Node:
    """One schema node, with everything the walk needs precomputed.

    Built once per CRD version by :func:`compile_schema` and then only read.
    """

    __slots__ = (
        "additional",
        "additional_any",
        "all_of",
        "any_of",
        "checks_number",
        "checks_string",
        "defaults",
        "enum",
        "enum_shown",
        "escaped",
        "format",
        "format_check",
        "has_rules",
        "int_or_string",
        "items",
        "list_type",
        "map_keys",
        "max_items",
        "max_length",
        "max_props",
        "maximum",
        "maximum_exclusive",
        "min_items",
        "min_length",
        "min_props",
        "minimum",
        "minimum_exclusive",
        "multiple_of",
        "not_",
        "nullable",
        "one_of",
        "pattern",
        "pattern_source",
        "preserve_unknown",
        "properties",
        "required",
        "rules",
        "type",
        "view_kind",
    )

    def __init__(self, schema: Mapping[str, Any]) -> None:
        t = schema.get("type")
        self.type: str | None = t if t in _JSON_TYPE_OK else None
        self.nullable = bool(schema.get("nullable", False))
        self.int_or_string = bool(schema.get("x-kubernetes-int-or-string", False))
        self.preserve_unknown = bool(schema.get("x-kubernetes-preserve-unknown-fields", False))
        props = schema.get("properties")
        self.properties: dict[str, Node] | None = (
            {k: Node(v) for k, v in props.items()} if isinstance(props, Mapping) else None
        )
        self.escaped: dict[str, str | None] = {k: cel.escape_property(k) for k in (self.properties or {})}
        addl = schema.get("additionalProperties")
        self.additional: Node | None = Node(addl) if isinstance(addl, Mapping) else None
        self.additional_any = addl is True
        self.required: tuple[str, ...] = tuple(schema.get("required") or ())
        self.defaults: tuple[tuple[str, Any], ...] = tuple(
            (k, n_schema["default"])
            for k, n_schema in (props or {}).items()
            if isinstance(n_schema, Mapping) and "default" in n_schema
        )
        items = schema.get("items")
        self.items: Node | None = Node(items) if isinstance(items, Mapping) else None
        enum = schema.get("enum")
        self.enum: frozenset[Any] | None = frozenset(_enum_key(e) for e in enum) if enum is not None else None
        self.enum_shown = ", ".join(_show(e) for e in enum) if enum is not None else ""
        fmt = schema.get("format")
        self.format: str | None = fmt if isinstance(fmt, str) and fmt in _FORMAT_CHECKS else None
        self.format_check = _FORMAT_CHECKS.get(self.format) if self.format else None
        self.pattern_source: str | None = schema.get("pattern")
        self.pattern = _pattern(self.pattern_source) if self.pattern_source is not None else None
        self.min_length: int | None = schema.get("minLength")
        self.max_length: int | None = schema.get("maxLength")
        self.minimum: float | None = schema.get("minimum")
        self.maximum: float | None = schema.get("maximum")
        self.minimum_exclusive = bool(schema.get("exclusiveMinimum", False))
        self.maximum_exclusive = bool(schema.get("exclusiveMaximum", False))
        self.multiple_of: float | None = schema.get("multipleOf")
        self.min_items: int | None = schema.get("minItems")
        self.max_items: int | None = schema.get("maxItems")
        self.min_props: int | None = schema.get("minProperties")
        self.max_props: int | None = schema.get("maxProperties")
        self.list_type: str | None = schema.get("x-kubernetes-list-type")
        self.map_keys: tuple[str, ...] = tuple(schema.get("x-kubernetes-list-map-keys") or ())
        self.all_of = tuple(Node(s) for s in schema.get("allOf") or ())
        self.any_of = tuple(Node(s) for s in schema.get("anyOf") or ())
        self.one_of = tuple(Node(s) for s in schema.get("oneOf") or ())
        not_ = schema.get("not")
        self.not_: Node | None = Node(not_) if isinstance(not_, Mapping) else None
        self.rules = tuple(cel.compile_rule(r) for r in schema.get("x-kubernetes-validations") or ())
        self.has_rules = bool(self.rules)
        self.checks_string = any(
            x is not None for x in (self.min_length, self.max_length, self.pattern, self.format_check)
        )
        self.checks_number = any(x is not None for x in (self.minimum, self.maximum, self.multiple_of))
        # How a string of this node looks to CEL (k8s.io/apiserver/pkg/cel/common/values.go).
        self.view_kind = {"date-time": "timestamp", "date": "timestamp", "duration": "duration", "byte": "bytes"}.get(
            fmt if isinstance(fmt, str) else "", ""
        )

    def default_for(self, name: str) -> Any:
        """The default of property ``name``, or ``None``."""
        return next((d for k, d in self.defaults if k == name), None)


def compile_schema(schema: Mapping[str, Any]) -> Node:
    """Compile an ``openAPIV3Schema`` (and its CEL rules) once, for any number of validations.

    Raises :class:`~meshrules.emit.schema.cel.CelCompileError` when a rule does not compile.
    """
    return Node(schema)


# --------------------------------------------------------------------------------------------
# The walk
# --------------------------------------------------------------------------------------------

_OBJECT_META_FIELDS = frozenset(
    {
        "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
        "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels",
        "annotations", "ownerReferences", "finalizers", "managedFields",
    }
)  # fmt: skip
_REASONS = {
    "FieldValueForbidden": "Forbidden",
    "FieldValueRequired": "Required value",
    "FieldValueDuplicate": "Duplicate value",
}
_BLOCKED = (
    "some validation rules were not checked because the object was invalid; "
    "correct the existing errors to complete validation"
)
_FIELD_PATH_KEY = re.compile(r"\['((?:[^'\\]|\\.)*)'\]")


def _child(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


class _Run:
    """State of one validation: what was found, and the rules to run once the walk is done."""

    __slots__ = ("blocked", "non_ascii", "pending", "violations")

    def __init__(self) -> None:
        self.violations: list[SchemaViolation] = []
        self.pending: list[tuple[Node, str, Any]] = []
        self.blocked = False
        self.non_ascii = False

    def add(self, path: str, message: str, category: Category = Category.SCHEMA, rule: str = "") -> None:
        self.violations.append(SchemaViolation(path, message, category, rule))

    def invalid(self, path: str, value: Any, detail: str) -> None:
        self.add(path, f"Invalid value: {_show(value)}: {path or '<root>'} in body {detail}")

    def type_error(self, path: str, want: str, value: Any) -> None:
        got = _json_type(value)
        self.add(path, f'Invalid value: "{got}": {path or "<root>"} in body must be of type {want}: "{got}"')
        # The API server runs no CEL rule on an object with a type error: rules are typed.
        self.blocked = True


def _walk(node: Node, value: Any, path: str, run: _Run, view: bool) -> Any:
    """Validate ``value`` at ``path``; return its CEL view when ``view`` (else ``None``)."""
    if value is None:
        # Rules never see null: the API server validates only non-null values.
        if not node.nullable and (node.type is not None or node.int_or_string):
            run.type_error(path, node.type or "integer or string", value)
        return None
    t = node.type
    if t is not None:
        if not _JSON_TYPE_OK[t](value):
            run.type_error(path, t, value)
            return None
    elif node.int_or_string and not (isinstance(value, (int, str)) and not isinstance(value, bool)):
        run.type_error(path, "integer or string", value)
        return None
    want = view or node.has_rules
    out: Any = None
    if isinstance(value, dict):
        out = _walk_object(node, value, path, run, want)
    elif isinstance(value, (list, tuple)):
        out = _walk_array(node, value, path, run, want)
    elif isinstance(value, str):
        if not value.isascii():
            run.non_ascii = True
        if node.checks_string:
            _check_string(node, value, path, run)
        out = _string_view(node, value) if want and node.view_kind else value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if node.checks_number:
            _check_number(node, value, path, run)
        # CEL types numbers by the schema: `number` is a double, `integer` an int.
        out = float(value) if t == "number" else (int(value) if t == "integer" else value)
    else:
        out = value
    if node.enum is not None and _enum_key(value) not in node.enum:
        run.add(path, f"Unsupported value: {_show(value)}: supported values: {node.enum_shown}")
        run.blocked = True
    if node.all_of or node.any_of or node.one_of or node.not_ is not None:
        _check_junctors(node, value, path, run)
    if node.has_rules:
        run.pending.append((node, path, out))
    return out


def _string_view(node: Node, value: str) -> Any:
    if node.view_kind == "timestamp":
        return library.parse_date_time(value) or _date_view(value)
    if node.view_kind == "duration":
        ns = strfmt_duration_ns(value)
        return value if ns is None else _dt.timedelta(microseconds=ns / 1000)
    if node.view_kind == "bytes":
        try:
            return base64.b64decode(value, validate=True)
        except ValueError:
            return value
    return value


def _date_view(value: str) -> Any:
    if library.is_date(value):
        y, m, d = (int(x) for x in value.split("-"))
        return _dt.datetime(y, m, d, tzinfo=_dt.UTC)
    return value


def _walk_object(node: Node, value: dict[str, Any], path: str, run: _Run, view: bool) -> Any:
    props = node.properties
    effective = value
    if node.defaults:
        # A default fills an absent field, and a null one unless null is allowed there.
        missing = [
            (k, d)
            for k, d in node.defaults
            if k not in value or (value[k] is None and not (props and props[k].nullable))
        ]
        if missing:
            effective = {**value, **dict(missing)}
    out: dict[str, Any] | None = {} if view else None
    for key, child_value in effective.items():
        child = props.get(key) if props is not None else None
        if child is not None:
            cv = _walk(child, child_value, _child(path, key), run, view)
            if out is not None:
                name = node.escaped[key]
                if name is not None:
                    out[name] = cv
        elif node.additional is not None:
            cv = _walk(node.additional, child_value, f"{path}[{key}]", run, view)
            if out is not None:
                out[key if isinstance(key, str) else str(key)] = cv
        elif node.additional_any or node.preserve_unknown:
            if out is not None and props is None:
                out[key] = child_value  # free-form: CEL sees it as it is
        else:
            run.add(_child(path, key), f'unknown field "{_child(path, key)}"', Category.PRUNED)
    for name in node.required:
        if name not in effective:
            run.add(_child(path, name), "Required value")
    n = len(effective)
    if node.max_props is not None and n > node.max_props:
        run.add(path, f"Too many: {n}: must have at most {node.max_props} items")
    if node.min_props is not None and n < node.min_props:
        run.invalid(path, value, f"should have at least {node.min_props} properties")
    return out


def _walk_array(node: Node, value: list[Any] | tuple[Any, ...], path: str, run: _Run, view: bool) -> Any:
    out: list[Any] | None = [] if view else None
    items = node.items
    for i, item in enumerate(value):
        cv = _walk(items, item, f"{path}[{i}]", run, view) if items is not None else item
        if out is not None:
            out.append(cv)
    n = len(value)
    if node.max_items is not None and n > node.max_items:
        run.add(path, f"Too many: {n}: must have at most {node.max_items} items")
    if node.min_items is not None and n < node.min_items:
        run.invalid(path, value, f"should have at least {node.min_items} items")
    if node.list_type == "set":
        seen: set[Any] = set()
        for i, item in enumerate(value):
            key = _enum_key(item)
            if key in seen:
                run.add(f"{path}[{i}]", f"Duplicate value: {_show(item)}")
            seen.add(key)
    elif node.list_type == "map" and node.map_keys:
        seen_keys: set[tuple[Any, ...]] = set()
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                continue
            entry = tuple(
                _enum_key(item[k] if k in item else (items.default_for(k) if items is not None else None))
                for k in node.map_keys
            )
            if entry in seen_keys:
                shown = {k: item.get(k) for k in node.map_keys}
                run.add(f"{path}[{i}]", f"Duplicate value: {_show(shown)}")
            seen_keys.add(entry)
    return out


def _check_string(node: Node, value: str, path: str, run: _Run) -> None:
    n = len(value)  # code points, as Go's utf8.RuneCountInString
    if node.min_length is not None and n < node.min_length:
        run.invalid(path, value, f"should be at least {node.min_length} chars long")
    if node.max_length is not None and n > node.max_length:
        run.add(path, f"Too long: may not be longer than {node.max_length}")
    if node.pattern is not None and node.pattern.search(value) is None:
        run.invalid(path, value, f"should match '{node.pattern_source}'")
    if node.format_check is not None and not node.format_check(value):
        run.invalid(path, value, f"must be of type {node.format}: {_show(value)}")


def _check_number(node: Node, value: float, path: str, run: _Run) -> None:
    if node.minimum is not None:
        if node.minimum_exclusive and value <= node.minimum:
            run.invalid(path, value, f"should be greater than {_num(node.minimum)}")
        elif value < node.minimum:
            run.invalid(path, value, f"should be greater than or equal to {_num(node.minimum)}")
    if node.maximum is not None:
        if node.maximum_exclusive and value >= node.maximum:
            run.invalid(path, value, f"should be less than {_num(node.maximum)}")
        elif value > node.maximum:
            run.invalid(path, value, f"should be less than or equal to {_num(node.maximum)}")
    if node.multiple_of is not None and node.multiple_of:
        q = value / node.multiple_of
        if not math.isclose(q, round(q), rel_tol=0, abs_tol=1e-9):
            run.invalid(path, value, f"should be a multiple of {_num(node.multiple_of)}")


def _conforms(node: Node, value: Any) -> bool:
    """Whether ``value`` meets ``node``'s value validations (for oneOf/anyOf/allOf/not branches)."""
    if value is None:
        return node.nullable or (node.type is None and not node.int_or_string)
    if node.type is not None and not _JSON_TYPE_OK[node.type](value):
        return False
    if node.enum is not None and _enum_key(value) not in node.enum:
        return False
    if isinstance(value, str):
        n = len(value)
        if (node.min_length is not None and n < node.min_length) or (
            node.max_length is not None and n > node.max_length
        ):
            return False
        if node.pattern is not None and node.pattern.search(value) is None:
            return False
        if node.format_check is not None and not node.format_check(value):
            return False
    elif isinstance(value, (int, float)) and not isinstance(value, bool) and node.checks_number:
        probe = _Run()
        _check_number(node, value, "", probe)
        if probe.violations:
            return False
    elif isinstance(value, dict):
        if any(r not in value for r in node.required):
            return False
        if (node.max_props is not None and len(value) > node.max_props) or (
            node.min_props is not None and len(value) < node.min_props
        ):
            return False
        for k, v in value.items():
            child = node.properties.get(k) if node.properties else None
            sub = child if child is not None else node.additional
            if sub is not None and not _conforms(sub, v):
                return False
    elif isinstance(value, (list, tuple)):
        if (node.max_items is not None and len(value) > node.max_items) or (
            node.min_items is not None and len(value) < node.min_items
        ):
            return False
        if node.items is not None and not all(_conforms(node.items, v) for v in value):
            return False
    if node.all_of and not all(_conforms(s, value) for s in node.all_of):
        return False
    if node.any_of and not any(_conforms(s, value) for s in node.any_of):
        return False
    if node.one_of and sum(1 for s in node.one_of if _conforms(s, value)) != 1:
        return False
    return not (node.not_ is not None and _conforms(node.not_, value))


def _exclusive_fields(node: Node) -> list[str]:
    # Istio writes "at most one of a, b" as oneOf [not anyOf [required a, required b], required a, ...].
    return [f for s in node.one_of if len(s.required) == 1 and not s.properties for f in s.required]


def _check_junctors(node: Node, value: Any, path: str, run: _Run) -> None:
    if node.one_of:
        matched = sum(1 for s in node.one_of if _conforms(s, value))
        if matched != 1:
            fields = _exclusive_fields(node)
            hint = f" (at most one of {', '.join(fields)} may be set)" if fields and matched > 1 else ""
            run.invalid(path, value, f"must validate one and only one schema (oneOf){hint}")
    if node.any_of and not any(_conforms(s, value) for s in node.any_of):
        run.invalid(path, value, "must validate at least one schema (anyOf)")
    if node.all_of and not all(_conforms(s, value) for s in node.all_of):
        run.invalid(path, value, "must validate all the schemas (allOf)")
    if node.not_ is not None and _conforms(node.not_, value):
        run.invalid(path, value, "must not validate the schema (not)")


# --------------------------------------------------------------------------------------------
# ObjectMeta: validated by the API server itself, not by the CRD's schema
# --------------------------------------------------------------------------------------------


def _walk_metadata(meta: Any, schema: Node | None, namespaced: bool, run: _Run) -> dict[str, Any]:
    if meta is None:
        run.add("metadata.name", "Required value: name or generateName is required")
        return {}
    if not isinstance(meta, dict):
        run.type_error("metadata", "object", meta)
        return {}
    view: dict[str, Any] = {}
    for key in meta:
        if key not in _OBJECT_META_FIELDS:
            run.add(f"metadata.{key}", f'unknown field "metadata.{key}"', Category.PRUNED)
    name, generate = meta.get("name"), meta.get("generateName")
    for field, text, check in (
        ("name", name, names.dns1123_subdomain),
        ("generateName", generate, names.dns1123_subdomain_prefix),
    ):
        if text is None:
            continue
        if not isinstance(text, str):
            run.type_error(f"metadata.{field}", "string", text)
            continue
        view[field] = text
        if text:
            for msg in check(text):
                run.add(f"metadata.{field}", f"Invalid value: {_show(text)}: {msg}")
        # A CRD may constrain metadata.name further (and nothing else of metadata).
        sub = schema.properties.get(field) if schema is not None and schema.properties else None
        if sub is not None:
            _walk(sub, text, f"metadata.{field}", run, False)
    if not name and not generate:
        run.add("metadata.name", "Required value: name or generateName is required")
    ns = meta.get("namespace")
    if ns not in (None, ""):
        if not namespaced:
            run.add("metadata.namespace", "Forbidden: not allowed on this type")
        elif not isinstance(ns, str):
            run.type_error("metadata.namespace", "string", ns)
        else:
            for msg in names.dns1123_label(ns):
                run.add("metadata.namespace", f"Invalid value: {_show(ns)}: {msg}")
    _check_string_map(meta.get("labels"), "metadata.labels", run, labels=True)
    _check_string_map(meta.get("annotations"), "metadata.annotations", run, labels=False)
    return view


def _check_string_map(m: Any, path: str, run: _Run, labels: bool) -> None:
    if m is None:
        return
    if not isinstance(m, dict):
        run.type_error(path, "object", m)
        return
    size = 0
    for key, v in m.items():
        k = str(key)  # YAML may give `80:` as an int; the API server only ever sees JSON strings
        if not isinstance(v, str):
            run.type_error(f"{path}[{k}]", "string", v)
            continue
        # Annotation keys are checked in lower case (ValidateAnnotations).
        for msg in names.qualified_name(k if labels else k.lower()):
            run.add(path, f"Invalid value: {_show(k)}: {msg}")
        if labels:
            for msg in names.label_value(v):
                run.add(f"{path}[{k}]", f"Invalid value: {_show(v)}: {msg}")
        size += len(k.encode()) + len(v.encode())
    if not labels and size > names.ANNOTATIONS_MAX_BYTES:
        run.add(path, f"Too long: must have at most {names.ANNOTATIONS_MAX_BYTES} bytes")


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def _with_field_path(path: str, field_path: str) -> str:
    rel = _FIELD_PATH_KEY.sub(lambda m: f"[{m.group(1)}]", field_path)
    if not rel:
        return path
    return f"{path}{rel}" if path else rel.lstrip(".")


def _run_rules(run: _Run) -> None:
    for node, path, value in run.pending:
        for rule, detail in cel.evaluate_all(node.rules, value, non_ascii=run.non_ascii):
            where = _with_field_path(path, rule.field_path)
            reason = _REASONS.get(rule.reason)
            if reason is not None:
                message = f"{reason}: {detail}"
            else:
                message = f'Invalid value: "{node.type or _json_type(value)}": {detail}'
            run.add(where, message, Category.CEL, rule.rule)


def validate_object(
    root: Node, obj: Mapping[str, Any], *, namespaced: bool = True, status_subresource: bool = False
) -> list[SchemaViolation]:
    """Every violation of ``obj`` against the compiled schema ``root``, sorted by path.

    ``namespaced`` is the CRD's scope (a cluster-scoped object may not name a namespace);
    ``status_subresource`` says the API server drops ``status`` on create, so writing one is
    reported as :attr:`Category.PRUNED`.
    """
    run = _Run()
    want_view = root.has_rules
    view: dict[str, Any] = {}
    props = root.properties or {}
    for key, value in obj.items():
        if key == "metadata":
            view["metadata"] = _walk_metadata(value, props.get("metadata"), namespaced, run)
        elif key in ("apiVersion", "kind"):
            if not isinstance(value, str):
                run.type_error(key, "string", value)
            view[key] = value
        elif key == "status" and status_subresource:
            run.add("status", "status is dropped on create: the status subresource owns it", Category.PRUNED)
        elif key in props:
            cv = _walk(props[key], value, key, run, want_view)
            name = root.escaped.get(key)
            if name is not None:
                view[name] = cv
        elif root.preserve_unknown:
            view[key] = value
        else:
            run.add(key, f'unknown field "{key}"', Category.PRUNED)
    if "metadata" not in obj:
        run.add("metadata.name", "Required value: name or generateName is required")
    for key, default in root.defaults:
        if key not in obj and key in props:
            view[root.escaped.get(key) or key] = _walk(props[key], default, key, run, want_view)
    for name in root.required:
        if name not in obj and root.default_for(name) is None:
            run.add(name, "Required value")
    if root.has_rules:
        run.pending.append((root, "", view))
    if run.pending:
        if run.blocked:
            run.add("", f'Invalid value: "object": {_BLOCKED}', Category.CEL)
        else:
            _run_rules(run)
    return sorted(run.violations)
