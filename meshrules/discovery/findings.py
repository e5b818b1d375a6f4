"""The findings discovery reports, with their stable codes (MR01xx).

Discovery never raises on what a cluster holds: a wrong shape, a missing ConfigMap or a gateway
without an address becomes a `Diagnostic` pointing at the object (file:line for snapshots,
cluster/kind/namespace/name for live objects), and discovery carries on with what it can read.
"""

from __future__ import annotations

from meshrules.errors import Diagnostic, Location, Severity
from meshrules.model.source import KubeObject

# A field of a Kubernetes object has the wrong type (a `containers` that is not a list, a label
# value that is not a string); the field is ignored.
BAD_SHAPE = "MR0101"
# A mesh's configuration (Istio `mesh`, Linkerd `values`) is not valid YAML or has a wrong type;
# defaults are used for what cannot be read.
BAD_MESH_CONFIG = "MR0102"
# A control plane's configuration ConfigMap is missing; defaults are used (trust domain `cluster.local`).
MISSING_MESH_CONFIG = "MR0103"
# A published trust root is not a readable PEM certificate; it is left out of `trustRoots`.
BAD_TRUST_ROOT = "MR0104"
# A gateway Service has no address (no load-balancer ingress, no external IP): remote clusters
# cannot reach the mesh through it.
GATEWAY_WITHOUT_ADDRESS = "MR0110"
# A gateway Service has no port for mesh traffic (east-west: `tls` or 15443; Linkerd: 4143).
GATEWAY_WITHOUT_PORT = "MR0111"
# A gateway's pods name an Istio revision (or no revision) for which the cluster has no control plane.
GATEWAY_WITHOUT_MESH = "MR0112"
# A gateway Deployment has no Service selecting its pods, so it is not a gateway of any mesh.
GATEWAY_WITHOUT_SERVICE = "MR0113"
# A workload's injection points to an Istio revision that has no control plane in its cluster.
UNKNOWN_REVISION = "MR0120"
# A workload is injected for a mesh type (Istio or Linkerd) that has no control plane in its cluster.
NO_MESH_FOR_INJECTION = "MR0121"
# A workload's injection points to both Istio and Linkerd; it is left out of every mesh.
AMBIGUOUS_INJECTION = "MR0122"
# A destination's workloads belong to several meshes; the mesh of most of them is used.
DESTINATION_IN_SEVERAL_MESHES = "MR0130"
# A destination forced in by `meshrules.io/discover: "true"` has no workload and no mesh can be told for it.
DESTINATION_WITHOUT_MESH = "MR0131"
# `cluster.yaml` names another cluster than its directory.
CLUSTER_CONFIG_NAME_MISMATCH = "MR0140"
# Two discovered objects got the same name (e.g. service `a-b` in `c` and service `a` in `b-c`).
DUPLICATE_DISCOVERED_NAME = "MR0141"

CODES: dict[str, str] = {
    BAD_SHAPE: "a field of a Kubernetes object has the wrong type and is ignored",
    BAD_MESH_CONFIG: "mesh configuration is not valid YAML or has a wrong type; defaults used",
    MISSING_MESH_CONFIG: "a control plane's configuration ConfigMap is missing; defaults used",
    BAD_TRUST_ROOT: "a published trust root is not a readable PEM certificate",
    GATEWAY_WITHOUT_ADDRESS: "a gateway Service has no address",
    GATEWAY_WITHOUT_PORT: "a gateway Service has no port for mesh traffic",
    GATEWAY_WITHOUT_MESH: "a gateway's revision has no control plane in its cluster",
    GATEWAY_WITHOUT_SERVICE: "a gateway Deployment has no Service",
    UNKNOWN_REVISION: "a workload's Istio revision has no control plane in its cluster",
    NO_MESH_FOR_INJECTION: "a workload is injected for a mesh type its cluster does not run",
    AMBIGUOUS_INJECTION: "a workload's injection points to both Istio and Linkerd",
    DESTINATION_IN_SEVERAL_MESHES: "a destination's workloads belong to several meshes",
    DESTINATION_WITHOUT_MESH: "a forced-in destination has no workload and no mesh",
    CLUSTER_CONFIG_NAME_MISMATCH: "`cluster.yaml` names another cluster than its directory",
    DUPLICATE_DISCOVERED_NAME: "two discovered objects got the same name",
}


def field_location(obj: KubeObject, path: str) -> Location:
    """Where ``path`` of ``obj`` was written, or its nearest written ancestor, or the object itself.

    Snapshots record lines only for the top levels of tolerant objects, so deeper fields point
    at the closest line the loader kept.
    """
    lines = obj.lines
    if lines:
        while path:
            line = lines.get(path)
            if line is not None:
                return Location(file=obj.location.file, line=line)
            cut = max(path.rfind("."), path.rfind("["))
            path = path[:cut] if cut > 0 else ""
    return obj.location


class Findings:
    """Collects the diagnostics of one discovery run."""

    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: list[Diagnostic] = []

    def add(
        self,
        code: str,
        obj: KubeObject,
        path: str,
        message: str,
        *,
        hint: str = "",
        severity: Severity = Severity.WARNING,
    ) -> None:
        """Record a finding about field ``path`` (dotted, may be empty) of ``obj``."""
        self.items.append(
            Diagnostic(
                code=code,
                message=message,
                severity=severity,
                location=field_location(obj, path),
                field=path,
                hint=hint,
                object=obj.ref(),
            )
        )

    def bad_shape(self, obj: KubeObject, path: str, expected: str) -> None:
        """Record that ``path`` of ``obj`` is not ``expected`` (e.g. "a list")."""
        self.add(
            BAD_SHAPE,
            obj,
            path,
            f"expected {expected}",
            hint="this field is ignored; fix the object so Kubernetes would accept it",
        )
