"""The answer to "can A reach B, with what config, and why (not)?" as data: a `Verdict`.

`meshrules.sim.why` computes a `Verdict`; `meshrules.cli.why` prints it; ReachabilityTests compare
it. `Verdict.to_json()` is the published shape of `meshrules why -o json` (API §6,
`docs/schemas/why.schema.json`): keys are sorted by the dumper, lists keep their meaning-bearing
order (backends as routed, hops along the path, explanation steps in the order they happen).

Codes (API §6, documented in `docs/codes.md`) are plain strings. `PATH_ORDER` is the order in
which a request meets the things that can stop it; when several apply, a verdict's `code` is the
first and the others are its `causes`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from meshrules.sim.objects import Hop

__all__ = [
    "ALLOWED",
    "DENIED_DEFAULT",
    "DENIED_ENFORCED",
    "DENIED_EXPLICIT",
    "DENY_CODES",
    "GATEWAY_IDENTITY",
    "MTLS_MISMATCH",
    "NOT_FEDERATED",
    "NO_DNS",
    "NO_GATEWAY_ADDRESS",
    "NO_HEALTHY_UPSTREAM",
    "NO_ROUTE",
    "PATH_ORDER",
    "TRUST_DOMAIN_REJECTED",
    "Backend",
    "Edit",
    "Fault",
    "HeaderChanges",
    "Hop",
    "Mirror",
    "NearestMiss",
    "RetryPolicy",
    "Step",
    "Verdict",
    "first_code",
    "hop_json",
]

ALLOWED = "ALLOWED"
NOT_FEDERATED = "NOT_FEDERATED"
NO_ROUTE = "NO_ROUTE"
NO_DNS = "NO_DNS"
NO_GATEWAY_ADDRESS = "NO_GATEWAY_ADDRESS"
# Added to API §6's list (docs/codes.md): the route points at a backend Envoy/Linkerd has no
# healthy endpoint for (undefined subset, unknown backend Service): HTTP 503/500.
NO_HEALTHY_UPSTREAM = "NO_HEALTHY_UPSTREAM"
TRUST_DOMAIN_REJECTED = "TRUST_DOMAIN_REJECTED"
MTLS_MISMATCH = "MTLS_MISMATCH"
DENIED_EXPLICIT = "DENIED_EXPLICIT"
DENIED_ENFORCED = "DENIED_ENFORCED"
DENIED_DEFAULT = "DENIED_DEFAULT"
# A cause, never a code: the destination allowed the request because of the Linkerd gateway's
# identity, not the caller's (API §4, gateway mode).
GATEWAY_IDENTITY = "GATEWAY_IDENTITY"

# INVARIANT: the order a request meets each obstacle (API §6): name resolution and federation,
# routing, the east-west hop, the TLS handshake, then authorization at the destination.
PATH_ORDER: tuple[str, ...] = (
    NOT_FEDERATED,
    NO_ROUTE,
    NO_DNS,
    NO_GATEWAY_ADDRESS,
    NO_HEALTHY_UPSTREAM,
    TRUST_DOMAIN_REJECTED,
    MTLS_MISMATCH,
    DENIED_EXPLICIT,
    DENIED_ENFORCED,
    DENIED_DEFAULT,
)
DENY_CODES = frozenset({DENIED_EXPLICIT, DENIED_ENFORCED, DENIED_DEFAULT})
_RANK = {code: i for i, code in enumerate(PATH_ORDER)}


def first_code(codes: Iterable[str]) -> tuple[str, tuple[str, ...]]:
    """The first code along the path among ``codes`` (ALLOWED when none stops the request), and the others.

    Codes not in `PATH_ORDER` (causes such as GATEWAY_IDENTITY) never become the code; they stay
    causes, after the path codes.
    """
    distinct = list(dict.fromkeys(c for c in codes if c != ALLOWED))
    stops = sorted((c for c in distinct if c in _RANK), key=_RANK.__getitem__)
    notes = [c for c in distinct if c not in _RANK]
    if not stops:
        return ALLOWED, tuple(notes)
    return stops[0], (*stops[1:], *notes)


def hop_json(hop: Hop) -> dict[str, Any]:
    """A hop as the answer shows it: gateways by address and port, proxies and pods by name."""
    kind = {"linkerd-proxy": "sidecar", "external": "destination"}.get(hop.kind, hop.kind)
    out: dict[str, Any] = {"kind": kind, "cluster": hop.cluster}
    if kind in ("eastwest-gateway", "linkerd-gateway"):
        out["address"] = hop.address
        out["port"] = hop.port
    else:
        out["name"] = hop.name
    return out


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retries of the route; ``attempts == 0`` means the mesh does not retry. ``source`` says who set it."""

    attempts: int
    per_try_timeout: str | None = None
    source: str = ""

    def to_json(self) -> dict[str, Any]:
        """``{attempts, perTryTimeout}``."""
        return {"attempts": self.attempts, "perTryTimeout": self.per_try_timeout}


