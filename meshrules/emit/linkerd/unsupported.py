"""What Linkerd cannot express: per (TrafficPolicy, destination) INVALID statuses (spec §3.4).

The rule set decides which TrafficPolicy applies at which destination with which fields
(`TrafficApplication`). At a Linkerd destination some of those fields have no Linkerd equivalent;
the policy is then INVALID there — one status entry per feature, naming the feature and the mesh —
and contributes nothing to that destination (its routes are not emitted, nor its failure accrual).

| feature | why Linkerd cannot |
|---|---|
| `faultInjection` | Linkerd's HTTPRoute has no fault filter (only header modifiers and redirects) |
| `corsPolicy` | no CORS support in the proxy |
| `mirror` | Linkerd does not implement the `RequestMirror` filter |
| `trafficShift` to a subset | backends are whole Services; there is no subset notion |
| `sourceSelector` by namespace or labels | producer routes apply to every client of the cluster |
| `headerManipulation` with names or values a header filter refuses | HTTPRoute filter schema |
| `outlierDetection` with `maxEjectionPercent` < 100 | failure accrual has no ejection cap |
| `mtls: DISABLE` | meshed traffic is always mTLS |
| inverted header matchers, unknown methods | HTTPRoute matches cannot negate; `method` is an enum |

Retries, timeouts, weighted backends, request/response header add and remove (`http_routes.py`),
`ISTIO_MUTUAL` (Linkerd's default) and outlier detection as consecutive-failure accrual
(`accrual.py`) are expressible and handled elsewhere. A user `ServiceProfile` for the host is user
config that makes Linkerd ignore HTTPRoute timeouts, retries and backends for that host (Linkerd
"Retries" and "Timeouts" references), so client-side fields are INVALID there too, with a finding
at the ServiceProfile.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from meshrules.emit.linkerd import codes
from meshrules.emit.linkerd.emission import Emission
from meshrules.emit.linkerd.scope import LinkerdScope
from meshrules.errors import Diagnostic, Location, Severity
from meshrules.model.discovery import Destination
from meshrules.model.intent import PolicyStatusEntry, TrafficApplication
from meshrules.model.policy import HeaderManipulation, MtlsMode, TrafficPolicy

# Fields rendered as client-side HTTPRoutes (the ones a ServiceProfile would shadow).
ROUTE_FIELDS = frozenset({"requestTimeout", "retries", "trafficShift", "headerManipulation"})
# Methods the HTTPRoute CRD accepts (`matches[].method` enum).
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"})
# Header names per the HTTPRoute CRD (RFC 7230 token); filters and matches take at most 16 each.
HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$")
MAX_HEADERS = 16


def judge_traffic(scope: LinkerdScope, out: Emission) -> frozenset[tuple[str, str]]:
    """Add the INVALID statuses of TrafficPolicies at Linkerd destinations; return those (policy, destination)."""
    invalid: set[tuple[str, str]] = set()
    apps = sorted(
        (a for a in scope.inp.intent.traffic if a.destination in scope.destination_by_name),
        key=lambda a: (a.destination, a.policy),
    )
    for app in apps:
        policy = scope.inp.policy_by_ref.get(app.policy)
        if not isinstance(policy, TrafficPolicy):
            continue
        destination = scope.destination_by_name[app.destination]
        mesh = scope.mesh_of(destination).name
        problems = [*_unsupported(app, policy), *_service_profiles(scope, out, app, destination)]
        for code, field, feature in problems:
            out.status(
                PolicyStatusEntry(
                    policy=app.policy,
                    code=code,
                    field=field,
                    message=f"{feature} is not supported by Linkerd (mesh `{mesh}`)"
                    if code != codes.SERVICE_PROFILE
                    else feature,
                    destination=app.destination,
                    why=app.why,
                )
            )
            invalid.add((app.policy, app.destination))
    return frozenset(invalid)


def _unsupported(app: TrafficApplication, policy: TrafficPolicy) -> Iterator[tuple[str, str, str]]:
    """(code, field, feature) for every field of the application Linkerd cannot express."""
    spec = policy.spec
    p = spec.policy
    fields = set(app.fields)
    if "faultInjection" in fields:
        yield codes.FAULT_INJECTION, "spec.policy.faultInjection", "fault injection"
    if "corsPolicy" in fields:
        yield codes.CORS_POLICY, "spec.policy.corsPolicy", "a CORS policy"
    if "mirror" in fields:
        yield codes.MIRROR, "spec.policy.mirror", "request mirroring"
    if "trafficShift" in fields and p.traffic_shift is not None:
        for i, backend in enumerate(p.traffic_shift.destinations):
            if backend.subset:
                yield codes.SUBSET, f"spec.policy.trafficShift.destinations[{i}].subset", "a traffic shift to a subset"
    if "headerManipulation" in fields and p.header_manipulation is not None:
        bad = _bad_header_manipulation(p.header_manipulation)
        if bad:
            yield codes.HEADER_MANIPULATION, f"spec.policy.headerManipulation.{bad[0]}", bad[1]
    od = p.outlier_detection
    if "outlierDetection" in fields and od is not None and od.max_ejection_percent < 100:
        yield (
            codes.OUTLIER_DETECTION,
            "spec.policy.outlierDetection.maxEjectionPercent",
            "outlier detection with `maxEjectionPercent` below 100",
        )
    if "mtls" in fields and p.mtls is not None and p.mtls.mode == MtlsMode.DISABLE:
        yield codes.MTLS_DISABLE, "spec.policy.mtls.mode", "disabling mTLS"
    if fields & ROUTE_FIELDS:
        for i, selector in enumerate(spec.source_selector):
            if selector.namespaces or selector.labels:
                field = "namespaces" if selector.namespaces else "labels"
                yield codes.SOURCE_SELECTIVE, f"spec.sourceSelector[{i}].{field}", "routing for selected sources only"
                break
        yield from _bad_matchers(policy)


def _bad_header_manipulation(h: HeaderManipulation) -> tuple[str, str] | None:
    """(field, feature) of the first part a Gateway API header filter cannot carry, if any."""
    parts: list[tuple[str, list[str], list[str]]] = [
        ("appendRequestHeaders", list(h.append_request_headers), list(h.append_request_headers.values())),
        ("removeRequestHeaders", list(h.remove_request_headers), []),
        ("appendResponseHeaders", list(h.append_response_headers), list(h.append_response_headers.values())),
        ("removeResponseHeaders", list(h.remove_response_headers), []),
    ]
    for field, names, values in parts:
        if len(names) > MAX_HEADERS:
            return field, f"header manipulation of more than {MAX_HEADERS} headers in `{field}`"
        for name in names:
            if not HEADER_NAME.match(name):
                return field, f"header manipulation of header `{name}` (not a header name)"
        if any(v == "" for v in values):
            return field, f"header manipulation with an empty value in `{field}`"
    return None


def _bad_matchers(policy: TrafficPolicy) -> Iterator[tuple[str, str, str]]:
    for i, m in enumerate(policy.spec.http_request_matchers):
        base = f"spec.httpRequestMatchers[{i}]"
        if m.method is not None and m.method.upper() not in HTTP_METHODS:
            yield codes.REQUEST_MATCHER, f"{base}.method", f"matching method `{m.method}`"
        if len(m.headers) > MAX_HEADERS or len(m.query_parameters) > MAX_HEADERS:
            yield codes.REQUEST_MATCHER, base, f"matching more than {MAX_HEADERS} headers or query parameters"
        for j, header in enumerate(m.headers):
            if header.invert_match:
                yield codes.REQUEST_MATCHER, f"{base}.headers[{j}].invertMatch", "an inverted header match"
            elif not HEADER_NAME.match(header.name):
                yield codes.REQUEST_MATCHER, f"{base}.headers[{j}].name", f"matching header `{header.name}`"


def _service_profiles(
    scope: LinkerdScope, out: Emission, app: TrafficApplication, destination: Destination
) -> Iterator[tuple[str, str, str]]:
    """A ServiceProfile shadows HTTPRoute-based policy for its host: report it, do not compete."""
    if not set(app.fields) & ROUTE_FIELDS:
        return
    hosts = [(destination.cluster, destination.local_fqdn)]
    hosts += [(scope.meshes[e.mesh].cluster, e.host) for e in scope.federation if e.destination == destination.name]
    for cluster, host in hosts:
        for sp in scope.existing(cluster, ("ServiceProfile",)):
            if sp.name != host or not scope.user_owned(sp):
                continue
            message = (
                f"ServiceProfile `{sp.namespace}/{sp.name}` in `{cluster}` configures this host; Linkerd ignores "
                f"HTTPRoute timeouts, retries and backends for it, so meshrules emits none (mesh "
                f"`{scope.mesh_of(destination).name}`)"
            )
            out.finding(
                Diagnostic(
                    code=codes.SERVICE_PROFILE,
                    severity=Severity.WARNING,
                    location=sp.location if isinstance(sp.location, Location) else None,
                    object=sp.ref(),
                    related=(app.policy,),
                    message=f"ServiceProfile `{sp.namespace}/{sp.name}` in `{cluster}` is user config for the host "
                    f"`{host}`: `{app.policy}` is not applied there",
                    hint="move the ServiceProfile's settings into the TrafficPolicy and delete the ServiceProfile, "
                    "or drop the TrafficPolicy",
                )
            )
            yield codes.SERVICE_PROFILE, "spec.policy", message
            return
