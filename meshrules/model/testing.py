"""ReachabilityTest (spec §7): a promise about who can reach what, with which config."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator

from meshrules.model.base import ApiModel
from meshrules.model.common import DestinationSelector, Duration, ObjectMeta, WorkloadSelector

TESTING_API_VERSION = "testing.meshrules.io/v1alpha1"

# The decision codes `why` answers with (docs/codes.md); a misspelt `expect.code` is a load error,
# not a test that can never pass. tests/model checks this list against the simulator's.
DecisionCode = Literal[
    "ALLOWED",
    "DENIED_EXPLICIT",
    "DENIED_DEFAULT",
    "DENIED_ENFORCED",
    "NO_ROUTE",
    "NOT_FEDERATED",
    "NO_DNS",
    "NO_GATEWAY_ADDRESS",
    "MTLS_MISMATCH",
    "TRUST_DOMAIN_REJECTED",
    "NO_HEALTHY_UPSTREAM",
]
HOP_FIELDS = ("address", "cluster", "kind", "name", "port")


def _hop_fields(hop: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(hop) - set(HOP_FIELDS))
    if unknown:
        raise ValueError(f"unknown field `{unknown[0]}` in a hop (allowed here: {', '.join(HOP_FIELDS)})")
    return hop


# A hop compares only the keys it gives, so a misspelt key would make a test fail for a wrong reason.
ExpectedHop = Annotated[dict[str, Any], AfterValidator(_hop_fields)]


class TestSource(ApiModel):
    """The caller: one workload (`cluster/namespace/name`) or every workload a selector picks."""

    workload: str | None = None
    selector: WorkloadSelector | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> TestSource:
        if (self.workload is None) == (self.selector is None):
            raise ValueError("set exactly one of `workload` or `selector`")
        if self.workload is not None and self.workload.count("/") != 2:
            raise ValueError(
                f"`{self.workload}` is not `cluster/namespace/workload` (`meshrules discover` lists the workloads)"
            )
        return self


class TestTarget(ApiModel):
    """The callee: a hostname as dialled, a destination `cluster/namespace/service`, or a selector."""

    host: str | None = None
    destination: str | None = None
    selector: DestinationSelector | None = None
    port: int | None = Field(default=None, ge=1, le=65535)

    @model_validator(mode="after")
    def _exactly_one(self) -> TestTarget:
        if sum(v is not None for v in (self.host, self.destination, self.selector)) != 1:
            raise ValueError("set exactly one of `host`, `destination` or `selector`")
        if self.destination is not None and self.destination.count("/") != 2:
            raise ValueError(
                f"`{self.destination}` is not `cluster/namespace/service` (`meshrules discover` lists the destinations)"
            )
        return self


class TestRequest(ApiModel):
    """The request sent."""

    method: str = "GET"
    path: str = "/"
    headers: dict[str, str] = Field(default_factory=dict)


class ExpectedRetries(ApiModel):
    """Expected retry settings; only given fields are compared."""

    attempts: int | None = None
    per_try_timeout: Duration | None = None


class ExpectedBackend(ApiModel):
    """One expected backend; no subset means the whole destination."""

    destination: str
    subset: dict[str, str] | None = None
    weight: int | None = None


class Expectation(ApiModel):
    """What the answer must say; only the fields given are compared."""

    allowed: bool | None = None
    code: DecisionCode | None = None
    timeout: Duration | None = None
    retries: ExpectedRetries | None = None
    mtls: bool | None = None
    backends: list[ExpectedBackend] | None = None
    hops: list[ExpectedHop] | None = None


class ReachabilityTestSpec(ApiModel):
    """Spec of a ReachabilityTest."""

    from_: TestSource = Field(alias="from")
    to: TestTarget
    request: TestRequest = Field(default_factory=TestRequest)
    expect: Expectation


class ReachabilityTest(ApiModel):
    """A policy test: a request, and what meshrules must answer for it."""

    api_version: Literal["testing.meshrules.io/v1alpha1"] = "testing.meshrules.io/v1alpha1"
    kind: Literal["ReachabilityTest"] = "ReachabilityTest"
    metadata: ObjectMeta
    spec: ReachabilityTestSpec
