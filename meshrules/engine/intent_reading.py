"""Reading a model's derived relations into an `Intent` (the contract with emitters and the simulator).

Place: called by ``meshrules.engine.intent`` after evaluation. Nothing is decided here: each item
is a derived fact, carried with a ``Derivation(rule, relation, args)`` handle. A replaced rule set
(``--rules DIR``) may leave relations out: what it does not declare reads as empty. The relations
read, and the ``Intent`` field each fills:

============================================  ================================================
``member_of``, ``ungoverned``, ``enforced``    ``memberships``
``federated`` + ``federated_host``             ``federation``
``federation_blocked``                         ``blocked``
``tp_applies`` + ``tp_provides``               ``traffic``
``tp_precedence``                              ``precedence``
``access_rule`` + ``access_pattern`` + …       ``access``
``status_error``                               ``statuses``
``finding``                                    ``findings``
``trust_domain_rejected``                      ``trust_rejections``
``federation_gap``                             ``gaps``
============================================  ================================================
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from meshrules.engine.model import Model
from meshrules.engine.store import BASE
from meshrules.engine.values import Row
from meshrules.errors import Diagnostic, Location, Severity
from meshrules.graph import ServiceGraph
from meshrules.model.intent import (
    AccessRule,
    Derivation,
    FederationBlocked,
    FederationEdge,
    FederationGap,
    IdentityPattern,
    Intent,
    MeshMembership,
    NotFederatedReason,
    PolicyStatusEntry,
    Specificity,
    TrafficApplication,
    TrafficPrecedence,
    TrustRejection,
)
from meshrules.model.policy import TrafficPolicy, TrafficPolicySettings
from meshrules.model.scenario import Scenario

# `TrafficApplication.fields` in the order `spec.policy` declares them, as the emitters list them.
FIELD_ORDER = {(info.alias or name): i for i, (name, info) in enumerate(TrafficPolicySettings.model_fields.items())}


class _Reader:
    """Rows of the model's relations, tolerant of relations a rule set does not declare."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self.rules = model.program.rules

    def rows(self, relation: str) -> list[Row]:
        """The facts of ``relation`` in a stable order (sorted as plain tuples: these are strings,
        integers and booleans; ``Model.rows``' general sort costs seconds on 10⁵ facts)."""
        store = self.model._stores.get(relation)
        if store is None:
            return []
        try:
            return sorted(store.facts)  # columns of one declared type compare natively, fast
        except TypeError:  # an `any` column holding records
            return sorted(store.facts, key=_plain_key)

    def why(self, relation: str, row: Row) -> Derivation:
        """The handle of a fact: the rule that derived it (``""`` for a base fact)."""
        # The stamp (height, rule index) is what evaluation keeps per fact; reading it is cheap,
        # unlike a full explanation, and an Intent holds one handle per item.
        stamp = self.model._stores[relation].facts[tuple(row)]
        rule = "" if stamp == BASE else self.rules[stamp[1]].name
        return Derivation(rule, relation, tuple(row))


def _plain_key(row: Row) -> tuple[str, ...]:
    return tuple(v if isinstance(v, str) else repr(v) for v in row)


# The relations each part of the intent is read from: after `Model.update`, a part whose
# relations all kept their store is the previous intent's part, unchanged.
SECTIONS: Mapping[str, tuple[str, ...]] = {
    "memberships": ("member_of", "ungoverned", "enforced", "vm_trust", "vm_hostname_suffix", "vm_linkerd_mode"),
    "federation": ("federated", "federated_host", "destination", "member_of"),
    "blocked": ("federation_blocked",),
    "traffic": ("tp_applies", "tp_provides"),
    "precedence": ("tp_precedence",),
    "access": (
        "access_rule",
        "access_pattern",
        "ap_path",
        "ap_method",
        "ap_port",
        "access_gateway_identity",
        "ap_any_source",
    ),
    "statuses": ("status_error",),
    "trust_rejections": ("trust_domain_rejected",),
    "gaps": ("federation_gap",),
}


def read_intent(
    model: Model,
    graph: ServiceGraph,
    scenario: Scenario | None = None,
    previous: tuple[Model, Intent] | None = None,
) -> Intent:
    """The ``Intent`` the derived relations of ``model`` state (see the module table).

    With ``previous`` (the model ``model`` was updated from, and its intent), parts whose
    relations did not change are taken from the previous intent instead of read again.
    """
    read = _Reader(model)
    readers: dict[str, Callable[[_Reader], tuple[Any, ...]]] = {
        "memberships": _memberships,
        "federation": _federation,
        "blocked": _blocked,
        "traffic": _traffic,
        "precedence": _precedence,
        "access": _access,
        "statuses": _statuses,
        "trust_rejections": _trust_rejections,
        "gaps": _gaps,
    }
    parts: dict[str, Any] = {}
    for name, reader in readers.items():
        if previous is not None and _unchanged(previous[0], model, SECTIONS[name]):
            parts[name] = getattr(previous[1], name)
        else:
            parts[name] = reader(read)
    return Intent(**parts, findings=_findings(read, graph, scenario), selected_sources=_selected_sources(graph))


