"""Policy statuses (spec §3.4) from what the rules decided and what the emitters could express.

Per policy: spec-level errors (`destination` None) make it INVALID; otherwise each selected
destination is ACCEPTED unless an entry names it, and the policy is ACCEPTED, PARTIALLY_ACCEPTED
or INVALID from those. A policy that selects nothing is ACCEPTED (the rule set adds a warning).
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

from meshrules.graph import ServiceGraph
from meshrules.model.common import DestinationStatus, PolicyStatus, StatusError
from meshrules.model.intent import PolicyStatusEntry
from meshrules.model.policy import AccessPolicy, Policy, TrafficPolicy

ACCEPTED = "ACCEPTED"
INVALID = "INVALID"
PARTIALLY_ACCEPTED = "PARTIALLY_ACCEPTED"
# The spec lists at most 100 selected workloads on a status; `workloadCount` has the total.
MAX_LISTED_WORKLOADS = 100


def policy_statuses(graph: ServiceGraph, entries: Iterable[PolicyStatusEntry]) -> dict[str, PolicyStatus]:
    """The status of every policy of ``graph``, keyed by `Kind namespace/name`."""
    by_policy: dict[str, list[PolicyStatusEntry]] = defaultdict(list)
    for entry in entries:
        by_policy[entry.policy].append(entry)
    # Workloads by identity, once: an AccessPolicy's sources are identities (scanning every workload
    # per policy made this quadratic at fleet size).
    by_identity: dict[str, list[str]] = defaultdict(list)
    for w in graph.workloads.values():
        by_identity[w.identity].append(w.name)
    listed: dict[int, tuple[list[str], int]] = {}
    return {p.ref: policy_status(graph, p, by_policy.get(p.ref, ()), by_identity, listed) for p in graph.policies}


def policy_status(
    graph: ServiceGraph,
    policy: Policy,
    entries: Sequence[PolicyStatusEntry],
    by_identity: Mapping[str, Sequence[str]] | None = None,
    listed_cache: dict[int, tuple[list[str], int]] | None = None,
) -> PolicyStatus:
    """The status of one policy."""
    spec_errors = _errors(e for e in entries if e.destination is None)
    selection = graph.selection(policy)
    per_destination: dict[str, list[PolicyStatusEntry]] = defaultdict(list)
    for entry in entries:
        if entry.destination is not None:
            per_destination[entry.destination].append(entry)
    destinations: dict[str, DestinationStatus] = {}
    if not isinstance(policy, AccessPolicy | TrafficPolicy):
        selected: Iterable[str] = ()
    else:
        selected = selection.destinations
    for name in sorted(set(selected) | set(per_destination)):
        errs = _errors(per_destination.get(name, ()))
        destinations[name] = DestinationStatus(state=INVALID if errs or spec_errors else ACCEPTED, errors=errs)
    states = {d.state for d in destinations.values()}
    if spec_errors or (destinations and states == {INVALID}):
        state = INVALID
    elif INVALID in states:
        state = PARTIALLY_ACCEPTED
    else:
        state = ACCEPTED
    sources = _source_workloads(graph, policy, by_identity)
    # Policies selecting "all sources" share one frozenset: list it once, not once per policy.
    key = id(sources)
    if listed_cache is not None and isinstance(sources, frozenset) and key in listed_cache:
        listed, count = listed_cache[key]
    else:
        listed, count = _listed(sources)
        if listed_cache is not None and isinstance(sources, frozenset):
            listed_cache[key] = (listed, count)
    return PolicyStatus(
        observed_generation=policy.metadata.generation,
        state=state,
        errors=spec_errors,
        destinations=destinations,
        workloads=listed,
        workload_count=count,
    )


def _listed(workloads: Iterable[str]) -> tuple[list[str], int]:
    """The first names in sorted order and the total: only 100 are listed, so never sort them all."""
    names = workloads if isinstance(workloads, frozenset | set) else set(workloads)
    return heapq.nsmallest(MAX_LISTED_WORKLOADS, names), len(names)


def _source_workloads(
    graph: ServiceGraph, policy: Policy, by_identity: Mapping[str, Sequence[str]] | None
) -> Iterable[str]:
    selection = graph.selection(policy)
    if isinstance(policy, TrafficPolicy):
        return selection.sources
    if isinstance(policy, AccessPolicy):
        if by_identity is None:
            return (w.name for w in graph.workloads.values() if w.identity in selection.identities)
        return (name for identity in selection.identities for name in by_identity.get(identity, ()))
    return ()


def _errors(entries: Iterable[PolicyStatusEntry]) -> list[StatusError]:
    unique = {(e.field, e.code, e.message) for e in entries}
    return [StatusError(code=c, field=f, message=m) for f, c, m in sorted(unique)]


def status_objects(policies: Sequence[Policy], statuses: Mapping[str, PolicyStatus]) -> list[dict[str, object]]:
    """Each policy as `{apiVersion, kind, metadata, status}`: what `translate --out` writes to `_status/`."""
    out: list[dict[str, object]] = []
    for policy in sorted(policies, key=lambda p: (p.kind, p.namespace, p.name)):
        out.append(
            {
                "apiVersion": policy.api_version,
                "kind": policy.kind,
                "metadata": {"name": policy.name, "namespace": policy.namespace},
                "status": statuses[policy.ref].model_dump(mode="json", by_alias=True, exclude_none=True),
            }
        )
    return out
