"""Every error and finding meshrules reports to a user, in one family.

Errors are raised; findings (``Diagnostic``) are collected and returned as data. Both carry a
stable code, a location and a hint, and render as one line:
``file:line: field: message (hint)`` or ``kind namespace/name: field: message (hint)``.

    MeshrulesError                 base: code, message, location, field, hint; exit code 2
    ├── UsageError                 bad command-line arguments (exit 2)
    ├── InputError                 a scenario, policy or test file is unreadable or invalid (exit 2)
    ├── RuleError                  a rule file does not parse or does not check (exit 2)
    │                              (carries every diagnostic of the file, not only the first)
    ├── QueryError                 a query names something that does not exist (exit 2)
    ├── TrustError                 a CA, CSR or certificate is refused (exit 2)
    │   └── CsrRefused             a CSR does not match what its mesh may be issued
    ├── ClusterError               a live cluster is unreachable or answered an error (exit 2)
    └── InternalError              meshrules itself failed (exit 3; a bug to report)

Message style: lower case, no final period, user input in backticks, one line; the longer
story goes in the hint. Third-party exceptions are wrapped at the boundary with
``raise InputError(...) from exc``.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dataclass_field
from enum import StrEnum


@dataclass(frozen=True, slots=True, order=True)
class Location:
    """Where a user-written thing is: a file position, or a live object's coordinates."""

    file: str = ""
    line: int = 0
    col: int = 0
    cluster: str = ""
    kind: str = ""
    namespace: str = ""
    name: str = ""

    def __str__(self) -> str:
        if self.file:
            if self.line and self.col:
                return f"{self.file}:{self.line}:{self.col}"
            if self.line:
                return f"{self.file}:{self.line}"
            return self.file
        obj = f"{self.namespace}/{self.name}" if self.namespace else self.name
        parts = [p for p in (self.kind, obj) if p]
        text = " ".join(parts)
        return f"{self.cluster}: {text}" if self.cluster and text else (self.cluster or text)


class Severity(StrEnum):
    """How much a finding matters; errors make `check` exit 1."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


def render(location: Location | None, field_path: str, message: str, hint: str) -> str:
    """Render the one-line form every error and finding shares."""
    parts = []
    if location is not None and str(location):
        parts.append(str(location))
    if field_path:
        parts.append(field_path)
    parts.append(message + (f" ({hint})" if hint else ""))
    return ": ".join(parts)


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """A finding about user input or derived state, returned as data rather than raised."""

    code: str
    message: str
    severity: Severity = Severity.ERROR
    location: Location | None = None
    field: str = ""
    hint: str = ""
    object: str = ""  # "Kind namespace/name" of the object the finding is about
    related: tuple[str, ...] = ()

    def __str__(self) -> str:
        return render(self.location, self.field, self.message, self.hint)

    def sort_key(self) -> tuple[str, int, int, str, str, str]:
        """Order findings by file position, then code, so reports are deterministic."""
        loc = self.location or Location()
        return (loc.file or str(loc), loc.line, loc.col, self.code, self.object, self.message)


@dataclass
class MeshrulesError(Exception):
    """Base of every error meshrules raises for a user to read."""

    message: str
    code: str = "MR0001"
    location: Location | None = None
    field: str = ""
    hint: str = ""
    diagnostics: tuple[Diagnostic, ...] = dataclass_field(default_factory=tuple)

    exit_code = 2

    def __post_init__(self) -> None:
        Exception.__init__(self, str(self))

    def __str__(self) -> str:
        return render(self.location, self.field, self.message, self.hint)


class UsageError(MeshrulesError):
    """The command line is wrong: a missing flag, an ambiguous target."""


class InputError(MeshrulesError):
    """A scenario, policy or test file cannot be read or is invalid."""


class RuleError(MeshrulesError):
    """A rule file has syntax or static-check errors; ``diagnostics`` holds all of them."""


class QueryError(MeshrulesError):
    """A query names a workload, destination or policy that does not exist."""


class TrustError(MeshrulesError):
    """A certificate authority, CSR or certificate cannot be used."""


class CsrRefused(TrustError):
    """A CSR asks for more than its mesh may be issued."""


class ClusterError(MeshrulesError):
    """A live cluster is unreachable or answered with an error."""


class InternalError(MeshrulesError):
    """meshrules itself failed; this is a bug."""

    exit_code = 3
