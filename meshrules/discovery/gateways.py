"""Mesh gateways: the Services in front of gateway pods, their addresses and mesh-traffic ports.

Shared by Istio (east-west and ingress gateways) and Linkerd (the multicluster gateway). A
gateway that remote clusters cannot reach — no Service, no address, no port — is reported, never
silently dropped: federation through it would fail at run time (`why` answers NO_GATEWAY_ADDRESS).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from meshrules.discovery.findings import (
    GATEWAY_WITHOUT_ADDRESS,
    GATEWAY_WITHOUT_PORT,
    GATEWAY_WITHOUT_SERVICE,
    Findings,
)
from meshrules.discovery.pods import PodSource
from meshrules.discovery.services import ServiceInfo
from meshrules.discovery.shapes import Reader, selects
from meshrules.model.discovery import Gateway, GatewayKind, ServicePort

# Istio's east-west gateway carries mTLS passthrough on port 15443, named `tls` by istioctl.
ISTIO_EASTWEST_PORT = 15443
# Linkerd's multicluster gateway proxies inbound traffic on 4143 (port `mc-gateway`).
LINKERD_GATEWAY_PORT = 4143

PortRule = Callable[[Sequence[ServicePort]], int | None]


def _first(ports: Sequence[ServicePort], names: tuple[str, ...], numbers: tuple[int, ...]) -> int | None:
    for port in ports:
        if port.name in names or port.port in numbers:
            return port.port
    return None


def eastwest_port(ports: Sequence[ServicePort]) -> int | None:
    """The east-west TLS port: the port named `tls`, else 15443."""
    named = _first(ports, ("tls",), ())
    return named if named is not None else _first(ports, (), (ISTIO_EASTWEST_PORT,))


def ingress_port(ports: Sequence[ServicePort]) -> int | None:
    """The ingress port callers use first: HTTP (`http2`/`http`/80), else HTTPS (`https`/443), else the first."""
    for names, numbers in ((("http2", "http"), (80,)), (("https",), (443,))):
        found = _first(ports, names, numbers)
        if found is not None:
            return found
    return ports[0].port if ports else None


def linkerd_gateway_port(ports: Sequence[ServicePort]) -> int | None:
    """The Linkerd multicluster gateway port: `mc-gateway`, else 4143."""
    named = _first(ports, ("mc-gateway",), ())
    return named if named is not None else _first(ports, (), (LINKERD_GATEWAY_PORT,))


def gateways_for(
    source: PodSource,
    kind: GatewayKind,
    services: Sequence[ServiceInfo],
    port_rule: PortRule,
    findings: Findings,
) -> list[Gateway]:
    """One `Gateway` per Service of the source's namespace that selects the gateway pods."""
    matched = [s for s in services if selects(s.selector, source.labels)]
    if not matched:
        findings.add(
            GATEWAY_WITHOUT_SERVICE,
            source.obj,
            "",
            f"{_TITLES[kind]} `{source.namespace}/{source.name}` has no Service selecting its pods",
            hint="remote clusters reach a gateway through its Service; create one (type LoadBalancer)",
        )
        return []
    out = []
    for svc in matched:
        address = _address(svc, findings)
        port = port_rule(svc.ports)
        if address is None:
            findings.add(
                GATEWAY_WITHOUT_ADDRESS,
                svc.obj,
                "status.loadBalancer",
                f"{_TITLES[kind]} Service `{svc.namespace}/{svc.name}` has no address",
                hint=(
                    "no `status.loadBalancer.ingress` and no `spec.externalIPs`: other clusters cannot reach "
                    "this mesh through it; wait for the load balancer or set an external IP"
                ),
            )
        if port is None:
            findings.add(
                GATEWAY_WITHOUT_PORT,
                svc.obj,
                "spec.ports",
                f"{_TITLES[kind]} Service `{svc.namespace}/{svc.name}` has no port for mesh traffic",
                hint=_PORT_HINTS[kind],
            )
        out.append(
            Gateway(
                kind=kind,
                service=svc.name,
                namespace=svc.namespace,
                address=address,
                port=port,
                workload_labels=dict(source.labels),
            )
        )
    return out


_TITLES = {
    GatewayKind.EASTWEST: "east-west gateway",
    GatewayKind.INGRESS: "ingress gateway",
    GatewayKind.LINKERD_GATEWAY: "Linkerd multicluster gateway",
}
_PORT_HINTS = {
    GatewayKind.EASTWEST: f"add a port named `tls` (istioctl uses {ISTIO_EASTWEST_PORT})",
    GatewayKind.INGRESS: "add a port to the Service",
    GatewayKind.LINKERD_GATEWAY: f"add port {LINKERD_GATEWAY_PORT} named `mc-gateway`",
}


def _address(svc: ServiceInfo, findings: Findings) -> str | None:
    """`status.loadBalancer.ingress[0].ip|hostname`, else `spec.externalIPs[0]`."""
    reader = Reader(svc.obj, findings)
    ingress = reader.objects("status.loadBalancer.ingress")
    if ingress:
        first = ingress[0]
        address = reader.text("ip", first, "status.loadBalancer.ingress[0]") or reader.text(
            "hostname", first, "status.loadBalancer.ingress[0]"
        )
        if address:
            return address
    external = reader.sequence("spec.externalIPs")
    if external and isinstance(external[0], str) and external[0]:
        return external[0]
    return None
