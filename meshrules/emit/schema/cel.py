"""CEL evaluation of ``x-kubernetes-validations`` rules, with the Kubernetes extension library.

Place: below ``openapi.py``, above ``library.py``. ``openapi.py`` walks an object against its
schema, builds the value each rule sees as ``self`` (property names escaped as the API server
does, see :func:`escape_property`) and calls :func:`evaluate_all` here. This module knows CEL,
not schemas.

The CEL engine is ``common-expression-language`` (the Rust ``cel`` interpreter with Python
bindings): compiling and running a rule costs microseconds, where a pure-Python interpreter costs
milliseconds for the list-uniqueness rules Gateway API uses on every route. What the API server
adds to CEL (cel-go's string extensions and ``k8s.io/apiserver/pkg/cel/library``: lists, regex,
URLs, IPs, CIDRs, quantities, formats) is registered from ``library.py`` as Python functions.

Three built-ins of the Rust engine differ from cel-go, so rule sources are rewritten before
compiling (:func:`rewrite`), never at run time:

* ``matches`` recompiles its regex on every call (about 12 µs); it becomes ``_k8s_matches``, which
  caches RE2 programs (RE2 is what Go's ``regexp`` implements, so patterns mean the same).
* ``duration(x)`` accepts strings Go's ``time.ParseDuration`` refuses (``"1h 2m"``, ``"1e3s"``); a
  non-literal argument is first checked by ``_k8s_duration``.
* ``size`` counts UTF-8 bytes of a string, cel-go counts code points; a second program with
  ``_k8s_size`` runs when the value holds a non-ASCII string (rare, so the fast one runs otherwise).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import cel as _cel

from meshrules.emit.schema import library

__all__ = [
    "CelCompileError",
    "CompiledRule",
    "compile_rule",
    "escape_property",
    "evaluate",
    "evaluate_all",
    "rewrite",
]


class CelCompileError(ValueError):
    """A rule of a CRD does not compile; the CRD itself is broken or uses an unsupported feature."""


# --------------------------------------------------------------------------------------------
# Property-name escaping (k8s.io/apiserver/pkg/cel/escaping.go)
# --------------------------------------------------------------------------------------------

_CEL_RESERVED = frozenset(
    {
        "true", "false", "null", "in", "as", "break", "const", "continue", "else", "for",
        "function", "if", "import", "let", "loop", "package", "namespace", "return", "var",
        "void", "while",
    }
)  # fmt: skip
_ESCAPABLE = re.compile(r"[a-zA-Z_.\-/][a-zA-Z0-9_.\-/]*")


@lru_cache(maxsize=4096)
def escape_property(name: str) -> str | None:
    """The name by which CEL sees an object property, or ``None`` when CEL cannot see it.

    Reserved words become ``__word__``; ``__``, ``.``, ``-`` and ``/`` are spelled out; names with
    other characters are not accessible. ``namespace`` is why Gateway API rules say
    ``p1.__namespace__``.
    """
    if name in _CEL_RESERVED:
        return f"__{name}__"
    if not _ESCAPABLE.fullmatch(name):
        return None
    return (
        name.replace("__", "__underscores__").replace(".", "__dot__").replace("-", "__dash__").replace("/", "__slash__")
    )


# --------------------------------------------------------------------------------------------
# Source rewriting (see the module docstring for why)
# --------------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<str>(?:[rR][bB]?|[bB][rR]?)?
        (?:\"\"\"(?:\\.|[^\\])*?\"\"\"|'''(?:\\.|[^\\])*?'''|"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'))
    |(?P<id>[A-Za-z_][A-Za-z0-9_]*)
    |(?P<ws>\s+)
    |(?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)


def rewrite(source: str, *, exact_size: bool = False) -> str:
    """Rewrite a rule so the Rust engine means what cel-go means (see the module docstring).

    String literals are left alone: only identifiers followed by ``(`` change.
    """
    toks: list[tuple[str, str]] = [(m.lastgroup or "other", m.group()) for m in _TOKEN.finditer(source)]
    out: list[str] = []
    depth = 0
    # Depths at which a `duration(` was wrapped and so needs one more `)`.
    wrapped: list[int] = []
    n = len(toks)

    def next_sig(i: int) -> int:
        j = i + 1
        while j < n and toks[j][0] == "ws":
            j += 1
        return j

    def prev_sig(i: int) -> str:
        j = i - 1
        while j >= 0 and toks[j][0] == "ws":
            j -= 1
        return toks[j][1] if j >= 0 else ""

    i = 0
    while i < n:
        kind, text = toks[i]
        if kind == "id":
            j = next_sig(i)
            if j < n and toks[j][1] == "(":
                if text == "matches":
                    text = "_k8s_matches"
                elif text == "size" and exact_size:
                    text = "_k8s_size"
                elif text == "duration" and prev_sig(i) != ".":
                    k = next_sig(j)
                    literal = k < n and toks[k][0] == "str" and next_sig(k) < n and toks[next_sig(k)][1] == ")"
                    if not literal:
                        out.append("duration(_k8s_duration")
                        i += 1
                        wrapped.append(depth)
                        continue
        elif text == "(":
            depth += 1
        elif text == ")":
            depth -= 1
            if wrapped and wrapped[-1] == depth:
                wrapped.pop()
                out.append(")")
        out.append(text)
        i += 1
    return "".join(out)


def _new_context() -> _cel.Context:
    return _cel.Context(
        variables={k: dict(v) for k, v in library.NAMESPACES.items()}, functions=dict(library.EXTENSION_FUNCTIONS)
    )


_CONTEXTS = threading.local()


def _context() -> _cel.Context:
    # One context per thread, reused: only `self` (and `oldSelf`) change between evaluations.
    ctx: _cel.Context | None = getattr(_CONTEXTS, "ctx", None)
    if ctx is None:
        ctx = _CONTEXTS.ctx = _new_context()
    return ctx


# --------------------------------------------------------------------------------------------
# Rules
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """One ``x-kubernetes-validations`` entry, compiled once and shared by every schema using it."""

    rule: str
    message: str
    message_expression: str
    field_path: str
    reason: str
    optional_old_self: bool
    #: The rule compares with ``oldSelf``: it judges updates, so it is not run on create.
    transition: bool
    fast: _cel.Program
    #: The same rule with ``size()`` counting code points, for values holding non-ASCII text.
    exact: _cel.Program
    message_program: _cel.Program | None

    @property
    def error_string(self) -> str:
        """What the API server names the rule by in errors: its message, else its source."""
        return self.message.strip() or self.rule.strip()


def _compile(source: str) -> _cel.Program:
    try:
        return _cel.compile(source)
    except Exception as exc:  # the binding raises ValueError or RuntimeError
        raise CelCompileError(f"rule does not compile: {source!r}: {exc}") from exc


@lru_cache(maxsize=2048)
def _compile_cached(
    rule: str, message: str, message_expression: str, field_path: str, reason: str, optional_old_self: bool
) -> CompiledRule:
    fast = _compile(rewrite(rule))
    exact = fast if "size" not in rule else _compile(rewrite(rule, exact_size=True))
    msg_prog = _compile(rewrite(message_expression)) if message_expression else None
    transition = "oldSelf" in fast.variables() and not optional_old_self
    return CompiledRule(
        rule, message, message_expression, field_path, reason, optional_old_self, transition, fast, exact, msg_prog
    )


def compile_rule(spec: Mapping[str, Any]) -> CompiledRule:
    """Compile one ``x-kubernetes-validations`` entry; identical entries share one program.

    Raises :class:`CelCompileError` when the rule does not compile.
    """
    rule = spec.get("rule")
    if not isinstance(rule, str):
        raise CelCompileError(f"validation rule without `rule`: {dict(spec)!r}")
    return _compile_cached(
        rule,
        str(spec.get("message") or ""),
        str(spec.get("messageExpression") or ""),
        str(spec.get("fieldPath") or ""),
        str(spec.get("reason") or ""),
        bool(spec.get("optionalOldSelf", False)),
    )


_ENGINE_ERRORS = (
    # (substring of the Rust engine's message, what cel-go says instead)
    ("Function 'int' error", "type conversion error from 'string' to 'int'"),
    ("Function 'duration' error", "type conversion error from 'string' to 'google.protobuf.Duration'"),
    ("No such overload", "no such overload"),
)


def _error_text(exc: BaseException) -> str:
    recorded = library.take_error()
    if recorded:
        return recorded
    if isinstance(exc, KeyError):
        return f"no such key: {exc.args[0] if exc.args else ''}"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    for needle, said in _ENGINE_ERRORS:
        if needle in text:
            return said
    return text


def _run(ctx: _cel.Context, rule: CompiledRule, non_ascii: bool) -> str | None:
    library.take_error()  # forget an error an earlier rule absorbed (`err || true` is true)
    try:
        result = (rule.exact if non_ascii else rule.fast).execute(ctx)
    except Exception as exc:  # the engine raises ValueError, KeyError, TypeError, RuntimeError...
        return f"{_error_text(exc)} evaluating rule: {rule.error_string}"
    if result is True:
        return None
    if result is not False:
        return f"rule did not evaluate to a bool ({result!r}) evaluating rule: {rule.error_string}"
    if rule.message_program is not None:
        try:
            text = rule.message_program.execute(ctx)
        except Exception:  # a failing messageExpression falls back to the message, as upstream
            text = None
        if isinstance(text, str) and text.strip() and "\n" not in text:
            return text.strip()
    return rule.message.strip() or f"failed rule: {rule.rule.strip()}"


def evaluate_all(
    rules: Sequence[CompiledRule], value: Any, *, non_ascii: bool = False
) -> list[tuple[CompiledRule, str]]:
    """Run ``rules`` with ``self`` bound to ``value``; the ones that fail, with their detail.

    ``value`` is the CEL view of one field (see ``openapi.py``), converted for the engine once for
    all the field's rules. ``non_ascii`` says it holds a non-ASCII string, so ``size()`` must count
    code points. Transition rules (``oldSelf``) are skipped: there is no old object on create.
    The detail is worded as the API server words it: the rule's message (or
    ``failed rule: <rule>``), or ``<error> evaluating rule: <message>``.
    """
    ctx = _context()
    ctx.add_variable("self", value)
    failed: list[tuple[CompiledRule, str]] = []
    for rule in rules:
        if rule.transition:
            continue
        if rule.optional_old_self:
            ctx.add_variable("oldSelf", _cel.OptionalValue.none())
        detail = _run(ctx, rule, non_ascii)
        if detail is not None:
            failed.append((rule, detail))
    return failed


def evaluate(rule: CompiledRule, value: Any, *, non_ascii: bool = False) -> str | None:
    """Run one rule with ``self`` bound to ``value``: ``None`` when it holds, else the detail."""
    failed = evaluate_all((rule,), value, non_ascii=non_ascii)
    return failed[0][1] if failed else None