@dataclass(frozen=True, slots=True)
class Fault:
    """Fault injection on the route: a delay and/or an abort, each with its percentage."""

    delay: str | None = None
    delay_percentage: float = 0.0
    abort_http_status: int | None = None
    abort_percentage: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """``{delay: {fixedDelay, percentage} | null, abort: {httpStatus, percentage} | null}``."""
        return {
            "delay": None if self.delay is None else {"fixedDelay": self.delay, "percentage": self.delay_percentage},
            "abort": None
            if self.abort_http_status is None
            else {"httpStatus": self.abort_http_status, "percentage": self.abort_percentage},
        }


@dataclass(frozen=True, slots=True)
class Mirror:
    """Where a copy of the request goes: a destination (``cluster/ns/svc``) or a host, and how often."""

    destination: str
    port: int | None
    percentage: float

    def to_json(self) -> dict[str, Any]:
        """``{destination, port, percentage}``."""
        return {"destination": self.destination, "port": self.port, "percentage": self.percentage}


@dataclass(frozen=True, slots=True)
class HeaderChanges:
    """Headers the route adds (or sets) and removes, on the request and on the response."""

    request_add: tuple[tuple[str, str], ...] = ()
    request_remove: tuple[str, ...] = ()
    response_add: tuple[tuple[str, str], ...] = ()
    response_remove: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """``{request: {add, remove}, response: {add, remove}}``."""
        return {
            "request": {"add": dict(self.request_add), "remove": sorted(self.request_remove)},
            "response": {"add": dict(self.response_add), "remove": sorted(self.response_remove)},
        }


@dataclass(frozen=True, slots=True)
class Backend:
    """One destination the route may send the request to, with its share and its own answer.

    ``destination`` is ``cluster/namespace/service`` (or the host, for a host meshrules does not
    know as a destination); ``subset`` the pod labels of the subset, None for the whole
    destination. ``reason`` and ``hops`` are for people; the JSON carries only the contract fields.
    """

    destination: str
    subset: tuple[tuple[str, str], ...] | None
    weight: int
    allowed: bool
    code: str
    reason: str = ""
    hops: tuple[Hop, ...] = ()
    mtls: bool = False
    causes: tuple[str, ...] = ()
    port: int | None = None  # the Service port the backend is called on

    def to_json(self) -> dict[str, Any]:
        """``{destination, subset, weight, allowed, code}``."""
        return {
            "destination": self.destination,
            "subset": None if self.subset is None else dict(self.subset),
            "weight": self.weight,
            "allowed": self.allowed,
            "code": self.code,
        }


@dataclass(frozen=True, slots=True)
class Step:
    """One step of the explanation: what happened (``step``), the rule that decided it, the objects.

    ``objects`` name user-written objects with where they were written (``AccessPolicy
    bookinfo/x (policies/access.yaml:1)``), derivation sources, and the mesh objects involved.
    """

    step: str
    rule: str
    objects: tuple[str, ...] = ()
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        """``{step, rule, objects, detail}``."""
        return {"step": self.step, "rule": self.rule, "objects": list(self.objects), "detail": self.detail}


