"""Outlier detection as Linkerd's consecutive-failure accrual (a circuit breaker per endpoint).

Linkerd has no DestinationRule; its load balancer stops sending to an endpoint after N consecutive
failures and probes it again after a back-off between a minimum and a maximum penalty. It is
configured by annotations on the Service (Linkerd "Circuit Breaking" reference):
`balancer.linkerd.io/failure-accrual: consecutive` and `…-consecutive-max-failures`,
`…-min-penalty`, `…-max-penalty`. The Service is the user's, so, like the export label, the
annotations travel in meshrules' server-side-apply patch of the Service, which owns only them.

Mapping from the policy's `outlierDetection` (Envoy semantics):
- `consecutiveErrors` → `max-failures` (0 turns ejection off: nothing is written);
- `baseEjectionTime` → `min-penalty`: Envoy's first ejection lasts that long;
- `max-penalty` = max(`baseEjectionTime`, 300s): Envoy ejects for base × times ejected, capped by
  its default `max_ejection_time` of 300s;
- `interval` has no equivalent (Linkerd decides on each response, Envoy sweeps every interval):
  ignored;
- `maxEjectionPercent` below 100 cannot be expressed (Linkerd has no cap): the policy is INVALID
  at the destination (`unsupported.py`).
Failure accrual acts in the callers of D's own cluster. Mirror Services in other clusters belong to
Linkerd's service mirror and are not patched: in gateway mode their one endpoint is the gateway,
where ejecting would cut the whole remote service.
"""

from __future__ import annotations

from collections.abc import Collection

from meshrules.emit.linkerd.emission import Emission
from meshrules.emit.linkerd.http_routes import gateway_duration
from meshrules.emit.linkerd.scope import LinkerdScope
from meshrules.emit.routes import destination_configs
from meshrules.model.common import duration_ms

ACCRUAL = "balancer.linkerd.io/failure-accrual"
MAX_FAILURES = "balancer.linkerd.io/failure-accrual-consecutive-max-failures"
MIN_PENALTY = "balancer.linkerd.io/failure-accrual-consecutive-min-penalty"
MAX_PENALTY = "balancer.linkerd.io/failure-accrual-consecutive-max-penalty"
# Envoy's default `max_ejection_time`, which Istio leaves unset.
ENVOY_MAX_EJECTION_MS = 300_000


def failure_accrual(scope: LinkerdScope, out: Emission, invalid: Collection[tuple[str, str]]) -> None:
    """Patch failure-accrual annotations onto Services whose destination gets outlier detection."""
    exclude: dict[str, set[str]] = {}
    for policy, dest in invalid:
        exclude.setdefault(dest, set()).add(policy)
    names = sorted({a.destination for a in scope.inp.intent.traffic if "outlierDetection" in a.fields})
    configs = destination_configs(scope.inp, exclude, [n for n in names if n in scope.destination_by_name])
    for name, config in sorted(configs.items()):
        destination = scope.destination_by_name[name]
        provided = config.outlier_detection
        if provided is None or provided.value.consecutive_errors == 0:
            continue
        od = provided.value
        base = duration_ms(od.base_ejection_time)
        out.patch_service(
            destination.cluster,
            destination.namespace,
            destination.service,
            annotations={
                ACCRUAL: "consecutive",
                MAX_FAILURES: str(od.consecutive_errors),
                MIN_PENALTY: gateway_duration(od.base_ejection_time),
                MAX_PENALTY: gateway_duration(f"{round(max(base, ENVOY_MAX_EJECTION_MS))}ms"),
            },
        )
