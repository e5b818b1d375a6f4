"""The structural-schema walk: each OpenAPI and Kubernetes feature, on a small CRD made for it.

Protects the API server semantics the emitters rely on: what is refused, what is pruned, what the
CEL rules see (defaults, escaped names, typed values) and when they run at all.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshrules.emit.schema import Category, CrdRegistry, SchemaViolation


def registry(spec: dict[str, Any], *, namespaced: bool = True, status: bool = False, **root: Any) -> CrdRegistry:
    """A registry with one CRD, `example.com/v1 Thing`, whose `spec` has the schema `spec`."""
    version: dict[str, Any] = {
        "name": "v1",
        "served": True,
        "storage": True,
        "schema": {
            "openAPIV3Schema": {
                "type": "object",
                "properties": {
                    "spec": spec,
                    "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                },
                **root,
            }
        },
    }
    if status:
        version["subresources"] = {"status": {}}
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "things.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced" if namespaced else "Cluster",
            "names": {"kind": "Thing", "plural": "things"},
            "versions": [version],
        },
    }
    return CrdRegistry.from_documents([crd])


def thing(spec: Any, **top: Any) -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "t"}, "spec": spec, **top}


def check(schema: dict[str, Any], spec: Any, **kw: Any) -> list[SchemaViolation]:
    return registry(schema, **kw).validate(thing(spec))


def problems(schema: dict[str, Any], spec: Any, **kw: Any) -> list[str]:
    return [str(v) for v in check(schema, spec, **kw)]


def obj(**props: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props}


# -- types ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("type_", "value", "ok"),
    [
        ("string", "x", True),
        ("string", 1, False),
        ("integer", 1, True),
        ("integer", 1.0, True),  # JSON has one number type: 1.0 is an integer
        ("integer", 1.5, False),
        ("integer", True, False),
        ("number", 1, True),
        ("number", 1.5, True),
        ("number", False, False),
        ("boolean", True, True),
        ("boolean", "true", False),
        ("object", {}, True),
        ("object", [], False),
        ("array", [], True),
        ("array", {}, False),
    ],
)
def test_type(type_: str, value: Any, ok: bool) -> None:
    schema = obj(x={"type": type_, **({"items": {"type": "string"}} if type_ == "array" else {})})
    found = problems(schema, {"x": value})
    assert (found == []) is ok, found


def test_type_error_is_worded_like_the_api_server() -> None:
    assert problems(obj(x={"type": "integer"}), {"x": "80"}) == [
        'spec.x: Invalid value: "string": spec.x in body must be of type integer: "string"'
    ]


def test_null_is_refused_unless_nullable() -> None:
    assert problems(obj(x={"type": "string"}), {"x": None}) == [
        'spec.x: Invalid value: "null": spec.x in body must be of type string: "null"'
    ]
    assert problems(obj(x={"type": "string", "nullable": True}), {"x": None}) == []


def test_int_or_string() -> None:
    schema = obj(port={"x-kubernetes-int-or-string": True})
    assert problems(schema, {"port": 80}) == problems(schema, {"port": "http"}) == []
    assert len(problems(schema, {"port": 1.5})) == 1
    assert len(problems(schema, {"port": True})) == 1


# -- unknown fields: pruned, not refused ---------------------------------------------------------


def test_unknown_field_is_reported_as_pruned() -> None:
    found = check(obj(a={"type": "string"}), {"a": "x", "b": 1, "c": {"d": 2}})
    assert [(v.path, v.category) for v in found] == [("spec.b", Category.PRUNED), ("spec.c", Category.PRUNED)]
    assert str(found[0]) == 'spec.b: unknown field "spec.b"'


def test_preserve_unknown_fields_keeps_them() -> None:
    schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True, "properties": {"a": {"type": "string"}}}
    assert problems(schema, {"a": "x", "anything": {"goes": [1]}}) == []
    # Declared fields are still checked.
    assert len(problems(schema, {"a": 1})) == 1


def test_additional_properties_schema_checks_every_value() -> None:
    schema = {"type": "object", "additionalProperties": {"type": "integer", "minimum": 1}}
    assert problems(schema, {"a": 1, "b": 2}) == []
    assert problems(schema, {"a": 0}) == [
        "spec[a]: Invalid value: 0: spec[a] in body should be greater than or equal to 1"
    ]


def test_unknown_top_level_field_and_status_subresource() -> None:
    reg = registry(obj(), status=True)
    found = reg.validate(thing({}, status={"x": 1}, extra=1))
    assert [(v.path, v.category) for v in found] == [("extra", Category.PRUNED), ("status", Category.PRUNED)]
    # Without a status subresource, status is part of the object and validated as such.
    assert registry(obj()).validate(thing({}, status={"x": 1})) == []


# -- required and defaults --------------------------------------------------------------------------


def test_required() -> None:
    schema = {"type": "object", "required": ["host"], "properties": {"host": {"type": "string"}}}
    assert problems(schema, {}) == ["spec.host: Required value"]


def test_default_satisfies_required_and_is_seen_by_rules() -> None:
    schema = {
        "type": "object",
        "required": ["mode"],
        "properties": {"mode": {"type": "string", "default": "STRICT"}},
        "x-kubernetes-validations": [{"rule": "self.mode == 'STRICT'", "message": "mode must be STRICT"}],
    }
    assert problems(schema, {}) == []
    assert problems(schema, {"mode": "OFF"}) == ['spec: Invalid value: "object": mode must be STRICT']
    # A null in a non-nullable field with a default is defaulted, as the API server does.
    assert problems(schema, {"mode": None}) == []


def test_list_map_key_default_counts_for_uniqueness() -> None:
    schema = obj(
        ports={
            "type": "array",
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["port", "protocol"],
            "items": obj(port={"type": "integer"}, protocol={"type": "string", "default": "TCP"}),
        }
    )
    assert problems(schema, {"ports": [{"port": 80}, {"port": 80, "protocol": "UDP"}]}) == []
    assert problems(schema, {"ports": [{"port": 80}, {"port": 80, "protocol": "TCP"}]}) == [
        'spec.ports[1]: Duplicate value: {"port":80,"protocol":"TCP"}'
    ]


# -- value validations -------------------------------------------------------------------------------


def test_enum_lists_supported_values() -> None:
    schema = obj(mode={"type": "string", "enum": ["A", "B"]})
    assert problems(schema, {"mode": "C"}) == ['spec.mode: Unsupported value: "C": supported values: "A", "B"']
    # JSON equality: true is not 1.
    assert len(problems(obj(n={"type": "integer", "enum": [1]}), {"n": 1})) == 0


@pytest.mark.parametrize(
    ("fmt", "good", "bad"),
    [
        ("date-time", "2024-01-02T03:04:05.123Z", "2024-13-02T03:04:05Z"),
        ("date-time", "2024-01-02T03:04:05+01:00", "yesterday"),
        ("ipv4", "10.0.0.1", "10.0.0.256"),
        ("ipv6", "2001:db8::1", "10.0.0.1"),
        ("byte", "aGk=", "aGk"),
        ("duration", "3 days", "soon"),
        ("date", "2024-02-29", "2024-02-30"),
    ],
)
def test_formats_kubernetes_enforces(fmt: str, good: str, bad: str) -> None:
    schema = obj(x={"type": "string", "format": fmt})
    assert problems(schema, {"x": good}) == []
    assert problems(schema, {"x": bad}) == [
        f'spec.x: Invalid value: "{bad}": spec.x in body must be of type {fmt}: "{bad}"'
    ]


def test_formats_kubernetes_strips_are_not_enforced() -> None:
    # int32, int64, double and the like are dropped by the API server before validating.
    schema = obj(x={"type": "integer", "format": "int32"}, y={"type": "string", "format": "made-up"})
    assert problems(schema, {"x": 2**40, "y": "anything"}) == []


def test_numeric_bounds() -> None:
    schema = obj(
        pct={"type": "number", "minimum": 0, "maximum": 100},
        port={"type": "integer", "minimum": 0, "exclusiveMinimum": True, "maximum": 65536, "exclusiveMaximum": True},
        step={"type": "integer", "multipleOf": 5},
    )
    assert problems(schema, {"pct": 100, "port": 65535, "step": 10}) == []
    assert problems(schema, {"pct": 150.0, "port": 0, "step": 7}) == [
        "spec.pct: Invalid value: 150: spec.pct in body should be less than or equal to 100",
        "spec.port: Invalid value: 0: spec.port in body should be greater than 0",
        "spec.step: Invalid value: 7: spec.step in body should be a multiple of 5",
    ]


def test_string_lengths_count_code_points() -> None:
    schema = obj(s={"type": "string", "minLength": 2, "maxLength": 3})
    assert problems(schema, {"s": "héé"}) == []  # 3 code points, 5 bytes
    assert problems(schema, {"s": "abcd"}) == ["spec.s: Too long: may not be longer than 3"]
    assert problems(schema, {"s": "a"}) == [
        'spec.s: Invalid value: "a": spec.s in body should be at least 2 chars long'
    ]


def test_pattern_is_re2_and_unanchored() -> None:
    schema = obj(s={"type": "string", "pattern": "^[a-z]+$"}, t={"type": "string", "pattern": "b"})
    assert problems(schema, {"s": "abc", "t": "abc"}) == []
    # Go's `$` does not match before a trailing newline (Python's `re` would).
    assert problems(schema, {"s": "abc\n"}) == [
        "spec.s: Invalid value: \"abc\\n\": spec.s in body should match '^[a-z]+$'"
    ]


def test_array_bounds_and_sets() -> None:
    schema = obj(
        xs={"type": "array", "minItems": 1, "maxItems": 2, "items": {"type": "string"}},
        set={"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
    )
    assert problems(schema, {"xs": ["a"], "set": ["a", "b"]}) == []
    assert problems(schema, {"xs": [], "set": ["a", "a"]}) == [
        'spec.set[1]: Duplicate value: "a"',
        "spec.xs: Invalid value: []: spec.xs in body should have at least 1 items",
    ]
    assert problems(schema, {"xs": ["a", "b", "c"]}) == ["spec.xs: Too many: 3: must have at most 2 items"]


def test_object_property_counts() -> None:
    schema = {"type": "object", "minProperties": 1, "maxProperties": 2, "additionalProperties": {"type": "string"}}
    assert problems(schema, {"a": "1"}) == []
    assert problems(schema, {}) == ["spec: Invalid value: {}: spec in body should have at least 1 properties"]
    assert problems(schema, {"a": "1", "b": "2", "c": "3"}) == ["spec: Too many: 3: must have at most 2 items"]


# -- junctors, as CRD generators use them ------------------------------------------------------------

# Istio's "at most one of simple, consistentHash".
AT_MOST_ONE = {
    "type": "object",
    "properties": {"simple": {"type": "string"}, "consistentHash": {"type": "object"}},
    "oneOf": [
        {"not": {"anyOf": [{"required": ["simple"]}, {"required": ["consistentHash"]}]}},
        {"required": ["simple"]},
        {"required": ["consistentHash"]},
    ],
}


@pytest.mark.parametrize("spec", [{}, {"simple": "RANDOM"}, {"consistentHash": {}}])
def test_one_of_accepts_at_most_one(spec: dict[str, Any]) -> None:
    assert problems(AT_MOST_ONE, spec) == []


def test_one_of_refuses_both_and_names_them() -> None:
    (found,) = problems(AT_MOST_ONE, {"simple": "RANDOM", "consistentHash": {}})
    assert "spec in body must validate one and only one schema (oneOf)" in found
    assert "at most one of simple, consistentHash may be set" in found


def test_any_of_all_of_not() -> None:
    schema = obj(
        value={"type": "string", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]},
        name={"type": "string", "allOf": [{"minLength": 2}, {"pattern": "^a"}], "not": {"pattern": "z$"}},
    )
    assert problems(schema, {"value": "::1", "name": "ab"}) == []
    assert problems(schema, {"value": "host", "name": "az"}) == [
        'spec.name: Invalid value: "az": spec.name in body must not validate the schema (not)',
        'spec.value: Invalid value: "host": spec.value in body must validate at least one schema (anyOf)',
    ]
    assert problems(schema, {"name": "b"}) == [
        'spec.name: Invalid value: "b": spec.name in body must validate all the schemas (allOf)'
    ]


# -- metadata: ObjectMeta's own rules ----------------------------------------------------------------


def test_metadata_name_must_be_a_dns_subdomain() -> None:
    reg = registry(obj())
    (found,) = [str(v) for v in reg.validate({**thing({}), "metadata": {"name": "Bad_Name"}})]
    assert found.startswith('metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain')
    assert [str(v) for v in reg.validate({**thing({}), "metadata": {}})] == [
        "metadata.name: Required value: name or generateName is required"
    ]
    assert reg.validate({**thing({}), "metadata": {"generateName": "thing-"}}) == []
    assert reg.validate({**thing({}), "metadata": {"name": "a" * 253}}) == []
    assert len(reg.validate({**thing({}), "metadata": {"name": "a" * 254}})) == 1


def test_metadata_labels_annotations_namespace() -> None:
    reg = registry(obj())
    meta = {
        "name": "t",
        "namespace": "Not_A_Label",
        "labels": {"app.kubernetes.io/name": "ok", "bad key": "v", "k": "bad value!"},
        "annotations": {"Example.com/Key": "any text at all", "x": 1},
        "uid": "ignored-on-create",
        "bogus": 1,
    }
    found = reg.validate({**thing({}), "metadata": meta})
    assert [(v.path, v.category) for v in found] == [
        ("metadata.annotations[x]", Category.SCHEMA),
        ("metadata.bogus", Category.PRUNED),
        ("metadata.labels", Category.SCHEMA),
        ("metadata.labels[k]", Category.SCHEMA),
        ("metadata.namespace", Category.SCHEMA),
    ]


def test_cluster_scoped_object_may_not_name_a_namespace() -> None:
    found = registry(obj(), namespaced=False).validate({**thing({}), "metadata": {"name": "t", "namespace": "x"}})
    assert [str(v) for v in found] == ["metadata.namespace: Forbidden: not allowed on this type"]


def test_annotations_are_limited_in_total_size() -> None:
    big = {"a": "x" * (256 * 1024)}
    found = registry(obj()).validate({**thing({}), "metadata": {"name": "t", "annotations": big}})
    assert [str(v) for v in found] == ["metadata.annotations: Too long: must have at most 262144 bytes"]


def test_crd_may_constrain_metadata_name() -> None:
    reg = CrdRegistry.from_documents(
        [
            {
                "kind": "CustomResourceDefinition",
                "spec": {
                    "group": "example.com",
                    "names": {"kind": "Thing", "plural": "things"},
                    "scope": "Namespaced",
                    "versions": [
                        {
                            "name": "v1",
                            "served": True,
                            "schema": {
                                "openAPIV3Schema": {
                                    "type": "object",
                                    "properties": {
                                        "metadata": obj(name={"type": "string", "maxLength": 5}),
                                        "spec": obj(),
                                    },
                                }
                            },
                        }
                    ],
                },
            }
        ]
    )
    assert reg.validate({**thing({}), "metadata": {"name": "short"}}) == []
    assert [str(v) for v in reg.validate({**thing({}), "metadata": {"name": "longer"}})] == [
        "metadata.name: Too long: may not be longer than 5"
    ]


# -- CEL rules: where they run and what they see ---------------------------------------------------


def rule(r: str, message: str = "bad", **extra: Any) -> dict[str, Any]:
    return {"x-kubernetes-validations": [{"rule": r, "message": message, **extra}]}


def test_rule_on_a_field_runs_only_where_the_field_is() -> None:
    schema = obj(port={"type": "integer", **rule("self <= 65535", "port must be between 1-65535")})
    assert problems(schema, {}) == []
    assert problems(schema, {"port": 70000}) == ['spec.port: Invalid value: "integer": port must be between 1-65535']


def test_rule_on_list_items_runs_per_item() -> None:
    schema = obj(hosts={"type": "array", "items": {"type": "string", **rule("self != '*'", "no wildcard")}})
    assert problems(schema, {"hosts": ["a", "*", "b", "*"]}) == [
        'spec.hosts[1]: Invalid value: "string": no wildcard',
        'spec.hosts[3]: Invalid value: "string": no wildcard',
    ]


def test_rules_are_skipped_when_types_are_wrong() -> None:
    schema = {
        "type": "object",
        "properties": {"n": {"type": "integer"}, "s": {"type": "string", **rule("self.size() > 1")}},
        **rule("has(self.n)"),
    }
    found = check(schema, {"n": "1", "s": ""})
    assert [(v.path, v.category) for v in found] == [("", Category.CEL), ("spec.n", Category.SCHEMA)]
    assert "some validation rules were not checked because the object was invalid" in found[0].message


def test_rules_see_escaped_property_names() -> None:
    schema = {
        "type": "object",
        "properties": {"namespace": {"type": "string"}, "dotted.name": {"type": "string"}},
        **rule("self.__namespace__ == 'a' && self.dotted__dot__name == 'b'"),
    }
    assert problems(schema, {"namespace": "a", "dotted.name": "b"}) == []


def test_rules_see_values_typed_by_the_schema() -> None:
    schema = obj(
        ratio={"type": "number", **rule("type(self) == double")},
        count={"type": "integer", **rule("type(self) == int")},
        when={"type": "string", "format": "date-time", **rule("self < timestamp('2030-01-01T00:00:00Z')")},
        blob={"type": "string", "format": "byte", **rule("self.size() == 2")},
        wait={"type": "string", "format": "duration", **rule("self > duration('1h')")},
    )
    spec = {"ratio": 1, "count": 3.0, "when": "2024-01-01T00:00:00Z", "blob": "aGk=", "wait": "2 days"}
    assert problems(schema, spec) == []


def test_rules_do_not_see_undeclared_fields() -> None:
    schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True, "properties": {}, **rule("!has(self.x)")}
    assert problems(schema, {"x": 1}) == []


def test_root_rule_sees_metadata_name_only() -> None:
    reg = registry(obj(), **rule("self.metadata.name.startsWith('t') && !has(self.metadata.labels)"))
    assert reg.validate({**thing({}), "metadata": {"name": "t", "labels": {"a": "b"}}}) == []


def test_field_path_and_reason() -> None:
    schema = {
        "type": "object",
        "properties": {"a": obj(b={"type": "string"})},
        **rule("self.a.b != 'x'", "b may not be x", fieldPath=".a['b']", reason="FieldValueForbidden"),
    }
    assert problems(schema, {"a": {"b": "x"}}) == ["spec.a[b]: Forbidden: b may not be x"]


def test_violations_are_sorted_and_deterministic() -> None:
    schema = obj(z={"type": "string"}, a={"type": "string"})
    found = check(schema, {"z": 1, "a": 2})
    assert [v.path for v in found] == ["spec.a", "spec.z"]
    assert found == check(schema, {"a": 2, "z": 1})


# -- robustness --------------------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
KINDS = [
    ("networking.istio.io/v1", "VirtualService"),
    ("networking.istio.io/v1", "ServiceEntry"),
    ("security.istio.io/v1", "AuthorizationPolicy"),
    ("gateway.networking.k8s.io/v1", "HTTPRoute"),
    ("policy.linkerd.io/v1beta3", "Server"),
]


@given(kind=st.sampled_from(KINDS), spec=JSON, metadata=JSON)
def test_validator_reports_rather_than_raises(kind: tuple[str, str], spec: Any, metadata: Any) -> None:
    # Whatever an emitter writes, the answer is a list of violations, never an exception.
    api_version, k = kind
    found = CrdRegistry.bundled().validate({"apiVersion": api_version, "kind": k, "metadata": metadata, "spec": spec})
    assert all(isinstance(v, SchemaViolation) for v in found)
