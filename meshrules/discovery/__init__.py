"""Discovery (spec §2): from the objects of each cluster to meshes, workloads and destinations.

Pure functions of their inputs — no file or cluster I/O, no kubernetes client — reading only
`KubeObject.body`, so snapshots and live objects (`sanitize_for_serialization` output) go through
the same code. Below `graph`, above `model`.
"""

from meshrules.discovery.findings import CODES
from meshrules.discovery.identity import istio_identity, linkerd_identity, pem_fingerprints
from meshrules.discovery.pipeline import ClusterInput, Discovery, discover, discover_cluster

__all__ = [
    "CODES",
    "ClusterInput",
    "Discovery",
    "discover",
    "discover_cluster",
    "istio_identity",
    "linkerd_identity",
    "pem_fingerprints",
]
