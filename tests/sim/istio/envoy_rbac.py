"""Test-only: an evaluator of the Envoy filters istiod emits for AuthorizationPolicy.

This is the second implementation the parity tests compare ``meshrules.sim.istio.authz`` against.
It knows nothing of Istio: it reads Envoy listener filters (``envoy.filters.http.rbac``,
``envoy.filters.network.rbac``, ``envoy.filters.{http,network}.ext_authz``) in the proto-JSON form
of Istio's golden files and runs a request through them the way Envoy does:

* filters run in order; an RBAC filter's ``rules`` enforce (ALLOW: deny unless some policy matches;
  DENY: deny if some policy matches; LOG: never deny; ``rules: {}`` is an ALLOW with no policies,
  so it denies everything) and its ``shadowRules`` only write dynamic metadata
  (``<shadowRulesStatPrefix>shadow_effective_policy_id`` / ``…shadow_engine_result``);
* an ext_authz filter is called when its ``filterEnabledMetadata`` matches that metadata (always
  when it has none): we record "custom" and go on as if the server allowed;
* the HTTP connection manager normalises the path first (Istio's default ``normalize_path``).

Only what Istio generates is supported; anything else raises, so a new matcher in a golden file
fails loudly instead of being misread.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from meshrules.sim.request import Request

__all__ = ["EnvoyOutcome", "evaluate_filters", "hcm_normalize_path"]


@dataclass
class EnvoyOutcome:
    """What the filter chain did: allowed or not, which filter/policy denied, whether ext_authz ran."""

    allowed: bool = True
    denied_by: str = ""
    custom: bool = False  # some ext_authz filter would have called its server
    log: list[str] = field(default_factory=list)
    # Every RBAC policy of every filter (enforced and shadow) -> whether it matched the request.
    policy_matches: dict[str, bool] = field(default_factory=dict)


@dataclass
class _Stream:
    """The request as Envoy's RBAC matchers see it."""

    peer_uri: str | None
    direct_remote: ipaddress.IPv4Address | ipaddress.IPv6Address | None
    remote: ipaddress.IPv4Address | ipaddress.IPv6Address | None
    local: ipaddress.IPv4Address | ipaddress.IPv6Address | None
    local_port: int
    sni: str
    headers: dict[str, str]
    dynamic: dict[str, dict[str, Any]]


def evaluate_filters(filters: Sequence[Mapping[str, Any]], request: Request) -> EnvoyOutcome:
    """Run ``request`` through ``filters`` (in order) and report the outcome."""
    stream = _stream(request)
    out = EnvoyOutcome()
    for flt in filters:
        config = flt.get("typedConfig") or {}
        for rbac in (config.get("rules"), config.get("shadowRules")):
            for policy_name, policy in ((rbac or {}).get("policies") or {}).items():
                out.policy_matches[str(policy_name)] = _policy_matches(policy, stream)
    for flt in filters:
        name = str(flt["name"])
        config = flt.get("typedConfig") or {}
        if name in ("envoy.filters.http.rbac", "envoy.filters.network.rbac"):
            _rbac(name, config, stream, out)
        elif name in ("envoy.filters.http.ext_authz", "envoy.filters.network.ext_authz"):
            gate = config.get("filterEnabledMetadata")
            if gate is None or _metadata_matches(gate, stream):
                out.custom = True
                out.log.append(f"{name}: ext_authz server consulted (assumed to allow)")
        else:
            raise NotImplementedError(f"filter {name}")
        if not out.allowed:
            return out
    return out


def _rbac(name: str, config: Mapping[str, Any], stream: _Stream, out: EnvoyOutcome) -> None:
    shadow = config.get("shadowRules")
    if shadow is not None:
        action = shadow.get("action", "ALLOW")
        matched = _first_matching_policy(shadow, stream)
        prefix = str(config.get("shadowRulesStatPrefix", ""))
        meta = stream.dynamic.setdefault(name, {})
        if matched is not None:
            meta[prefix + "shadow_effective_policy_id"] = matched
        allowed = (matched is not None) if action == "ALLOW" else (matched is None) if action == "DENY" else True
        meta[prefix + "shadow_engine_result"] = "allowed" if allowed else "denied"
    rules = config.get("rules")
    if rules is None:
        return  # shadow-only: nothing enforced
    action = rules.get("action", "ALLOW")
    matched = _first_matching_policy(rules, stream)
    if action == "ALLOW" and matched is None:
        out.allowed, out.denied_by = False, f"{name}: no ALLOW policy matched"
    elif action == "DENY" and matched is not None:
        out.allowed, out.denied_by = False, f"{name}: DENY policy {matched}"
    elif action not in ("ALLOW", "DENY", "LOG"):
        raise NotImplementedError(f"RBAC action {action}")


