"""CustomResourceDefinitions generated from the pydantic models (`meshrules crds`).

Pydantic's JSON Schema is turned into a Kubernetes *structural* schema: `$ref`s inlined, every
node typed, `Optional[X]` collapsed to `X` (absent and null mean the same to us), unions of
objects merged, free-form maps marked `x-kubernetes-preserve-unknown-fields`, and the
"exactly one of" constraints the models check in Python restated as CEL rules so the API server
enforces them too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from meshrules.model.discovery import (
    DISCOVERY_API_VERSION,
    Destination,
    DiscoveredObject,
    KubernetesCluster,
    Mesh,
    Workload,
)
from meshrules.model.policy import AccessPolicy, TrafficPolicy, VirtualMesh
from meshrules.model.testing import ReachabilityTest

# Field path (camelCase, dotted) → CEL rules; restates the models' "exactly one of" validators.
_EXACTLY_ONE = "[{fields}].filter(x, x).size() == 1"
CEL_RULES: Mapping[str, Mapping[str, list[tuple[str, str]]]] = {
    "VirtualMesh": {
        "spec.trust": [
            (_EXACTLY_ONE.format(fields="has(self.shared), has(self.limited)"), "set exactly one of shared or limited")
        ],
        "spec.trust.shared.rootCertificateAuthority": [
            (
                _EXACTLY_ONE.format(fields="has(self.generated), has(self.secret)"),
                "set exactly one of generated or secret",
            )
        ],
    },
    "TrafficPolicy": {
        "spec.httpRequestMatchers[].uri": [
            (
                _EXACTLY_ONE.format(fields="has(self.exact), has(self.prefix), has(self.regex)"),
                "set exactly one of exact, prefix or regex",
            )
        ],
        "spec.policy.faultInjection": [
            (
                _EXACTLY_ONE.format(fields="has(self.fixedDelay), has(self.abort)"),
                "set exactly one of fixedDelay or abort",
            )
        ],
    },
}

GROUPS: list[tuple[type[BaseModel], str, str, str]] = [
    (VirtualMesh, "networking.meshrules.io", "virtualmeshes", "VirtualMesh"),
    (TrafficPolicy, "networking.meshrules.io", "trafficpolicies", "TrafficPolicy"),
    (AccessPolicy, "networking.meshrules.io", "accesspolicies", "AccessPolicy"),
    (ReachabilityTest, "testing.meshrules.io", "reachabilitytests", "ReachabilityTest"),
]


def structural_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The structural openAPIV3Schema of one kind's `spec` (and `status`)."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.get("$defs", {})
    return _structural(raw, defs)


def _structural(node: Mapping[str, Any], defs: Mapping[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        return _structural(defs[node["$ref"].split("/")[-1]], defs)
    for key in ("anyOf", "oneOf"):
        if key in node:
            options = [o for o in node[key] if o.get("type") != "null"]
            merged = (
                _structural(options[0], defs) if len(options) == 1 else _merge([_structural(o, defs) for o in options])
            )
            if "description" in node:
                merged["description"] = node["description"]
            return merged
    out: dict[str, Any] = {}
    if "description" in node:
        out["description"] = node["description"]
    kind = node.get("type")
    if "const" in node:
        out["type"] = "string"
        out["enum"] = [node["const"]]
        return out
    if kind == "object":
        out["type"] = "object"
        props = node.get("properties")
        if props:
            out["properties"] = {k: _structural(v, defs) for k, v in props.items()}
            req = [r for r in node.get("required", []) if r not in ("apiVersion", "kind")]
            if req:
                out["required"] = sorted(req)
        addl = node.get("additionalProperties")
        if isinstance(addl, Mapping) and addl:
            out["additionalProperties"] = _structural(addl, defs)
        elif not props:
            out["x-kubernetes-preserve-unknown-fields"] = True
        return out
    if kind == "array":
        out["type"] = "array"
        out["items"] = (
            _structural(node.get("items", {}), defs)
            if node.get("items")
            else {"x-kubernetes-preserve-unknown-fields": True}
        )
        for k in ("minItems", "maxItems"):
            if k in node:
                out[k] = node[k]
        return out
    if kind in ("string", "integer", "number", "boolean"):
        out["type"] = kind
        for k in ("enum", "minimum", "maximum", "minLength", "maxLength", "pattern"):
            if k in node:
                out[k] = node[k]
        if node.get("format") == "date-time":
            out["format"] = "date-time"
        return out
    if "enum" in node:
        out["type"] = "string"
        out["enum"] = node["enum"]
        return out
    out["x-kubernetes-preserve-unknown-fields"] = True
    out["type"] = "object"
    return out


def _merge(options: list[dict[str, Any]]) -> dict[str, Any]:
    """Merge a union of object schemas into one object with the union of their properties."""
    if all(o.get("type") == "object" for o in options):
        props: dict[str, Any] = {}
        for o in options:
            props.update(o.get("properties", {}))
        return (
            {"type": "object", "properties": props}
            if props
            else {
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": True,
            }
        )
    return dict(options[0])


def _add_cel(schema: dict[str, Any], path: str, rules: list[tuple[str, str]]) -> None:
    node = schema
    for part in path.split("."):
        many = part.endswith("[]")
        node = node["properties"][part.removesuffix("[]")]
        if many:
            node = node["items"]
    node["x-kubernetes-validations"] = [{"rule": r, "message": m} for r, m in rules]


def crd(model: type[BaseModel], group: str, plural: str, kind: str) -> dict[str, Any]:
    """The CustomResourceDefinition of one kind."""
    full = structural_schema(model)
    props = full["properties"]
    spec = props["spec"]
    for path, rules in CEL_RULES.get(kind, {}).items():
        _add_cel({"properties": {"spec": spec}}, path, rules)
    version_schema: dict[str, Any] = {
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec,
        },
        "required": ["spec"],
    }
    if "status" in props:
        version_schema["properties"]["status"] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    version: dict[str, Any] = {
        "name": "v1alpha1",
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": version_schema},
    }
    if "status" in props:
        version["subresources"] = {"status": {}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}", "labels": {"app.kubernetes.io/part-of": "meshrules"}},
        "spec": {
            "group": group,
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "categories": ["meshrules"],
            },
            "scope": "Namespaced",
            "versions": [version],
        },
    }


# Discovery kinds (spec §2): what the controller writes; KubernetesCluster also carries a status
# (reachability, back-off) the controller updates through the status subresource.
DISCOVERY_GROUPS: list[tuple[type[DiscoveredObject], str, bool]] = [
    (KubernetesCluster, "kubernetesclusters", True),
    (Mesh, "meshes", False),
    (Workload, "workloads", False),
    (Destination, "destinations", False),
]


def discovery_crd(model: type[DiscoveredObject], plural: str, with_status: bool) -> dict[str, Any]:
    """The CustomResourceDefinition of one discovery kind (its fields under `spec`)."""
    group = DISCOVERY_API_VERSION.split("/")[0]
    spec = _structural(model.spec_json_schema(), model.spec_json_schema().get("$defs", {}))
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec,
        },
    }
    version: dict[str, Any] = {"name": "v1alpha1", "served": True, "storage": True}
    if with_status:
        schema["properties"]["status"] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        version["subresources"] = {"status": {}}
    version["schema"] = {"openAPIV3Schema": schema}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}", "labels": {"app.kubernetes.io/part-of": "meshrules"}},
        "spec": {
            "group": group,
            "names": {
                "kind": model.kind,
                "listKind": f"{model.kind}List",
                "plural": plural,
                "singular": model.kind.lower(),
                "categories": ["meshrules"],
            },
            "scope": "Namespaced",
            "versions": [version],
        },
    }


def policy_crds() -> list[dict[str, Any]]:
    """The CRDs of the kinds users write (networking and testing), in a stable order."""
    return [crd(*g) for g in GROUPS]


def discovery_crds() -> list[dict[str, Any]]:
    """The CRDs of the discovery kinds meshrules writes, in a stable order."""
    return [discovery_crd(*g) for g in DISCOVERY_GROUPS]


def all_crds() -> list[dict[str, Any]]:
    """Every meshrules CRD, in a stable order."""
    return [*policy_crds(), *discovery_crds()]
