"""Stable codes of what the Linkerd emitter reports: the range MR0400–MR0449.

Status codes (MR0401–MR0419) make a policy INVALID for one destination: Linkerd cannot express
what the policy asks there, so the policy contributes nothing to that destination (spec §3.4).
Finding codes (MR0420–MR0439) tell a user where Linkerd's rendering differs from the intent in a
way meshrules cannot avoid, or where user config in the cluster stands in the way.
`CODES` maps each code to its meaning for `docs/codes.md`.
"""

from __future__ import annotations

from collections.abc import Mapping

# --- status codes: the policy is INVALID for the destination ---------------------------------------
FAULT_INJECTION = "MR0401"
CORS_POLICY = "MR0402"
MIRROR = "MR0403"
SUBSET = "MR0404"
SOURCE_SELECTIVE = "MR0405"
HEADER_MANIPULATION = "MR0406"
OUTLIER_DETECTION = "MR0407"
MTLS_DISABLE = "MR0408"
REQUEST_MATCHER = "MR0409"
CROSS_NAMESPACE_BACKEND = "MR0410"
BACKEND_NOT_VISIBLE = "MR0411"
SERVICE_PROFILE = "MR0412"
NO_HTTP_PORT = "MR0413"
ROUTE_ORDER = "MR0414"

# --- findings ------------------------------------------------------------------------------------
PATH_APPROXIMATED = "MR0420"
PATH_OVERLAP = "MR0421"
RESTRICTION_ON_OPAQUE_PORT = "MR0422"
EXISTING_SERVER = "MR0423"
PROBE_PATHS_ASSUMED = "MR0424"
EXISTING_HTTP_ROUTE = "MR0425"
NAME_TAKEN = "MR0426"
OPERATION_LIMIT = "MR0427"

CODES: Mapping[str, str] = {
    FAULT_INJECTION: "fault injection is not supported by Linkerd",
    CORS_POLICY: "CORS policies are not supported by Linkerd",
    MIRROR: "request mirroring is not supported by Linkerd",
    SUBSET: "a traffic shift to a subset is not supported by Linkerd (HTTPRoute backends are whole Services)",
    SOURCE_SELECTIVE: "routing for some sources only is not supported by Linkerd (only all sources, or whole clusters)",
    HEADER_MANIPULATION: "header manipulation beyond what HTTPRoute header filters accept",
    OUTLIER_DETECTION: "outlier detection that Linkerd's consecutive-failure accrual cannot express",
    MTLS_DISABLE: "disabling mTLS is not supported by Linkerd (meshed traffic is always mTLS)",
    REQUEST_MATCHER: "a request matcher that HTTPRoute matches cannot express (e.g. an inverted header match)",
    CROSS_NAMESPACE_BACKEND: "a traffic shift to a Service in another namespace (Linkerd routes to its own namespace)",
    BACKEND_NOT_VISIBLE: "a traffic-shift backend that is not federated into the caller's cluster",
    SERVICE_PROFILE: "a user ServiceProfile configures the host; meshrules does not emit a competing HTTPRoute",
    NO_HTTP_PORT: "the destination has no port on which Linkerd applies HTTP routes",
    ROUTE_ORDER: "overlapping routes with different settings that Linkerd's match precedence cannot keep apart",
    PATH_APPROXIMATED: "an AccessPolicy path prefix is matched segment-wise by Linkerd",
    PATH_OVERLAP: "overlapping AccessPolicy paths that Linkerd's route precedence cannot order exactly",
    RESTRICTION_ON_OPAQUE_PORT: "a path or method restriction on a port Linkerd does not parse as HTTP grants nothing",
    EXISTING_SERVER: "a user Server already selects the pods and port; meshrules attaches its authorizations to it",
    PROBE_PATHS_ASSUMED: "a workload's kubelet probes are unknown; the conventional health paths are authorized",
    EXISTING_HTTP_ROUTE: "a user HTTPRoute already attaches to the Service; Linkerd merges both by route precedence",
    NAME_TAKEN: "an object meshrules does not own has the name meshrules would use; meshrules used another name",
    OPERATION_LIMIT: "too many distinct path and method combinations on one Server; some are not authorized",
}
