"""A small two-cluster Istio world for emitter tests: `shop` services in c1 and c2.

c1: web (caller), reviews v1+v2 (subsets by version), ratings (named targetPort `http`)
c2: reviews v3
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from emit.emit_builders import destination, emit_input, istio_mesh, workload
from meshrules.emit.input import EmitInput
from meshrules.emit.istio import emit_istio
from meshrules.emit.output import EmitResult
from meshrules.model.discovery import ServicePort
from meshrules.model.intent import Intent
from meshrules.model.source import KubeObject

C1, C2 = istio_mesh("c1", gateway_address="203.0.113.1"), istio_mesh("c2", gateway_address="203.0.113.2")
WEB = workload("web", "c1")
REVIEWS_V1 = workload("reviews-v1", "c1", labels={"app": "reviews", "version": "v1"}, sa="reviews")
REVIEWS_V2 = workload("reviews-v2", "c1", labels={"app": "reviews", "version": "v2"}, sa="reviews")
REVIEWS_V3 = workload("reviews-v3", "c2", labels={"app": "reviews", "version": "v3"}, sa="reviews")
RATINGS_V1 = workload("ratings-v1", "c1", labels={"app": "ratings"}, ports=((9080, "http"), (15090, "metrics")))
WEB_SVC = destination("web", "c1", workloads=[WEB])
REVIEWS = destination("reviews", "c1", workloads=[REVIEWS_V1, REVIEWS_V2], subsets={"version": ["v1", "v2"]})
REVIEWS_C2 = destination("reviews", "c2", workloads=[REVIEWS_V3])
RATINGS = destination(
    "ratings", "c1", workloads=[RATINGS_V1], ports=[ServicePort(port=80, name="http", target_port="http")]
)
WORKLOADS = (WEB, REVIEWS_V1, REVIEWS_V2, REVIEWS_V3, RATINGS_V1)
DESTINATIONS = (WEB_SVC, REVIEWS, REVIEWS_C2, RATINGS)


def world(
    policies: Iterable[Any] = (),
    *,
    meshes: Iterable[Any] = (C1, C2),
    existing: Mapping[str, tuple[KubeObject, ...]] | None = None,
    **intent: Any,
) -> EmitInput:
    """The world with these policies and intent fields."""
    return emit_input(
        meshes=meshes,
        workloads=WORKLOADS,
        destinations=DESTINATIONS,
        policies=policies,
        intent=Intent(**intent),
        existing=existing,
    )


def emit(policies: Iterable[Any] = (), **kwargs: Any) -> EmitResult:
    """`emit_istio` of the world with these policies and intent fields."""
    return emit_istio(world(policies, **kwargs))