def _unchanged(before: Model, after: Model, relations: Iterable[str]) -> bool:
    return all(before._stores.get(r) is after._stores.get(r) for r in relations)


def _trust_rejections(read: _Reader) -> tuple[TrustRejection, ...]:
    return tuple(
        TrustRejection(mesh=r, caller=c, trust_domain=td, why=read.why("trust_domain_rejected", (r, c, td)))
        for r, c, td in read.rows("trust_domain_rejected")
    )


def _gaps(read: _Reader) -> tuple[FederationGap, ...]:
    return tuple(
        FederationGap(destination=d, mesh=m, code=code, message=msg, why=read.why("federation_gap", (d, m, code, msg)))
        for d, m, code, msg in read.rows("federation_gap")
    )


def _one(rows: Iterable[Row]) -> dict[Any, Any]:
    """``{first column: second column}`` (the first row wins, rows being sorted)."""
    out: dict[Any, Any] = {}
    for row in rows:
        out.setdefault(row[0], row[1])
    return out


def _memberships(read: _Reader) -> tuple[MeshMembership, ...]:
    enforced = {row[0] for row in read.rows("enforced")}
    trust = _one(read.rows("vm_trust"))
    suffix = _one(read.rows("vm_hostname_suffix"))
    mode = _one(read.rows("vm_linkerd_mode"))
    out = [
        MeshMembership(
            mesh=m,
            virtual_mesh=vm,
            enforced=m in enforced,
            shared_trust=trust.get(vm) == "shared",
            hostname_suffix=suffix.get(vm, "global"),
            linkerd_mode=mode.get(vm, "gateway"),
            why=read.why("member_of", (m, vm)),
        )
        for m, vm in read.rows("member_of")
    ]
    out += [
        MeshMembership(
            mesh=m, virtual_mesh=None, enforced=m in enforced, shared_trust=False, why=read.why("ungoverned", (m,))
        )
        for (m,) in read.rows("ungoverned")
    ]
    return tuple(sorted(out, key=lambda x: (x.mesh, x.virtual_mesh or "")))


def _federation(read: _Reader) -> tuple[FederationEdge, ...]:
    hosts: dict[tuple[str, str], list[str]] = defaultdict(list)
    for d, m, host in read.rows("federated_host"):
        hosts[(d, m)].append(host)
    home = {row[0]: row[1] for row in read.rows("destination")}
    governing = _one(read.rows("member_of"))
    out = []
    for d, m in read.rows("federated"):
        why = read.why("federated", (d, m))
        for host in hosts.get((d, m)) or [""]:
            out.append(FederationEdge(d, m, governing.get(home.get(d), ""), host, why))
    return tuple(out)


def _blocked(read: _Reader) -> tuple[FederationBlocked, ...]:
    out = []
    for d, m, reason, message in read.rows("federation_blocked"):
        try:
            code = NotFederatedReason(reason)
        except ValueError:  # a reason a replaced rule set invented: it still says "not selected"
            code = NotFederatedReason.NOT_SELECTED
        out.append(FederationBlocked(d, m, code, message, read.why("federation_blocked", (d, m, reason, message))))
    return tuple(out)


def _traffic(read: _Reader) -> tuple[TrafficApplication, ...]:
    fields: dict[tuple[str, str], list[str]] = defaultdict(list)
    for p, d, name in read.rows("tp_provides"):
        fields[(p, d)].append(name)
    return tuple(
        TrafficApplication(
            policy=p,
            destination=d,
            fields=tuple(sorted(fields.get((p, d), ()), key=lambda f: (FIELD_ORDER.get(f, len(FIELD_ORDER)), f))),
            why=read.why("tp_applies", (p, d)),
        )
        for p, d in read.rows("tp_applies")
    )


def _precedence(read: _Reader) -> tuple[TrafficPrecedence, ...]:
    out = []
    for d, name, winner, loser, relation in read.rows("tp_precedence"):
        try:
            specificity = Specificity(relation)
        except ValueError:
            specificity = Specificity.OVERLAP
        why = read.why("tp_precedence", (d, name, winner, loser, relation))
        out.append(TrafficPrecedence(d, name, winner, loser, specificity, why))
    return tuple(out)


