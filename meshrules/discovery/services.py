"""Services, read once into `ServiceInfo`s that the gateway and destination steps share."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from meshrules.discovery.findings import Findings
from meshrules.discovery.index import ClusterIndex
from meshrules.discovery.shapes import Reader
from meshrules.model.discovery import ServicePort
from meshrules.model.source import KubeObject


@dataclass(frozen=True, slots=True)
class ServiceInfo:
    """The fields of a Service that discovery uses."""

    obj: KubeObject
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    selector: Mapping[str, str]
    ports: tuple[ServicePort, ...]

    @property
    def namespace(self) -> str:
        """The Service's namespace."""
        return self.obj.namespace

    @property
    def name(self) -> str:
        """The Service's name."""
        return self.obj.name


def read_services(index: ClusterIndex, findings: Findings) -> dict[str, list[ServiceInfo]]:
    """Every Service of the cluster, by namespace, in input order."""
    out: dict[str, list[ServiceInfo]] = {}
    for obj in index.all("Service"):
        reader = Reader(obj, findings)
        info = ServiceInfo(
            obj=obj,
            labels=reader.strings("metadata.labels"),
            annotations=reader.strings("metadata.annotations"),
            selector=reader.strings("spec.selector"),
            ports=_ports(reader),
        )
        out.setdefault(obj.namespace, []).append(info)
    return out


def _ports(reader: Reader) -> tuple[ServicePort, ...]:
    ports: list[ServicePort] = []
    for i, raw in enumerate(reader.sequence("spec.ports")):
        path = f"spec.ports[{i}]"
        if not isinstance(raw, Mapping):
            reader.findings.bad_shape(reader.obj, path, "an object")
            continue
        number = reader.integer("port", raw, path)
        if number is None:
            if "port" not in raw:
                reader.findings.bad_shape(reader.obj, f"{path}.port", "a port number")
            continue
        target = raw.get("targetPort")
        if target is None:
            target = number  # Kubernetes defaults targetPort to port
        elif isinstance(target, bool) or not isinstance(target, int | str):
            reader.findings.bad_shape(reader.obj, f"{path}.targetPort", "a port number or name")
            target = number
        ports.append(
            ServicePort(
                port=number,
                name=reader.text("name", raw, path),
                protocol=reader.text("protocol", raw, path) or "TCP",
                app_protocol=reader.text("appProtocol", raw, path),
                target_port=target,
            )
        )
    return tuple(ports)
