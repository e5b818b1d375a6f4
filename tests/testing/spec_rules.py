"""An independent checker of spec §3's rules for policies in wire format, used by the kit's tests.

Written from the spec, not from `meshrules.model`, so that the generator and the strategies are
checked against the contract itself; `test_strategies.py` separately checks that the models agree.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from meshrules.testing import Topology, mesh_name

HTTP_METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE"})
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)(ms|us|ns|h|m|s))+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|us|ns|h|m|s)")
_UNIT_MS = {"h": 3_600_000.0, "m": 60_000.0, "s": 1_000.0, "ms": 1.0, "us": 1e-3, "ns": 1e-6}

# The wire schema of spec §3: a dict is an object with exactly these optional keys; [x] is a list
# of x; strings name leaf types checked below.
_REF = {"name": "str", "namespace": "str", "cluster": "str"}
_STRING_MATCH = {"exact": "str", "prefix": "str", "regex": "str"}
_WORKLOAD_SELECTOR = {"clusters": ["str"], "namespaces": ["str"], "labels": "labels"}
_DESTINATION_SELECTOR = {"clusters": ["str"], "namespaces": ["str"], "labels": "labels", "services": [_REF]}
_IDENTITY_SELECTOR = {"clusters": ["str"], "namespaces": ["str"], "serviceAccounts": [_REF]}
_MATCHER = {
    "uri": _STRING_MATCH,
    "method": "method",
    "headers": [{"name": "str", "value": "str", "regex": "bool", "invertMatch": "bool"}],
    "queryParameters": [{"name": "str", "value": "str", "regex": "bool"}],
}
_TRAFFIC_SETTINGS = {
    "requestTimeout": "duration",
    "retries": {"attempts": "count", "perTryTimeout": "duration"},
    "trafficShift": {
        "destinations": [{"service": _REF, "subset": "labels", "port": "port", "weight": "count"}],
    },
    "faultInjection": {"fixedDelay": "duration", "abort": {"httpStatus": "status"}, "percentage": "percentage"},
    "corsPolicy": {
        "allowOrigins": [_STRING_MATCH],
        "allowMethods": ["method"],
        "allowHeaders": ["str"],
        "exposeHeaders": ["str"],
        "maxAge": "duration",
        "allowCredentials": "bool",
    },
    "headerManipulation": {
        "appendRequestHeaders": "labels",
        "removeRequestHeaders": ["str"],
        "appendResponseHeaders": "labels",
        "removeResponseHeaders": ["str"],
    },
    "mirror": {"service": _REF, "port": "port", "percentage": "percentage"},
    "outlierDetection": {
        "consecutiveErrors": "count",
        "interval": "duration",
        "baseEjectionTime": "duration",
        "maxEjectionPercent": "percentage",
    },
    "mtls": {"mode": "mtls"},
}
_SPECS: Mapping[str, Any] = {
    "TrafficPolicy": {
        "sourceSelector": [_WORKLOAD_SELECTOR],
        "destinationSelector": [_DESTINATION_SELECTOR],
        "httpRequestMatchers": [_MATCHER],
        "policy": _TRAFFIC_SETTINGS,
    },
    "AccessPolicy": {
        "sourceSelector": [_IDENTITY_SELECTOR],
        "destinationSelector": [_DESTINATION_SELECTOR],
        "allowedPaths": ["path"],
        "allowedMethods": ["method"],
        "allowedPorts": ["port"],
    },
    "VirtualMesh": {
        "meshes": [{"name": "str", "namespace": "str"}],
        "trust": {
            "shared": {
                "rootCertificateAuthority": {
                    "generated": {"ttlDays": "count", "keyAlgorithm": "str", "orgName": "str"},
                    "secret": {"name": "str", "namespace": "str"},
                },
                "intermediateTtlDays": "count",
            },
            "limited": {},
        },
        "federation": {
            "hostnameSuffix": "str",
            "linkerd": {"mode": "str"},
            "selectors": [{"destinations": [_DESTINATION_SELECTOR], "meshes": [{"name": "str", "namespace": "str"}]}],
        },
        "accessPolicyEnforcement": "enforcement",
    },
}


@dataclass(frozen=True)
class Violation:
    """One broken rule: the field it is about and why."""

    field: str
    message: str


def duration_ms(text: str) -> float | None:
    """Milliseconds of an Istio-style duration, or None when it is not one."""
    if not isinstance(text, str) or not _DURATION.match(text):
        return None
    return sum(float(n) * _UNIT_MS[u] for n, u in _DURATION_PART.findall(text))


def policy_violations(policy: Mapping[str, Any], topology: Topology | None = None) -> list[Violation]:
    """Every rule of spec §3 that ``policy`` breaks; with a topology, also its references."""
    out: list[Violation] = []
    kind = policy.get("kind")
    if policy.get("apiVersion") != "networking.meshrules.io/v1alpha1" or kind not in _SPECS:
        return [Violation("kind", f"not a meshrules policy: {policy.get('apiVersion')} {kind}")]
    unknown = set(policy) - {"apiVersion", "kind", "metadata", "spec"}
    out += [Violation(key, "unknown field") for key in sorted(unknown)]
    _metadata(policy.get("metadata"), out)
    spec = policy.get("spec", {})
    _shape(spec, _SPECS[str(kind)], "spec", out)
    if not out:  # semantic rules presume the shape is right
        if kind == "TrafficPolicy":
            _traffic_rules(spec, topology, out)
        elif kind == "VirtualMesh":
            _virtual_mesh_rules(spec, topology, out)
        else:
            _access_rules(spec, topology, out)
    return out


def _metadata(meta: Any, out: list[Violation]) -> None:
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
        out.append(Violation("metadata.name", "missing"))
        return
    if not _DNS_SUBDOMAIN.match(meta["name"]):
        out.append(Violation("metadata.name", "not a DNS-1123 subdomain"))
    if "namespace" in meta and not _DNS_LABEL.match(str(meta["namespace"])):
        out.append(Violation("metadata.namespace", "not a DNS-1123 label"))
    if "creationTimestamp" in meta:
        try:
            datetime.fromisoformat(str(meta["creationTimestamp"]).replace("Z", "+00:00"))
        except ValueError:
            out.append(Violation("metadata.creationTimestamp", "not an RFC 3339 time"))
    for key in sorted(set(meta) - {"name", "namespace", "creationTimestamp", "labels", "annotations"}):
        out.append(Violation(f"metadata.{key}", "unexpected field"))


def _shape(value: Any, schema: Any, path: str, out: list[Violation]) -> None:
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            out.append(Violation(path, "not an object"))
            return
        for key, item in value.items():
            if key not in schema:
                out.append(Violation(f"{path}.{key}", "unknown field"))
            else:
                _shape(item, schema[key], f"{path}.{key}", out)
        return
    if isinstance(schema, list):
        if not isinstance(value, list):
            out.append(Violation(path, "not a list"))
            return
        for i, item in enumerate(value):
            _shape(item, schema[0], f"{path}[{i}]", out)
        return
    problem = _leaf_problem(value, schema)
    if problem:
        out.append(Violation(path, problem))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _leaf_problem(value: Any, kind: str) -> str | None:
    if kind == "str":
        return None if isinstance(value, str) else "not a string"
    if kind == "bool":
        return None if isinstance(value, bool) else "not a boolean"
    if kind == "labels":
        ok = isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
        return None if ok else "not a string map"
    if kind == "count":
        return None if _is_int(value) and value >= 0 else "not a non-negative integer"
    if kind == "port":
        return None if _is_int(value) and 1 <= value <= 65535 else "not a port in [1, 65535]"
    if kind == "status":
        return None if _is_int(value) and 200 <= value <= 599 else "not an HTTP status"
    if kind == "percentage":
        ok = isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 100
        return None if ok else "percentage not in [0, 100]"
    if kind == "duration":
        ms = duration_ms(value)
        if ms is None:
            return "not an Istio-style duration"
        return None if ms >= 1 else "duration below 1ms"
    if kind == "method":
        return None if value in HTTP_METHODS else "not an HTTP method"
    if kind == "mtls":
        return None if value in ("ISTIO_MUTUAL", "DISABLE") else "not an mTLS mode"
    if kind == "enforcement":
        return None if value in ("DISABLED", "ENFORCED") else "not an enforcement mode"
    if kind == "path":
        inner = value[1:-1] if isinstance(value, str) and len(value) > 1 else ""
        ok = isinstance(value, str) and value != "" and "*" not in inner
        return None if ok else "not an Istio path (`*` only at the start or end)"
    raise AssertionError(f"unknown leaf type {kind}")


def _one_of(value: Mapping[str, Any], keys: tuple[str, ...], path: str, out: list[Violation]) -> None:
    if sum(key in value for key in keys) != 1:
        out.append(Violation(path, f"needs exactly one of {keys}"))


def _selector_forms(selectors: list[dict[str, Any]], refs: str, path: str, out: list[Violation]) -> None:
    for i, sel in enumerate(selectors):
        if refs in sel and set(sel) - {refs}:
            out.append(Violation(f"{path}[{i}]", f"`{refs}` cannot be combined with other fields"))
        for key, items in sel.items():
            if isinstance(items, list) and not items:
                out.append(Violation(f"{path}[{i}].{key}", "empty list (omit the field instead)"))


def _service(topology: Topology | None, ref: Mapping[str, str], path: str, out: list[Violation]) -> Any:
    if not {"name", "namespace", "cluster"} <= set(ref):
        out.append(Violation(path, "a backend needs name, namespace and cluster"))
        return None
    if topology is None:
        return None
    for svc in topology.services:
        if (svc.cluster, svc.namespace, svc.name) == (ref["cluster"], ref["namespace"], ref["name"]):
            return svc
    out.append(Violation(path, "no such service in the topology"))
    return None


def _traffic_rules(spec: dict[str, Any], topology: Topology | None, out: list[Violation]) -> None:
    _selector_forms(spec.get("destinationSelector", []), "services", "spec.destinationSelector", out)
    for i, matcher in enumerate(spec.get("httpRequestMatchers", [])):
        if "uri" in matcher:
            _one_of(matcher["uri"], ("exact", "prefix", "regex"), f"spec.httpRequestMatchers[{i}].uri", out)
    policy = spec.get("policy", {})
    if not policy:
        out.append(Violation("spec.policy", "sets nothing"))
    has_sources = any(
        sel.get("clusters") or sel.get("namespaces") or sel.get("labels") for sel in spec.get("sourceSelector", [])
    )
    for name in ("outlierDetection", "mtls"):
        if name in policy and has_sources:
            out.append(Violation(f"spec.policy.{name}", "needs an empty sourceSelector"))
    if "faultInjection" in policy:
        _one_of(policy["faultInjection"], ("fixedDelay", "abort"), "spec.policy.faultInjection", out)
    for j, origin in enumerate(policy.get("corsPolicy", {}).get("allowOrigins", [])):
        _one_of(origin, ("exact", "prefix", "regex"), f"spec.policy.corsPolicy.allowOrigins[{j}]", out)
    shift = policy.get("trafficShift")
    if shift is not None:
        backends = shift.get("destinations", [])
        if not backends:
            out.append(Violation("spec.policy.trafficShift.destinations", "no destinations"))
        if len(backends) > 1 and sum(b.get("weight", 0) for b in backends) != 100:
            out.append(Violation("spec.policy.trafficShift.destinations", "weights do not sum to 100"))
        for i, backend in enumerate(backends):
            path = f"spec.policy.trafficShift.destinations[{i}]"
            svc = _service(topology, backend.get("service", {}), f"{path}.service", out)
            if svc is None:
                continue
            if "port" in backend and backend["port"] not in [p for _, p in svc.ports]:
                out.append(Violation(f"{path}.port", "not a port of the service"))
            subset = backend.get("subset")
            if subset is not None and not _subset_exists(topology, svc, subset):
                out.append(Violation(f"{path}.subset", "no workload of the service has these labels"))
    if "mirror" in policy:
        svc = _service(topology, policy["mirror"].get("service", {}), "spec.policy.mirror.service", out)
        if svc is not None and "port" in policy["mirror"] and policy["mirror"]["port"] not in [p for _, p in svc.ports]:
            out.append(Violation("spec.policy.mirror.port", "not a port of the service"))


def _subset_exists(topology: Topology | None, svc: Any, subset: Mapping[str, str]) -> bool:
    assert topology is not None
    return any(
        (w.cluster, w.namespace, w.service) == (svc.cluster, svc.namespace, svc.name)
        and subset.items() <= w.labels.items()
        for w in topology.workloads
    )


def _access_rules(spec: dict[str, Any], topology: Topology | None, out: list[Violation]) -> None:
    _selector_forms(spec.get("destinationSelector", []), "services", "spec.destinationSelector", out)
    _selector_forms(spec.get("sourceSelector", []), "serviceAccounts", "spec.sourceSelector", out)
    for key in ("allowedPaths", "allowedMethods", "allowedPorts"):
        if key in spec and not spec[key]:
            out.append(Violation(f"spec.{key}", "empty list (omit the field instead)"))


def _virtual_mesh_rules(spec: dict[str, Any], topology: Topology | None, out: list[Violation]) -> None:
    if not spec.get("meshes"):
        out.append(Violation("spec.meshes", "a VirtualMesh needs members"))
    trust = spec.get("trust")
    if trust is not None:
        _one_of(trust, ("shared", "limited"), "spec.trust", out)
    if topology is not None:
        known = {mesh_name(c, m) for c, m in topology.meshes.items()}
        members = {m["name"] for m in spec.get("meshes", [])}
        types = {mesh for c, mesh in topology.meshes.items() if mesh_name(c, mesh) in members}
        for i, member in enumerate(spec.get("meshes", [])):
            if member["name"] not in known:
                out.append(Violation(f"spec.meshes[{i}]", "no such mesh in the topology"))
        if len(types) > 1:
            out.append(Violation("spec.meshes", "members of different mesh types federate nothing"))
