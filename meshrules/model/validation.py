"""Semantic checks of a policy that need nothing but the policy (spec §3.2 "Validation").

Each problem is a field-level `StatusError` with a stable code; the policy stays loaded and its
status says INVALID. Checks that need discovered state (a subset that must exist in its target)
are made by the rule set, where the destinations are known.
"""

from __future__ import annotations

from meshrules.model.common import StatusError, duration_ms
from meshrules.model.policy import AccessPolicy, Policy, TrafficPolicy, VirtualMesh

WEIGHTS_NOT_100 = "MR0201"
PERCENTAGE_RANGE = "MR0202"
DURATION_TOO_SHORT = "MR0203"
SOURCE_SELECTOR_NOT_EMPTY = "MR0204"
HOSTNAME_SUFFIX_INVALID = "MR0205"
ACCESS_PORT_RANGE = "MR0206"
ACCESS_PATH_INVALID = "MR0207"


def validate_policy(policy: Policy) -> tuple[StatusError, ...]:
    """Every spec-level error of ``policy``, ordered by field."""
    if isinstance(policy, TrafficPolicy):
        errors = _traffic(policy)
    elif isinstance(policy, AccessPolicy):
        errors = _access(policy)
    else:
        errors = _virtual_mesh(policy)
    return tuple(sorted(errors, key=lambda e: (e.field, e.code)))


def _duration(errors: list[StatusError], field: str, value: str | None) -> None:
    if value is not None and duration_ms(value) < 1:
        errors.append(StatusError(code=DURATION_TOO_SHORT, field=field, message=f"duration `{value}` is below 1ms"))


def _percentage(errors: list[StatusError], field: str, value: float) -> None:
    if not 0 <= value <= 100:
        errors.append(
            StatusError(code=PERCENTAGE_RANGE, field=field, message=f"percentage `{value:g}` is not in [0, 100]")
        )


def _traffic(policy: TrafficPolicy) -> list[StatusError]:
    errors: list[StatusError] = []
    p = policy.spec.policy
    _duration(errors, "spec.policy.requestTimeout", p.request_timeout)
    if p.retries is not None:
        _duration(errors, "spec.policy.retries.perTryTimeout", p.retries.per_try_timeout)
    if p.traffic_shift is not None and len(p.traffic_shift.destinations) > 1:
        total = sum(d.weight for d in p.traffic_shift.destinations)
        if total != 100:
            errors.append(
                StatusError(
                    code=WEIGHTS_NOT_100,
                    field="spec.policy.trafficShift.destinations",
                    message=f"weights sum to {total}, not 100",
                )
            )
    if p.fault_injection is not None:
        _duration(errors, "spec.policy.faultInjection.fixedDelay", p.fault_injection.fixed_delay)
        _percentage(errors, "spec.policy.faultInjection.percentage", p.fault_injection.percentage)
    if p.mirror is not None:
        _percentage(errors, "spec.policy.mirror.percentage", p.mirror.percentage)
    if p.cors_policy is not None:
        _duration(errors, "spec.policy.corsPolicy.maxAge", p.cors_policy.max_age)
    if p.outlier_detection is not None:
        _duration(errors, "spec.policy.outlierDetection.interval", p.outlier_detection.interval)
        _duration(errors, "spec.policy.outlierDetection.baseEjectionTime", p.outlier_detection.base_ejection_time)
    has_sources = any(s.clusters or s.namespaces or s.labels for s in policy.spec.source_selector)
    for name, value in (("outlierDetection", p.outlier_detection), ("mtls", p.mtls)):
        if value is not None and has_sources:
            errors.append(
                StatusError(
                    code=SOURCE_SELECTOR_NOT_EMPTY,
                    field=f"spec.policy.{name}",
                    message=f"`{name}` needs an empty `sourceSelector` (a DestinationRule cannot select sources)",
                )
            )
    return errors


def _access(policy: AccessPolicy) -> list[StatusError]:
    errors: list[StatusError] = []
    for i, port in enumerate(policy.spec.allowed_ports):
        if not 1 <= port <= 65535:
            errors.append(
                StatusError(
                    code=ACCESS_PORT_RANGE,
                    field=f"spec.allowedPorts[{i}]",
                    message=f"port `{port}` is not in [1, 65535]",
                )
            )
    for i, path in enumerate(policy.spec.allowed_paths):
        # Istio paths: exact, prefix `x*`, suffix `*x` or `*`; a `*` elsewhere is rejected by Istio.
        inner = path[1:-1] if len(path) > 1 else ""
        if not path or "*" in inner:
            errors.append(
                StatusError(
                    code=ACCESS_PATH_INVALID,
                    field=f"spec.allowedPaths[{i}]",
                    message=f"path `{path}` may hold `*` only at its start or end",
                )
            )
    return errors


def _virtual_mesh(policy: VirtualMesh) -> list[StatusError]:
    errors: list[StatusError] = []
    suffix = policy.spec.federation.hostname_suffix
    labels = suffix.split(".")
    if not suffix or any(not lbl or not lbl.replace("-", "").isalnum() or lbl != lbl.lower() for lbl in labels):
        errors.append(
            StatusError(
                code=HOSTNAME_SUFFIX_INVALID,
                field="spec.federation.hostnameSuffix",
                message=f"`{suffix}` is not a DNS suffix",
            )
        )
    return errors
