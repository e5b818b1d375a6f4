"""Policy models: the spec's examples parse; durations, acceptance order and validation behave."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from meshrules.model.common import duration_ms, format_duration
from meshrules.model.policy import POLICY_KINDS, AccessPolicy, TrafficPolicy, VirtualMesh
from meshrules.model.testing import ReachabilityTest
from meshrules.model.validation import validate_policy

EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "spec-examples"


def _examples(name: str) -> list[dict[str, object]]:
    return [d for d in yaml.safe_load_all((EXAMPLES / name).read_text()) if d]


def test_every_spec_example_policy_parses_and_round_trips() -> None:
    for doc in _examples("policies.yaml"):
        model = POLICY_KINDS[str(doc["kind"])]
        obj = model.model_validate(doc)
        again = model.model_validate(obj.to_wire())
        assert again == obj
        assert validate_policy(obj) == ()


def test_every_spec_example_test_parses() -> None:
    tests = [ReachabilityTest.model_validate(d) for d in _examples("tests.yaml")]
    assert tests[0].spec.from_.workload == "cluster-1/bookinfo/productpage-v1"
    assert tests[1].spec.from_.selector is not None


@pytest.mark.parametrize(
    ("text", "ms"),
    [("250ms", 250), ("10s", 10_000), ("1m", 60_000), ("1m30s", 90_000), ("1.5s", 1500), ("1h", 3_600_000)],
)
def test_istio_durations_parse(text: str, ms: float) -> None:
    assert duration_ms(text) == ms


@pytest.mark.parametrize("text", ["", "10", "s", "ten seconds", "-1s", "1d"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        duration_ms(text)


def test_format_duration_is_canonical() -> None:
    assert [format_duration(x) for x in (2000, 500, 1500, 0.5)] == ["2s", "500ms", "1.5s", "0.5ms"]


def _tp(name: str, ts: str | None = None, ns: str = "shop", **spec: object) -> TrafficPolicy:
    meta: dict[str, object] = {"name": name, "namespace": ns}
    if ts:
        meta["creationTimestamp"] = ts
    return TrafficPolicy.model_validate({"metadata": meta, "spec": spec})


def test_acceptance_order_is_time_then_namespace_name_and_untimed_is_newest() -> None:
    policies = [
        _tp("z", None),
        _tp("b", "2026-01-02T00:00:00Z"),
        _tp("a", "2026-01-02T00:00:00Z"),
        _tp("y", "2026-01-01T01:00:00+02:00"),  # 2025-12-31T23:00Z: the oldest
        _tp("c", None, ns="a-first"),
    ]
    ordered = [p.name for p in sorted(policies, key=lambda p: p.acceptance_key())]
    assert ordered == ["y", "a", "b", "c", "z"]


def test_timestamps_compare_across_time_zones() -> None:
    early = _tp("x", "2026-01-01T10:00:00+05:00")
    late = _tp("y", datetime(2026, 1, 1, 6, 0, tzinfo=UTC).isoformat())
    assert early.acceptance_key() < late.acceptance_key()


def test_validation_reports_field_level_errors() -> None:
    policy = _tp(
        "bad",
        sourceSelector=[{"namespaces": ["shop"]}],
        policy={
            "requestTimeout": "0s",
            "trafficShift": {
                "destinations": [
                    {"service": {"name": "a"}, "weight": 50},
                    {"service": {"name": "b"}, "weight": 40},
                ]
            },
            "faultInjection": {"abort": {"httpStatus": 503}, "percentage": 120},
            "mtls": {"mode": "ISTIO_MUTUAL"},
        },
    )
    errors = [(e.code, e.field, e.message) for e in validate_policy(policy)]
    assert errors == [
        ("MR0202", "spec.policy.faultInjection.percentage", "percentage `120` is not in [0, 100]"),
        (
            "MR0204",
            "spec.policy.mtls",
            "`mtls` needs an empty `sourceSelector` (a DestinationRule cannot select sources)",
        ),
        ("MR0203", "spec.policy.requestTimeout", "duration `0s` is below 1ms"),
        ("MR0201", "spec.policy.trafficShift.destinations", "weights sum to 90, not 100"),
    ]


def test_single_backend_may_have_any_weight() -> None:
    policy = _tp("one", policy={"trafficShift": {"destinations": [{"service": {"name": "a"}, "weight": 7}]}})
    assert validate_policy(policy) == ()


def test_access_policy_paths_allow_star_only_at_the_ends() -> None:
    policy = AccessPolicy.model_validate(
        {"metadata": {"name": "a"}, "spec": {"allowedPaths": ["/api/*", "*.css", "*", "/a/*/b"]}}
    )
    assert [(e.field, e.code) for e in validate_policy(policy)] == [("spec.allowedPaths[3]", "MR0207")]


@pytest.mark.parametrize(
    "spec",
    [
        {"meshes": []},
        {"meshes": [{"name": "m"}], "trust": {}},
        {"meshes": [{"name": "m"}], "trust": {"shared": {}, "limited": {}}},
        {"meshes": [{"name": "m"}], "accessPolicyEnforcement": "SOMETIMES"},
    ],
)
def test_virtual_mesh_structural_mistakes_are_refused(spec: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        VirtualMesh.model_validate({"metadata": {"name": "vm"}, "spec": spec})


def test_destination_selector_forms_are_exclusive() -> None:
    with pytest.raises(ValidationError, match="either `services`"):
        AccessPolicy.model_validate(
            {
                "metadata": {"name": "a"},
                "spec": {"destinationSelector": [{"services": [{"name": "x"}], "labels": {"a": "b"}}]},
            }
        )


@pytest.mark.parametrize(
    "matcher",
    [
        {"uri": {"regex": "/b(.*"}},
        {"headers": [{"name": "x", "value": "(", "regex": True}]},
        {"queryParameters": [{"name": "q", "value": "[a-", "regex": True}]},
    ],
)
def test_a_regex_envoy_cannot_compile_is_refused_at_load(
    matcher: dict[str, object], capfd: pytest.CaptureFixture[str]
) -> None:
    # Istio's webhook rejects such a VirtualService; meshrules must not emit it, and RE2 must not log.
    spec = {"destinationSelector": [{"services": [{"name": "x"}]}], "httpRequestMatchers": [matcher]}
    with pytest.raises(ValidationError, match="is not a valid RE2 regular expression"):
        TrafficPolicy.model_validate({"metadata": {"name": "t"}, "spec": spec})
    assert capfd.readouterr().err == ""


def test_a_literal_header_value_is_not_a_regex() -> None:
    spec = {"httpRequestMatchers": [{"headers": [{"name": "x", "value": "("}], "uri": {"prefix": "/a("}}]}
    TrafficPolicy.model_validate({"metadata": {"name": "t"}, "spec": spec})
