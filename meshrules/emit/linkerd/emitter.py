"""`emit_linkerd`: the Linkerd resources, statuses and findings for an `EmitInput` (spec §4).

The steps, each in its own module:
1. `unsupported.judge_traffic` — TrafficPolicies Linkerd cannot express at a destination are
   INVALID there and set aside;
2. `servers` + `authorization` — Servers where denial by default is wanted, and the
   MeshTLSAuthentication / AuthorizationPolicy / inbound HTTPRoute objects of AccessPolicies;
3. `http_routes` — client-side HTTPRoutes from the route model, on each destination's Service
   and on its mirrors; a policy Linkerd's precedence cannot render is set aside too;
4. `accrual` and `federation` — the server-side-apply patch of each user Service meshrules
   touches: failure-accrual annotations and the export label.
Only Linkerd meshes and their clusters are considered. Everything is planned in sorted order and
`Emission.result` sorts again, so the output is byte-identical under any input order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from meshrules.emit.input import EmitInput
from meshrules.emit.linkerd import codes
from meshrules.emit.linkerd.accrual import failure_accrual
from meshrules.emit.linkerd.authorization import Authorizer, server_grants
from meshrules.emit.linkerd.emission import Emission
from meshrules.emit.linkerd.federation import export_services
from meshrules.emit.linkerd.http_routes import (
    ROUTE_API_VERSION,
    Parent,
    parents,
    render,
    retry_annotations,
)
from meshrules.emit.linkerd.names import NameBook
from meshrules.emit.linkerd.scope import LinkerdScope, ref
from meshrules.emit.linkerd.servers import (
    POLICY_GROUP,
    UNKNOWN,
    ServerPlan,
    adopt_existing,
    destinations_needing_servers,
    plan_servers,
    server_object,
)
from meshrules.emit.linkerd.unsupported import judge_traffic
from meshrules.emit.output import EmitResult
from meshrules.emit.routes import RouteTable, build_route_table, route_tables
from meshrules.errors import Diagnostic, Severity
from meshrules.model.discovery import Destination
from meshrules.model.intent import PolicyStatusEntry
from meshrules.model.policy import TrafficPolicy

# Kinds meshrules writes in the policy.linkerd.io group: a user object of one of them holds its name.
_OWN_KINDS = ("Server", "AuthorizationPolicy", "MeshTLSAuthentication", "NetworkAuthentication", "HTTPRoute")


def emit_linkerd(inp: EmitInput) -> EmitResult:
    """Render the Linkerd part of ``inp``: objects and patches per cluster, statuses, findings."""
    scope = LinkerdScope(inp)
    out = Emission(inp.owner, NameBook(_user_names(scope)))
    invalid = set(judge_traffic(scope, out))
    _servers(scope, out)
    _all_client_routes(scope, out, invalid)
    failure_accrual(scope, out, invalid)
    export_services(scope, out)
    _renamed(out)
    return out.result()


def _user_names(scope: LinkerdScope) -> Iterable[tuple[str, str, str, str]]:
    for cluster in sorted(scope.inp.existing):
        for obj in scope.existing(cluster, _OWN_KINDS):
            if obj.group == POLICY_GROUP and scope.user_owned(obj):
                yield (cluster, obj.kind, obj.namespace, obj.name)


# --- servers and authorization -------------------------------------------------------------------


def _servers(scope: LinkerdScope, out: Emission) -> None:
    plans: list[ServerPlan] = []
    for plan in plan_servers(scope, destinations_needing_servers(scope)):
        user = adopt_existing(scope, plan)
        if user is None:
            plans.append(replace(plan, name=out.names.name(plan.cluster, "Server", plan.namespace, plan.name)))
            continue
        protocol = user.spec.get("proxyProtocol")
        plans.append(
            replace(plan, name=user.name, user_owned=True, protocol=protocol if isinstance(protocol, str) else UNKNOWN)
        )
        out.finding(
            Diagnostic(
                code=codes.EXISTING_SERVER,
                severity=Severity.WARNING,
                location=user.location,
                object=user.ref(),
                related=tuple(scope.discovered("Destination", d) for d in plan.destinations),
                message=f"Server `{user.namespace}/{user.name}` in `{plan.cluster}` already selects port "
                f"`{plan.port}` of these pods; meshrules attaches its authorizations to it and leaves its "
                "`accessPolicy` as the user set it",
                hint="let meshrules own the port by deleting the Server, or keep it with `accessPolicy: deny`",
            )
        )
    authorizer = Authorizer(scope, out)
    for plan in plans:
        grants = server_grants(scope, plan)
        decided = authorizer.authorize(plan, grants)
        if plan.user_owned:
            continue
        parents_ = [
            *(scope.discovered("Destination", d) for d in plan.destinations),
            *decided.policies,
            *_virtual_meshes(scope, plan),
        ]
        meta = out.metadata(plan.name, plan.namespace, parents_)
        out.add(plan.cluster, server_object(plan, meta, routes_attached=decided.routes_attached))
    authorizer.finish()


def _virtual_meshes(scope: LinkerdScope, plan: ServerPlan) -> list[str]:
    """The VirtualMesh that enforces access on the plan's destinations, as a parent."""
    found = set()
    for d in plan.destinations:
        mesh = scope.mesh_of(scope.destination_by_name[d]).name
        membership = scope.memberships.get(mesh)
        if membership is not None and membership.enforced and membership.virtual_mesh:
            found.add(membership.virtual_mesh)
    return sorted(found)


# --- client routes -------------------------------------------------------------------------------


