"""The networking kinds users write (spec §3): VirtualMesh, TrafficPolicy, AccessPolicy.

Parsing here is structural and strict (types, unknown fields, required fields): a structural
mistake stops the object from loading. Semantic limits (weights summing to 100, percentages,
durations >= 1ms, selector constraints) are checked by `meshrules.model.validation` and reported
on the policy's status, so the policy still shows up, INVALID, with field-level errors.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

import re2  # type: ignore[import-untyped]
from pydantic import Field, model_validator

from meshrules.model.base import ApiModel
from meshrules.model.common import (
    MANAGEMENT_NAMESPACE,
    ClusterObjectRef,
    DestinationSelector,
    Duration,
    IdentitySelector,
    ObjectMeta,
    ObjectRef,
    Percentage,
    WorkloadSelector,
)

NETWORKING_API_VERSION = "networking.meshrules.io/v1alpha1"

# RE2 reports a bad pattern through its own logger on stderr unless told not to: the error we raise
# is the report.
_RE2_QUIET = re2.Options()
_RE2_QUIET.log_errors = False


def _check_regex(pattern: str) -> None:
    """Raise `ValueError` unless ``pattern`` compiles in RE2, the syntax Envoy (Istio) matches with."""
    try:
        re2.compile(pattern, _RE2_QUIET)
    except Exception as exc:  # re2's error class is not exported under a stable name
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        reason = reason.removesuffix(f": {pattern}")
        raise ValueError(f"`{pattern}` is not a valid RE2 regular expression ({reason})") from None


# --- VirtualMesh ----------------------------------------------------------------------------------


class KeyAlgorithm(StrEnum):
    """Key algorithm of a generated root CA."""

    ECDSA_P256 = "ECDSA_P256"
    RSA_4096 = "RSA_4096"


class GeneratedRootCa(ApiModel):
    """A root CA meshrules generates and keeps on the management side."""

    ttl_days: int = Field(default=3650, ge=1)
    key_algorithm: KeyAlgorithm = KeyAlgorithm.ECDSA_P256
    org_name: str = "meshrules"


class RootCertificateAuthority(ApiModel):
    """Where the shared root comes from: generated, or imported from a Secret."""

    generated: GeneratedRootCa | None = None
    secret: ObjectRef | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> RootCertificateAuthority:
        if (self.generated is None) == (self.secret is None):
            raise ValueError("set exactly one of `generated` or `secret`")
        return self


class SharedTrust(ApiModel):
    """One root for all member meshes."""

    root_certificate_authority: RootCertificateAuthority = Field(
        default_factory=lambda: RootCertificateAuthority(generated=GeneratedRootCa())
    )
    intermediate_ttl_days: int = Field(default=365, ge=1)


class LimitedTrust(ApiModel):
    """No shared root: member meshes keep their own CAs (v1alpha1 federates nothing then)."""


class TrustConfig(ApiModel):
    """How member meshes trust each other."""

    shared: SharedTrust | None = None
    limited: LimitedTrust | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> TrustConfig:
        if (self.shared is None) == (self.limited is None):
            raise ValueError("set exactly one of `shared` or `limited`")
        return self


class LinkerdFederationMode(StrEnum):
    """How Linkerd members reach each other's services."""

    GATEWAY = "gateway"
    REMOTE_DISCOVERY = "remote-discovery"


class LinkerdFederation(ApiModel):
    """Linkerd multicluster settings of a VirtualMesh."""

    mode: LinkerdFederationMode = LinkerdFederationMode.GATEWAY


class FederationSelector(ApiModel):
    """Which destinations are made visible in which other member meshes."""

    destinations: list[DestinationSelector] = Field(default_factory=list)
    meshes: list[ObjectRef] = Field(default_factory=list)


class Federation(ApiModel):
    """How a VirtualMesh federates its members' destinations."""

    hostname_suffix: str = "global"
    linkerd: LinkerdFederation = Field(default_factory=LinkerdFederation)
    selectors: list[FederationSelector] | None = None


class Enforcement(StrEnum):
    """Whether a member mesh denies what no AccessPolicy allows."""

    DISABLED = "DISABLED"
    ENFORCED = "ENFORCED"


class VirtualMeshSpec(ApiModel):
    """Spec of a VirtualMesh."""

    meshes: list[ObjectRef] = Field(min_length=1)
    trust: TrustConfig | None = None
    federation: Federation = Field(default_factory=Federation)
    access_policy_enforcement: Enforcement = Enforcement.DISABLED


