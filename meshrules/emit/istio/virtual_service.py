"""VirtualService `http` routes from a route table (spec §3.2, §4).

Place: `virtual_service_drafts` writes one VirtualService per host and caller cluster with routes
(the plan's views, `RouteTable.for_cluster`): in D's namespace for its local name, in the calling
mesh's root namespace for its federated host. Istio evaluates `http` routes
in order and takes the first match (https://istio.io/latest/docs/reference/config/networking/virtual-service/#VirtualService),
which is exactly the table's order; the `match` entries of one route are ORed and the fields of
one entry ANDed (#HTTPMatchRequest), which is the table's clauses. The last route is the
table's catch-all, so no request falls through to Istio's 404 for an unmatched route.

Backends are destination names; ``host_of`` says which host a caller in this cluster dials for
each: a local FQDN, or the federated host of a destination in another cluster.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from meshrules.emit.istio.objects import Draft
from meshrules.emit.istio.plan import RoutePlan
from meshrules.emit.istio.subsets import subset_key
from meshrules.emit.istio.topology import API_NETWORKING, IstioTopology, policy_parent
from meshrules.emit.naming import object_name
from meshrules.emit.routes import (
    Backend,
    HeaderCondition,
    QueryCondition,
    Route,
    RouteConfig,
    RouteMatch,
    RouteTable,
    StringCondition,
)
from meshrules.errors import InternalError
from meshrules.model.policy import CorsPolicy, HeaderManipulation

HostOf = Callable[[str], str]


def virtual_service_drafts(topo: IstioTopology, plan: RoutePlan) -> list[Draft]:
    """A VirtualService for each host, in each cluster whose callers have routes for it."""
    drafts: list[Draft] = []
    for (name, cluster), view in sorted(plan.views.items()):
        dest = topo.destinations[name]
        host = topo.host_of(name, cluster)
        if not view.has_policy_routes or host is None:
            continue  # (a view exists only for clusters with a host: caller_clusters lists those)
        parents = [topo.parent("Destination", name), *(policy_parent(p) for p in view.policies)]
        if cluster == dest.cluster:
            namespace, base = dest.namespace, object_name(dest.service)
        else:
            fed = topo.federated[(name, cluster)]
            namespace = topo.root_namespace(topo.meshes[fed.mesh])
            base = object_name(dest.service, dest.namespace, dest.cluster, fed.host.rpartition(".")[2])
            parents += [topo.parent("Mesh", fed.mesh), *(policy_parent(e.virtual_mesh) for e in fed.edges)]
        spec = virtual_service_spec(view, host, _host_resolver(topo, cluster))
        drafts.append(Draft(cluster, API_NETWORKING, "VirtualService", namespace, base, f"vs/{host}", spec, parents))
    return drafts


def _host_resolver(topo: IstioTopology, cluster: str) -> Callable[[str], str]:
    """The host callers in ``cluster`` dial for a destination name."""

    def host_of(target: str) -> str:
        found = topo.host_of(target, cluster)
        if found is None:  # INVARIANT: the plan made policies with unreachable backends INVALID
            raise InternalError(f"`{target}` is not reachable from cluster `{cluster}`")
        return found

    return host_of


def virtual_service_spec(table: RouteTable, host: str, host_of: HostOf) -> dict[str, Any]:
    """The spec of the VirtualService for ``host`` (``table`` limited to this cluster's callers)."""
    return {"hosts": [host], "http": [_route(route, host, host_of) for route in table.routes]}


def _route(route: Route, host: str, host_of: HostOf) -> dict[str, Any]:
    out: dict[str, Any] = {}
    matches = [entry for m in route.matches if not m.is_catch_all for entry in _match_entries(m)]
    if matches and not route.is_catch_all:
        out["match"] = matches
    out.update(_config(route.config, host, host_of))
    return out


def _match_entries(match: RouteMatch) -> list[dict[str, Any]]:
    """One `HTTPMatchRequest` per source namespace (Istio's `sourceNamespace` holds one)."""
    base: dict[str, Any] = {}
    if match.uri is not None:
        base["uri"] = _string_match(match.uri)
    if match.method is not None:
        base["method"] = {"exact": match.method}
    headers = _header_map(h for h in match.headers if not h.invert)
    if headers:
        base["headers"] = headers
    # An inverted presence test ("the header is absent") is an empty StringMatch: Istio translates it
    # to Envoy's present match, which `invert_match` turns into "absent". An inverted `.*` regex would
    # never match (Envoy's regex matcher fails on an absent header before inverting).
    without = {
        h.name: ({} if h.condition.kind == "present" else _string_match(h.condition)) for h in match.headers if h.invert
    }
    if without:
        base["withoutHeaders"] = without
    if match.query:
        base["queryParams"] = _query_map(match.query)
    if match.source.labels:
        base["sourceLabels"] = dict(match.source.labels)
    # Clusters are not matched here: a route limited to other clusters was dropped by `for_cluster`.
    if match.source.namespaces is None:
        return [base]
    return [{**base, "sourceNamespace": ns} for ns in match.source.namespaces]


def _string_match(cond: StringCondition) -> dict[str, str]:
    # Presence is a regex matching any value: Envoy's regex matcher fails on an absent header,
    # so `.*` means "present" in every Istio version (empty StringMatch support varies).
    if cond.kind == "present":
        return {"regex": ".*"}
    return {cond.kind: cond.value}


def _header_map(conditions: Iterable[HeaderCondition]) -> dict[str, dict[str, str]]:
    return {h.name: _string_match(h.condition) for h in conditions}


def _query_map(conditions: tuple[QueryCondition, ...]) -> dict[str, dict[str, str]]:
    return {q.name: _string_match(q.condition) for q in conditions}


def _config(config: RouteConfig, host: str, host_of: HostOf) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if config.traffic_shift is not None:
        backends = config.traffic_shift.value
        out["route"] = [_destination(b, host_of, weighted=len(backends) > 1) for b in backends]
    else:
        out["route"] = [{"destination": {"host": host}}]
    if config.request_timeout is not None:
        out["timeout"] = config.request_timeout.value
    if config.retries is not None:
        retries = config.retries.value
        # retryOn stays Istio's default (connect-failure,refused-stream,unavailable,cancelled,
        # retriable-status-codes); `why` reports it as the mesh default.
        out["retries"] = {"attempts": retries.attempts}
        if retries.per_try_timeout is not None:
            out["retries"]["perTryTimeout"] = retries.per_try_timeout
    if config.fault_injection is not None:
        fault = config.fault_injection.value
        percentage = {"value": fault.percentage}
        if fault.fixed_delay is not None:
            out["fault"] = {"delay": {"fixedDelay": fault.fixed_delay, "percentage": percentage}}
        elif fault.abort is not None:
            out["fault"] = {"abort": {"httpStatus": fault.abort.http_status, "percentage": percentage}}
    if config.cors_policy is not None:
        out["corsPolicy"] = _cors(config.cors_policy.value)
    if config.header_manipulation is not None:
        headers = _headers(config.header_manipulation.value)
        if headers:
            out["headers"] = headers
    if config.mirror is not None:
        mirror = config.mirror.value
        target: dict[str, Any] = {"host": host_of(mirror.destination)}
        if mirror.port is not None:
            target["port"] = {"number": mirror.port}
        out["mirror"] = target
        out["mirrorPercentage"] = {"value": mirror.percentage}
    return out


def _destination(backend: Backend, host_of: HostOf, *, weighted: bool) -> dict[str, Any]:
    dest: dict[str, Any] = {"host": host_of(backend.destination)}
    if backend.subset:
        dest["subset"] = subset_key(backend.subset)
    if backend.port is not None:
        dest["port"] = {"number": backend.port}
    out: dict[str, Any] = {"destination": dest}
    if weighted:
        out["weight"] = backend.weight
    return out


def _cors(cors: CorsPolicy) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if cors.allow_origins:
        out["allowOrigins"] = [{m.kind: m.value} for m in cors.allow_origins]
    for wire, value in (
        ("allowMethods", cors.allow_methods),
        ("allowHeaders", cors.allow_headers),
        ("exposeHeaders", cors.expose_headers),
    ):
        if value:
            out[wire] = list(value)
    if cors.max_age is not None:
        out["maxAge"] = cors.max_age
    if cors.allow_credentials is not None:
        out["allowCredentials"] = cors.allow_credentials
    return out


def _headers(manipulation: HeaderManipulation) -> dict[str, Any]:
    """Istio `headers`: `add` appends a value (what `append*Headers` asks), `remove` deletes."""
    out: dict[str, Any] = {}
    for side, add, remove in (
        ("request", manipulation.append_request_headers, manipulation.remove_request_headers),
        ("response", manipulation.append_response_headers, manipulation.remove_response_headers),
    ):
        ops: dict[str, Any] = {}
        if add:
            ops["add"] = dict(sorted(add.items()))
        if remove:
            ops["remove"] = sorted(set(remove))
        if ops:
            out[side] = ops
    return out
