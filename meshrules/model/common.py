"""Types every meshrules kind shares: metadata, refs, selectors, durations, percentages.

Selectors here are data; matching them against workloads and destinations is the graph's job
(through indexes), and deciding what a match means is the rule set's.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, ConfigDict, Field, model_validator

from meshrules.model.base import ApiModel

MANAGEMENT_NAMESPACE = "meshrules-system"

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# Go/Istio duration syntax: one or more <number><unit>, e.g. `250ms`, `1m30s`, `1.5s`.
_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)(ms|us|µs|ns|h|m|s))+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|us|µs|ns|h|m|s)")
_UNIT_MS = {"h": 3_600_000.0, "m": 60_000.0, "s": 1000.0, "ms": 1.0, "us": 0.001, "µs": 0.001, "ns": 1e-6}


def is_dns1123_label(value: str) -> bool:
    """Whether ``value`` is a DNS-1123 label (at most 63 characters)."""
    return len(value) <= 63 and bool(_DNS1123_LABEL.match(value))


def is_dns1123_subdomain(value: str) -> bool:
    """Whether ``value`` is a DNS-1123 subdomain (at most 253 characters)."""
    return len(value) <= 253 and bool(_DNS1123_SUBDOMAIN.match(value))


def duration_ms(text: str) -> float:
    """Milliseconds of an Istio-style duration string (`250ms`, `10s`, `1m30s`)."""
    if not _DURATION.match(text):
        raise ValueError(f"`{text}` is not a duration (write it like `250ms`, `10s` or `1m`)")
    return sum(float(num) * _UNIT_MS[unit] for num, unit in _DURATION_PART.findall(text))


def format_duration(ms: float) -> str:
    """The shortest canonical Istio duration for ``ms`` milliseconds (`2s`, `500ms`, `1.5s`)."""
    if ms >= 1000 and ms % 1000 == 0:
        return f"{int(ms // 1000)}s"
    if ms >= 1000:
        return f"{ms / 1000:g}s"
    if ms == int(ms):
        return f"{int(ms)}ms"
    return f"{ms:g}ms"


def _check_duration(text: str) -> str:
    duration_ms(text)
    return text


def _check_name(value: str) -> str:
    if not is_dns1123_subdomain(value):
        raise ValueError(
            f"`{value}` is not a valid name (lower-case letters, digits, `-` and `.`, at most 253 characters)"
        )
    return value


def _check_namespace(value: str) -> str:
    if not is_dns1123_label(value):
        raise ValueError(
            f"`{value}` is not a valid namespace (lower-case letters, digits and `-`, at most 63 characters)"
        )
    return value


# Durations keep the user's spelling (output is written as the user wrote it); semantic limits
# such as ">= 1ms" are policy validation errors reported on status, not load errors.
Duration = Annotated[str, AfterValidator(_check_duration)]
Name = Annotated[str, AfterValidator(_check_name)]
Namespace = Annotated[str, AfterValidator(_check_namespace)]
# Percentages are validated into [0, 100] by policy validation, so an out-of-range value becomes a
# field-level status error (the policy still loads and is reported), as spec §3.2 asks.
Percentage = float


class ObjectMeta(ApiModel):
    """Kubernetes metadata of a meshrules object, with the fields `kubectl get -o yaml` prints."""

    name: Name
    namespace: Namespace | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    creation_timestamp: datetime | None = None
    generation: int | None = None
    uid: str | None = None
    resource_version: str | None = None
    generate_name: str | None = None
    self_link: str | None = None
    deletion_timestamp: datetime | None = None
    deletion_grace_period_seconds: int | None = None
    finalizers: list[str] = Field(default_factory=list)
    owner_references: list[dict[str, Any]] = Field(default_factory=list)
    managed_fields: list[dict[str, Any]] = Field(default_factory=list)


class ObjectRef(ApiModel):
    """A reference to a namespaced object; an omitted namespace matches any when used as a selector."""

    name: str
    namespace: str | None = None


class ClusterObjectRef(ApiModel):
    """A reference to a namespaced object in a cluster; omitted fields match anything as a selector."""

    name: str
    namespace: str | None = None
    cluster: str | None = None


class WorkloadSelector(ApiModel):
    """Selects workloads: every given field must match (AND)."""

    clusters: list[str] = Field(default_factory=list)
    namespaces: list[str] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)


class DestinationSelector(ApiModel):
    """Selects destinations by Service coordinates and labels, or by explicit service refs."""

    clusters: list[str] = Field(default_factory=list)
    namespaces: list[str] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)
    services: list[ClusterObjectRef] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_form(self) -> DestinationSelector:
        if self.services and (self.clusters or self.namespaces or self.labels):
            raise ValueError(
                "a destination selector uses either `services` or `clusters`/`namespaces`/`labels`, not both"
            )
        return self


class IdentitySelector(ApiModel):
    """Selects caller identities by cluster and namespace, or by explicit service accounts."""

    clusters: list[str] = Field(default_factory=list)
    namespaces: list[str] = Field(default_factory=list)
    service_accounts: list[ClusterObjectRef] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_form(self) -> IdentitySelector:
        if self.service_accounts and (self.clusters or self.namespaces):
            raise ValueError("an identity selector uses either `serviceAccounts` or `clusters`/`namespaces`, not both")
        return self


class StatusError(ApiModel):
    """One field-level error on a policy's status."""

    code: str
    field: str = ""
    message: str


class DestinationStatus(ApiModel):
    """How one selected destination took a policy."""

    state: str
    errors: list[StatusError] = Field(default_factory=list)


class PolicyStatus(ApiModel):
    """Status of every networking kind (spec §3.4)."""

    model_config = ConfigDict(extra="allow")

    observed_generation: int | None = None
    state: str = "ACCEPTED"
    errors: list[StatusError] = Field(default_factory=list)
    destinations: dict[str, DestinationStatus] = Field(default_factory=dict)
    workloads: list[str] = Field(default_factory=list)
    workload_count: int = 0