# --- TrafficPolicy --------------------------------------------------------------------------------


class StringMatch(ApiModel):
    """Exactly one of exact, prefix or regex."""

    exact: str | None = None
    prefix: str | None = None
    regex: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> StringMatch:
        if sum(v is not None for v in (self.exact, self.prefix, self.regex)) != 1:
            raise ValueError("set exactly one of `exact`, `prefix` or `regex`")
        if self.regex is not None:
            _check_regex(self.regex)
        return self

    @property
    def kind(self) -> Literal["exact", "prefix", "regex"]:
        """Which of the three forms is set."""
        if self.exact is not None:
            return "exact"
        return "prefix" if self.prefix is not None else "regex"

    @property
    def value(self) -> str:
        """The string of whichever form is set."""
        return next(v for v in (self.exact, self.prefix, self.regex) if v is not None)


class HeaderMatcher(ApiModel):
    """Matches a request header."""

    name: str = Field(min_length=1)
    value: str = ""
    regex: bool = False
    invert_match: bool = False

    @model_validator(mode="after")
    def _valid_regex(self) -> HeaderMatcher:
        if self.regex:
            _check_regex(self.value)
        return self


class QueryParameterMatcher(ApiModel):
    """Matches a query parameter."""

    name: str = Field(min_length=1)
    value: str = ""
    regex: bool = False

    @model_validator(mode="after")
    def _valid_regex(self) -> QueryParameterMatcher:
        if self.regex:
            _check_regex(self.value)
        return self


class HttpRequestMatcher(ApiModel):
    """Which requests a TrafficPolicy applies to; all given fields must match."""

    uri: StringMatch | None = None
    method: str | None = None
    headers: list[HeaderMatcher] = Field(default_factory=list)
    query_parameters: list[QueryParameterMatcher] = Field(default_factory=list)


class Retries(ApiModel):
    """Retry policy."""

    attempts: int = Field(ge=0)
    per_try_timeout: Duration | None = None


class WeightedDestination(ApiModel):
    """One backend of a traffic shift."""

    service: ClusterObjectRef
    subset: dict[str, str] = Field(default_factory=dict)
    port: int | None = Field(default=None, ge=1, le=65535)
    weight: int = Field(default=100, ge=0)


class TrafficShift(ApiModel):
    """Weighted backends for a request."""

    destinations: list[WeightedDestination] = Field(min_length=1)


class Abort(ApiModel):
    """Fault injection by aborting with an HTTP status."""

    http_status: int = Field(ge=200, le=599)


class FaultInjection(ApiModel):
    """Delay or abort a share of requests."""

    fixed_delay: Duration | None = None
    abort: Abort | None = None
    percentage: Percentage = 100.0

    @model_validator(mode="after")
    def _exactly_one(self) -> FaultInjection:
        if (self.fixed_delay is None) == (self.abort is None):
            raise ValueError("set exactly one of `fixedDelay` or `abort`")
        return self


class CorsPolicy(ApiModel):
    """CORS settings of a route."""

    allow_origins: list[StringMatch] = Field(default_factory=list)
    allow_methods: list[str] = Field(default_factory=list)
    allow_headers: list[str] = Field(default_factory=list)
    expose_headers: list[str] = Field(default_factory=list)
    max_age: Duration | None = None
    allow_credentials: bool | None = None


class HeaderManipulation(ApiModel):
    """Headers added to or removed from requests and responses."""

    append_request_headers: dict[str, str] = Field(default_factory=dict)
    remove_request_headers: list[str] = Field(default_factory=list)
    append_response_headers: dict[str, str] = Field(default_factory=dict)
    remove_response_headers: list[str] = Field(default_factory=list)


class Mirror(ApiModel):
    """Copy a share of requests to another service."""

    service: ClusterObjectRef
    port: int | None = Field(default=None, ge=1, le=65535)
    percentage: Percentage = 100.0


class OutlierDetection(ApiModel):
    """Eject failing endpoints."""

    consecutive_errors: int = Field(default=5, ge=0)
    interval: Duration = "10s"
    base_ejection_time: Duration = "30s"
    max_ejection_percent: int = Field(default=100, ge=0, le=100)


