"""The Hypothesis strategies draw what they promise: valid policies, real names, broken-by-one errors."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import Phase, find, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

import meshrules.testing
from meshrules.model.common import DestinationSelector, IdentitySelector, WorkloadSelector
from meshrules.model.policy import POLICY_KINDS
from meshrules.model.validation import validate_policy
from meshrules.testing import (
    InvalidPolicy,
    Request,
    Topology,
    access_policies,
    destination_selectors,
    durations,
    identity_selectors,
    invalid_policies,
    label_maps,
    requests,
    topologies,
    traffic_policies,
    workload_selectors,
)

from .spec_rules import duration_ms, policy_violations

_LABEL_NAME = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def _with(strategy: Any) -> st.SearchStrategy[tuple[Topology, Any]]:
    """A topology and something drawn over it."""
    return topologies().flatmap(lambda t: st.tuples(st.just(t), strategy(t)))


# -- valid policies -------------------------------------------------------------------------------------


@given(_with(traffic_policies))
def test_drawn_traffic_policies_satisfy_the_spec_rules(drawn: tuple[Topology, Any]) -> None:
    topology, policy = drawn
    assert policy_violations(policy, topology) == []


@given(_with(access_policies))
def test_drawn_access_policies_satisfy_the_spec_rules(drawn: tuple[Topology, Any]) -> None:
    topology, policy = drawn
    assert policy_violations(policy, topology) == []


@given(_with(lambda t: st.one_of(traffic_policies(t), access_policies(t))))
def test_drawn_policies_load_and_validate_with_the_models(drawn: tuple[Topology, Any]) -> None:
    _, policy = drawn
    model = POLICY_KINDS[policy["kind"]].model_validate(policy)
    assert validate_policy(model) == ()


@given(_with(traffic_policies))
def test_destination_rule_fields_never_come_with_sources(drawn: tuple[Topology, Any]) -> None:
    _, policy = drawn
    if {"outlierDetection", "mtls"} & set(policy["spec"]["policy"]):
        assert "sourceSelector" not in policy["spec"]


@given(_with(traffic_policies))
def test_traffic_shift_weights_sum_to_100_across_several_backends(drawn: tuple[Topology, Any]) -> None:
    _, policy = drawn
    backends = policy["spec"]["policy"].get("trafficShift", {}).get("destinations", [])
    if len(backends) > 1:
        assert sum(b["weight"] for b in backends) == 100
    assert all(0 <= b["weight"] <= 100 for b in backends)


# -- invalid policies --------------------------------------------------------------------------------------


@given(_with(invalid_policies))
def test_invalid_policies_break_exactly_the_named_field(drawn: tuple[Topology, InvalidPolicy]) -> None:
    topology, invalid = drawn
    assert {v.field for v in policy_violations(invalid.policy, topology)} == {invalid.field}


@given(_with(invalid_policies))
def test_the_models_reject_invalid_policies_at_the_named_field(drawn: tuple[Topology, InvalidPolicy]) -> None:
    _, invalid = drawn
    try:
        model = POLICY_KINDS[invalid.policy["kind"]].model_validate(invalid.policy)
    except ValidationError as exc:
        locations = {_dotted(err["loc"]) for err in exc.errors()}
        assert any(loc.startswith(invalid.field) for loc in locations), (invalid.field, locations)
        return
    fields = {error.field for error in validate_policy(model)}
    if invalid.rule == "subset-missing":
        # Subsets are checked where destinations are known (the rule set), not by the model alone.
        assert fields == set()
    else:
        assert fields == {invalid.field}


def _dotted(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif "[" in part or "-" in part or part[:1].isupper():
            continue  # pydantic's union and validator tags, not fields
        else:
            out += f".{part}" if out else part
    return out


INVALID_RULES = (
    "weights-sum",
    "percentage-range",
    "duration-min",
    "duration-format",
    "destination-rule-with-sources",
    "subset-missing",
    "unknown-field",
    "port-range",
)


@pytest.mark.parametrize("rule", INVALID_RULES)
def test_invalid_policies_reach_every_documented_rule(rule: str) -> None:
    assert f"``{rule}``" in (InvalidPolicy.__doc__ or "")
    # Generation only: shrinking a whole topology would cost seconds and prove nothing more here.
    quick = settings(phases=[Phase.generate], database=None, max_examples=200)
    found = find(_with(invalid_policies), lambda drawn: drawn[1].rule == rule, settings=quick)
    assert found[1].rule == rule


# -- selectors and values ----------------------------------------------------------------------------------


@given(label_maps())
def test_label_maps_are_valid_kubernetes_labels(labels: dict[str, str]) -> None:
    for key, value in labels.items():
        assert _LABEL_NAME.match(key) and len(key.split("/")[-1]) <= 63, key
        assert _LABEL_VALUE.match(value) and len(value) <= 63, value


@given(st.one_of(workload_selectors(), _with(workload_selectors).map(lambda d: d[1])))
def test_workload_selectors_are_wire_format(selector: dict[str, Any]) -> None:
    assert set(selector) <= {"clusters", "namespaces", "labels"}
    WorkloadSelector.model_validate(selector)


@given(st.one_of(destination_selectors(), _with(destination_selectors).map(lambda d: d[1])))
def test_destination_selectors_use_one_form(selector: dict[str, Any]) -> None:
    assert "services" not in selector or set(selector) == {"services"}
    DestinationSelector.model_validate(selector)


@given(st.one_of(identity_selectors(), _with(identity_selectors).map(lambda d: d[1])))
def test_identity_selectors_use_one_form(selector: dict[str, Any]) -> None:
    assert "serviceAccounts" not in selector or set(selector) == {"serviceAccounts"}
    IdentitySelector.model_validate(selector)


@given(_with(workload_selectors))
def test_selectors_over_a_topology_name_its_clusters_mostly(drawn: tuple[Topology, dict[str, Any]]) -> None:
    topology, selector = drawn
    assert set(selector.get("clusters", [])) <= {*topology.clusters, "absent"}
    assert set(selector.get("namespaces", [])) <= {*topology.namespaces, "absent"}


@given(durations(min_ms=5, max_ms=90_000))
def test_durations_are_istio_style_within_bounds(text: str) -> None:
    assert re.fullmatch(r"[0-9]+(ms|s|m|h)", text)
    ms = duration_ms(text)
    assert ms is not None and 5 <= ms <= 90_000


def test_durations_refuse_sub_millisecond_bounds() -> None:
    with pytest.raises(ValueError):
        durations(min_ms=0)


# -- requests ------------------------------------------------------------------------------------------------


@given(_with(requests))
def test_requests_name_existing_workloads_destinations_and_ports(drawn: tuple[Topology, Request]) -> None:
    topology, request = drawn
    assert request.source in {w.ref for w in topology.workloads}
    target = next(s for s in topology.services if s.ref == request.destination)
    assert request.port in [port for _, port in target.ports]
    assert request.path.startswith("/") and request.method.isupper()


def test_request_becomes_a_reachability_test_spec() -> None:
    request = Request("cluster-1/shop/cart-v1", "cluster-2/shop/checkout", 8080, "GET", "/api/", {"end-user": "jason"})
    assert request.as_test_spec() == {
        "from": {"workload": "cluster-1/shop/cart-v1"},
        "to": {"destination": "cluster-2/shop/checkout", "port": 8080},
        "request": {"method": "GET", "path": "/api/", "headers": {"end-user": "jason"}},
    }


# -- public surface ---------------------------------------------------------------------------------------------


def test_public_surface_is_locked() -> None:
    assert sorted(meshrules.testing.__all__) == [
        "GeneratedService",
        "GeneratedWorkload",
        "InvalidPolicy",
        "KubeObject",
        "MANAGEMENT_NAMESPACE",
        "Request",
        "Topology",
        "TopologyParams",
        "access_policies",
        "destination_selectors",
        "durations",
        "generate_topology",
        "identity_selectors",
        "invalid_policies",
        "label_maps",
        "load_scenario",
        "mesh_name",
        "requests",
        "topologies",
        "topology_params",
        "traffic_policies",
        "why",
        "workload_selectors",
    ]
    for name in meshrules.testing.__all__:
        assert getattr(meshrules.testing, name) is not None
