"""Built-in invariants (`meshrules check --invariants`): analyses that need no test, each with a witness.

Run after decide and translate (the `check` command's pipeline), over the intent and the simulator's
fleet. Every finding is a `Diagnostic` located at the policy it is about, with the witness — the
earlier policy, the destination, the caller pair the simulator answered — in the message and in
``related``:

- MR1001 **shadowed**: a TrafficPolicy that loses every field it sets at a destination to an earlier
  policy with the same scope; an AccessPolicy whose every rule is already allowed by an earlier one.
- MR1002 **allows nothing**: an accepted AccessPolicy that applies at no destination, or whose sources
  stand for no identity of the fleet.
- MR1003 **selects nothing**: a TrafficPolicy whose destinations or sources select nothing.
- MR1004 **always allowed under enforcement**: a destination of an ENFORCED mesh that an AccessPolicy
  opens to any authenticated caller with any method, path and port — with a caller (of another
  namespace when there is one) the simulator allows (a DELETE, to show nothing is restricted).
- MR1005 **Istio and Linkerd disagree**: one TrafficPolicy selects destinations on both meshes and
  gives them different configuration (a field one mesh cannot express is INVALID there).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from meshrules.errors import Diagnostic, Location, Severity
from meshrules.model.discovery import MeshType
from meshrules.model.intent import AccessRule, IdentityPattern, Specificity
from meshrules.model.policy import AccessPolicy, TrafficPolicy
from meshrules.pipeline.discovery import Analysis
from meshrules.pipeline.rules import Decision
from meshrules.pipeline.translate import Translation
from meshrules.sim.classes import workload_classes
from meshrules.sim.fleet import Fleet
from meshrules.sim.why import Query, answer

__all__ = [
    "ALLOWS_NOTHING",
    "ALWAYS_ALLOWED",
    "MESHES_DISAGREE",
    "SELECTS_NOTHING",
    "SHADOWED",
    "invariants",
]

SHADOWED = "MR1001"
ALLOWS_NOTHING = "MR1002"
SELECTS_NOTHING = "MR1003"
ALWAYS_ALLOWED = "MR1004"
MESHES_DISAGREE = "MR1005"


def invariants(analysis: Analysis, decision: Decision, translation: Translation) -> list[Diagnostic]:
    """Every invariant finding of the scenario, sorted by location."""
    fleet = Fleet(analysis.scenario, analysis.discovery, decision.intent, translation.objects, model=decision.model)
    found = [
        *_shadowed_traffic(analysis, decision, fleet),
        *_shadowed_access(analysis, decision, fleet),
        *_allows_nothing(analysis, decision),
        *_selects_nothing(analysis),
        *_always_allowed(analysis, decision, fleet),
        *_meshes_disagree(analysis, decision, translation, fleet),
    ]
    return sorted(found, key=Diagnostic.sort_key)


def _finding(
    analysis: Analysis,
    code: str,
    policy: str,
    message: str,
    hint: str,
    related: Iterable[str] = (),
    severity: Severity = Severity.WARNING,
) -> Diagnostic:
    return Diagnostic(
        code=code,
        message=message,
        severity=severity,
        location=analysis.scenario.location_of(policy) or Location(),
        hint=hint,
        object=policy,
        related=tuple(related),
    )


def _dest_ref(fleet: Fleet, name: str) -> str:
    d = fleet.destinations.get(name)
    return name if d is None else f"{d.cluster}/{d.namespace}/{d.service}"


# --- MR1001 -------------------------------------------------------------------------------------


def _shadowed_traffic(analysis: Analysis, decision: Decision, fleet: Fleet) -> list[Diagnostic]:
    intent = decision.intent
    # (destination, loser) → field → winner, for precedence lost to a policy of the same scope.
    lost: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)
    for p in intent.precedence:
        if p.relation == Specificity.SAME:
            lost[(p.destination, p.loser)][p.field] = p.winner
    out = []
    for app in intent.traffic:
        beaten = lost.get((app.destination, app.policy), {})
        if app.fields and all(f in beaten for f in app.fields):
            winners = sorted(set(beaten[f] for f in app.fields))
            dest = _dest_ref(fleet, app.destination)
            out.append(
                _finding(
                    analysis,
                    SHADOWED,
                    app.policy,
                    f"`{app.policy}` is shadowed at `{dest}`: {', '.join(f'`{w}`' for w in winners)} "
                    f"already set{'s' if len(winners) == 1 else ''} {', '.join(sorted(app.fields))} "
                    "for the same requests",
                    "remove the policy, or narrow its sources or matchers so it applies where the earlier one does not",
                    [*winners, dest],
                )
            )
    return out


def _covers(q: IdentityPattern, p: IdentityPattern) -> bool:
    return all(
        a is None or a == b
        for a, b in (
            (q.trust_domain, p.trust_domain),
            (q.namespace, p.namespace),
            (q.service_account, p.service_account),
            (q.cluster, p.cluster),
        )
    )


def _rule_covers(q: AccessRule, p: AccessRule) -> bool:
    """Whether rule ``q`` allows everything rule ``p`` allows (at the same destination)."""
    sources = not q.sources or (bool(p.sources) and all(any(_covers(a, b) for a in q.sources) for b in p.sources))
    ops = all(
        not mine or (bool(theirs) and set(theirs) <= set(mine))
        for mine, theirs in ((q.paths, p.paths), (q.methods, p.methods), (q.ports, p.ports))
    )
    return sources and ops


def _shadowed_access(analysis: Analysis, decision: Decision, fleet: Fleet) -> list[Diagnostic]:
    order = {
        p.ref: i
        for i, p in enumerate(
            sorted(
                (p for p in analysis.scenario.policies if isinstance(p, AccessPolicy)), key=lambda p: p.acceptance_key()
            )
        )
    }
    by_policy: dict[str, list[AccessRule]] = defaultdict(list)
    by_dest: dict[str, list[AccessRule]] = defaultdict(list)
    for r in decision.intent.access:
        by_policy[r.policy].append(r)
        by_dest[r.destination].append(r)
    out = []
    for policy, rules in sorted(by_policy.items()):
        witnesses: list[str] = []
        for r in rules:
            earlier = [
                q
                for q in by_dest[r.destination]
                if order.get(q.policy, 1 << 30) < order.get(policy, 1 << 30) and _rule_covers(q, r)
            ]
            if not earlier:
                break
            witnesses.append(f"{earlier[0].policy} at {_dest_ref(fleet, r.destination)}")
        else:
            out.append(
                _finding(
                    analysis,
                    SHADOWED,
                    policy,
                    f"`{policy}` allows nothing that earlier policies do not already allow: {'; '.join(witnesses)}",
                    "remove it, or change it if it was meant to allow more",
                    witnesses,
                )
            )
    return out


# --- MR1002, MR1003 -----------------------------------------------------------------------------


def _invalid(decision: Decision) -> set[str]:
    return {s.policy for s in decision.intent.statuses if s.destination is None}


def _allows_nothing(analysis: Analysis, decision: Decision) -> list[Diagnostic]:
    with_rules = {r.policy for r in decision.intent.access}
    invalid = _invalid(decision)
    out = []
    for p in analysis.scenario.policies:
        if not isinstance(p, AccessPolicy) or p.ref in invalid:
            continue
        if p.ref not in with_rules:
            out.append(
                _finding(
                    analysis,
                    ALLOWS_NOTHING,
                    p.ref,
                    f"`{p.ref}` allows nothing: its destinationSelector selects no destination",
                    "check the services, clusters, namespaces and labels it names (`meshrules discover`)",
                )
            )
        elif p.spec.source_selector and not analysis.graph.select_identities(p.spec.source_selector):
            out.append(
                _finding(
                    analysis,
                    ALLOWS_NOTHING,
                    p.ref,
                    f"`{p.ref}` allows nothing: its sourceSelector stands for no identity of the fleet",
                    "check the service accounts, namespaces and clusters it names",
                )
            )
    return out


def _selects_nothing(analysis: Analysis) -> list[Diagnostic]:
    out = []
    for p in analysis.scenario.policies:
        if not isinstance(p, TrafficPolicy):
            continue
        if not analysis.graph.select_destinations(p.spec.destination_selector):
            out.append(
                _finding(
                    analysis,
                    SELECTS_NOTHING,
                    p.ref,
                    f"`{p.ref}` selects nothing: its destinationSelector matches no destination",
                    "check the services, clusters, namespaces and labels it names (`meshrules discover`)",
                )
            )
        elif p.spec.source_selector and not analysis.graph.select_workloads(p.spec.source_selector):
            out.append(
                _finding(
                    analysis,
                    SELECTS_NOTHING,
                    p.ref,
                    f"`{p.ref}` selects nothing: its sourceSelector matches no workload",
                    "check the clusters, namespaces and labels it names (`meshrules discover`)",
                )
            )
    return out


# --- MR1004 -------------------------------------------------------------------------------------


def _always_allowed(analysis: Analysis, decision: Decision, fleet: Fleet) -> list[Diagnostic]:
    open_rules = [r for r in decision.intent.access if not r.sources and not (r.paths or r.methods or r.ports)]
    if not open_rules:
        return []
    classes = workload_classes(fleet)
    out = []
    for r in open_rules:
        dest = fleet.destinations.get(r.destination)
        if dest is None or not fleet.enforced(dest.mesh) or not dest.ports:
            continue
        ref = f"{dest.cluster}/{dest.namespace}/{dest.service}"
        port = dest.ports[0].port
        # Callers from other namespaces first: they make the most convincing witness.
        for c in sorted(classes, key=lambda c: (c.namespace == dest.namespace, c.representative)):
            # A DELETE on an odd path: if even that is allowed, the destination restricts nothing.
            query = Query(c.representative, ref, port, "DELETE", "/meshrules-invariant-witness")
            try:
                verdict = answer(fleet, query, nearest=False, explain=False)
            except Exception:  # a caller that cannot address it is no witness; try the next
                continue
            if verdict.allowed:
                witness = f"{c.representative} -> {ref}:{port} DELETE /meshrules-invariant-witness"
                out.append(
                    _finding(
                        analysis,
                        ALWAYS_ALLOWED,
                        r.policy,
                        f"`{ref}` is open to every authenticated caller under enforcement through `{r.policy}`: "
                        f"e.g. {witness} is allowed",
                        "name the callers in sourceSelector, or restrict allowedMethods/allowedPaths/allowedPorts",
                        [witness],
                        Severity.INFO,
                    )
                )
                break
    return out


# --- MR1005 -------------------------------------------------------------------------------------


def _meshes_disagree(
    analysis: Analysis, decision: Decision, translation: Translation, fleet: Fleet
) -> list[Diagnostic]:
    # A policy INVALID for a destination (the rule set's conflicts, or a feature the emitter of
    # that mesh cannot express) contributes nothing there.
    invalid = {(e.policy, e.destination) for e in (*decision.intent.statuses, *translation.status_entries)}
    fields: dict[tuple[str, str], tuple[str, ...]] = {
        (a.policy, a.destination): a.fields for a in decision.intent.traffic if (a.policy, a.destination) not in invalid
    }
    out = []
    for p in analysis.scenario.policies:
        if not isinstance(p, TrafficPolicy):
            continue
        by_type: dict[MeshType, list[tuple[str, tuple[str, ...]]]] = defaultdict(list)
        for name in sorted(analysis.graph.select_destinations(p.spec.destination_selector)):
            dest = fleet.destinations.get(name)
            mesh = fleet.meshes.get(dest.mesh or "") if dest is not None else None
            if mesh is not None:
                by_type[mesh.type].append((name, fields.get((p.ref, name), ())))
        istio, linkerd = by_type.get(MeshType.ISTIO, []), by_type.get(MeshType.LINKERD, [])
        for (i_name, i_fields), (l_name, l_fields) in ((a, b) for a in istio for b in linkerd):
            if set(i_fields) != set(l_fields):
                only_i = sorted(set(i_fields) - set(l_fields))
                only_l = sorted(set(l_fields) - set(i_fields))
                i_ref, l_ref = _dest_ref(fleet, i_name), _dest_ref(fleet, l_name)
                parts = [f"{', '.join(only_i)} on Istio `{i_ref}` only"] if only_i else []
                parts += [f"{', '.join(only_l)} on Linkerd `{l_ref}` only"] if only_l else []
                out.append(
                    _finding(
                        analysis,
                        MESHES_DISAGREE,
                        p.ref,
                        f"`{p.ref}` gives Istio and Linkerd destinations different configuration: {'; '.join(parts)}",
                        "split the policy per mesh, or drop the fields one mesh cannot express (docs/codes.md)",
                        [i_ref, l_ref],
                    )
                )
                break
    return out