class MtlsMode(StrEnum):
    """Client-side TLS mode towards a destination."""

    ISTIO_MUTUAL = "ISTIO_MUTUAL"
    DISABLE = "DISABLE"


class MtlsSettings(ApiModel):
    """Client-side mTLS settings."""

    mode: MtlsMode


class TrafficPolicySettings(ApiModel):
    """The settings a TrafficPolicy applies; each field merges on its own (spec §3.2)."""

    request_timeout: Duration | None = None
    retries: Retries | None = None
    traffic_shift: TrafficShift | None = None
    fault_injection: FaultInjection | None = None
    cors_policy: CorsPolicy | None = None
    header_manipulation: HeaderManipulation | None = None
    mirror: Mirror | None = None
    outlier_detection: OutlierDetection | None = None
    mtls: MtlsSettings | None = None

    def set_fields(self) -> tuple[str, ...]:
        """Wire names of the settings this policy sets, in declaration order."""
        return tuple(
            (info.alias or name) for name, info in type(self).model_fields.items() if getattr(self, name) is not None
        )


class TrafficPolicySpec(ApiModel):
    """Spec of a TrafficPolicy."""

    source_selector: list[WorkloadSelector] = Field(default_factory=list)
    destination_selector: list[DestinationSelector] = Field(default_factory=list)
    http_request_matchers: list[HttpRequestMatcher] = Field(default_factory=list)
    policy: TrafficPolicySettings = Field(default_factory=TrafficPolicySettings)


# --- AccessPolicy ---------------------------------------------------------------------------------


class AccessPolicySpec(ApiModel):
    """Spec of an AccessPolicy: allow rules only."""

    source_selector: list[IdentitySelector] = Field(default_factory=list)
    destination_selector: list[DestinationSelector] = Field(default_factory=list)
    allowed_paths: list[str] = Field(default_factory=list)
    allowed_methods: list[str] = Field(default_factory=list)
    allowed_ports: list[int] = Field(default_factory=list)


# --- the kinds ------------------------------------------------------------------------------------


class _NetworkingObject(ApiModel):
    api_version: Literal["networking.meshrules.io/v1alpha1"] = "networking.meshrules.io/v1alpha1"
    metadata: ObjectMeta
    # Status is written by meshrules; what a snapshot carries is kept as read and never trusted.
    status: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        """metadata.name."""
        return self.metadata.name

    @property
    def namespace(self) -> str:
        """metadata.namespace, defaulting to the management namespace."""
        return self.metadata.namespace or MANAGEMENT_NAMESPACE

    @property
    def ref(self) -> str:
        """`Kind namespace/name`, as messages name the object."""
        return f"{type(self).__name__} {self.namespace}/{self.name}"

    def acceptance_key(self) -> tuple[int, datetime, str, str]:
        """Acceptance order (spec §3): creation time, then namespace/name; no time means newest."""
        ts = self.metadata.creation_timestamp
        if ts is None:
            return (1, datetime.max, self.namespace, self.name)
        return (0, _as_naive_utc(ts), self.namespace, self.name)


def _as_naive_utc(ts: datetime) -> datetime:
    offset = ts.utcoffset()
    naive = ts.replace(tzinfo=None)
    return naive - offset if offset is not None else naive


class VirtualMesh(_NetworkingObject):
    """A group of meshes that share trust, federate services and (optionally) enforce access."""

    kind: Literal["VirtualMesh"] = "VirtualMesh"
    spec: VirtualMeshSpec


class TrafficPolicy(_NetworkingObject):
    """Routing and resilience settings for selected traffic."""

    kind: Literal["TrafficPolicy"] = "TrafficPolicy"
    spec: TrafficPolicySpec = Field(default_factory=TrafficPolicySpec)


class AccessPolicy(_NetworkingObject):
    """Which identities may call which destinations, on which paths, methods and ports."""

    kind: Literal["AccessPolicy"] = "AccessPolicy"
    spec: AccessPolicySpec = Field(default_factory=AccessPolicySpec)


Policy = VirtualMesh | TrafficPolicy | AccessPolicy
POLICY_KINDS: dict[str, type[VirtualMesh] | type[TrafficPolicy] | type[AccessPolicy]] = {
    "VirtualMesh": VirtualMesh,
    "TrafficPolicy": TrafficPolicy,
    "AccessPolicy": AccessPolicy,
}
