"""AccessPolicies as Linkerd authorization: MeshTLSAuthentication, AuthorizationPolicy, inbound HTTPRoute.

For each Server (see `servers.py`) the AccessRules of the destinations behind it become *grants*:
who (identities in Linkerd's format, `identities.py`) may do what (`None`: everything; else the
operations of `operations.py`). Per grant, one `MeshTLSAuthentication` lists the identities and:
- a grant for everything gets an `AuthorizationPolicy` targeting the Server ("applies to all
  traffic to the Server", Linkerd's authorization-policy reference);
- a grant restricted to methods or paths gets inbound `HTTPRoute`s (policy.linkerd.io, parent the
  Server) and an `AuthorizationPolicy` targeting each route that carries one of its operations.

Allowed ports (`AccessRule.ports`) are Service ports: a rule applies to the Servers those Service
ports reach. Gateway identities (`AccessRule.gateway_identities`, Linkerd gateway mode) join the
grant's identities, so the remote cluster's traffic is allowed on exactly the rule's operations.

Once a route is attached to a Server, a request that matches no route is refused, and kubelet
probes are no longer authorized by Linkerd: so a Server with restricted grants also gets a
catch-all route when some grant is unrestricted, and a probe route (`probes.py`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from meshrules.emit.linkerd import codes
from meshrules.emit.linkerd.emission import Emission
from meshrules.emit.linkerd.identities import ANY_MESHED, rule_identities
from meshrules.emit.linkerd.operations import (
    ANY_OPERATION,
    Operation,
    approximations,
    close,
    conflicts,
    contains,
    match_of,
    operations,
    specificity,
)
from meshrules.emit.linkerd.probes import (
    KUBELET,
    KUBELET_NAME,
    PROBE_PATHS,
    network_authentication,
    probe_operations,
    probe_paths,
)
from meshrules.emit.linkerd.scope import LinkerdScope, ref
from meshrules.emit.linkerd.servers import POLICY_GROUP, ServerPlan
from meshrules.errors import Diagnostic, Severity

AUTHORIZATION_API_VERSION = "policy.linkerd.io/v1alpha1"
ROUTE_API_VERSION = "policy.linkerd.io/v1beta3"
# HTTPRoute limits of the CRD: 8 matches per rule, 16 rules per route.
MATCHES_PER_RULE = 8
RULES_PER_ROUTE = 16


@dataclass(frozen=True, slots=True)
class Grant:
    """Who may call a Server, on which operations (`None`: all of them), because of which policy."""

    policy: str
    identities: tuple[str, ...]
    operations: tuple[Operation, ...] | None
    destinations: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ServerOutcome:
    """What `Authorizer.authorize` decided for one Server."""

    routes_attached: bool
    policies: tuple[str, ...]


def server_grants(scope: LinkerdScope, plan: ServerPlan) -> tuple[Grant, ...]:
    """The grants of every AccessRule that reaches this Server, one per policy, sorted."""
    merged: dict[str, tuple[set[str], set[Operation] | None, set[str]]] = {}
    for dest_name in plan.destinations:
        destination = scope.destination_by_name[dest_name]
        ports = {p for d, p in plan.service_ports if d == dest_name}
        for rule in scope.access.get(dest_name, ()):
            if rule.ports and not ports & set(rule.ports):
                continue
            ids = rule_identities(scope, rule, destination)
            if not ids:
                continue  # no caller can present a matching identity here
            ops = set(operations(rule.paths, rule.methods))
            unrestricted = ops == {ANY_OPERATION}
            if rule.policy not in merged:
                merged[rule.policy] = (set(ids), None if unrestricted else ops, {dest_name})
                continue
            have_ids, have_ops, have_dests = merged[rule.policy]
            have_ids.update(ids)
            have_dests.add(dest_name)
            if have_ops is not None and not unrestricted:
                have_ops.update(ops)
            elif have_ops is not None:
                merged[rule.policy] = (have_ids, None, have_dests)
    grants = []
    for policy, (found_ids, found_ops, dests) in sorted(merged.items()):
        identities = (ANY_MESHED,) if ANY_MESHED in found_ids else tuple(sorted(found_ids))
        allowed = None if found_ops is None else tuple(sorted(found_ops))
        grants.append(Grant(policy, identities, allowed, tuple(sorted(dests))))
    return tuple(grants)


def policy_slug(policy: str, namespace: str) -> str:
    """A policy's name for object names: `name`, or `ns-name` when it lives in another namespace."""
    _, _, rest = policy.partition(" ")
    ns, _, name = rest.partition("/")
    return name if ns == namespace else f"{ns}-{name}"


