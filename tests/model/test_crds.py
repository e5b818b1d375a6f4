"""`meshrules crds`: every generated schema is a valid Kubernetes structural schema.

The checker below restates the apiextensions rules for structural schemas
(https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#specifying-a-structural-schema):
every node has a type (unless it preserves unknown fields or is int-or-string), no `$ref`,
`properties` and `additionalProperties` are exclusive, junctors carry only value validations,
and `metadata` restricts nothing but name.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from meshrules.model.crds import all_crds
from meshrules.model.policy import POLICY_KINDS

JUNCTORS = ("allOf", "anyOf", "oneOf", "not")
FORBIDDEN_IN_JUNCTORS = {"type", "description", "default", "additionalProperties", "nullable", "title"}


def structural_problems(node: Any, path: str = "", in_junctor: bool = False) -> list[str]:
    """Every way ``node`` breaks the structural-schema rules, as `path: problem`."""
    problems: list[str] = []
    if not isinstance(node, dict):
        return [f"{path}: schema is not an object"]
    if "$ref" in node:
        problems.append(f"{path}: $ref is not allowed")
    if in_junctor:
        problems += [f"{path}: `{k}` inside a junctor" for k in FORBIDDEN_IN_JUNCTORS & node.keys()]
    elif "type" not in node and not (
        node.get("x-kubernetes-preserve-unknown-fields") or node.get("x-kubernetes-int-or-string")
    ):
        problems.append(f"{path}: no type")
    if "properties" in node and "additionalProperties" in node:
        problems.append(f"{path}: properties and additionalProperties together")
    if node.get("type") == "array" and "items" not in node:
        problems.append(f"{path}: array without items")
    for key, sub in node.get("properties", {}).items():
        problems += structural_problems(sub, f"{path}.{key}", in_junctor)
    if isinstance(node.get("additionalProperties"), dict):
        problems += structural_problems(node["additionalProperties"], f"{path}.*", in_junctor)
    if "items" in node:
        problems += structural_problems(node["items"], f"{path}[]", in_junctor)
    for j in JUNCTORS:
        subs = node.get(j, [])
        for i, sub in enumerate(subs if isinstance(subs, list) else [subs]):
            problems += structural_problems(sub, f"{path}.{j}[{i}]", True)
    return problems


@pytest.mark.parametrize("crd", all_crds(), ids=lambda c: c["metadata"]["name"])
def test_generated_crd_schema_is_structural(crd: dict[str, Any]) -> None:
    for version in crd["spec"]["versions"]:
        schema = version["schema"]["openAPIV3Schema"]
        assert structural_problems(schema) == []
        assert set(schema["properties"]["metadata"]) == {"type"}


def test_structural_checker_catches_violations() -> None:
    bad = {"type": "object", "properties": {"a": {"description": "untyped"}, "b": {"$ref": "#/x", "type": "string"}}}
    assert structural_problems(bad) == [".a: no type", ".b: $ref is not allowed"]


def test_crds_cover_every_policy_kind_and_round_trip_through_yaml() -> None:
    crds = all_crds()
    kinds = {c["spec"]["names"]["kind"] for c in crds}
    assert set(POLICY_KINDS) | {"ReachabilityTest"} <= kinds
    assert list(yaml.safe_load_all(yaml.safe_dump_all(crds))) == crds


def test_exactly_one_constraints_are_cel_rules() -> None:
    tp = next(c for c in all_crds() if c["spec"]["names"]["kind"] == "TrafficPolicy")
    spec = tp["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    uri = spec["properties"]["httpRequestMatchers"]["items"]["properties"]["uri"]
    assert uri["x-kubernetes-validations"][0]["message"] == "set exactly one of exact, prefix or regex"


def test_meshrules_objects_validate_against_their_generated_crds() -> None:
    """The bundled scenario's policies and discovery objects pass the generated schemas and CEL rules."""
    from meshrules.emit.schema import CrdRegistry, validate
    from meshrules.kube.scenario import load_scenario
    from meshrules.pipeline import analyse
    from meshrules.resources import bundled_scenario

    registry = CrdRegistry.from_documents(all_crds())
    analysis = analyse(load_scenario(bundled_scenario("bookinfo-multicluster")))
    objects = [p.to_wire() for p in analysis.scenario.policies] + analysis.discovery.objects()
    assert len(objects) > 30
    for obj in objects:
        assert validate(obj, registry) == [], (obj["kind"], obj["metadata"]["name"])
    bad = {
        "apiVersion": "networking.meshrules.io/v1alpha1",
        "kind": "TrafficPolicy",
        "metadata": {"name": "x"},
        "spec": {"httpRequestMatchers": [{"uri": {"prefix": "/a", "exact": "/b"}}]},
    }
    assert [v.category.value for v in validate(bad, registry)] == ["cel"]
