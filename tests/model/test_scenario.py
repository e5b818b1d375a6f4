"""Reading policy and test documents (`meshrules.model.scenario.read_policy_documents`)."""

from __future__ import annotations

import pytest

from meshrules.model.documents import parse_documents
from meshrules.model.scenario import read_policy_documents

SPEC = "metadata: {name: t, namespace: shop}\nspec: {}\n"


def _read(text: str) -> list[str]:
    docs, diags = parse_documents(text, "policies/p.yaml")
    assert diags == []
    out = read_policy_documents(docs)
    assert out.policies == [] and out.tests == [] and not out.skipped
    return [f"{d.code} {d.location}: {d.field}: {d.message} ({d.hint})" for d in out.diagnostics]


@pytest.mark.parametrize(
    ("text", "want"),
    [
        (
            f"kind: TrafficPolicy\n{SPEC}",
            "MR0018 policies/p.yaml:1: apiVersion: `TrafficPolicy` has no apiVersion "
            "(set `apiVersion: networking.meshrules.io/v1alpha1`)",
        ),
        (
            f"kind: AccessPolicy\napiVersion: networking.mesh.gloo.solo.io/v1\n{SPEC}",
            "MR0018 policies/p.yaml:2: apiVersion: `AccessPolicy` has apiVersion `networking.mesh.gloo.solo.io/v1`, "
            "which is not meshrules' API (set `apiVersion: networking.meshrules.io/v1alpha1`)",
        ),
        (
            f"apiVersion: testing.meshrules.io/v1alpha1\nkind: VirtualMesh\n{SPEC}",
            "MR0018 policies/p.yaml:1: apiVersion: `VirtualMesh` has apiVersion `testing.meshrules.io/v1alpha1`, "
            "which is not meshrules' API (set `apiVersion: networking.meshrules.io/v1alpha1`)",
        ),
        (
            f"apiVersion: 1\nkind: ReachabilityTest\n{SPEC}",
            "MR0018 policies/p.yaml:1: apiVersion: `ReachabilityTest` has an apiVersion that is not a string "
            "(set `apiVersion: testing.meshrules.io/v1alpha1`)",
        ),
    ],
    ids=["missing", "other-api", "other-meshrules-group", "not-a-string"],
)
def test_a_meshrules_kind_without_its_api_version_is_an_error_naming_the_right_one(text: str, want: str) -> None:
    # Regression: these were counted as skipped kinds (an `info:` line), so the policy vanished.
    assert _read(text) == [want]


def test_kinds_of_other_apis_stay_skipped() -> None:
    docs, _ = parse_documents("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\nkind: Foo\n", "p.yaml")
    out = read_policy_documents(docs)
    assert out.diagnostics == [] and dict(out.skipped) == {"v1 ConfigMap": 1, "Foo": 1}


def test_an_enum_error_names_the_allowed_values_once_and_what_was_written() -> None:
    # Regression: "input should be 'DISABLED' or 'ENFORCED' (expected 'DISABLED' or 'ENFORCED')".
    text = (
        "apiVersion: networking.meshrules.io/v1alpha1\nkind: VirtualMesh\nmetadata: {name: v}\n"
        "spec:\n  meshes: [{name: m}]\n  accessPolicyEnforcement: STRICT\n"
    )
    assert _read(text) == [
        "MR0010 policies/p.yaml:6: spec.accessPolicyEnforcement: input should be `DISABLED` or `ENFORCED` "
        "(got `STRICT`)"
    ]


TEST_HEAD = (
    "apiVersion: testing.meshrules.io/v1alpha1\nkind: ReachabilityTest\nmetadata: {name: t}\nspec:\n"
    "  from: {workload: c1/shop/web}\n  to: {destination: c1/shop/api}\n"
)


@pytest.mark.parametrize(
    ("text", "want"),
    [
        (
            TEST_HEAD + "  expect: {code: ALOWED}\n",
            "MR0010 policies/p.yaml:7: spec.expect.code: input should be `ALLOWED`, `DENIED_EXPLICIT`, "
            "`DENIED_DEFAULT`, `DENIED_ENFORCED`, `NO_ROUTE`, `NOT_FEDERATED`, `NO_DNS`, `NO_GATEWAY_ADDRESS`, "
            "`MTLS_MISMATCH`, `TRUST_DOMAIN_REJECTED` or `NO_HEALTHY_UPSTREAM` (got `ALOWED`)",
        ),
        (
            TEST_HEAD + "  expect:\n    hops:\n    - {kind: sidecar}\n    - {knd: destination}\n",
            "MR0010 policies/p.yaml:10: spec.expect.hops[1]: unknown field `knd` in a hop "
            "(allowed here: address, cluster, kind, name, port) ()",  # the helper prints the empty hint
        ),
    ],
    ids=["misspelt-code", "misspelt-hop-field"],
)
def test_a_misspelt_expectation_is_a_load_error_not_a_test_that_cannot_pass(text: str, want: str) -> None:
    # Regression: `code: ALOWED` loaded and the test failed with "expected ALOWED, got ALLOWED";
    # `{knd: destination}` failed as a hop mismatch.
    assert _read(text) == [want]


def test_expectable_codes_are_the_simulators_decision_codes() -> None:
    from typing import get_args

    from meshrules.model.testing import DecisionCode
    from meshrules.sim import verdict

    assert set(get_args(DecisionCode)) == {verdict.ALLOWED, *verdict.PATH_ORDER}