def _pattern(trust_domain: str, namespace: str, service_account: str, cluster: str) -> IdentityPattern:
    return IdentityPattern(
        trust_domain=trust_domain or None,
        namespace=namespace or None,
        service_account=service_account or None,
        cluster=cluster or None,
    )


def _grouped(rows: Iterable[Row]) -> dict[Any, list[Any]]:
    out: dict[Any, list[Any]] = defaultdict(list)
    for row in rows:
        out[row[0]].append(row[1] if len(row) == 2 else row[1:])
    return out


def _access(read: _Reader) -> tuple[AccessRule, ...]:
    patterns = _grouped(read.rows("access_pattern"))
    paths, methods, ports = (_grouped(read.rows(r)) for r in ("ap_path", "ap_method", "ap_port"))
    gateways: dict[tuple[str, str], list[str]] = defaultdict(list)
    for a, d, identity in read.rows("access_gateway_identity"):
        gateways[(a, d)].append(identity)
    any_source = {row[0] for row in read.rows("ap_any_source")}
    out = []
    for a, d in read.rows("access_rule"):
        sources = (
            () if a in any_source else tuple(sorted({_pattern(*p) for p in patterns.get(a, ())}, key=_pattern_key))
        )
        out.append(
            AccessRule(
                policy=a,
                destination=d,
                sources=sources,
                paths=tuple(sorted(set(paths.get(a, ())))),
                methods=tuple(sorted(set(methods.get(a, ())))),
                ports=tuple(sorted(set(ports.get(a, ())))),
                gateway_identities=tuple(sorted(set(gateways.get((a, d), ())))),
                why=read.why("access_rule", (a, d)),
            )
        )
    return tuple(out)


def _pattern_key(p: IdentityPattern) -> tuple[str, ...]:
    return (p.trust_domain or "", p.namespace or "", p.service_account or "", p.cluster or "")


def _statuses(read: _Reader) -> tuple[PolicyStatusEntry, ...]:
    return tuple(
        PolicyStatusEntry(
            policy=p,
            code=code,
            message=message,
            field=field_path,
            destination=d or None,
            why=read.why("status_error", (p, d, code, field_path, message)),
        )
        for p, d, code, field_path, message in read.rows("status_error")
    )


def _selected_sources(graph: ServiceGraph) -> dict[str, tuple[str, ...]]:
    # Selection, not decision: the graph resolved each TrafficPolicy's sourceSelector by index.
    # Policies with equal selections (every "all sources" policy) share one sorted tuple.
    shared: dict[frozenset[str], tuple[str, ...]] = {}
    out: dict[str, tuple[str, ...]] = {}
    for p in graph.policies:
        if isinstance(p, TrafficPolicy):
            sources = graph.selection(p).sources
            if sources not in shared:
                shared[sources] = tuple(sorted(sources))
            out[p.ref] = shared[sources]
    return out


# --- findings --------------------------------------------------------------------------------------------


def _findings(read: _Reader, graph: ServiceGraph, scenario: Scenario | None) -> tuple[Diagnostic, ...]:
    refs = {p.ref for p in graph.policies}
    out = []
    for code, severity, subject, field_path, message, hint in read.rows("finding"):
        location, obj = locate(subject, field_path, graph, scenario, refs)
        out.append(
            Diagnostic(
                code=code,
                message=message,
                severity=_severity(severity),
                location=location,
                field=field_path,
                hint=hint,
                object=obj,
            )
        )
    return tuple(sorted(set(out), key=Diagnostic.sort_key))


def _severity(text: str) -> Severity:
    try:
        return Severity(text)
    except ValueError:
        return Severity.ERROR


def locate(
    subject: str,
    field_path: str,
    graph: ServiceGraph,
    scenario: Scenario | None,
    policy_refs: Sequence[str] | set[str] | Mapping[str, Any] = (),
) -> tuple[Location | None, str]:
    """Where a finding's subject is (a policy's file:line, or a discovered object) and how to name it."""
    if subject in policy_refs:
        found = scenario.location_of(subject, field_path) if scenario is not None else None
        return found, subject
    mesh = graph.meshes.get(subject)
    if mesh is not None:
        return Location(cluster=mesh.cluster, kind="Mesh", name=mesh.name), f"Mesh {mesh.name}"
    dest = graph.destinations.get(subject)
    if dest is not None:
        where = Location(cluster=dest.cluster, kind="Service", namespace=dest.namespace, name=dest.service)
        return where, f"Destination {dest.name}"
    return None, subject


__all__ = ["FIELD_ORDER", "SECTIONS", "locate", "read_intent"]