def _first_matching_policy(rbac: Mapping[str, Any], stream: _Stream) -> str | None:
    # Envoy keeps policies in a name-ordered map.
    for policy_name, policy in sorted((rbac.get("policies") or {}).items()):
        if _policy_matches(policy, stream):
            return str(policy_name)
    return None


def _policy_matches(policy: Mapping[str, Any], stream: _Stream) -> bool:
    return any(_permission(p, stream) for p in policy["permissions"]) and any(
        _principal(p, stream) for p in policy["principals"])


# --- permissions and principals -------------------------------------------------------------------


def _permission(p: Mapping[str, Any], s: _Stream) -> bool:
    (kind, body), = p.items()
    if kind == "andRules":
        return all(_permission(r, s) for r in body["rules"])
    if kind == "orRules":
        return any(_permission(r, s) for r in body["rules"])
    if kind == "notRule":
        return not _permission(body, s)
    if kind == "any":
        return bool(body)
    if kind == "header":
        return _header_matches(body, s)
    if kind == "urlPath":
        return _string_matches(body["path"], _path_only(s.headers.get(":path")))
    if kind == "uriTemplate":
        path = _path_only(s.headers.get(":path"))
        template = _uri_template(body["typedConfig"]["pathTemplate"])
        return path is not None and template.fullmatch(path) is not None
    if kind == "destinationIp":
        return _in_cidr(s.local, body)
    if kind == "destinationPort":
        return s.local_port == int(body)
    if kind == "destinationPortRange":
        return int(body["start"]) <= s.local_port < int(body["end"])
    if kind == "requestedServerName":
        return _string_matches(body, s.sni)
    if kind == "metadata":
        return _metadata_matches(body, s)
    raise NotImplementedError(f"permission {kind}")


def _principal(p: Mapping[str, Any], s: _Stream) -> bool:
    (kind, body), = p.items()
    if kind == "andIds":
        return all(_principal(r, s) for r in body["ids"])
    if kind == "orIds":
        return any(_principal(r, s) for r in body["ids"])
    if kind == "notId":
        return not _principal(body, s)
    if kind == "any":
        return bool(body)
    if kind == "authenticated":
        if s.peer_uri is None:
            return False  # no TLS peer certificate
        matcher = body.get("principalName")
        return matcher is None or _string_matches(matcher, s.peer_uri)
    if kind in ("directRemoteIp", "sourceIp"):
        return _in_cidr(s.direct_remote, body)
    if kind == "remoteIp":
        return _in_cidr(s.remote, body)
    if kind == "header":
        return _header_matches(body, s)
    if kind == "urlPath":
        return _string_matches(body["path"], _path_only(s.headers.get(":path")))
    if kind == "metadata":
        return _metadata_matches(body, s)
    raise NotImplementedError(f"principal {kind}")


# --- leaf matchers ----------------------------------------------------------------------------------


_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}


def _string_matches(m: Mapping[str, Any], value: str | None) -> bool:
    if value is None:
        return False
    ignore = bool(m.get("ignoreCase"))
    fold = (lambda t: t.translate(_ASCII_LOWER)) if ignore else (lambda t: t)  # Envoy folds ASCII only
    if "exact" in m:
        return fold(value) == fold(m["exact"])
    if "prefix" in m:
        return fold(value).startswith(fold(m["prefix"]))
    if "suffix" in m:
        return fold(value).endswith(fold(m["suffix"]))
    if "contains" in m:
        return fold(m["contains"]) in fold(value)
    if "safeRegex" in m:
        return re.fullmatch(m["safeRegex"]["regex"], value) is not None
    raise NotImplementedError(f"string matcher {dict(m)}")


def _header_matches(m: Mapping[str, Any], s: _Stream) -> bool:
    value = s.headers.get(str(m["name"]).lower())
    if "presentMatch" in m:
        result = (value is not None) == bool(m["presentMatch"])
    elif value is None:
        result = False
    elif "stringMatch" in m:
        result = _string_matches(m["stringMatch"], value)
    elif "exactMatch" in m:
        result = value == m["exactMatch"]
    elif "prefixMatch" in m:
        result = value.startswith(m["prefixMatch"])
    elif "suffixMatch" in m:
        result = value.endswith(m["suffixMatch"])
    elif "safeRegexMatch" in m:
        result = re.fullmatch(m["safeRegexMatch"]["regex"], value) is not None
    else:
        raise NotImplementedError(f"header matcher {dict(m)}")
    return result != bool(m.get("invertMatch"))


def _metadata_matches(m: Mapping[str, Any], s: _Stream) -> bool:
    value: Any = s.dynamic.get(str(m["filter"]))
    for segment in m["path"]:
        value = value.get(segment["key"]) if isinstance(value, dict) else None
    return _value_matches(m["value"], value) != bool(m.get("invert"))