@dataclass(frozen=True, slots=True)
class Edit:
    """One change to one object: ``op`` ``add`` (``value`` to the list at ``field``), ``create`` or ``remove``.

    ``target`` is ``Kind namespace/name`` for a meshrules policy, ``cluster/Kind namespace/name``
    for an object in a cluster. ``value`` is the wire value (for ``create``: the whole object).
    """

    target: str
    op: str
    field: str
    value: Any

    def to_json(self) -> dict[str, Any]:
        """``{target, op, field, value}``."""
        return {"target": self.target, "op": self.op, "field": self.field, "value": self.value}

    def describe(self) -> str:
        """The edit in words."""
        if self.op == "create":
            return f"create {self.target}"
        if self.op == "remove":
            return f"remove `{self.field}` from {self.target}"
        return f"add `{self.value}` to `{self.field}` of {self.target}"


@dataclass(frozen=True, slots=True)
class NearestMiss:
    """For a denial: the policy that came closest, what excluded the request, the smallest edit.

    ``verified`` is None until the query is re-run with ``edits`` applied (the pipeline does that:
    it needs the rule set and the emitters); then True when the edited fleet allows the backend
    that was denied, and ``code_after`` is the re-run's code.
    """

    policy: str
    location: str
    field: str
    detail: str
    edits: tuple[Edit, ...]
    backend: str
    verified: bool | None = None
    code_after: str | None = None

    def to_json(self) -> dict[str, Any]:
        """``{policy, location, field, detail, edits, fix, backend, verified, codeAfterEdit}``."""
        return {
            "policy": self.policy,
            "location": self.location,
            "field": self.field,
            "detail": self.detail,
            "edits": [e.to_json() for e in self.edits],
            "fix": "; ".join(e.describe() for e in self.edits),
            "backend": self.backend,
            "verified": bool(self.verified),
            "codeAfterEdit": self.code_after,
        }


@dataclass(frozen=True)
class Verdict:
    """What the mesh does with one request, and why: data, not log lines (STYLE: Cedar's Response).

    ``allowed`` is true only when every backend the request may be routed to allows it. ``cited``
    lists every meshrules policy (``Kind namespace/name``) and mesh object the answer rests on,
    for `describe` and for re-running a query with only those objects.
    """

    allowed: bool
    code: str
    causes: tuple[str, ...]
    source_workload: str
    source_identity: str
    host: str
    port: int | None
    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    backends: tuple[Backend, ...] = ()
    timeout: str | None = None
    retries: RetryPolicy | None = None
    fault: Fault | None = None
    mirror: Mirror | None = None
    header_changes: HeaderChanges = field(default_factory=HeaderChanges)
    mtls: bool = False
    hops: tuple[Hop, ...] = ()
    assumptions: tuple[str, ...] = ()
    explanation: tuple[Step, ...] = ()
    nearest_miss: NearestMiss | None = None
    reason: str = ""
    cited: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The published JSON (API §6, `docs/schemas/why.schema.json`)."""
        return {
            "allowed": self.allowed,
            "code": self.code,
            "causes": list(self.causes),
            "from": {"workload": self.source_workload, "identity": self.source_identity},
            "to": {"host": self.host, "port": self.port},
            "request": {"method": self.method, "path": self.path, "headers": dict(self.headers)},
            "backends": [b.to_json() for b in self.backends],
            "timeout": self.timeout,
            "retries": None if self.retries is None else self.retries.to_json(),
            "fault": None if self.fault is None else self.fault.to_json(),
            "mirror": None if self.mirror is None else self.mirror.to_json(),
            "headers": self.header_changes.to_json(),
            "mtls": self.mtls,
            "hops": [hop_json(h) for h in self.hops],
            "assumptions": list(self.assumptions),
            "explanation": [s.to_json() for s in self.explanation],
            "nearestMiss": None if self.nearest_miss is None else self.nearest_miss.to_json(),
        }

    def summary(self) -> Mapping[str, Any]:
        """What two answers to the same request must share to be "the same answer" (code,
        allowed, backends with their codes, timeout, retries, mTLS): for properties and `diff`."""
        return {
            "allowed": self.allowed,
            "code": self.code,
            "backends": sorted((b.destination, b.subset or (), b.weight, b.code) for b in self.backends),
            "timeout": self.timeout,
            "retries": None if self.retries is None else self.retries.attempts,
            "mtls": self.mtls,
        }