def _acceptance(scope: LinkerdScope) -> Any:
    def key(policy: str) -> tuple[Any, ...]:
        found = scope.inp.policy_by_ref.get(policy)
        return found.acceptance_key() if isinstance(found, TrafficPolicy) else (2, "", "", policy)

    return key


def _all_client_routes(scope: LinkerdScope, out: Emission, invalid: set[tuple[str, str]]) -> None:
    """The client-side HTTPRoutes of every Linkerd destination a TrafficPolicy applies to."""
    names = sorted({a.destination for a in scope.inp.intent.traffic if a.destination in scope.destination_by_name})
    exclude: dict[str, set[str]] = {}
    for policy, dest in invalid:
        exclude.setdefault(dest, set()).add(policy)
    # One pass builds every table; a destination whose rendering sets a policy aside is rebuilt alone.
    tables = route_tables(scope.inp, exclude, names)
    for name in names:
        _client_routes(scope, out, scope.destination_by_name[name], invalid, tables[name])


def _client_routes(
    scope: LinkerdScope, out: Emission, destination: Destination, invalid: set[tuple[str, str]], first: RouteTable
) -> None:
    """The client-side HTTPRoutes of one destination, setting aside what Linkerd cannot render."""
    table: RouteTable | None = first
    while True:
        if table is None:
            exclude = {p for p, d in invalid if d == destination.name}
            table = build_route_table(scope.inp, destination.name, exclude)
        for status in table.statuses:
            out.status(status)
        if not table.has_policy_routes:
            return
        targets = parents(scope, destination)
        if not targets:
            for policy in table.policies:
                _set_aside(
                    scope,
                    out,
                    invalid,
                    destination,
                    policy,
                    codes.NO_HTTP_PORT,
                    "spec.policy",
                    f"HTTP routing on a Service without an HTTP port is not supported by Linkerd (mesh "
                    f"`{scope.mesh_of(destination).name}`)",
                )
            table = None
            continue
        rendered: list[tuple[Parent, list[tuple[tuple[str, ...], list[dict[str, Any]]]]]] = []
        for parent in targets:
            objects, blame = render(scope, destination, table, parent, _acceptance(scope))
            if blame is not None:
                _set_aside(scope, out, invalid, destination, blame.policy, blame.code, blame.field, blame.message)
                break
            rendered.append((parent, objects))
        else:
            for parent, objects in rendered:
                _emit_routes(scope, out, destination, table, parent, objects)
            return
        table = None  # a policy was set aside: rebuild the table without it


def _set_aside(
    scope: LinkerdScope,
    out: Emission,
    invalid: set[tuple[str, str]],
    destination: Destination,
    policy: str,
    code: str,
    field: str,
    message: str,
) -> None:
    out.status(PolicyStatusEntry(policy=policy, code=code, field=field, message=message, destination=destination.name))
    invalid.add((policy, destination.name))


def _emit_routes(
    scope: LinkerdScope,
    out: Emission,
    destination: Destination,
    table: RouteTable,
    parent: Parent,
    objects: list[tuple[tuple[str, ...], list[dict[str, Any]]]],
) -> None:
    parents_ = [*table.policies, scope.discovered("Destination", destination.name)]
    if parent.cluster != destination.cluster:
        parents_ += sorted({e.virtual_mesh for e in scope.federation if e.destination == destination.name})
    for index, (retries, rules) in enumerate(objects):
        suffix = [str(index + 1)] if index else []
        name = out.names.name(parent.cluster, "HTTPRoute", parent.namespace, parent.service, str(parent.port), *suffix)
        meta = out.metadata(name, parent.namespace, parents_)
        meta["annotations"].update(retry_annotations(retries))
        out.add(
            parent.cluster,
            {
                "apiVersion": ROUTE_API_VERSION,
                "kind": "HTTPRoute",
                "metadata": meta,
                "spec": {
                    "parentRefs": [{"group": "core", "kind": "Service", "name": parent.service, "port": parent.port}],
                    "rules": rules,
                },
            },
        )
    _existing_routes(scope, out, parent)


def _existing_routes(scope: LinkerdScope, out: Emission, parent: Parent) -> None:
    """A finding for each user HTTPRoute that attaches to the same Service: Linkerd merges the two."""
    for obj in scope.existing(parent.cluster, ("HTTPRoute", "GRPCRoute")):
        if obj.namespace != parent.namespace or not scope.user_owned(obj):
            continue
        refs = obj.spec.get("parentRefs")
        if not isinstance(refs, list):
            continue
        if any(
            isinstance(r, dict)
            and r.get("kind") == "Service"
            and r.get("name") == parent.service
            and r.get("port") in (None, parent.port)
            for r in refs
        ):
            out.finding(
                Diagnostic(
                    code=codes.EXISTING_HTTP_ROUTE,
                    severity=Severity.WARNING,
                    location=obj.location,
                    object=obj.ref(),
                    message=f"{obj.kind} `{obj.namespace}/{obj.name}` in `{parent.cluster}` also routes "
                    f"`{parent.service}` port {parent.port}; Linkerd picks between it and meshrules' routes "
                    "by match specificity and age",
                    hint="move its rules into a TrafficPolicy, or remove it",
                )
            )


def _renamed(out: Emission) -> None:
    for cluster, kind, namespace, wanted, given in out.names.renamed:
        out.finding(
            Diagnostic(
                code=codes.NAME_TAKEN,
                severity=Severity.WARNING,
                object=ref(kind, namespace, wanted),
                message=f"{kind} `{namespace}/{wanted}` in `{cluster}` belongs to the user; meshrules wrote "
                f"`{given}` instead",
                hint="rename or delete the user object to get the usual name",
            )
        )
