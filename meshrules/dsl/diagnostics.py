"""Stable codes of every rule-file error, and how a diagnostic is shown with its source line.

Codes are API: documentation (``docs/rules.md``) and tests name them, so a code is never reused
for another meaning. The range MR0500–MR0599 belongs to the rule language.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from meshrules.errors import Diagnostic, Location, RuleError, Severity

SYNTAX_ERROR = "MR0501"
INCLUDE_NOT_FOUND = "MR0502"
DUPLICATE_RELATION = "MR0503"
UNDECLARED_RELATION = "MR0504"
UNKNOWN_BUILTIN = "MR0505"
ARITY_MISMATCH = "MR0506"
DUPLICATE_RULE = "MR0507"
SHADOWS_BUILTIN = "MR0508"
UNKNOWN_TYPE = "MR0509"
UNBOUND_HEAD_VARIABLE = "MR0510"
UNBOUND_NEGATED_VARIABLE = "MR0511"
UNBOUND_VARIABLE = "MR0512"
UNBOUND_AGGREGATE_GROUP = "MR0513"
NEGATION_THROUGH_RECURSION = "MR0514"
AGGREGATION_THROUGH_RECURSION = "MR0515"
TYPE_MISMATCH = "MR0516"
BUILTIN_IN_HEAD = "MR0517"
DUPLICATE_COLUMN = "MR0518"
WILDCARD_IN_HEAD = "MR0519"
SINGLETON_VARIABLE = "MR0520"
FACT_MISMATCH = "MR0521"
EVALUATION_FAILED = "MR0522"

# code → one-line meaning, the table docs/rules.md reproduces.
CODES: Mapping[str, str] = {
    SYNTAX_ERROR: "the text does not parse; the message says what was expected",
    INCLUDE_NOT_FOUND: "an included file does not exist or cannot be read",
    DUPLICATE_RELATION: "a relation is declared twice",
    UNDECLARED_RELATION: "a rule uses a relation that no file declares",
    UNKNOWN_BUILTIN: "a name looks like a built-in predicate that does not exist",
    ARITY_MISMATCH: "a relation or built-in is used with the wrong number of arguments",
    DUPLICATE_RULE: "two rules have the same name",
    SHADOWS_BUILTIN: "a relation is declared with the name of a built-in predicate",
    UNKNOWN_TYPE: "a column type is neither str, int, bool, any nor a capitalised entity name",
    UNBOUND_HEAD_VARIABLE: "a variable of the head is not bound by the body",
    UNBOUND_NEGATED_VARIABLE: "a variable under `not` is not bound by a positive literal",
    UNBOUND_VARIABLE: "a comparison or built-in needs a variable that nothing binds",
    UNBOUND_AGGREGATE_GROUP: "a variable shared by an aggregate and the rest of the rule is not bound outside",
    NEGATION_THROUGH_RECURSION: "a relation depends on its own negation (not stratifiable)",
    AGGREGATION_THROUGH_RECURSION: "a relation aggregates over itself (not stratifiable)",
    TYPE_MISMATCH: "a value of one type is used where another is declared",
    BUILTIN_IN_HEAD: "a rule tries to define a built-in predicate",
    DUPLICATE_COLUMN: "a relation declares two columns with the same name",
    WILDCARD_IN_HEAD: "`_` appears in a rule head",
    SINGLETON_VARIABLE: "(warning) a named variable occurs only once; likely a typo",
    FACT_MISMATCH: "a base fact handed to the engine does not fit its relation's declaration",
    EVALUATION_FAILED: "a built-in or comparison failed on the values it met while evaluating a rule",
}


def error(code: str, location: Location, message: str, hint: str = "") -> Diagnostic:
    """An error diagnostic of the rule language."""
    return Diagnostic(code=code, message=message, location=location, hint=hint)


def warning(code: str, location: Location, message: str, hint: str = "") -> Diagnostic:
    """A warning diagnostic of the rule language (reported, never fatal)."""
    return Diagnostic(code=code, message=message, location=location, hint=hint, severity=Severity.WARNING)


def sort_diagnostics(diagnostics: Iterable[Diagnostic]) -> tuple[Diagnostic, ...]:
    """Sort by file position then code, dropping exact repeats."""
    return tuple(sorted(set(diagnostics), key=Diagnostic.sort_key))


def raise_if_errors(diagnostics: Iterable[Diagnostic]) -> None:
    """Raise one ``RuleError`` carrying every diagnostic when any of them is an error."""
    ordered = sort_diagnostics(diagnostics)
    errors = [d for d in ordered if d.severity is Severity.ERROR]
    if not errors:
        return
    first = errors[0]
    count = f"{len(errors)} errors" if len(errors) > 1 else "1 error"
    raise RuleError(
        f"rule files have {count}; the first: {first.message}",
        code=first.code,
        location=first.location,
        hint=first.hint,
        diagnostics=ordered,
    )


def render_diagnostic(diagnostic: Diagnostic, sources: Mapping[str, str] | None = None) -> str:
    """``file:line:col: message [code]``, then the source line with a caret, then the hint.

    ``sources`` maps file names to their text; a file missing from it is read from disk, and a
    file that cannot be read is shown without its source line.
    """
    loc = diagnostic.location or Location()
    kind = "warning: " if diagnostic.severity is Severity.WARNING else ""
    lines = [f"{loc}: {kind}{diagnostic.message} [{diagnostic.code}]"]
    text = _source_text(loc.file, sources)
    if text is not None and loc.line >= 1:
        source_lines = text.splitlines()
        if loc.line <= len(source_lines):
            line = source_lines[loc.line - 1].rstrip()
            gutter = f"{loc.line:>5} | "
            lines.append(gutter + line)
            lines.append(" " * (len(gutter) - 2) + "| " + " " * max(loc.col - 1, 0) + "^")
    if diagnostic.hint:
        lines.append(f"  hint: {diagnostic.hint}")
    return "\n".join(lines)


def render_diagnostics(diagnostics: Iterable[Diagnostic], sources: Mapping[str, str] | None = None) -> str:
    """Every diagnostic rendered with ``render_diagnostic``, in location order, blank-line separated."""
    return "\n\n".join(render_diagnostic(d, sources) for d in sort_diagnostics(diagnostics))


def _source_text(file: str, sources: Mapping[str, str] | None) -> str | None:
    if not file:
        return None
    if sources is not None and file in sources:
        return sources[file]
    try:
        return Path(file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
