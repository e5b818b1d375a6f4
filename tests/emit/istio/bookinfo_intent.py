"""The bundled bookinfo scenario with the intent its policies should yield, stated by hand.

The rule set derives this intent from `simulator/scenarios/bookinfo-multicluster/policies`; the
Istio emitter's expected output is pinned against this hand-written version so the two efforts
test each other once the rules land (the same scenario, derived, must give the same YAML).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from meshrules.emit.input import EmitInput
from meshrules.kube.scenario import load_scenario
from meshrules.model.intent import (
    AccessRule,
    Derivation,
    FederationEdge,
    IdentityPattern,
    Intent,
    MeshMembership,
    Specificity,
    TrafficApplication,
    TrafficPrecedence,
)
from meshrules.pipeline import analyse

SCENARIO = Path(__file__).resolve().parents[3] / "simulator" / "scenarios" / "bookinfo-multicluster"
WHY = Derivation("hand-written", "test", ())
C1, C2 = "istiod-istio-system-cluster-1", "istiod-istio-system-cluster-2"
BOOKINFO_VM = "VirtualMesh meshrules-system/bookinfo"
PRODUCTPAGE = IdentityPattern("cluster.local", "bookinfo", "bookinfo-productpage")
REVIEWS = IdentityPattern("cluster.local", "bookinfo", "bookinfo-reviews")


def _edge(dest: str, service: str, cluster: str, mesh: str) -> FederationEdge:
    return FederationEdge(dest, mesh, BOOKINFO_VM, f"{service}.bookinfo.svc.{cluster}.global", WHY)


def bookinfo_intent() -> Intent:
    """What the default rules decide for the bookinfo VirtualMesh (the Linkerd side left out)."""
    canary, jason = "TrafficPolicy bookinfo/reviews-canary", "TrafficPolicy bookinfo/reviews-jason-to-v2"
    reviews1 = "reviews-bookinfo-cluster-1"
    return Intent(
        memberships=(
            MeshMembership(C1, BOOKINFO_VM, enforced=True, shared_trust=True),
            MeshMembership(C2, BOOKINFO_VM, enforced=True, shared_trust=True),
        ),
        federation=(
            _edge("details-bookinfo-cluster-1", "details", "cluster-1", C2),
            _edge("productpage-bookinfo-cluster-1", "productpage", "cluster-1", C2),
            _edge(reviews1, "reviews", "cluster-1", C2),
            _edge("ratings-bookinfo-cluster-2", "ratings", "cluster-2", C1),
            _edge("reviews-bookinfo-cluster-2", "reviews", "cluster-2", C1),
        ),
        traffic=(
            TrafficApplication(canary, reviews1, ("requestTimeout", "trafficShift"), WHY),
            TrafficApplication(jason, reviews1, ("requestTimeout", "retries", "trafficShift"), WHY),
            TrafficApplication(
                "TrafficPolicy bookinfo/ratings-timeout",
                "ratings-bookinfo-cluster-2",
                ("requestTimeout", "retries"),
                WHY,
            ),
            TrafficApplication(
                "TrafficPolicy bookinfo/details-resilience",
                "details-bookinfo-cluster-1",
                ("outlierDetection", "mtls"),
                WHY,
            ),
        ),
        precedence=(
            TrafficPrecedence(reviews1, "requestTimeout", jason, canary, Specificity.MORE_SPECIFIC, WHY),
            TrafficPrecedence(reviews1, "trafficShift", jason, canary, Specificity.MORE_SPECIFIC, WHY),
        ),
        access=(
            AccessRule(
                "AccessPolicy bookinfo/productpage-reads-backends",
                "details-bookinfo-cluster-1",
                (PRODUCTPAGE,),
                methods=("GET",),
                ports=(9080,),
                why=WHY,
            ),
            AccessRule(
                "AccessPolicy bookinfo/productpage-reads-backends",
                reviews1,
                (PRODUCTPAGE,),
                methods=("GET",),
                ports=(9080,),
                why=WHY,
            ),
            AccessRule(
                "AccessPolicy bookinfo/productpage-reads-backends",
                "reviews-bookinfo-cluster-2",
                (PRODUCTPAGE,),
                methods=("GET",),
                ports=(9080,),
                why=WHY,
            ),
            AccessRule(
                "AccessPolicy bookinfo/reviews-reads-ratings",
                "ratings-bookinfo-cluster-2",
                (REVIEWS,),
                paths=("/ratings/*",),
                methods=("GET",),
                why=WHY,
            ),
        ),
    )


@cache
def bookinfo_input() -> EmitInput:
    """The scenario's discovery and policies with the hand-written intent."""
    analysis = analyse(load_scenario(SCENARIO))
    found = analysis.discovery
    return EmitInput(
        clusters=found.clusters,
        meshes=found.meshes,
        workloads=found.workloads,
        destinations=found.destinations,
        policies=tuple(analysis.scenario.policies),
        intent=bookinfo_intent(),
    )
