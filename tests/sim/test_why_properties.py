"""Properties of `why` over generated topologies and policies (`meshrules.testing`).

Each test names its invariant. Topologies are small and examples few: each example runs the
whole pipeline (rules, emitters, simulator), some several times.
"""

from __future__ import annotations

import copy
import os
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from meshrules.errors import MeshrulesError
from meshrules.pipeline.query import Simulation, verify
from meshrules.sim.access import identity_matches, intent_code
from meshrules.sim.classes import workload_classes
from meshrules.sim.diff import diff_fleets, witness_requests
from meshrules.sim.matrix import destination_ref
from meshrules.sim.verdict import DENY_CODES, Verdict
from meshrules.sim.why import Query, answer
from meshrules.testing import Topology, access_policies, requests, topologies, topology_params

from .why_scenarios import generated

_EXAMPLES = int(os.environ.get("MESHRULES_WHY_EXAMPLES", "5"))
_SETTINGS = settings(
    max_examples=_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
_REQUESTS_PER_EXAMPLE = 6


def _topologies(linkerd: float | None = None) -> st.SearchStrategy[Topology]:
    params = topology_params(max_clusters=3, max_services=5, max_policies=4)
    if linkerd is not None:
        params = params.map(lambda p: __import__("dataclasses").replace(p, linkerd_share=linkerd))
    return topologies(params)


def _queries(data: st.DataObject, topology: Topology) -> list[Query]:
    out = []
    for _ in range(_REQUESTS_PER_EXAMPLE):
        r = data.draw(requests(topology))
        out.append(Query(r.source, r.destination, r.port, r.method, r.path, tuple(sorted(r.headers.items()))))
    return out


def _ask(sim: Simulation, query: Query) -> Verdict | None:
    try:
        return answer(sim.fleet, query, nearest=False)
    except MeshrulesError:
        return None  # e.g. a source that is not meshed in this topology


def _unsupported_at(sim: Simulation, destination: str) -> bool:
    """Whether a policy is INVALID at ``destination`` because the mesh cannot express it."""
    return any(e.destination == destination for e in sim.translation.status_entries)


def _cluster_ambiguous(fleet: Any, caller: Any, dest: Any) -> bool:
    """Whether a rule at ``dest`` names a cluster the caller is not in, but its identity otherwise.

    Identities do not carry clusters: Istio allows such a caller (the simulator says so) where the
    intent does not, and `check` warns (MR0622, API §3.3). The oracle cannot be asked there.
    """
    mesh = fleet.meshes.get(caller.mesh)
    return any(
        p.cluster is not None
        and p.cluster != caller.cluster
        and identity_matches(replace(p, cluster=None), caller, mesh)
        for r in fleet.access.get(dest.name, ())
        for p in r.sources
    )


def _differential(topology: Topology, data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        sim = generated(topology, Path(tmp))
        fleet = sim.fleet
        for query in _queries(data, topology):
            v = _ask(sim, query)
            if v is None:
                continue
            caller = fleet.workload_by_ref[query.source]
            for b in v.backends:
                dest = fleet.destination_by_ref.get(b.destination)
                if dest is None or b.code not in DENY_CODES | {"ALLOWED", "NOT_FEDERATED", "NO_GATEWAY_ADDRESS"}:
                    continue
                expected = intent_code(fleet, caller, dest, query.method, query.path, b.port)
                if (
                    expected != b.code
                    and not _unsupported_at(sim, dest.name)
                    and not _cluster_ambiguous(fleet, caller, dest)
                ):
                    raise AssertionError(
                        f"{query}: backend {b.destination} simulator {b.code} ({b.reason}), intent {expected}"
                    )


@_SETTINGS
@given(_topologies(linkerd=0.0), st.data())
def test_intent_decision_equals_simulator_decision_on_istio(topology: Topology, data: st.DataObject) -> None:
    _differential(topology, data)


@_SETTINGS
@given(_topologies(linkerd=1.0), st.data())
def test_intent_decision_equals_simulator_decision_on_linkerd(topology: Topology, data: st.DataObject) -> None:
    _differential(topology, data)


@_SETTINGS
@given(_topologies(), st.data())
def test_adding_an_access_policy_never_denies_what_was_allowed_where_access_was_already_restricted(
    topology: Topology, data: st.DataObject
) -> None:
    """Under ENFORCED every destination is restricted already, so an AccessPolicy only adds allows.

    Under DISABLED the invariant holds only for destinations that already had an AccessPolicy: the
    first one to select a destination turns "allow all" into "allow what AccessPolicies allow".
    """
    assume(topology.services)
    extra = copy.deepcopy(data.draw(access_policies(topology)))
    extra["metadata"]["name"] = "added-by-the-property"
    with tempfile.TemporaryDirectory() as tmp:
        before = generated(topology, Path(tmp) / "before")
        after = generated(topology, Path(tmp) / "after", [*topology.policies, extra])
        for query in _queries(data, topology):
            a, b = _ask(before, query), _ask(after, query)
            if a is None or b is None:
                continue
            was = {x.destination: x for x in a.backends}
            for now in b.backends:
                old = was.get(now.destination)
                dest = before.fleet.destination_by_ref.get(now.destination)
                if old is None or dest is None or not old.allowed:
                    continue
                restricted = before.fleet.enforced(dest.mesh) or bool(before.fleet.access.get(dest.name))
                if restricted:
                    assert now.allowed, f"{query}: {now.destination} was allowed, now {now.code}"


@_SETTINGS
@given(_topologies(), st.data())
def test_policy_order_and_duplicates_never_change_a_decision(topology: Topology, data: st.DataObject) -> None:
    shuffled = list(reversed(topology.policies))
    for p in topology.policies:
        if p["kind"] == "AccessPolicy":  # an identical copy under another name allows nothing more
            twin = copy.deepcopy(p)
            twin["metadata"]["name"] = p["metadata"]["name"][:50] + "-twin"
            shuffled.insert(0, twin)
    with tempfile.TemporaryDirectory() as tmp:
        a_sim = generated(topology, Path(tmp) / "a")
        b_sim = generated(topology, Path(tmp) / "b", shuffled)
        for query in _queries(data, topology):
            a, b = _ask(a_sim, query), _ask(b_sim, query)
            assert (a is None) == (b is None)
            if a is not None and b is not None:
                assert a.summary() == b.summary(), query


@_SETTINGS
@given(_topologies(), st.data())
def test_rerunning_with_only_the_cited_policies_gives_the_same_answer(topology: Topology, data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        full = generated(topology, Path(tmp) / "full")
        for i, query in enumerate(_queries(data, topology)[:3]):
            try:
                v = answer(full.fleet, query)
            except MeshrulesError:
                continue
            cited = set(v.cited)
            kept: list[dict[str, Any]] = [p for p in topology.policies if _ref(p) in cited]
            again = _ask(generated(topology, Path(tmp) / f"only-{i}", kept), query)
            assert again is not None
            assert again.summary() == v.summary(), (query, sorted(cited))


@_SETTINGS
@given(_topologies(), st.data())
def test_the_suggested_fix_flips_the_answer(topology: Topology, data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        sim = generated(topology, Path(tmp))
        for query in _queries(data, topology):
            try:
                v = answer(sim.fleet, query)
            except MeshrulesError:
                continue
            if v.nearest_miss is None or v.code not in DENY_CODES:
                continue
            checked = verify(sim, query, v)
            assert checked.nearest_miss is not None
            assert checked.nearest_miss.verified, (query, checked.nearest_miss)


def _ref(policy: dict[str, Any]) -> str:
    meta = policy["metadata"]
    return f"{policy['kind']} {meta.get('namespace') or 'meshrules-system'}/{meta['name']}"


@_SETTINGS
@given(_topologies(), st.data())
def test_diff_reports_exactly_the_pairs_whose_answers_change(topology: Topology, data: st.DataObject) -> None:
    """`diff` skips destinations whose decisions and objects did not change; that must hide nothing."""
    assume(topology.services)
    extra = copy.deepcopy(data.draw(access_policies(topology)))
    extra["metadata"]["name"] = "added-by-the-property"
    with tempfile.TemporaryDirectory() as tmp:
        before = generated(topology, Path(tmp) / "before", memoise=False)
        after = generated(topology, Path(tmp) / "after", [*topology.policies, extra], memoise=False)
        changes, _ = diff_fleets(before.fleet, after.fleet)
        reported = {(c.witness.source, c.destination) for c in changes}
        for c in changes:  # each witness shows its change when asked afresh
            w = c.witness
            q = Query(w.source, w.destination, w.port, w.method, w.path, w.headers)
            a, b = _ask(before, q), _ask(after, q)
            assert a is not None and b is not None and a.summary() != b.summary()
        for klass in workload_classes(before.fleet):
            for dest in before.fleet.destinations.values():
                ref = destination_ref(dest)
                for port, method, path, headers in witness_requests((before.fleet, after.fleet), dest):
                    q = Query(klass.representative, ref, port, method, path, headers)
                    a, b = _ask(before, q), _ask(after, q)
                    if a is not None and b is not None and a.summary() != b.summary():
                        assert (klass.representative, ref) in reported, q
                        break