def _value_matches(m: Mapping[str, Any], value: Any) -> bool:
    (kind, body), = m.items()
    if kind == "stringMatch":
        return isinstance(value, str) and _string_matches(body, value)
    if kind == "listMatch":
        return isinstance(value, list) and any(_value_matches(body["oneOf"], v) for v in value)
    if kind == "orMatch":
        return any(_value_matches(v, value) for v in body["valueMatchers"])
    if kind == "presentMatch":
        return (value is not None) == bool(body)
    raise NotImplementedError(f"value matcher {kind}")


def _in_cidr(address: ipaddress.IPv4Address | ipaddress.IPv6Address | None, cidr: Mapping[str, Any]) -> bool:
    if address is None:
        return False
    network = ipaddress.ip_network(f"{cidr['addressPrefix']}/{int(cidr.get('prefixLen', 0))}", strict=False)
    return address.version == network.version and address in network


# Envoy source/extensions/path/uri_template_lib: pchar without "*" (and "=" allowed).
_LITERAL = "a-zA-Z0-9\\-._~%!$&'()+,;:@="


def _uri_template(template: str) -> re.Pattern[str]:
    out = []
    for token in re.split(r"(\*\*|\*)", template):
        if token == "**":
            out.append(f"[{_LITERAL}/]*")
        elif token == "*":
            out.append(f"[{_LITERAL}]+")
        else:
            out.append(re.escape(token))
    return re.compile("".join(out))


def _path_only(path: str | None) -> str | None:
    if path is None:
        return None
    return re.split(r"[?#]", path, maxsplit=1)[0]


# --- the request as Envoy sees it ------------------------------------------------------------------

_UNRESERVED = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")


def hcm_normalize_path(path: str) -> str:
    """The HTTP connection manager's ``normalize_path`` (Istio ``BASE``), written independently.

    Decodes percent-encoded unreserved characters, turns ``\\`` into ``/`` and removes dot segments
    with the RFC 3986 §5.2.4 input/output-buffer loop. The query is kept.
    """
    if not path.startswith("/"):
        return path
    cut = len(path)
    for sep in "?#":
        i = path.find(sep)
        if i >= 0:
            cut = min(cut, i)
    raw, rest = path[:cut], path[cut:]
    decoded, i = [], 0
    while i < len(raw):
        escape = raw[i + 1:i + 3]
        if raw[i] == "%" and re.fullmatch("[0-9A-Fa-f]{2}", escape):
            char = chr(int(escape, 16))
            decoded.append(char if char in _UNRESERVED else raw[i:i + 3])
            i += 3
            continue
        decoded.append("/" if raw[i] == "\\" else raw[i])
        i += 1
    buffer, output = "".join(decoded), ""
    while buffer:
        if buffer.startswith("../"):
            buffer = buffer[3:]
        elif buffer.startswith(("./", "/./")):
            buffer = buffer[2:]
        elif buffer == "/.":
            buffer = "/"
        elif buffer.startswith("/../"):
            buffer = buffer[3:]
            output = output[: output.rfind("/")] if "/" in output else ""
        elif buffer == "/..":
            buffer = "/"
            output = output[: output.rfind("/")] if "/" in output else ""
        elif buffer in (".", ".."):
            buffer = ""
        else:
            start = 1 if buffer.startswith("/") else 0
            end = buffer.find("/", start)
            end = len(buffer) if end < 0 else end
            output += buffer[:end]
            buffer = buffer[end:]
    return output + rest


def _stream(request: Request) -> _Stream:
    def ip(text: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
        try:
            return None if text is None else ipaddress.ip_address(text)
        except ValueError:
            return None

    headers: dict[str, str] = {}
    dynamic: dict[str, dict[str, Any]] = {}
    if request.protocol == "http":
        headers.update(dict(request.headers))
        headers[":method"] = request.method
        headers[":path"] = hcm_normalize_path(request.path)
        headers[":scheme"] = "https" if request.source_principal is not None else "http"
        if request.host is not None:
            headers[":authority"] = request.host
        payload: dict[str, Any] = {}
        for path, value in request.claims:
            node = payload
            for key in path[:-1]:
                node = node.setdefault(key, {})
            node[path[-1]] = value if isinstance(value, str) else list(value)
        if payload:
            dynamic["envoy.filters.http.jwt_authn"] = {"payload": payload}
    for filter_name, entries in request.metadata:
        dynamic.setdefault(filter_name, {}).update({k: v if isinstance(v, str) else list(v) for k, v in entries})
    return _Stream(
        peer_uri=None if request.source_principal is None else "spiffe://" + request.source_principal,
        direct_remote=ip(request.source_ip),
        remote=ip(request.client_ip),
        local=ip(request.destination_ip),
        local_port=request.destination_port,
        sni=request.sni or "",
        headers=headers,
        dynamic=dynamic,
    )
