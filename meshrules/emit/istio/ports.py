"""Service ports as Istio sees them: protocols, names, and the workload ports behind them.

Place: shared by the ServiceEntries of federation (ports with protocols) and the
AuthorizationPolicies (Istio authorizes on the workload's port, not the Service's).
"""

from __future__ import annotations

from collections.abc import Iterable

from meshrules.model.discovery import Destination, ServicePort, Workload

# Istio's protocol selection: `appProtocol`, else the port name `<protocol>[-<suffix>]`
# (https://istio.io/latest/docs/ops/configuration/traffic-management/protocol-selection/).
_PROTOCOLS = {
    "http": "HTTP",
    "http2": "HTTP2",
    "https": "HTTPS",
    "grpc": "GRPC",
    "grpc-web": "GRPC-Web",
    "tcp": "TCP",
    "tls": "TLS",
    "mongo": "MONGO",
    "mysql": "MYSQL",
    "redis": "REDIS",
    "kubernetes.io/h2c": "HTTP2",
    "kubernetes.io/ws": "HTTP",
    "kubernetes.io/wss": "HTTPS",
}


def protocol(port: ServicePort) -> str | None:
    """The Istio protocol of a Service port; None leaves it to Istio's protocol sniffing."""
    if port.app_protocol:
        return _PROTOCOLS.get(port.app_protocol.lower())
    if port.name:
        name = port.name.lower()
        return _PROTOCOLS.get(name) or _PROTOCOLS.get(name.split("-", 1)[0])
    return None


def port_name(port: ServicePort) -> str:
    """The port's name, or a stable one for an unnamed port (ServiceEntry ports need names)."""
    return port.name or f"port-{port.port}"


def mesh_ports(dest: Destination) -> tuple[ServicePort, ...]:
    """The ports a sidecar proxies: UDP is never captured by Istio."""
    return tuple(p for p in dest.ports if p.protocol.upper() != "UDP")


def workload_ports(dest: Destination, service_port: int, workloads: Iterable[Workload]) -> tuple[int, ...]:
    """The container ports behind ``service_port`` of ``dest``, resolving named targetPorts.

    A named targetPort may resolve to different numbers on different workloads; all are kept.
    Empty when the Service has no such port or the name resolves nowhere.
    """
    out: set[int] = set()
    for port in dest.ports:
        if port.port != service_port:
            continue
        if isinstance(port.target_port, int):
            out.add(port.target_port)
        elif port.target_port.isdigit():
            out.add(int(port.target_port))
        else:
            for workload in workloads:
                out.update(c.container_port for c in workload.ports if c.name == port.target_port)
    return tuple(sorted(out))


def target_port(dest: Destination, port: ServicePort, workloads: Iterable[Workload]) -> int | None:
    """The single container port behind ``port``, or None when absent or ambiguous."""
    found = workload_ports(dest, port.port, workloads)
    return found[0] if len(found) == 1 else None
