"""Hypothesis strategies for meshrules property tests: topologies, selectors, policies, requests.

The only module of meshrules that imports Hypothesis. Everything is drawn in the wire format of the
spec (camelCase dicts as users write them in ``policies/*.yaml``), so a drawn policy can be dumped to
YAML, loaded by the scenario loader, or validated by the models alike. Policies and requests that
take a ``Topology`` only name clusters, namespaces, services, subsets and ports of that topology, so
they exercise selection and routing rather than the "selects nothing" path.

Validity: ``traffic_policies`` and ``access_policies`` draw only policies that pass every rule of
spec §3 (weights sum to 100 across several destinations, percentages 0–100, Istio-style durations
≥ 1ms, ``outlierDetection``/``mtls`` only without a source selector, subsets that exist in their
destination). ``invalid_policies`` draws policies that break exactly one rule and says which field.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from hypothesis import strategies as st

from meshrules.testing.topology import (
    POLICY_API_VERSION,
    GeneratedService,
    GeneratedWorkload,
    KubeObject,
    Topology,
    TopologyParams,
    generate_topology,
)

__all__ = [
    "InvalidPolicy",
    "Request",
    "access_policies",
    "destination_selectors",
    "durations",
    "identity_selectors",
    "invalid_policies",
    "label_maps",
    "requests",
    "topologies",
    "topology_params",
    "traffic_policies",
    "workload_selectors",
]

T = TypeVar("T")

HTTP_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS")
# Units of Istio-style durations and their length in milliseconds.
_DURATION_UNITS = (("ms", 1), ("s", 1_000), ("m", 60_000), ("h", 3_600_000))
_HTTP_STATUSES = (400, 403, 404, 408, 429, 500, 502, 503, 504)
# Small pools make draws collide, which is what selector, merging and acceptance-order tests need.
_NAME_POOL = ("shop", "payments", "reviews", "ratings", "default", "cluster-1", "cluster-2", "web")
_LABEL_KEYS = ("app", "version", "tier", "team", "env", "track")
_LABEL_VALUES = ("v1", "v2", "v3", "frontend", "backend", "prod", "dev", "canary", "")
_HEADER_NAMES = ("end-user", "x-canary", "x-request-id", "user-agent", "x-tenant")
_HEADER_VALUES = ("jason", "true", "v2", "mobile", "acme")
_PATHS = ("/", "/api/", "/api/v1/items", "/api/v1/items/42", "/healthz", "/reviews/0", "/ratings/1", "/login")
_PATH_PATTERNS = ("*", "/api/*", "/healthz", "*/metrics", "/reviews*", "/ratings/*", "/login")
# RE2-compatible regexes only: Istio hands them to Envoy.
_REGEXES = ("/api/v[0-9]+/.*", ".*\\.json", "/reviews/[0-9]+", "https://.*\\.example\\.org")
_TIMESTAMP_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
# A handful of exact instants makes equal creationTimestamps (ties broken by namespace/name) common.
_TIE_TIMESTAMPS = ("2026-01-10T09:00:00Z", "2026-01-10T09:00:00Z", "2026-02-01T12:30:00Z")

_dns_labels = st.from_regex(r"[a-z]([-a-z0-9]{0,14}[a-z0-9])?", fullmatch=True)
_names = st.one_of(st.sampled_from(_NAME_POOL), _dns_labels)


# -- topologies ------------------------------------------------------------------------------------


def topology_params(
    *, max_clusters: int = 3, max_services: int = 6, max_policies: int = 4, linkerd: bool = True
) -> st.SearchStrategy[TopologyParams]:
    """Parameters of small topologies: 1–``max_clusters`` clusters, 1–``max_services`` services."""
    return st.builds(
        TopologyParams,
        clusters=st.integers(1, max_clusters),
        namespaces_per_cluster=st.integers(1, 3),
        services=st.integers(1, max_services),
        workloads_per_service=st.integers(1, 3),
        subsets=st.integers(1, 3),
        traffic_policies=st.integers(0, max_policies),
        access_policies=st.integers(0, max_policies),
        linkerd_share=st.sampled_from((0.0, 0.5, 1.0)) if linkerd else st.just(0.0),
        replicated_share=st.sampled_from((0.0, 0.3, 1.0)),
        eastwest_gateways=st.booleans(),
        unaddressed_gateways=st.just(0),
        enforcement=st.sampled_from(("DISABLED", "ENFORCED")),
        seed=st.integers(0, 2**32 - 1),
    )


def topologies(params: st.SearchStrategy[TopologyParams] | None = None) -> st.SearchStrategy[Topology]:
    """Generated topologies (small by default; pass ``topology_params(...)`` to change the bounds)."""
    return (params if params is not None else topology_params()).map(generate_topology)


# -- labels and selectors ------------------------------------------------------------------------------


def label_maps(*, min_size: int = 0, max_size: int = 3) -> st.SearchStrategy[dict[str, str]]:
    """Kubernetes label maps: mostly common keys and values (so they collide), some arbitrary valid ones."""
    keys = st.one_of(
        st.sampled_from(_LABEL_KEYS),
        st.from_regex(
            r"([a-z0-9]([-a-z0-9]{0,8}[a-z0-9])?\.)?[a-z]{2,6}\.io/[a-z]([-a-z0-9_.]{0,10}[a-z0-9])?", fullmatch=True
        ),
        st.from_regex(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,14}[A-Za-z0-9])?", fullmatch=True),
    )
    values = st.one_of(
        st.sampled_from(_LABEL_VALUES),
        st.from_regex(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,14}[A-Za-z0-9])?", fullmatch=True),
    )
    return st.dictionaries(keys, values, min_size=min_size, max_size=max_size).map(_sorted_dict)


def workload_selectors(topology: Topology | None = None) -> st.SearchStrategy[dict[str, Any]]:
    """WorkloadSelectors ``{clusters, namespaces, labels}`` (any subset of the fields, AND-ed).

    With a topology, names and labels mostly come from it (labels are part of a real workload's pod
    labels), with an occasional name that matches nothing.
    """
    labels = (
        st.one_of(st.sampled_from(topology.workloads).flatmap(lambda w: _sub_maps(w.labels)), label_maps(min_size=1))
        if topology is not None and topology.workloads
        else label_maps(min_size=1)
    )
    return st.fixed_dictionaries(
        {},
        optional={
            "clusters": _name_lists(_cluster_names(topology)),
            "namespaces": _name_lists(_namespaces(topology)),
            "labels": labels,
        },
    ).map(_sorted_dict)


def destination_selectors(topology: Topology | None = None) -> st.SearchStrategy[dict[str, Any]]:
    """DestinationSelectors: ``{clusters, namespaces, labels}`` on the Service, or ``{services: [ref]}``."""
    labels = (
        st.one_of(st.sampled_from(topology.services).flatmap(lambda s: _sub_maps(s.labels)), label_maps(min_size=1))
        if topology is not None and topology.services
        else label_maps(min_size=1)
    )
    by_labels = st.fixed_dictionaries(
        {},
        optional={
            "clusters": _name_lists(_cluster_names(topology)),
            "namespaces": _name_lists(_namespaces(topology)),
            "labels": labels,
        },
    )
    by_services = st.fixed_dictionaries({"services": st.lists(_service_refs(topology), min_size=1, max_size=3)})
    return st.one_of(by_labels, by_services).map(_sorted_dict)


def identity_selectors(topology: Topology | None = None) -> st.SearchStrategy[dict[str, Any]]:
    """IdentitySelectors: ``{clusters, namespaces}`` or ``{serviceAccounts: [ClusterObjectRef]}``."""
    by_place = st.fixed_dictionaries(
        {},
        optional={"clusters": _name_lists(_cluster_names(topology)), "namespaces": _name_lists(_namespaces(topology))},
    )
    if topology is not None and topology.services:
        accounts: st.SearchStrategy[dict[str, str]] = st.sampled_from(topology.services).flatmap(
            lambda s: _optional_cluster({"name": s.service_account, "namespace": s.namespace}, s.cluster)
        )
    else:
        accounts = st.builds(lambda n, ns: {"name": n, "namespace": ns}, _names, _names)
    by_account = st.fixed_dictionaries({"serviceAccounts": st.lists(accounts, min_size=1, max_size=3)})
    return st.one_of(by_place, by_account).map(_sorted_dict)


# -- values --------------------------------------------------------------------------------------------


def durations(*, min_ms: int = 1, max_ms: int = 3_600_000) -> st.SearchStrategy[str]:
    """Istio-style durations (``250ms``, ``10s``, ``1m``, ``1h``) between ``min_ms`` and ``max_ms``."""
    if min_ms < 1 or max_ms < min_ms:
        raise ValueError("durations need 1 <= min_ms <= max_ms")
    units = [(unit, size) for unit, size in _DURATION_UNITS if -(-min_ms // size) * size <= max_ms]
    return st.sampled_from(units).flatmap(
        lambda u: st.integers(-(-min_ms // u[1]), max_ms // u[1]).map(lambda n: f"{n}{u[0]}")
    )


def _percentages() -> st.SearchStrategy[int]:
    return st.integers(0, 100)


def _timestamps() -> st.SearchStrategy[str]:
    spread = st.integers(0, 365 * 86_400).map(
        lambda s: (_TIMESTAMP_EPOCH + timedelta(seconds=s)).strftime("%Y-%m-%dT%H:%M:%SZ")
    )
    return st.one_of(st.sampled_from(_TIE_TIMESTAMPS), spread)


def _paths() -> st.SearchStrategy[str]:
    segments = st.lists(st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True), min_size=1, max_size=3)
    return st.one_of(st.sampled_from(_PATHS), segments.map(lambda s: "/" + "/".join(s)))


def _string_matches() -> st.SearchStrategy[dict[str, str]]:
    return st.one_of(
        _paths().map(lambda p: {"exact": p}),
        _paths().map(lambda p: {"prefix": p}),
        st.sampled_from(_REGEXES).map(lambda r: {"regex": r}),
    )


def _http_request_matchers() -> st.SearchStrategy[dict[str, Any]]:
    header = st.fixed_dictionaries(
        {"name": st.sampled_from(_HEADER_NAMES), "value": st.sampled_from(_HEADER_VALUES)},
        optional={"regex": st.booleans(), "invertMatch": st.booleans()},
    )
    query = st.fixed_dictionaries(
        {"name": st.sampled_from(("page", "debug", "lang")), "value": st.sampled_from(("1", "true", "en"))},
        optional={"regex": st.booleans()},
    )
    return st.fixed_dictionaries(
        {},
        optional={
            "uri": _string_matches(),
            "method": st.sampled_from(HTTP_METHODS),
            "headers": st.lists(header, min_size=1, max_size=2),
            "queryParameters": st.lists(query, min_size=1, max_size=2),
        },
    ).map(_sorted_dict)


# -- policies ------------------------------------------------------------------------------------------

# Fields of TrafficPolicy.spec.policy; the last two become DestinationRule settings, which cannot
# select sources (spec §3.2).
_TRAFFIC_FIELDS = (
    "requestTimeout",
    "retries",
    "trafficShift",
    "faultInjection",
    "corsPolicy",
    "headerManipulation",
    "mirror",
    "outlierDetection",
    "mtls",
)
_DESTINATION_RULE_FIELDS = frozenset({"outlierDetection", "mtls"})


def traffic_policies(topology: Topology) -> st.SearchStrategy[KubeObject]:
    """Valid TrafficPolicies over ``topology`` (spec §3.2), each setting one or more policy fields."""
    _require_services(topology)
    return st.sets(st.sampled_from(_TRAFFIC_FIELDS), min_size=1, max_size=4).flatmap(
        lambda fields: _traffic_policy(topology, frozenset(fields))
    )


@st.composite
def _traffic_policy(draw: st.DrawFn, topology: Topology, fields: frozenset[str]) -> KubeObject:
    spec: dict[str, Any] = {}
    destinations = draw(st.lists(destination_selectors(topology), max_size=2))
    if destinations:
        spec["destinationSelector"] = destinations
    # INVARIANT: DestinationRule fields come without sources (the spec's rule) and without matchers
    # (a DestinationRule cannot match requests either).
    if not fields & _DESTINATION_RULE_FIELDS:
        sources = draw(st.lists(workload_selectors(topology), max_size=2))
        if sources:
            spec["sourceSelector"] = sources
        matchers = draw(st.lists(_http_request_matchers(), max_size=2))
        if matchers:
            spec["httpRequestMatchers"] = matchers
    spec["policy"] = {name: draw(_POLICY_FIELD_BUILDERS[name](topology)) for name in sorted(fields)}
    return _policy_object("TrafficPolicy", draw(_metadata(topology)), spec)


def _request_timeouts(_: Topology) -> st.SearchStrategy[Any]:
    return durations(max_ms=120_000)


def _retries(_: Topology) -> st.SearchStrategy[Any]:
    # attempts 0 is how Istio users switch off the default retries, so it is a value worth drawing.
    return st.fixed_dictionaries({"attempts": st.integers(0, 10)}, optional={"perTryTimeout": durations(max_ms=60_000)})


@st.composite
def _subsets(draw: st.DrawFn, topology: Topology, service: GeneratedService) -> dict[str, str]:
    """A label map that at least one workload of ``service`` carries (so the subset exists)."""
    own = [w for w in topology.workloads if _backs(w, service)]
    if not own:  # a Service with no workloads has no subsets; callers only ask for backed ones
        return {}
    return draw(st.sampled_from(own).flatmap(lambda w: _sub_maps(w.labels)))


def _backs(workload: GeneratedWorkload, service: GeneratedService) -> bool:
    return (workload.cluster, workload.namespace, workload.service) == (
        service.cluster,
        service.namespace,
        service.name,
    )


@st.composite
def _weights(draw: st.DrawFn, count: int) -> list[int]:
    """``count`` non-negative weights summing to 100 (any single weight for one destination)."""
    if count == 1:
        return [draw(st.integers(0, 100))]
    cuts = sorted(draw(st.lists(st.integers(0, 100), min_size=count - 1, max_size=count - 1)))
    bounds = [0, *cuts, 100]
    return [b - a for a, b in itertools.pairwise(bounds)]


@st.composite
def _traffic_shifts(draw: st.DrawFn, topology: Topology) -> dict[str, Any]:
    targets = draw(st.lists(st.sampled_from(topology.services), min_size=1, max_size=3))
    weights = draw(_weights(len(targets)))
    destinations = []
    for target, weight in zip(targets, weights, strict=True):
        entry: dict[str, Any] = {"service": target.cluster_object_ref(), "weight": weight}
        if draw(st.booleans()):
            subset = draw(_subsets(topology, target))
            if subset:
                entry["subset"] = subset
        if draw(st.booleans()):
            entry["port"] = draw(st.sampled_from([port for _, port in target.ports]))
        destinations.append(entry)
    return {"destinations": destinations}


def _fault_injections(_: Topology) -> st.SearchStrategy[Any]:
    delay = st.fixed_dictionaries({"fixedDelay": durations(max_ms=30_000)}, optional={"percentage": _percentages()})
    abort = st.fixed_dictionaries(
        {"abort": st.fixed_dictionaries({"httpStatus": st.sampled_from(_HTTP_STATUSES)})},
        optional={"percentage": _percentages()},
    )
    return st.one_of(delay, abort)


def _cors_policies(_: Topology) -> st.SearchStrategy[Any]:
    header_lists = st.lists(
        st.sampled_from(("content-type", "authorization", *_HEADER_NAMES)), min_size=1, max_size=3, unique=True
    )
    return st.fixed_dictionaries(
        {"allowOrigins": st.lists(_string_matches(), min_size=1, max_size=2)},
        optional={
            "allowMethods": st.lists(st.sampled_from(HTTP_METHODS), min_size=1, max_size=3, unique=True),
            "allowHeaders": header_lists,
            "exposeHeaders": header_lists,
            "maxAge": durations(max_ms=86_400_000),
            "allowCredentials": st.booleans(),
        },
    )


def _header_manipulations(_: Topology) -> st.SearchStrategy[Any]:
    header_map = st.dictionaries(
        st.sampled_from(_HEADER_NAMES), st.sampled_from(_HEADER_VALUES), min_size=1, max_size=2
    )
    header_list = st.lists(st.sampled_from(("server", *_HEADER_NAMES)), min_size=1, max_size=2, unique=True)
    return st.fixed_dictionaries(
        {},
        optional={
            "appendRequestHeaders": header_map.map(_sorted_dict),
            "removeRequestHeaders": header_list,
            "appendResponseHeaders": header_map.map(_sorted_dict),
            "removeResponseHeaders": header_list,
        },
    ).filter(bool)


def _mirrors(topology: Topology) -> st.SearchStrategy[Any]:
    return st.sampled_from(topology.services).flatmap(
        lambda s: st.fixed_dictionaries(
            {"service": st.just(s.cluster_object_ref())},
            optional={"port": st.sampled_from([port for _, port in s.ports]), "percentage": _percentages()},
        )
    )


def _outlier_detections(_: Topology) -> st.SearchStrategy[Any]:
    return st.fixed_dictionaries(
        {},
        optional={
            "consecutiveErrors": st.integers(1, 50),
            "interval": durations(max_ms=300_000),
            "baseEjectionTime": durations(max_ms=600_000),
            "maxEjectionPercent": _percentages(),
        },
    ).filter(bool)


def _mtls(_: Topology) -> st.SearchStrategy[Any]:
    return st.sampled_from(("ISTIO_MUTUAL", "DISABLE")).map(lambda m: {"mode": m})


_POLICY_FIELD_BUILDERS: Mapping[str, Any] = {
    "requestTimeout": _request_timeouts,
    "retries": _retries,
    "trafficShift": _traffic_shifts,
    "faultInjection": _fault_injections,
    "corsPolicy": _cors_policies,
    "headerManipulation": _header_manipulations,
    "mirror": _mirrors,
    "outlierDetection": _outlier_detections,
    "mtls": _mtls,
}


@st.composite
def access_policies(draw: st.DrawFn, topology: Topology) -> KubeObject:
    """Valid AccessPolicies over ``topology`` (spec §3.3); an omitted sourceSelector means any identity."""
    _require_services(topology)
    spec: dict[str, Any] = {}
    sources = draw(st.lists(identity_selectors(topology), max_size=2))
    if sources:
        spec["sourceSelector"] = sources
    destinations = draw(st.lists(destination_selectors(topology), max_size=2))
    if destinations:
        spec["destinationSelector"] = destinations
    ports = sorted({port for s in topology.services for _, port in s.ports})
    optional = {
        "allowedPaths": st.lists(
            st.one_of(st.sampled_from(_PATH_PATTERNS), _paths()), min_size=1, max_size=3, unique=True
        ),
        "allowedMethods": st.lists(st.sampled_from(HTTP_METHODS), min_size=1, max_size=3, unique=True),
        "allowedPorts": st.lists(st.sampled_from(ports), min_size=1, max_size=2, unique=True).map(sorted),
    }
    spec.update(draw(st.fixed_dictionaries({}, optional=optional)))
    return _policy_object("AccessPolicy", draw(_metadata(topology)), spec)


@st.composite
def _metadata(draw: st.DrawFn, topology: Topology) -> dict[str, str]:
    meta = {"name": draw(_names), "namespace": draw(st.sampled_from(topology.namespaces))}
    # A policy without a timestamp is newer than every policy with one (spec §3): draw both kinds.
    if draw(st.integers(0, 4)):
        meta["creationTimestamp"] = draw(_timestamps())
    return meta


def _policy_object(kind: str, metadata: dict[str, str], spec: dict[str, Any]) -> KubeObject:
    return {"apiVersion": POLICY_API_VERSION, "kind": kind, "metadata": metadata, "spec": spec}


# -- invalid policies ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InvalidPolicy:
    """A policy that breaks exactly one rule of spec §3, for error-path tests.

    ``field`` is the path a field-level error should name (``spec.policy.retries.perTryTimeout``,
    ``spec.policy.trafficShift.destinations[1].subset``); ``rule`` is a short stable name of the
    broken rule: ``weights-sum``, ``percentage-range``, ``duration-min``, ``duration-format``,
    ``destination-rule-with-sources``, ``subset-missing``, ``unknown-field`` or ``port-range``.
    """

    policy: KubeObject
    field: str
    rule: str


_BAD_SHORT_DURATIONS = ("0s", "0ms", "500us", "999us", "0m", "0h")
_MALFORMED_DURATIONS = ("10", "ten", "-1s", "1d", "10 s", "1.5.3s", "s", "")


def invalid_policies(topology: Topology) -> st.SearchStrategy[InvalidPolicy]:
    """Policies over ``topology`` that each break exactly one validation rule (see ``InvalidPolicy``)."""
    _require_services(topology)
    return st.one_of(
        _bad_weights(topology),
        _bad_percentages(topology),
        _bad_durations(topology),
        _destination_rule_with_sources(topology),
        _missing_subsets(topology),
        _unknown_fields(topology),
        _bad_ports(topology),
    )


def _plain_traffic_policy(topology: Topology) -> st.SearchStrategy[KubeObject]:
    """A valid TrafficPolicy that sets only a timeout, as the base that one change will break."""
    return _traffic_policy(topology, frozenset({"requestTimeout"})).map(copy.deepcopy)


@st.composite
def _bad_weights(draw: st.DrawFn, topology: Topology) -> InvalidPolicy:
    policy = draw(_plain_traffic_policy(topology))
    targets = draw(st.lists(st.sampled_from(topology.services), min_size=2, max_size=3))
    weights = draw(
        st.lists(st.integers(0, 100), min_size=len(targets), max_size=len(targets)).filter(lambda w: sum(w) != 100)
    )
    policy["spec"]["policy"]["trafficShift"] = {
        "destinations": [
            {"service": t.cluster_object_ref(), "weight": w} for t, w in zip(targets, weights, strict=True)
        ]
    }
    return InvalidPolicy(policy, "spec.policy.trafficShift.destinations", "weights-sum")


@st.composite
def _bad_percentages(draw: st.DrawFn, topology: Topology) -> InvalidPolicy:
    policy = draw(_plain_traffic_policy(topology))
    bad = draw(st.one_of(st.integers(-1000, -1), st.integers(101, 1000)))
    where = draw(st.sampled_from(("faultInjection", "mirror", "outlierDetection")))
    body = policy["spec"]["policy"]
    if where == "faultInjection":
        body["faultInjection"] = {"abort": {"httpStatus": 503}, "percentage": bad}
        return InvalidPolicy(policy, "spec.policy.faultInjection.percentage", "percentage-range")
    if where == "mirror":
        body["mirror"] = {"service": draw(st.sampled_from(topology.services)).cluster_object_ref(), "percentage": bad}
        return InvalidPolicy(policy, "spec.policy.mirror.percentage", "percentage-range")
    _drop_sources_and_matchers(policy)
    body["outlierDetection"] = {"consecutiveErrors": 5, "maxEjectionPercent": bad}
    return InvalidPolicy(policy, "spec.policy.outlierDetection.maxEjectionPercent", "percentage-range")


@st.composite
def _bad_durations(draw: st.DrawFn, topology: Topology) -> InvalidPolicy:
    policy = draw(_plain_traffic_policy(topology))
    too_short = draw(st.booleans())
    bad = draw(st.sampled_from(_BAD_SHORT_DURATIONS if too_short else _MALFORMED_DURATIONS))
    rule = "duration-min" if too_short else "duration-format"
    where = draw(st.sampled_from(("requestTimeout", "perTryTimeout", "fixedDelay")))
    body = policy["spec"]["policy"]
    if where == "requestTimeout":
        body["requestTimeout"] = bad
        return InvalidPolicy(policy, "spec.policy.requestTimeout", rule)
    if where == "perTryTimeout":
        body["retries"] = {"attempts": 3, "perTryTimeout": bad}
        return InvalidPolicy(policy, "spec.policy.retries.perTryTimeout", rule)
    body["faultInjection"] = {"fixedDelay": bad, "percentage": 10}
    return InvalidPolicy(policy, "spec.policy.faultInjection.fixedDelay", rule)


@st.composite
def _destination_rule_with_sources(draw: st.DrawFn, topology: Topology) -> InvalidPolicy:
    policy = draw(_plain_traffic_policy(topology))
    # A selector that names something, so "empty" cannot be argued: it is a real source restriction.
    selector = draw(workload_selectors(topology).filter(bool))
    policy["spec"]["sourceSelector"] = [selector]
    policy["spec"].pop("httpRequestMatchers", None)
    if draw(st.booleans()):
        policy["spec"]["policy"]["outlierDetection"] = {"consecutiveErrors": 5, "interval": "10s"}
        return InvalidPolicy(policy, "spec.policy.outlierDetection", "destination-rule-with-sources")
    policy["spec"]["policy"]["mtls"] = {"mode": "ISTIO_MUTUAL"}
    return InvalidPolicy(policy, "spec.policy.mtls", "destination-rule-with-sources")


@st.composite
def _missing_subsets(draw: st.DrawFn, topology: Topology) -> InvalidPolicy:
    policy = draw(_plain_traffic_policy(topology))
    target = draw(st.sampled_from(topology.services))
    own = [w.labels for w in topology.workloads if _backs(w, target)]
    missing = draw(
        st.one_of(
            st.integers(1, 99).map(lambda n: {"version": f"v{n}"}),
            st.just({"track": "nightly"}),
        ).filter(lambda subset: not any(subset.items() <= labels.items() for labels in own))
    )
    policy["spec"]["policy"]["trafficShift"] = {
        "destinations": [{"service": target.cluster_object_ref(), "subset": missing, "weight": 100}]
    }
    return InvalidPolicy(policy, "spec.policy.trafficShift.destinations[0].subset", "subset-missing")


@st.composite
def _unknown_fields(draw: st.DrawFn, topology: Topology) -> InvalidPolicy:
    if draw(st.booleans()):
        policy = draw(_plain_traffic_policy(topology))
        where = draw(st.sampled_from(("spec", "spec.policy")))
        key = draw(st.sampled_from(("retryPolicy", "timeout", "selector", "weight")))
        (policy["spec"] if where == "spec" else policy["spec"]["policy"])[key] = "1s"
        return InvalidPolicy(policy, f"{where}.{key}", "unknown-field")
    access = copy.deepcopy(draw(access_policies(topology)))
    key = draw(st.sampled_from(("allowedVerbs", "allowedPath", "action")))
    access["spec"][key] = ["GET"]
    return InvalidPolicy(access, f"spec.{key}", "unknown-field")


@st.composite
def _bad_ports(draw: st.DrawFn, topology: Topology) -> InvalidPolicy:
    access = copy.deepcopy(draw(access_policies(topology)))
    access["spec"]["allowedPorts"] = [draw(st.one_of(st.integers(-100, 0), st.integers(65_536, 100_000)))]
    return InvalidPolicy(access, "spec.allowedPorts[0]", "port-range")


def _drop_sources_and_matchers(policy: KubeObject) -> None:
    policy["spec"].pop("sourceSelector", None)
    policy["spec"].pop("httpRequestMatchers", None)


# -- requests -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """One HTTP request from a workload to a destination, as ``meshrules why`` and tests take it."""

    source: str  # workload `cluster/namespace/name`
    destination: str  # destination `cluster/namespace/service`
    port: int
    method: str = "GET"
    path: str = "/"
    headers: Mapping[str, str] = field(default_factory=dict)

    def as_test_spec(self) -> dict[str, Any]:
        """The ``spec`` of a ReachabilityTest (spec §7) for this request, without ``expect``."""
        request: dict[str, Any] = {"method": self.method, "path": self.path}
        if self.headers:
            request["headers"] = dict(self.headers)
        return {
            "from": {"workload": self.source},
            "to": {"destination": self.destination, "port": self.port},
            "request": request,
        }


@st.composite
def requests(draw: st.DrawFn, topology: Topology) -> Request:
    """Requests from a workload of ``topology`` to one of its destinations, on one of its ports."""
    if not topology.workloads:
        raise ValueError("requests need a topology with at least one workload")
    source = draw(st.sampled_from(topology.workloads))
    target = draw(st.sampled_from(topology.services))
    headers = draw(st.dictionaries(st.sampled_from(_HEADER_NAMES), st.sampled_from(_HEADER_VALUES), max_size=2))
    return Request(
        source=source.ref,
        destination=target.ref,
        port=draw(st.sampled_from([port for _, port in target.ports])),
        method=draw(st.sampled_from(HTTP_METHODS)),
        path=draw(_paths()),
        headers=_sorted_dict(headers),
    )


# -- helpers ------------------------------------------------------------------------------------------------


def _require_services(topology: Topology) -> None:
    if not topology.services:
        raise ValueError("policies need a topology with at least one service")


def _sorted_dict(value: dict[str, T]) -> dict[str, T]:
    return dict(sorted(value.items()))


def _sub_maps(labels: Mapping[str, str]) -> st.SearchStrategy[dict[str, str]]:
    """Non-empty sub-maps of ``labels`` (a selector that matches whatever carries ``labels``)."""
    return st.sets(st.sampled_from(sorted(labels)), min_size=1).map(lambda keys: {k: labels[k] for k in sorted(keys)})


def _cluster_names(topology: Topology | None) -> Sequence[str]:
    return tuple(topology.clusters) if topology is not None else _NAME_POOL


def _namespaces(topology: Topology | None) -> Sequence[str]:
    return topology.namespaces if topology is not None else _NAME_POOL


def _name_lists(known: Sequence[str]) -> st.SearchStrategy[list[str]]:
    # Four known names to one unknown: selectors mostly select, sometimes select nothing.
    pool = st.sampled_from((*known, *known, *known, *known, "absent"))
    return st.lists(pool, min_size=1, max_size=2, unique=True).map(sorted)


def _optional_cluster(ref: dict[str, str], cluster: str) -> st.SearchStrategy[dict[str, str]]:
    return st.sampled_from((ref, {**ref, "cluster": cluster}))


def _service_refs(topology: Topology | None) -> st.SearchStrategy[dict[str, str]]:
    if topology is None or not topology.services:
        base = st.builds(lambda n, ns: {"name": n, "namespace": ns}, _names, _names)
        return st.one_of(base, st.builds(lambda r, c: {**r, "cluster": c}, base, _names))
    return st.sampled_from(topology.services).flatmap(
        lambda s: _optional_cluster({"name": s.name, "namespace": s.namespace}, s.cluster)
    )
