"""The Kubernetes CEL extension library, as Python functions for the Rust CEL engine.

Place: used only by ``cel.py``, which registers :data:`EXTENSION_FUNCTIONS` in every context.
What the API server adds to CEL, restated with the same semantics and error texts:

* cel-go's string extensions (version 2): ``charAt``, ``indexOf``, ``lastIndexOf``,
  ``lowerAscii``, ``upperAscii``, ``replace``, ``split``, ``substring``, ``trim``, ``join``;
* ``k8s.io/apiserver/pkg/cel/library``: lists (``isSorted``, ``sum``, ``min``, ``max``,
  ``indexOf``, ``lastIndexOf``), regex (``find``, ``findAll``), URLs (``url``, ``isURL``,
  ``getScheme``...: Go's ``net/url``), IPs and CIDRs (``ip``, ``isIP``, ``cidr``, ``isCIDR``,
  ``containsIP``...: Go's ``net/netip``), quantities (``quantity``, ``isQuantity``, ``add``...) and
  formats (``format.dns1123Label().validate(s)``, ``format.named(n)``);
* RE2 ``matches``, Go ``duration`` parsing and code-point ``size``, which ``cel.py`` substitutes
  for the engine's own (see its docstring).

The engine converts values between CEL and Python (str, int, float, bool, bytes, list, dict,
None, timedelta, datetime). The library's own types (URL, IP, CIDR, Quantity, Format) travel as
one-key maps whose key names the type; a function given anything else reports
``no such overload`` as cel-go does.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import ipaddress
import logging
import re
import threading
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Any, cast

import cel as _cel
import re2  # type: ignore[import-untyped]

from meshrules.emit.schema import names

__all__ = [
    "EXTENSION_FUNCTIONS",
    "NAMESPACES",
    "CelEvalError",
    "go_duration_ns",
    "is_base64",
    "is_date",
    "parse_date_time",
    "parse_quantity",
    "take_error",
    "uri_errors",
]


class CelEvalError(Exception):
    """Raised inside an extension function; the text is what the API server would say."""


# Values of the library's own types travel through CEL as one-key maps; the key says the type.
_URL, _IP, _CIDR, _QUANTITY, _FORMAT, _NS = (
    "__k8s_url__",
    "__k8s_ip__",
    "__k8s_cidr__",
    "__k8s_quantity__",
    "__k8s_format__",
    "__k8s_namespace__",
)


def _tagged(value: Any, tag: str) -> Any:
    if isinstance(value, dict) and len(value) == 1 and tag in value:
        return value[tag]
    return None


def _no_overload(name: str, *args: Any) -> CelEvalError:
    kinds = ", ".join(type(a).__name__ for a in args)
    return CelEvalError(f"no such overload: {name}({kinds})")


# -- regexes: RE2, cached ------------------------------------------------------------------------


@lru_cache(maxsize=1024)
def _regex(pattern: str) -> Any:
    try:
        return re2.compile(pattern)
    except Exception as exc:  # re2.error is not exported under a stable name
        raise CelEvalError(f"invalid regex {pattern!r}: {exc}") from exc


def _fn_matches(s: Any, pattern: Any) -> bool:
    if not isinstance(s, str) or not isinstance(pattern, str):
        raise _no_overload("matches", s, pattern)
    return _regex(pattern).search(s) is not None


def _fn_find(s: Any, pattern: Any) -> str:
    if not isinstance(s, str) or not isinstance(pattern, str):
        raise _no_overload("find", s, pattern)
    m = _regex(pattern).search(s)
    return str(m.group(0)) if m else ""


def _fn_find_all(s: Any, pattern: Any, limit: Any = -1) -> list[str]:
    if not isinstance(s, str) or not isinstance(pattern, str) or not isinstance(limit, int):
        raise _no_overload("findAll", s, pattern, limit)
    if limit == 0:
        return []
    found = [str(m.group(0)) for m in _regex(pattern).finditer(s)]
    return found if limit < 0 else found[:limit]


# -- strings (cel-go ext.Strings, version 2) -----------------------------------------------------

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
# unicode.IsSpace, which strings.TrimSpace uses (Python's str.strip() also strips \x1c-\x1f).
_GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"  # noqa: E501


def _fn_char_at(s: Any, i: Any) -> str:
    if not isinstance(s, str) or not isinstance(i, int):
        raise _no_overload("charAt", s, i)
    if i < 0 or i > len(s):
        raise CelEvalError(f"index out of range: {i}")
    return s[i] if i < len(s) else ""


def _fn_index_of(target: Any, item: Any, offset: Any = None) -> int:
    if isinstance(target, list):
        if offset is not None:
            raise _no_overload("indexOf", target, item, offset)
        return next((k for k, v in enumerate(target) if _cel_equal(v, item)), -1)
    if not isinstance(target, str) or not isinstance(item, str):
        raise _no_overload("indexOf", target, item)
    start = 0 if offset is None else offset
    if not isinstance(start, int):
        raise _no_overload("indexOf", target, item, offset)
    if start < 0 or start > len(target):
        raise CelEvalError(f"index out of range: {start}")
    return target.find(item, start)


def _fn_last_index_of(target: Any, item: Any, offset: Any = None) -> int:
    if isinstance(target, list):
        if offset is not None:
            raise _no_overload("lastIndexOf", target, item, offset)
        return next((k for k in range(len(target) - 1, -1, -1) if _cel_equal(target[k], item)), -1)
    if not isinstance(target, str) or not isinstance(item, str):
        raise _no_overload("lastIndexOf", target, item)
    if offset is None:
        return target.rfind(item)
    if not isinstance(offset, int):
        raise _no_overload("lastIndexOf", target, item, offset)
    if offset < 0 or offset > len(target):
        raise CelEvalError(f"index out of range: {offset}")
    # The match may start at `offset` at the latest.
    return target.rfind(item, 0, offset + len(item))


def _fn_lower_ascii(s: Any) -> str:
    if not isinstance(s, str):
        raise _no_overload("lowerAscii", s)
    return s.translate(_ASCII_LOWER)


def _fn_upper_ascii(s: Any) -> str:
    if not isinstance(s, str):
        raise _no_overload("upperAscii", s)
    return s.translate(_ASCII_UPPER)


def _fn_replace(s: Any, old: Any, new: Any, n: Any = -1) -> str:
    if not all(isinstance(x, str) for x in (s, old, new)) or not isinstance(n, int):
        raise _no_overload("replace", s, old, new, n)
    return cast(str, s).replace(old, new, -1 if n < 0 else n)


def _fn_split(s: Any, sep: Any, n: Any = -1) -> list[str]:
    if not isinstance(s, str) or not isinstance(sep, str) or not isinstance(n, int):
        raise _no_overload("split", s, sep, n)
    # Go's strings.SplitN: n == 0 gives nothing, n < 0 everything, "" splits into code points.
    if n == 0:
        return []
    if sep == "":
        chars = list(s)
        if 0 < n < len(chars):
            return [*chars[: n - 1], "".join(chars[n - 1 :])]
        return chars
    return s.split(sep, -1 if n < 0 else n - 1)


def _fn_substring(s: Any, start: Any, end: Any = None) -> str:
    if not isinstance(s, str) or not isinstance(start, int):
        raise _no_overload("substring", s, start, end)
    stop = len(s) if end is None else end
    if not isinstance(stop, int):
        raise _no_overload("substring", s, start, end)
    if start < 0 or start > len(s):
        raise CelEvalError(f"index out of range: {start}")
    if stop < 0 or stop > len(s):
        raise CelEvalError(f"index out of range: {stop}")
    if start > stop:
        raise CelEvalError(f"invalid substring range. start: {start}, end: {stop}")
    return s[start:stop]


def _fn_trim(s: Any) -> str:
    if not isinstance(s, str):
        raise _no_overload("trim", s)
    return s.strip(_GO_SPACE)


def _fn_join(items: Any, sep: Any = "") -> str:
    if not isinstance(items, list) or not isinstance(sep, str) or not all(isinstance(x, str) for x in items):
        raise _no_overload("join", items, sep)
    return sep.join(items)


def _k8s_size(x: Any) -> int:
    if isinstance(x, (str, bytes, list, dict)):
        return len(x)
    raise _no_overload("size", x)


# -- durations: Go's time.ParseDuration ----------------------------------------------------------

_GO_DURATION = re.compile(r"[-+]?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:ns|us|µs|μs|ms|s|m|h))+")
_GO_DURATION_PART = re.compile(r"([0-9]*)(?:\.([0-9]*))?(ns|us|µs|μs|ms|s|m|h)")
_NS_PER_UNIT = {
    "ns": 1, "us": 10**3, "µs": 10**3, "μs": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9,
    "h": 3600 * 10**9,
}  # fmt: skip
_MAX_GO_DURATION_NS = 2**63 - 1


def go_duration_ns(text: str) -> int | None:
    """Nanoseconds of a Go duration string (``time.ParseDuration``), or ``None`` if it is invalid."""
    if text in ("0", "+0", "-0"):
        return 0
    if not _GO_DURATION.fullmatch(text):
        return None
    sign = -1 if text.startswith("-") else 1
    total = Fraction(0)
    for whole, frac, unit in _GO_DURATION_PART.findall(text.lstrip("+-")):
        total += (Fraction(int(whole or "0")) + (Fraction(int(frac), 10 ** len(frac)) if frac else 0)) * (
            _NS_PER_UNIT[unit]
        )
    ns = int(total)  # Go truncates fractions of a nanosecond
    if ns > _MAX_GO_DURATION_NS:
        return None
    return sign * ns


def _k8s_duration(text: Any) -> Any:
    if isinstance(text, _dt.timedelta):  # a `format: duration` field is already a duration
        return text
    if not isinstance(text, str):
        raise _no_overload("duration", text)
    ns = go_duration_ns(text)
    if ns is None:
        raise CelEvalError(
            f"type conversion error from 'string' to 'google.protobuf.Duration': invalid duration {text!r}"
        )
    # The engine's own parser reads a plain nanosecond count exactly.
    return f"{ns}ns"


# -- lists (k8s library lists.go) ----------------------------------------------------------------


def _cel_equal(a: Any, b: Any) -> bool:
    # CEL does not equate true with 1, Python does.
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return bool(a == b)


def _comparable_list(name: str, items: Any) -> list[Any]:
    if not isinstance(items, list):
        raise _no_overload(name, items)
    kinds = {float if isinstance(x, int) and not isinstance(x, bool) else type(x) for x in items}
    if len(kinds) > 1 or any(k in (dict, list, type(None)) for k in kinds):
        raise _no_overload(name, *items)
    return items


def _fn_is_sorted(items: Any) -> bool:
    xs = _comparable_list("isSorted", items)
    return all(xs[k] <= xs[k + 1] for k in range(len(xs) - 1))


def _fn_sum(items: Any) -> Any:
    xs = _comparable_list("sum", items)
    if not xs:
        return 0
    total = xs[0]
    for x in xs[1:]:
        total = total + x
    return total


def _fn_min(items: Any) -> Any:
    xs = _comparable_list("min", items)
    if not xs:
        raise CelEvalError("min called on empty list")
    return min(xs)


def _fn_max(items: Any) -> Any:
    xs = _comparable_list("max", items)
    if not xs:
        raise CelEvalError("max called on empty list")
    return max(xs)


# -- URLs: Go's net/url, as the k8s library uses it ----------------------------------------------


@dataclass(slots=True)
class _GoURL:
    scheme: str = ""
    opaque: str = ""
    host: str = ""
    path: str = ""
    raw_path: str = ""
    raw_query: str = ""


_HEX = frozenset("0123456789abcdefABCDEF")
_HOST_OK = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~!$&'()*+,;=:[]<>\"%")
_USERINFO_OK = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._:~!$&'()*+,;=%@")


def _url_unescape(s: str, host: bool) -> str:
    i = 0
    while i < len(s):
        c = s[i]
        if c == "%":
            seq = s[i : i + 3]
            if len(seq) < 3 or seq[1] not in _HEX or seq[2] not in _HEX:
                raise CelEvalError(f'invalid URL escape "{seq}"')
            # RFC 3986 §3.2.2: in a host, %-encoding is for non-ASCII bytes only.
            if host and int(s[i + 1], 16) < 8 and s[i : i + 3] != "%25":
                raise CelEvalError(f'invalid URL escape "{s[i : i + 3]}"')
            i += 3
            continue
        if host and ord(c) < 0x80 and c not in _HOST_OK:
            raise CelEvalError(f'invalid character "{c}" in host name')
        i += 1
    return urllib.parse.unquote(s, errors="surrogateescape")


def _valid_optional_port(port: str) -> bool:
    return port == "" or (port.startswith(":") and all(c in "0123456789" for c in port[1:]))


def _parse_go_url(raw: str, via_request: bool) -> _GoURL:
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in raw):
        raise CelEvalError("net/url: invalid control character in URL")
    if raw == "" and via_request:
        raise CelEvalError("empty url")
    u = _GoURL()
    if raw == "*":
        u.path = "*"
        return u
    scheme, rest = "", raw
    for i, c in enumerate(raw):
        if c.isascii() and c.isalpha():
            continue
        if c.isascii() and (c.isdigit() or c in "+-."):
            if i == 0:
                break
            continue
        if c == ":":
            if i == 0:
                raise CelEvalError("missing protocol scheme")
            scheme, rest = raw[:i], raw[i + 1 :]
        break
    u.scheme = scheme.lower()
    if rest.endswith("?") and rest.count("?") == 1:
        rest = rest[:-1]
    else:
        rest, _, u.raw_query = rest.partition("?")
    if not rest.startswith("/"):
        if u.scheme:
            u.opaque = rest  # a rootless path, `mailto:x`
            return u
        if via_request:
            raise CelEvalError("invalid URI for request")
        colon, slash = rest.find(":"), rest.find("/")
        if colon >= 0 and (slash < 0 or colon < slash):
            raise CelEvalError("first path segment in URL cannot contain colon")
    if (u.scheme or (not via_request and not rest.startswith("///"))) and rest.startswith("//"):
        authority, rest = rest[2:], ""
        if (k := authority.find("/")) >= 0:
            authority, rest = authority[:k], authority[k:]
        at = authority.rfind("@")
        host = authority[at + 1 :]
        if host.startswith("["):
            close = host.rfind("]")
            if close < 0:
                raise CelEvalError("missing ']' in host")
            if not _valid_optional_port(host[close + 1 :]):
                raise CelEvalError(f'invalid port "{host[close + 1 :]}" after host')
        elif (k := host.rfind(":")) >= 0 and not _valid_optional_port(host[k:]):
            raise CelEvalError(f'invalid port "{host[k:]}" after host')
        u.host = _url_unescape(host, host=True)
        if at >= 0:
            userinfo = authority[:at]
            if any(c.isascii() and c not in _USERINFO_OK for c in userinfo):
                raise CelEvalError("net/url: invalid userinfo")
    u.path = _url_unescape(rest, host=False)
    u.raw_path = rest
    return u


def _request_uri(raw: str) -> _GoURL:
    return _parse_go_url(raw, via_request=True)


def _url_of(value: Any, fn: str) -> _GoURL:
    raw = _tagged(value, _URL)
    if not isinstance(raw, str):
        raise _no_overload(fn, value)
    return _parse_go_url(raw.partition("#")[0], via_request=False)


def _fn_url(s: Any) -> dict[str, str]:
    if not isinstance(s, str):
        raise _no_overload("url", s)
    try:
        _request_uri(s)
    except CelEvalError as exc:
        raise CelEvalError(f"URL parse error during conversion from string: {exc}") from exc
    return {_URL: s}


def _fn_is_url(s: Any) -> bool:
    if not isinstance(s, str):
        raise _no_overload("isURL", s)
    try:
        _request_uri(s)
    except CelEvalError:
        return False
    return True


def _split_host_port(host: str) -> tuple[str, str]:
    k = host.rfind(":")
    if k >= 0 and _valid_optional_port(host[k:]):
        name, port = host[:k], host[k + 1 :]
    else:
        name, port = host, ""
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    return name, port


def _fn_get_scheme(u: Any) -> str:
    return _url_of(u, "getScheme").scheme


def _fn_get_host(u: Any) -> str:
    return _url_of(u, "getHost").host


def _fn_get_hostname(u: Any) -> str:
    return _split_host_port(_url_of(u, "getHostname").host)[0]


def _fn_get_port(u: Any) -> str:
    return _split_host_port(_url_of(u, "getPort").host)[1]


def _fn_get_escaped_path(u: Any) -> str:
    parsed = _url_of(u, "getEscapedPath")
    return parsed.raw_path or parsed.opaque


def _fn_get_query(u: Any) -> dict[str, list[str]]:
    query: dict[str, list[str]] = {}
    for pair in _url_of(u, "getQuery").raw_query.split("&"):
        if not pair or ";" in pair:
            continue  # Go's ParseQuery drops pairs with a semicolon
        key, _, value = pair.partition("=")
        try:
            key, value = urllib.parse.unquote_plus(key, errors="strict"), urllib.parse.unquote_plus(value)
        except UnicodeDecodeError:
            continue
        query.setdefault(key, []).append(value)
    return query


# -- IPs and CIDRs (k8s library ip.go, cidr.go: net/netip semantics) -------------------------------

_Addr = ipaddress.IPv4Address | ipaddress.IPv6Address
_Iface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
_PREFIX_LEN = re.compile(r"0|[1-9][0-9]{0,2}")


def _parse_ip(raw: str) -> _Addr:
    if "%" in raw:
        raise CelEvalError(f'IP address "{raw}" with zone value is not allowed')
    try:
        addr = ipaddress.ip_address(raw)
    except ValueError as exc:
        raise CelEvalError(f'IP Address "{raw}" parse error during conversion from string: {exc}') from exc
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        raise CelEvalError(f'IPv4-mapped IPv6 address "{raw}" is not allowed')
    return addr


def _parse_cidr(raw: str) -> _Iface:
    addr_text, slash, bits = raw.partition("/")
    if not slash or not _PREFIX_LEN.fullmatch(bits):
        raise CelEvalError(f'network address parse error during conversion from string: netip.ParsePrefix("{raw}")')
    addr = _parse_ip(addr_text)
    if int(bits) > addr.max_prefixlen:
        raise CelEvalError(f'network address parse error during conversion from string: netip.ParsePrefix("{raw}")')
    return ipaddress.ip_interface(f"{addr}/{bits}")


def _ip_of(value: Any, fn: str) -> _Addr:
    if isinstance(value, str):
        return _parse_ip(value)
    raw = _tagged(value, _IP)
    if not isinstance(raw, str):
        raise _no_overload(fn, value)
    return _parse_ip(raw)


def _cidr_of(value: Any, fn: str) -> _Iface:
    if isinstance(value, str):
        return _parse_cidr(value)
    raw = _tagged(value, _CIDR)
    if not isinstance(raw, str):
        raise _no_overload(fn, value)
    return _parse_cidr(raw)


def _fn_ip(value: Any) -> dict[str, str]:
    # `ip("1.2.3.4")` makes an IP; `cidr("10.0.0.1/8").ip()` is the CIDR's address, unmasked.
    if isinstance(value, str):
        return {_IP: str(_parse_ip(value))}
    if _tagged(value, _CIDR) is not None:
        return {_IP: str(_cidr_of(value, "ip").ip)}
    raise _no_overload("ip", value)


def _fn_is_ip(s: Any) -> bool:
    if not isinstance(s, str):
        raise _no_overload("isIP", s)
    try:
        _parse_ip(s)
    except CelEvalError:
        return False
    return True


def _fn_is_canonical(ns: Any, s: Any) -> bool:
    if _tagged(ns, _NS) != "ip" or not isinstance(s, str):
        raise _no_overload("ip.isCanonical", ns, s)
    return str(_parse_ip(s)) == s


def _fn_family(ip: Any) -> int:
    return _ip_of(ip, "family").version


def _fn_is_unspecified(ip: Any) -> bool:
    return _ip_of(ip, "isUnspecified").is_unspecified


def _fn_is_loopback(ip: Any) -> bool:
    return _ip_of(ip, "isLoopback").is_loopback


def _fn_is_link_local_multicast(ip: Any) -> bool:
    addr = _ip_of(ip, "isLinkLocalMulticast")
    if isinstance(addr, ipaddress.IPv4Address):
        return addr in ipaddress.IPv4Network("224.0.0.0/24")
    return addr.packed[0] == 0xFF and addr.packed[1] & 0x0F == 0x02


def _fn_is_link_local_unicast(ip: Any) -> bool:
    addr = _ip_of(ip, "isLinkLocalUnicast")
    return addr.is_link_local and not addr.is_multicast


def _fn_is_global_unicast(ip: Any) -> bool:
    # Go's notion: private ranges are "global unicast" too.
    addr = _ip_of(ip, "isGlobalUnicast")
    if isinstance(addr, ipaddress.IPv4Address) and addr == ipaddress.IPv4Address("255.255.255.255"):
        return False
    return not (addr.is_unspecified or addr.is_loopback or addr.is_multicast or _fn_is_link_local_unicast(ip))


def _fn_cidr(s: Any) -> dict[str, str]:
    if not isinstance(s, str):
        raise _no_overload("cidr", s)
    iface = _parse_cidr(s)
    return {_CIDR: f"{iface.ip}/{iface.network.prefixlen}"}


def _fn_is_cidr(s: Any) -> bool:
    if not isinstance(s, str):
        raise _no_overload("isCIDR", s)
    try:
        _parse_cidr(s)
    except CelEvalError:
        return False
    return True


def _fn_contains_ip(cidr: Any, ip: Any) -> bool:
    net = _cidr_of(cidr, "containsIP").network
    addr = _ip_of(ip, "containsIP")
    return addr.version == net.version and addr in net


def _fn_contains_cidr(cidr: Any, other: Any) -> bool:
    net = _cidr_of(cidr, "containsCIDR").network
    sub = _cidr_of(other, "containsCIDR").network
    return sub.version == net.version and sub.prefixlen >= net.prefixlen and sub.network_address in net


def _fn_masked(cidr: Any) -> dict[str, str]:
    return {_CIDR: str(_cidr_of(cidr, "masked").network)}


def _fn_prefix_length(cidr: Any) -> int:
    return _cidr_of(cidr, "prefixLength").network.prefixlen


# -- quantities (k8s library quantity.go; resource.Quantity) -------------------------------------

_QUANTITY_SYNTAX = re.compile(
    r"([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?"
)
_QUANTITY_SUFFIX = {
    "": Fraction(1), "n": Fraction(1, 10**9), "u": Fraction(1, 10**6), "m": Fraction(1, 1000),
    "k": Fraction(10**3), "M": Fraction(10**6), "G": Fraction(10**9), "T": Fraction(10**12),
    "P": Fraction(10**15), "E": Fraction(10**18), "Ki": Fraction(2**10), "Mi": Fraction(2**20),
    "Gi": Fraction(2**30), "Ti": Fraction(2**40), "Pi": Fraction(2**50), "Ei": Fraction(2**60),
}  # fmt: skip
_INT64 = (-(2**63), 2**63 - 1)


def parse_quantity(text: str) -> Fraction | None:
    """The exact value of a Kubernetes quantity (``500m``, ``1Gi``, ``1e3``), or ``None``."""
    m = _QUANTITY_SYNTAX.fullmatch(text)
    if not m:
        return None
    number, suffix = m.group(1), m.group(2) or ""
    value = Fraction(number)
    if suffix[:1] in ("e", "E"):
        return value * Fraction(10) ** int(suffix[1:])
    return value * _QUANTITY_SUFFIX[suffix]


def _quantity_of(value: Any, fn: str) -> Fraction:
    raw = _tagged(value, _QUANTITY)
    if isinstance(raw, str):
        if "/" in raw:  # a computed result, kept exact as "num/den"
            return Fraction(raw)
        q = parse_quantity(raw)
        if q is not None:
            return q
    raise _no_overload(fn, value)


def _quantity(q: Fraction) -> dict[str, str]:
    return {_QUANTITY: f"{q.numerator}/{q.denominator}"}


def _fn_quantity(s: Any) -> dict[str, str]:
    if not isinstance(s, str):
        raise _no_overload("quantity", s)
    if parse_quantity(s) is None:
        raise CelEvalError(
            "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
        )
    return {_QUANTITY: s}


def _fn_is_quantity(s: Any) -> bool:
    if not isinstance(s, str):
        raise _no_overload("isQuantity", s)
    return parse_quantity(s) is not None


def _fn_sign(q: Any) -> int:
    v = _quantity_of(q, "sign")
    return (v > 0) - (v < 0)


def _fn_compare_to(a: Any, b: Any) -> int:
    x, y = _quantity_of(a, "compareTo"), _quantity_of(b, "compareTo")
    return (x > y) - (x < y)


def _fn_is_greater_than(a: Any, b: Any) -> bool:
    return _quantity_of(a, "isGreaterThan") > _quantity_of(b, "isGreaterThan")


def _fn_is_less_than(a: Any, b: Any) -> bool:
    return _quantity_of(a, "isLessThan") < _quantity_of(b, "isLessThan")


def _operand(value: Any, fn: str) -> Fraction:
    if isinstance(value, int) and not isinstance(value, bool):
        return Fraction(value)
    return _quantity_of(value, fn)


def _fn_add(a: Any, b: Any) -> dict[str, str]:
    return _quantity(_quantity_of(a, "add") + _operand(b, "add"))


def _fn_sub(a: Any, b: Any) -> dict[str, str]:
    return _quantity(_quantity_of(a, "sub") - _operand(b, "sub"))


def _fn_is_integer(q: Any) -> bool:
    v = _quantity_of(q, "isInteger")
    return v.denominator == 1 and _INT64[0] <= v.numerator <= _INT64[1]


def _fn_as_integer(q: Any) -> int:
    v = _quantity_of(q, "asInteger")
    if v.denominator != 1 or not _INT64[0] <= v.numerator <= _INT64[1]:
        raise CelEvalError("cannot convert value to integer")
    return v.numerator


def _fn_as_approximate_float(q: Any) -> float:
    return float(_quantity_of(q, "asApproximateFloat"))


# -- formats (k8s library format.go) -------------------------------------------------------------

_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_TIME = re.compile(r"([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?(z|[+-][0-9]{2}:[0-9]{2})")
_UUID = re.compile(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}")


def is_date(text: str) -> bool:
    """Whether ``text`` is a ``full-date`` (go-openapi strfmt ``date``)."""
    m = _DATE.fullmatch(text)
    if not m:
        return False
    try:
        _dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return False
    return True


def parse_date_time(text: str) -> _dt.datetime | None:
    """A ``date-time`` (go-openapi strfmt, RFC 3339), or ``None`` when it is not one."""
    low = text.lower()
    for sep in ("t", " "):
        date, found, time = low.partition(sep)
        if found:
            break
    else:
        return None
    m = _TIME.fullmatch(time)
    if not m or not is_date(date):
        return None
    hour, minute, second = int(m.group(1)), int(m.group(2)), int(m.group(3))
    if hour > 23 or minute > 59 or second > 59:
        return None
    micro = int((m.group(4) or ".0")[1:7].ljust(6, "0"))
    zone = m.group(5)
    tz = _dt.UTC
    if zone != "z":
        sign = -1 if zone[0] == "-" else 1
        tz = _dt.timezone(sign * _dt.timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
    y, mo, d = (int(x) for x in date.split("-"))
    return _dt.datetime(y, mo, d, hour, minute, second, micro, tzinfo=tz)


def is_base64(text: str) -> bool:
    """Whether ``text`` is standard, padded base64 (go-openapi strfmt ``byte``)."""
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def uri_errors(s: str) -> list[str]:
    """Errors of ``s`` as an absolute URI or absolute path (Go's ``url.ParseRequestURI``)."""
    try:
        _request_uri(s)
    except CelEvalError as exc:
        return [f"invalid URI: {exc}"]
    return []


_FORMATS: dict[str, Callable[[str], list[str]]] = {
    "dns1123Label": names.dns1123_label,
    "dns1123Subdomain": names.dns1123_subdomain,
    "dns1035Label": names.dns1035_label,
    "qualifiedName": names.qualified_name,
    "dns1123LabelPrefix": names.dns1123_label_prefix,
    "dns1123SubdomainPrefix": names.dns1123_subdomain_prefix,
    "dns1035LabelPrefix": names.dns1035_label_prefix,
    "labelValue": names.label_value,
    "uri": uri_errors,
    "uuid": lambda s: [] if _UUID.fullmatch(s) else ["does not match the UUID format"],
    "byte": lambda s: [] if is_base64(s) else ["invalid base64"],
    "date": lambda s: [] if is_date(s) else ["invalid date"],
    "datetime": lambda s: [] if parse_date_time(s) is not None else ["invalid datetime"],
}


def _format_constructor(name: str) -> Callable[..., Any]:
    def make(ns: Any) -> dict[str, str]:
        if _tagged(ns, _NS) != "format":
            raise _no_overload(f"format.{name}", ns)
        return {_FORMAT: name}

    return make


def _fn_named(ns: Any, name: Any) -> _cel.OptionalValue:
    if _tagged(ns, _NS) != "format" or not isinstance(name, str):
        raise _no_overload("format.named", ns, name)
    return _cel.OptionalValue.of({_FORMAT: name}) if name in _FORMATS else _cel.OptionalValue.none()


def _fn_validate(fmt: Any, s: Any) -> _cel.OptionalValue:
    # Like the API server: optional.none() when valid. NB `validate(x) == null` is then false, as
    # in cel-go, whose optional values never equal null.
    name = _tagged(fmt, _FORMAT)
    if not isinstance(name, str) or name not in _FORMATS or not isinstance(s, str):
        raise _no_overload("validate", fmt, s)
    errs = _FORMATS[name](s)
    return _cel.OptionalValue.of(errs) if errs else _cel.OptionalValue.none()


# -- the registry ----------------------------------------------------------------------------------

_LAST_ERROR = threading.local()


def take_error() -> str | None:
    """The text of the last extension-function error on this thread, and forget it."""
    text: str | None = getattr(_LAST_ERROR, "text", None)
    _LAST_ERROR.text = None
    return text


class _DropExtensionErrors(logging.Filter):
    """The binding logs a warning for every exception a Python function raises; ours are CEL
    errors the rule's verdict already reports, not faults, so they are dropped (others stay)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "CelEvalError" not in record.getMessage()


logging.getLogger("cel").addFilter(_DropExtensionErrors())


def _recorded(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    # The engine flattens an exception from Python into its own text; keep ours to report it.
    def call(*args: Any) -> Any:
        try:
            return fn(*args)
        except CelEvalError as exc:
            _LAST_ERROR.text = str(exc)
            raise
        except TypeError as exc:  # called with a number of arguments no overload takes
            _LAST_ERROR.text = f"no such overload: {name}"
            raise CelEvalError(_LAST_ERROR.text) from exc

    return call


_PLAIN_FUNCTIONS: dict[str, Callable[..., Any]] = {
    # rewritten built-ins
    "_k8s_matches": _fn_matches,
    "_k8s_size": _k8s_size,
    "_k8s_duration": _k8s_duration,
    # strings
    "charAt": _fn_char_at,
    "indexOf": _fn_index_of,
    "lastIndexOf": _fn_last_index_of,
    "lowerAscii": _fn_lower_ascii,
    "upperAscii": _fn_upper_ascii,
    "replace": _fn_replace,
    "split": _fn_split,
    "substring": _fn_substring,
    "trim": _fn_trim,
    "join": _fn_join,
    # lists
    "isSorted": _fn_is_sorted,
    "sum": _fn_sum,
    "min": _fn_min,
    "max": _fn_max,
    # regex
    "find": _fn_find,
    "findAll": _fn_find_all,
    # URLs
    "url": _fn_url,
    "isURL": _fn_is_url,
    "getScheme": _fn_get_scheme,
    "getHost": _fn_get_host,
    "getHostname": _fn_get_hostname,
    "getPort": _fn_get_port,
    "getEscapedPath": _fn_get_escaped_path,
    "getQuery": _fn_get_query,
    # IPs and CIDRs
    "ip": _fn_ip,
    "isIP": _fn_is_ip,
    "isCanonical": _fn_is_canonical,
    "family": _fn_family,
    "isUnspecified": _fn_is_unspecified,
    "isLoopback": _fn_is_loopback,
    "isLinkLocalMulticast": _fn_is_link_local_multicast,
    "isLinkLocalUnicast": _fn_is_link_local_unicast,
    "isGlobalUnicast": _fn_is_global_unicast,
    "cidr": _fn_cidr,
    "isCIDR": _fn_is_cidr,
    "containsIP": _fn_contains_ip,
    "containsCIDR": _fn_contains_cidr,
    "masked": _fn_masked,
    "prefixLength": _fn_prefix_length,
    # quantities
    "quantity": _fn_quantity,
    "isQuantity": _fn_is_quantity,
    "sign": _fn_sign,
    "compareTo": _fn_compare_to,
    "isGreaterThan": _fn_is_greater_than,
    "isLessThan": _fn_is_less_than,
    "add": _fn_add,
    "sub": _fn_sub,
    "isInteger": _fn_is_integer,
    "asInteger": _fn_as_integer,
    "asApproximateFloat": _fn_as_approximate_float,
    # formats
    "named": _fn_named,
    "validate": _fn_validate,
    **{name: _format_constructor(name) for name in _FORMATS},
}
EXTENSION_FUNCTIONS: Mapping[str, Callable[..., Any]] = {
    name: _recorded(name, fn) for name, fn in _PLAIN_FUNCTIONS.items()
}

# `format.dns1123Label()` and `ip.isCanonical(s)` are namespaced functions in cel-go; here the
# namespace is a variable whose value the member functions check.
NAMESPACES: Mapping[str, Mapping[str, str]] = {"format": {_NS: "format"}, "ip": {_NS: "ip"}}