class Authorizer:
    """Emits the authorization objects of the Servers of one run.

    One per run: the probe NetworkAuthentication is shared by the Servers of a namespace, so it is
    named on first use and written by `finish` with every destination that uses it as a parent.
    """

    def __init__(self, scope: LinkerdScope, out: Emission) -> None:
        self.scope = scope
        self.out = out
        self._kubelet: dict[tuple[str, str], tuple[str, set[str]]] = {}

    def finish(self) -> None:
        """Write the shared objects (the probe NetworkAuthentication of each namespace)."""
        for (cluster, namespace), (name, parents) in sorted(self._kubelet.items()):
            self.out.add(cluster, network_authentication(self.out.metadata(name, namespace, sorted(parents))))

    def authorize(self, plan: ServerPlan, grants: Sequence[Grant]) -> ServerOutcome:
        """Emit the authorization objects of one Server; say whether routes attach to it."""
        cluster, ns = plan.cluster, plan.namespace
        dest_refs = [self.scope.discovered("Destination", d) for d in plan.destinations]
        server_ref = {"group": POLICY_GROUP, "kind": "Server", "name": plan.name}
        restricted = [g for g in grants if g.operations is not None]
        if restricted and not plan.accepts_routes:
            for g in restricted:
                self._opaque_finding(plan, g)
            restricted = []
        unrestricted = [g for g in grants if g.operations is None]

        authn_names = {g.policy: self._mesh_tls(plan, g, dest_refs) for g in [*unrestricted, *restricted]}
        for g in unrestricted:
            name = self.out.names.name(cluster, "AuthorizationPolicy", ns, plan.name, policy_slug(g.policy, ns))
            self._policy(cluster, ns, name, server_ref, authn_names[g.policy], [g.policy, *dest_refs])
        if restricted:
            self._routes(plan, restricted, bool(unrestricted), authn_names, dest_refs)
        return ServerOutcome(routes_attached=bool(restricted), policies=tuple(sorted(authn_names)))

    # -- objects ------------------------------------------------------------------------------------

    def _mesh_tls(self, plan: ServerPlan, g: Grant, dest_refs: list[str]) -> str:
        ns = plan.namespace
        name = self.out.names.name(plan.cluster, "MeshTLSAuthentication", ns, plan.name, policy_slug(g.policy, ns))
        self.out.add(
            plan.cluster,
            {
                "apiVersion": AUTHORIZATION_API_VERSION,
                "kind": "MeshTLSAuthentication",
                "metadata": self.out.metadata(name, ns, [g.policy, *dest_refs]),
                "spec": {"identities": list(g.identities)},
            },
        )
        return name

    def _policy(
        self,
        cluster: str,
        namespace: str,
        name: str,
        target: Mapping[str, str],
        authn: str,
        parents: Sequence[str],
        *,
        kind: str = "MeshTLSAuthentication",
    ) -> None:
        self.out.add(
            cluster,
            {
                "apiVersion": AUTHORIZATION_API_VERSION,
                "kind": "AuthorizationPolicy",
                "metadata": self.out.metadata(name, namespace, parents),
                "spec": {
                    "targetRef": dict(target),
                    "requiredAuthenticationRefs": [{"group": POLICY_GROUP, "kind": kind, "name": authn}],
                },
            },
        )

    def _kubelet_authentication(self, cluster: str, namespace: str, parents: Sequence[str]) -> str:
        """The name of the namespace's probe NetworkAuthentication (named on first use)."""
        if (cluster, namespace) not in self._kubelet:
            name = self.out.names.name(cluster, "NetworkAuthentication", namespace, KUBELET_NAME)
            self._kubelet[(cluster, namespace)] = (name, set())
        name, known = self._kubelet[(cluster, namespace)]
        known.update(parents)
        return name

    # -- routes -------------------------------------------------------------------------------------

    def _routes(
        self,
        plan: ServerPlan,
        restricted: Sequence[Grant],
        catch_all: bool,
        authn_names: Mapping[str, str],
        dest_refs: list[str],
    ) -> None:
        """Inbound routes for a Server with restricted grants, and their AuthorizationPolicies."""
        cluster, ns = plan.cluster, plan.namespace
        owned: dict[str, tuple[Operation, ...]] = {g.policy: g.operations or () for g in restricted}
        probed = self._probe_paths(plan)
        if probed is None or probed:
            owned[KUBELET] = probe_operations(PROBE_PATHS if probed is None else probed)
        base = {op for ops in owned.values() for op in ops}
        if catch_all:
            base.add(ANY_OPERATION)
        closed, complete = close(base)
        if not complete:
            self._limit_finding(plan)
        covers = {op: frozenset(k for k, ops in owned.items() if any(contains(o, op) for o in ops)) for op in closed}
        self._path_findings(plan, restricted, covers)

        groups: dict[frozenset[str], list[Operation]] = defaultdict(list)
        for op, cover in covers.items():
            groups[cover].append(op)
        chunk = MATCHES_PER_RULE * RULES_PER_ROUTE
        for cover, ops in sorted(groups.items(), key=lambda kv: sorted(kv[0])):
            # `<server>-<policies…>[-probes]`, or `<server>-all` for the catch-all of whole-Server grants.
            slugs = [policy_slug(k, ns) for k in sorted(cover) if k != KUBELET]
            slugs += ["probes"] if KUBELET in cover else []
            slugs = slugs or ["all"]
            parents = [*(k for k in cover if k != KUBELET), *dest_refs]
            ordered = sorted(ops, key=specificity)
            for index in range(0, len(ordered), chunk):
                suffix = [str(index // chunk + 1)] if index else []
                route = self.out.names.name(cluster, "HTTPRoute", ns, plan.name, *slugs, *suffix)
                self.out.add(cluster, self._route_object(plan, route, ordered[index : index + chunk], parents))
                self._route_policies(plan, route, cover, authn_names, dest_refs)
        if probed is None:
            self.out.finding(
                Diagnostic(
                    code=codes.PROBE_PATHS_ASSUMED,
                    severity=Severity.INFO,
                    object=ref("Server", ns, plan.name),
                    message=f"routes attach to Server `{ns}/{plan.name}` in `{cluster}`: the kubelet may probe only "
                    "the conventional health paths there",
                    hint="allow the workloads' real probe paths with an AccessPolicy if they differ",
                )
            )

    def _probe_paths(self, plan: ServerPlan) -> tuple[str, ...] | None:
        """The probe paths of the Server's workloads on its port; None when some are unknown."""
        selector = dict(plan.selector)
        workloads = {
            w.name: w
            for d in plan.destinations
            if (dest := self.scope.destination_by_name.get(d)) is not None
            for w in self.scope.workloads_of(dest)
            if all(w.pod_labels.get(k) == v for k, v in selector.items())
        }
        return probe_paths((workloads[n] for n in sorted(workloads)), plan.port)

    def _route_policies(
        self,
        plan: ServerPlan,
        route: str,
        cover: frozenset[str],
        authn_names: Mapping[str, str],
        dest_refs: list[str],
    ) -> None:
        cluster, ns = plan.cluster, plan.namespace
        target = {"group": POLICY_GROUP, "kind": "HTTPRoute", "name": route}
        for key in sorted(cover):
            if key == KUBELET:
                authn = self._kubelet_authentication(cluster, ns, dest_refs)
                name = self.out.names.name(cluster, "AuthorizationPolicy", ns, route, KUBELET)
                self._policy(cluster, ns, name, target, authn, dest_refs, kind="NetworkAuthentication")
                continue
            parts = [route] if len(cover) == 1 else [route, policy_slug(key, ns)]
            name = self.out.names.name(cluster, "AuthorizationPolicy", ns, *parts)
            self._policy(cluster, ns, name, target, authn_names[key], [key, *dest_refs])

    def _route_object(
        self, plan: ServerPlan, name: str, ops: Sequence[Operation], parents: Sequence[str]
    ) -> dict[str, Any]:
        rules = [
            {"matches": [match_of(op) for op in ops[i : i + MATCHES_PER_RULE]]}
            for i in range(0, len(ops), MATCHES_PER_RULE)
        ]
        return {
            "apiVersion": ROUTE_API_VERSION,
            "kind": "HTTPRoute",
            "metadata": self.out.metadata(name, plan.namespace, parents),
            "spec": {
                "parentRefs": [{"group": POLICY_GROUP, "kind": "Server", "name": plan.name}],
                "rules": rules,
            },
        }

    # -- findings -----------------------------------------------------------------------------------

    def _opaque_finding(self, plan: ServerPlan, g: Grant) -> None:
        restricts_paths = any(o.path.kind != "any" for o in g.operations or ())
        self.out.finding(
            Diagnostic(
                code=codes.RESTRICTION_ON_OPAQUE_PORT,
                severity=Severity.WARNING,
                object=g.policy,
                field="spec.allowedPaths" if restricts_paths else "spec.allowedMethods",
                message=f"port `{plan.port}` of Server `{plan.namespace}/{plan.name}` in `{plan.cluster}` is "
                f"`{plan.protocol}`: Linkerd cannot match paths or methods there, so this policy allows nothing on it",
                hint="remove the path and method restrictions for this port, or declare it HTTP "
                "(Service port name or appProtocol)",
            )
        )

    def _limit_finding(self, plan: ServerPlan) -> None:
        self.out.finding(
            Diagnostic(
                code=codes.OPERATION_LIMIT,
                severity=Severity.ERROR,
                object=ref("Server", plan.namespace, plan.name),
                message=f"the AccessPolicies of Server `{plan.namespace}/{plan.name}` in `{plan.cluster}` combine "
                "into too many path and method combinations; some overlaps are not authorized",
                hint="use fewer, broader path patterns",
            )
        )

    def _path_findings(
        self, plan: ServerPlan, restricted: Sequence[Grant], covers: Mapping[Operation, frozenset[str]]
    ) -> None:
        """Findings where Linkerd's matching of the policies' paths is not exactly the policies' meaning."""
        for g in restricted:
            patterns = {
                p for d in g.destinations for r in self.scope.access.get(d, ()) if r.policy == g.policy for p in r.paths
            }
            for pattern in sorted(patterns):
                note = approximations(pattern)
                if note:
                    self.out.finding(
                        Diagnostic(
                            code=codes.PATH_APPROXIMATED,
                            severity=Severity.WARNING,
                            object=g.policy,
                            field="spec.allowedPaths",
                            message=note,
                            hint="list the bare path separately, or end the prefix with `/`, if it matters",
                        )
                    )
        for a, b in conflicts(covers):
            who = sorted(k for k in covers[a] ^ covers[b] if k != KUBELET)
            self.out.finding(
                Diagnostic(
                    code=codes.PATH_OVERLAP,
                    severity=Severity.WARNING,
                    object=who[0] if who else ref("Server", plan.namespace, plan.name),
                    related=tuple(who[1:]),
                    field="spec.allowedPaths",
                    message=f"on Server `{plan.namespace}/{plan.name}` in `{plan.cluster}`, Linkerd may send a "
                    f"request matching both `{_describe(a)}` and `{_describe(b)}` to either route, so it may deny "
                    "a request that one of these policies allows",
                    hint="make the overlapping paths of these policies identical, or disjoint",
                )
            )


def _describe(op: Operation) -> str:
    path = {"any": "any path", "exact": op.path.value, "prefix": f"{op.path.value}/*", "regex": op.path.value}
    return f"{op.method or 'any method'} {path[op.path.kind]}"
