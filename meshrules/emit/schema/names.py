"""Kubernetes name, label and annotation syntax, as the API server checks it.

Place: a leaf of ``meshrules.emit.schema``. ``openapi.py`` uses it for ``metadata`` (which the
API server validates apart from the CRD's schema), and ``cel.py`` for the ``format`` CEL library.
Each check returns the API server's own error strings (empty when valid), restated from
``k8s.io/apimachinery/pkg/util/validation`` so a message can be searched for upstream.
"""

from __future__ import annotations

import re

# Lengths and patterns are Kubernetes' (validation.go); a name longer than these is refused.
DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_MAX = 253
DNS1035_LABEL_MAX = 63
QUALIFIED_NAME_MAX = 63
LABEL_VALUE_MAX = 63
# Annotations of one object together may not exceed 256 KiB (TotalAnnotationSizeLimitB).
ANNOTATIONS_MAX_BYTES = 256 * 1024

_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + r"(\." + _DNS1123_LABEL_FMT + ")*"
_DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE_FMT = "(" + _QUALIFIED_NAME_FMT + ")?"

# fullmatch, not match: Go's `^...$` does not accept a trailing newline, Python's `$` would.
_DNS1123_LABEL = re.compile(_DNS1123_LABEL_FMT)
_DNS1123_SUBDOMAIN = re.compile(_DNS1123_SUBDOMAIN_FMT)
_DNS1035_LABEL = re.compile(_DNS1035_LABEL_FMT)
_QUALIFIED_NAME = re.compile(_QUALIFIED_NAME_FMT)
_LABEL_VALUE = re.compile(_LABEL_VALUE_FMT)


def _max_len(n: int) -> str:
    return f"must be no more than {n} characters"


def _regex_error(msg: str, fmt: str, *examples: str) -> str:
    if examples:
        ex = " or ".join(f"'{e}'" for e in examples)
        return f"{msg} (e.g. {ex}, regex used for validation is '{fmt}')"
    return f"{msg} (regex used for validation is '{fmt}')"


def dns1123_label(value: str) -> list[str]:
    """Errors of ``value`` as an RFC 1123 label (Service, Namespace names)."""
    errs = []
    if len(value) > DNS1123_LABEL_MAX:
        errs.append(_max_len(DNS1123_LABEL_MAX))
    if not _DNS1123_LABEL.fullmatch(value):
        errs.append(
            _regex_error(
                "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
                "and must start and end with an alphanumeric character",
                _DNS1123_LABEL_FMT,
                "my-name",
                "123-abc",
            )
        )
    return errs


def dns1123_subdomain(value: str) -> list[str]:
    """Errors of ``value`` as an RFC 1123 subdomain (most object names)."""
    errs = []
    if len(value) > DNS1123_SUBDOMAIN_MAX:
        errs.append(_max_len(DNS1123_SUBDOMAIN_MAX))
    if not _DNS1123_SUBDOMAIN.fullmatch(value):
        errs.append(
            _regex_error(
                "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
                "or '.', and must start and end with an alphanumeric character",
                _DNS1123_SUBDOMAIN_FMT,
                "example.com",
            )
        )
    return errs


def dns1035_label(value: str) -> list[str]:
    """Errors of ``value`` as an RFC 1035 label (Service names in some APIs)."""
    errs = []
    if len(value) > DNS1035_LABEL_MAX:
        errs.append(_max_len(DNS1035_LABEL_MAX))
    if not _DNS1035_LABEL.fullmatch(value):
        errs.append(
            _regex_error(
                "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with "
                "an alphabetic character, and end with an alphanumeric character",
                _DNS1035_LABEL_FMT,
                "my-name",
                "abc-123",
            )
        )
    return errs


def qualified_name(value: str) -> list[str]:
    """Errors of ``value`` as a qualified name: ``[prefix/]name`` (label and annotation keys)."""
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
        errs: list[str] = []
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs = ["prefix part must be non-empty"]
        else:
            errs = ["prefix part " + m for m in dns1123_subdomain(prefix)]
    else:
        return [
            _regex_error(
                "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start "
                "and end with an alphanumeric character",
                _QUALIFIED_NAME_FMT,
                "MyName",
                "my.name",
                "123-abc",
            )
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > QUALIFIED_NAME_MAX:
        errs.append("name part " + _max_len(QUALIFIED_NAME_MAX))
    if name and not _QUALIFIED_NAME.fullmatch(name):
        errs.append(
            "name part "
            + _regex_error(
                "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
                "alphanumeric character",
                _QUALIFIED_NAME_FMT,
                "MyName",
                "my.name",
                "123-abc",
            )
        )
    return errs


def label_value(value: str) -> list[str]:
    """Errors of ``value`` as a label value (may be empty)."""
    errs = []
    if len(value) > LABEL_VALUE_MAX:
        errs.append(_max_len(LABEL_VALUE_MAX))
    if not _LABEL_VALUE.fullmatch(value):
        errs.append(
            _regex_error(
                "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
                "or '.', and must start and end with an alphanumeric character",
                _LABEL_VALUE_FMT,
                "MyValue",
                "my_value",
                "12345",
            )
        )
    return errs


def _mask_trailing_dash(value: str) -> str:
    # NameIsDNS*(prefix=true): a generateName prefix may end in '-', the random suffix follows it.
    return value[:-1] + "a" if len(value) > 1 and value.endswith("-") else value


def dns1123_label_prefix(value: str) -> list[str]:
    """Errors of ``value`` as a prefix of an RFC 1123 label (a trailing ``-`` is allowed)."""
    return dns1123_label(_mask_trailing_dash(value))


def dns1123_subdomain_prefix(value: str) -> list[str]:
    """Errors of ``value`` as a prefix of an RFC 1123 subdomain (a trailing ``-`` is allowed)."""
    return dns1123_subdomain(_mask_trailing_dash(value))


def dns1035_label_prefix(value: str) -> list[str]:
    """Errors of ``value`` as a prefix of an RFC 1035 label (a trailing ``-`` is allowed)."""
    return dns1035_label(_mask_trailing_dash(value))
