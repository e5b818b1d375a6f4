"""Federation through Linkerd multicluster: exporting a destination's Service (spec §4).

Linkerd's service mirror in a linked cluster C′ mirrors the Services of cluster C that carry the
Link's selector label — by default `mirror.linkerd.io/exported: "true"` for gateway (hierarchical)
mode, `mirror.linkerd.io/exported: remote-discovery` for pod-to-pod (flat) mode (Linkerd's
"Multi-cluster communication" reference, *Service mirroring*) — as `<svc>-<C>` in the same
namespace of C′. So exporting D is one label on the user's Service, and meshrules owns exactly
that label through a server-side-apply patch (`EmitResult.patches`, field manager `meshrules`).

The Link and its credentials Secret (which tell C′'s service mirror how to reach C's API server
and gateway) are written by the live controller only (spec §8): they hold cluster credentials,
which `translate` never emits. The mirror needs D's namespace in C′; the rule set reports
NOT_FEDERATED (`NAMESPACE_MISSING`) instead of an edge when it is missing.
"""

from __future__ import annotations

from meshrules.emit.linkerd.emission import Emission
from meshrules.emit.linkerd.scope import LinkerdScope

EXPORT_LABEL = "mirror.linkerd.io/exported"
GATEWAY_EXPORT = "true"
REMOTE_DISCOVERY_EXPORT = "remote-discovery"


def export_services(scope: LinkerdScope, out: Emission) -> None:
    """Patch the export label onto every Linkerd destination federated into another mesh."""
    for name in sorted({e.destination for e in scope.federation}):
        destination = scope.destination_by_name[name]
        mesh = scope.mesh_of(destination).name
        value = REMOTE_DISCOVERY_EXPORT if scope.remote_discovery(mesh) else GATEWAY_EXPORT
        out.patch_service(destination.cluster, destination.namespace, destination.service, labels={EXPORT_LABEL: value})
