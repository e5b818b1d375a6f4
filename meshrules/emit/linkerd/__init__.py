"""The Linkerd emitter: policy.linkerd.io resources and Service patches from the rule set's intent.

    emitter.py         emit_linkerd: the steps below, in order
    scope.py           the Linkerd meshes, destinations and intent of an EmitInput, indexed
    unsupported.py     TrafficPolicy features Linkerd cannot express → INVALID statuses
    servers.py         Servers: where denial by default is wanted, one per pod port
    identities.py      caller identities in Linkerd's format
    operations.py      path x method operations and Linkerd's route precedence (inbound)
    authorization.py   MeshTLSAuthentication, AuthorizationPolicy, inbound HTTPRoutes
    probes.py          kubelet probes on Servers with routes
    http_routes.py     client-side HTTPRoutes from the route model (meshrules.emit.routes)
    accrual.py         outlier detection as failure-accrual annotations
    federation.py      the multicluster export label
    emission.py        what a run produced; sorting into an EmitResult
    names.py           unique names that never take a user object's
    codes.py           MR0400–MR0449

It reads only `meshrules.emit.{input,output,naming,routes}` and the model; it never imports the
Istio emitter (import-linter contract "Istio and Linkerd emitters are independent").
"""

from meshrules.emit.linkerd.codes import CODES
from meshrules.emit.linkerd.emitter import emit_linkerd

__all__ = ["CODES", "emit_linkerd"]
