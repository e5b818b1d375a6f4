"""DestinationRules: client-side TLS, outlier detection and subsets of one host (spec §4).

Place: rendered by `emit_istio` for a destination's local host in its own cluster (here) and for
its federated host on both sides of a federation (`federation.py` uses `destination_rule_spec`).
A local DestinationRule is written only where a policy sets mTLS or outlier detection or a route
sends to a subset (https://istio.io/latest/docs/reference/config/networking/destination-rule/).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set
from typing import Any

from meshrules.emit.istio.existing import CODE_USER_DESTINATION_RULE, ExistingConfig, conflict_finding
from meshrules.emit.istio.objects import Draft
from meshrules.emit.istio.plan import RoutePlan
from meshrules.emit.istio.subsets import Subset, subset_key, subset_users
from meshrules.emit.istio.topology import API_NETWORKING, IstioTopology, policy_parent
from meshrules.emit.naming import object_name
from meshrules.errors import Diagnostic
from meshrules.model.policy import MtlsMode, OutlierDetection


def subsets_spec(subsets: Iterable[Subset]) -> list[dict[str, Any]]:
    """DestinationRule `subsets` for label maps, sorted by name."""
    entries = {subset_key(s): dict(s) for s in subsets if s}
    return [{"name": name, "labels": labels} for name, labels in sorted(entries.items())]


def outlier_spec(outlier: OutlierDetection) -> dict[str, Any]:
    """Istio `outlierDetection` from a policy's.

    meshrules' `consecutiveErrors` counts 5xx responses as Gloo Mesh's did, which Istio calls
    `consecutive5xxErrors` (`consecutiveErrors` is deprecated there).
    """
    return {
        "consecutive5xxErrors": outlier.consecutive_errors,
        "interval": outlier.interval,
        "baseEjectionTime": outlier.base_ejection_time,
        "maxEjectionPercent": outlier.max_ejection_percent,
    }


def destination_rule_spec(
    host: str,
    *,
    tls_mode: MtlsMode | None = None,
    outlier: OutlierDetection | None = None,
    subsets: Iterable[Subset] = (),
    export_to: Iterable[str] = (),
) -> dict[str, Any]:
    """The spec of a DestinationRule for ``host``; only what is set appears."""
    spec: dict[str, Any] = {"host": host}
    traffic_policy: dict[str, Any] = {}
    if tls_mode is not None:
        traffic_policy["tls"] = {"mode": tls_mode.value}
    if outlier is not None:
        traffic_policy["outlierDetection"] = outlier_spec(outlier)
    if traffic_policy:
        spec["trafficPolicy"] = traffic_policy
    rendered = subsets_spec(subsets)
    if rendered:
        spec["subsets"] = rendered
    exports = sorted(set(export_to))
    if exports:
        spec["exportTo"] = exports
    return spec


def local_destination_rule_drafts(
    topo: IstioTopology,
    plan: RoutePlan,
    subsets: Mapping[str, Set[Subset]],
    existing: ExistingConfig,
    findings: list[Diagnostic],
) -> list[Draft]:
    """A DestinationRule for each destination's local host where mTLS, outlier detection or subsets ask for one."""
    users = subset_users(plan.tables.values())
    drafts: list[Draft] = []
    for name, dest in sorted(topo.destinations.items()):
        config = plan.configs[name]
        dest_subsets = sorted(subsets.get(name, set()))
        if config.mtls is None and config.outlier_detection is None and not dest_subsets:
            continue
        user = existing.for_host(dest.cluster, "DestinationRule", dest.local_fqdn)
        if user is not None:
            findings.append(
                conflict_finding(
                    CODE_USER_DESTINATION_RULE, user, dest.local_fqdn, "meshrules emits no DestinationRule for it"
                )
            )
            continue
        spec = destination_rule_spec(
            dest.local_fqdn,
            tls_mode=config.mtls.value.mode if config.mtls is not None else None,
            outlier=config.outlier_detection.value if config.outlier_detection is not None else None,
            subsets=dest_subsets,
        )
        policies = {p.policy for p in (config.mtls, config.outlier_detection) if p is not None} | users.get(name, set())
        parents = [topo.parent("Destination", name), *(policy_parent(p) for p in policies)]
        drafts.append(
            Draft(
                dest.cluster,
                API_NETWORKING,
                "DestinationRule",
                dest.namespace,
                object_name(dest.service),
                f"local/{dest.local_fqdn}",
                spec,
                parents,
            )
        )
    return drafts
