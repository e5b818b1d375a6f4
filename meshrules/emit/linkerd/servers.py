"""Linkerd `Server`s: which destination ports get one, and what it looks like.

A `Server` (policy.linkerd.io/v1beta3, the version the bundled CRDs store) selects one port on a
set of pods. Its presence changes the default: without a Server a port follows the cluster's
default inbound policy (`all-unauthenticated` unless the installation says otherwise), with one
"all traffic to the port on its pods will be denied unless explicitly authorized" (Linkerd's
authorization-policy reference, Server; `accessPolicy` defaults to `deny`, written out here so the
object says it). So meshrules creates Servers only where §4 asks for denial by default:
- every port of a destination that has at least one AccessPolicy (as in Istio, a destination
  with an ALLOW policy denies what no policy allows, spec §3.3);
- every port of every destination of a member mesh under `accessPolicyEnforcement: ENFORCED`.
Ports of workloads that no Service exposes, and workloads behind no Service, keep the default
policy: no destination is addressed there.

Linkerd keeps authorizing kubelet probes on a Server as long as no HTTPRoute attaches to it
(linkerd2 #8945); `authorization.py` restores them when it attaches routes.

One Server per pod port: Linkerd refuses two Servers that select the same pod port, so Services
with the same selector and target port share one (its authorizations are the union, which is what
Linkerd would enforce per pod anyway). A user's Server that already selects the port is used
instead of creating one (`adopt_existing`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from meshrules.emit.linkerd.scope import LinkerdScope
from meshrules.model.discovery import Destination, ServicePort
from meshrules.model.source import KubeObject

SERVER_API_VERSION = "policy.linkerd.io/v1beta3"
POLICY_GROUP = "policy.linkerd.io"

# Linkerd's `proxyProtocol` values (Server reference).
GRPC = "gRPC"
HTTP1 = "HTTP/1"
HTTP2 = "HTTP/2"
OPAQUE = "opaque"
TLS = "TLS"
UNKNOWN = "unknown"

# Port naming and appProtocol conventions (Istio's `<protocol>[-<suffix>]` names, Kubernetes'
# `kubernetes.io/h2c`) → what the proxy should expect instead of detecting it.
_PROTOCOLS: Mapping[str, str] = {
    "grpc": GRPC,
    "grpc-web": GRPC,
    "http": HTTP1,
    "http1": HTTP1,
    "http2": HTTP2,
    "h2c": HTTP2,
    "kubernetes.io/h2c": HTTP2,
    "https": TLS,
    "tls": TLS,
    "kubernetes.io/wss": TLS,
    "tcp": OPAQUE,
    "mysql": OPAQUE,
    "mongo": OPAQUE,
    "redis": OPAQUE,
}
HTTP_PROTOCOLS = frozenset({GRPC, HTTP1, HTTP2, UNKNOWN})


@dataclass(frozen=True, slots=True)
class ServerPlan:
    """One Server to emit (or a user's Server to use): a pod port and the destinations behind it."""

    cluster: str
    namespace: str
    name: str
    selector: tuple[tuple[str, str], ...]
    port: int | str
    protocol: str
    # (destination name, Service port) pairs that reach this pod port, sorted.
    service_ports: tuple[tuple[str, int], ...]
    # True when a user's Server already selects this pod port: meshrules targets it, never writes it.
    user_owned: bool = False

    @property
    def destinations(self) -> tuple[str, ...]:
        """The destinations whose Services reach this Server, sorted."""
        return tuple(sorted({d for d, _ in self.service_ports}))

    @property
    def accepts_routes(self) -> bool:
        """Whether inbound HTTPRoutes can apply: Linkerd parses HTTP on the port, and a `gRPC` Server
        is one meshrules may declare `HTTP/2` (a user's is left as it is, and ignores HTTPRoutes)."""
        if self.user_owned and self.protocol == GRPC:
            return False
        return self.protocol in HTTP_PROTOCOLS


def proxy_protocol(port: ServicePort) -> str:
    """The Server `proxyProtocol` for a Service port, from its appProtocol or name; else `unknown`."""
    if port.app_protocol:
        return _PROTOCOLS.get(port.app_protocol.lower(), UNKNOWN)
    if port.name:
        name = port.name.lower()
        return _PROTOCOLS.get(name) or _PROTOCOLS.get(name.split("-", 1)[0], UNKNOWN)
    return UNKNOWN


def destinations_needing_servers(scope: LinkerdScope) -> tuple[Destination, ...]:
    """Linkerd destinations that get Servers: with AccessPolicies, or in an ENFORCED member mesh."""
    return tuple(d for d in scope.destinations if d.name in scope.access or scope.enforced(scope.mesh_of(d).name))


def _resolved_port(scope: LinkerdScope, destination: Destination, target: int | str) -> int | str:
    """The container port number a target port names, when every workload agrees on it."""
    if isinstance(target, int):
        return target
    numbers = {p.container_port for w in scope.workloads_of(destination) for p in w.ports if p.name == target}
    return numbers.pop() if len(numbers) == 1 else target


def plan_servers(scope: LinkerdScope, destinations: Iterable[Destination]) -> tuple[ServerPlan, ...]:
    """The Servers of the given destinations, one per (cluster, namespace, selector, pod port), sorted.

    Names are `<service>-<port name or number>` of the first Service port reaching the pod port.
    UDP and SCTP ports get none (the Linkerd proxy carries TCP only).
    """
    groups: dict[tuple[Any, ...], list[tuple[Destination, ServicePort]]] = defaultdict(list)
    for d in sorted(destinations, key=lambda d: d.name):
        for port in sorted(d.ports, key=lambda p: p.port):
            if port.protocol.upper() != "TCP":
                continue
            resolved = _resolved_port(scope, d, port.target_port)
            key = (d.cluster, d.namespace, tuple(sorted(d.selector.items())), str(resolved))
            groups[key].append((d, port))
    plans = []
    for (cluster, namespace, selector, _), members in sorted(groups.items()):
        first_dest, first_port = members[0]
        # Prefer the container port's name: it is what Linkerd resolves against each pod's ports.
        targets = [p.target_port for _, p in members]
        target = next((t for t in targets if isinstance(t, str)), targets[0])
        plans.append(
            ServerPlan(
                cluster=cluster,
                namespace=namespace,
                name=f"{first_dest.service}-{first_port.name or first_port.port}",
                selector=selector,
                port=target,
                protocol=proxy_protocol(first_port),
                service_ports=tuple(sorted((d.name, p.port) for d, p in members)),
            )
        )
    return tuple(plans)


def adopt_existing(scope: LinkerdScope, plan: ServerPlan) -> KubeObject | None:
    """A user's Server in the cluster that already selects this plan's pods and port, if any.

    Linkerd's admission controller rejects a second Server for the same pod port, so meshrules
    targets the user's Server with its authorizations instead of creating its own.
    """
    labels = dict(plan.selector)
    names = {str(plan.port)}
    for d in plan.destinations:
        dest = scope.destination_by_name[d]
        for w in scope.workloads_of(dest):
            names |= {str(p.container_port) for p in w.ports if p.name == plan.port or p.container_port == plan.port}
            names |= {p.name for p in w.ports if p.name and str(p.container_port) in names}
    for obj in scope.existing(plan.cluster, ("Server",)):
        if obj.namespace != plan.namespace or obj.group != POLICY_GROUP or not scope.user_owned(obj):
            continue
        selector = obj.spec.get("podSelector")
        match_labels = selector.get("matchLabels") if isinstance(selector, Mapping) else None
        if not isinstance(match_labels, Mapping) or (
            isinstance(selector, Mapping) and selector.get("matchExpressions")
        ):
            continue  # expressions: cannot be judged against a label map; leave it to Linkerd
        if all(labels.get(k) == v for k, v in match_labels.items()) and str(obj.spec.get("port")) in names:
            return obj
    return None


def server_object(plan: ServerPlan, metadata: Mapping[str, Any], *, routes_attached: bool) -> dict[str, Any]:
    """The Server resource of a plan.

    A gRPC port with inbound HTTPRoutes is declared `HTTP/2`: since edge-24.7.1 Linkerd serves a
    `gRPC` Server with GRPCRoutes only and ignores HTTPRoutes there (linkerd2 #13507); gRPC is
    HTTP/2, so paths (`/package.Service/Method`) and methods still match.
    """
    protocol = HTTP2 if routes_attached and plan.protocol == GRPC else plan.protocol
    return {
        "apiVersion": SERVER_API_VERSION,
        "kind": "Server",
        "metadata": dict(metadata),
        "spec": {
            "accessPolicy": "deny",
            "podSelector": {"matchLabels": dict(plan.selector)},
            "port": plan.port,
            "proxyProtocol": protocol,
        },
    }
