"""Pod templates and Pods, read once into `PodSource`s that the mesh, gateway and workload steps share.

A Deployment, StatefulSet or DaemonSet contributes its pod template; a Pod contributes itself and,
when a controller owns it, names that controller so its sidecars can speak for the template
("whose pod template or pods are in a mesh", spec §2). Reading each object exactly once also means
each malformed field is reported exactly once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from meshrules.discovery.findings import Findings
from meshrules.discovery.identity import DEFAULT_SERVICE_ACCOUNT
from meshrules.discovery.index import CONTROLLER_KINDS, ClusterIndex
from meshrules.discovery.shapes import Reader
from meshrules.model.discovery import ContainerPort, HttpProbe
from meshrules.model.source import KubeObject

ISTIO_PROXY = "istio-proxy"
LINKERD_PROXY = "linkerd-proxy"
SIDECARS = frozenset({ISTIO_PROXY, LINKERD_PROXY})


@dataclass(frozen=True, slots=True)
class Container:
    """One container of a pod spec; ``raw`` and ``path`` let a caller read more of it (e.g. `env`)."""

    name: str
    image: str
    ports: tuple[ContainerPort, ...]
    init: bool
    raw: Mapping[str, Any]
    path: str
    probes: tuple[HttpProbe, ...] = ()


@dataclass(frozen=True, slots=True)
class PodSource:
    """The pod-level facts of a controller's template or of a Pod."""

    obj: KubeObject
    kind: str
    name: str
    namespace: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    containers: tuple[Container, ...]
    service_account: str
    # Where the pod metadata/spec sit in the object (`spec.template`, or `` for a Pod).
    path: str
    # For a Pod: the (kind, name) of the workload controller that owns it, if any.
    owner: tuple[str, str] | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        """(namespace, kind, name) of the controller (or Pod) this source describes."""
        return (self.namespace, self.kind, self.name)

    @property
    def sidecars(self) -> frozenset[str]:
        """Names of the mesh proxies already present (as containers or native-sidecar init containers)."""
        return frozenset(c.name for c in self.containers if c.name in SIDECARS)

    def app_ports(self) -> tuple[ContainerPort, ...]:
        """Ports declared by the application containers (not init containers, not mesh proxies)."""
        return tuple(p for c in self.containers if not c.init and c.name not in SIDECARS for p in c.ports)

    def app_probes(self) -> tuple[HttpProbe, ...]:
        """The HTTP probes of the application containers, sorted by port and path, each once."""
        found = {p for c in self.containers if not c.init and c.name not in SIDECARS for p in c.probes}
        return tuple(sorted(found, key=lambda p: (p.port, p.path)))


def controller_sources(index: ClusterIndex, findings: Findings) -> list[PodSource]:
    """A `PodSource` for the pod template of every Deployment, StatefulSet and DaemonSet."""
    out: list[PodSource] = []
    for kind in CONTROLLER_KINDS:
        for obj in index.all(kind):
            reader = Reader(obj, findings)
            reported = len(findings.items)
            template = reader.mapping("spec.template")
            if not template:
                # No pods can come of it; a wrong shape was reported by the reader, absence is reported here.
                if len(findings.items) == reported:
                    findings.bad_shape(obj, "spec.template", "a pod template")
                continue
            out.append(_source(obj, reader, template, "spec.template", owner=None))
    return out


def pod_sources(index: ClusterIndex, findings: Findings) -> list[PodSource]:
    """A `PodSource` for every Pod, with the workload controller that owns it (if any)."""
    out: list[PodSource] = []
    for obj in index.all("Pod"):
        reader = Reader(obj, findings)
        out.append(_source(obj, reader, obj.body, "", owner=_owner(reader)))
    return out


def _source(
    obj: KubeObject, reader: Reader, pod: Mapping[str, Any], path: str, owner: tuple[str, str] | None
) -> PodSource:
    spec_path = f"{path}.spec" if path else "spec"
    labels = reader.strings("metadata.labels", pod, path)
    annotations = reader.strings("metadata.annotations", pod, path)
    spec = reader.mapping("spec", pod, path)
    containers = [
        *_containers(reader, spec, spec_path, "containers", init=False),
        *_containers(reader, spec, spec_path, "initContainers", init=True),
    ]
    sa = reader.text("serviceAccountName", spec, spec_path) or reader.text("serviceAccount", spec, spec_path)
    return PodSource(
        obj=obj,
        kind=obj.kind,
        name=obj.name,
        namespace=obj.namespace,
        labels=labels,
        annotations=annotations,
        containers=tuple(containers),
        service_account=sa or DEFAULT_SERVICE_ACCOUNT,
        path=path,
        owner=_resolve_owner(owner, labels),
    )


def _containers(reader: Reader, spec: Mapping[str, Any], spec_path: str, key: str, *, init: bool) -> list[Container]:
    out: list[Container] = []
    for i, raw in enumerate(reader.sequence(key, spec, spec_path)):
        path = f"{spec_path}.{key}[{i}]"
        if not isinstance(raw, Mapping):
            reader.findings.bad_shape(reader.obj, path, "an object")
            continue
        name = reader.text("name", raw, path) or ""
        image = reader.text("image", raw, path) or ""
        ports: list[ContainerPort] = []
        for j, port in enumerate(reader.sequence("ports", raw, path)):
            ppath = f"{path}.ports[{j}]"
            if not isinstance(port, Mapping):
                reader.findings.bad_shape(reader.obj, ppath, "an object")
                continue
            number = reader.integer("containerPort", port, ppath)
            if number is None:
                continue
            ports.append(
                ContainerPort(
                    container_port=number,
                    name=reader.text("name", port, ppath),
                    protocol=reader.text("protocol", port, ppath) or "TCP",
                )
            )
        probes = _http_probes(raw, ports)
        out.append(Container(name=name, image=image, ports=tuple(ports), init=init, raw=raw, path=path, probes=probes))
    return out


_PROBES = ("livenessProbe", "readinessProbe", "startupProbe")


def _http_probes(container: Mapping[str, Any], ports: list[ContainerPort]) -> tuple[HttpProbe, ...]:
    """The `httpGet` probes of a container; a named port is resolved on its own ports.

    Read tolerantly (the API server validated them): a probe whose port names nothing the
    container declares is left out, as the kubelet could not run it either.
    """
    out: list[HttpProbe] = []
    for key in _PROBES:
        probe = container.get(key)
        get = probe.get("httpGet") if isinstance(probe, Mapping) else None
        if not isinstance(get, Mapping):
            continue
        port, path = get.get("port"), get.get("path")
        number: int | None = None
        if isinstance(port, int) and not isinstance(port, bool):
            number = port
        elif isinstance(port, str):
            number = int(port) if port.isdigit() else next((p.container_port for p in ports if p.name == port), None)
        if number is not None:
            out.append(HttpProbe(port=number, path=path if isinstance(path, str) and path else "/"))
    return tuple(out)


def _owner(reader: Reader) -> tuple[str, str] | None:
    refs = reader.objects("metadata.ownerReferences")
    # The managing controller is the reference marked `controller: true`; other owners (e.g. a
    # garbage-collection parent) do not make the Pod part of another workload.
    at = next((i for i, r in enumerate(refs) if r.get("controller") is True), None)
    if at is None:
        return None
    path = f"metadata.ownerReferences[{at}]"
    kind = reader.text("kind", refs[at], path)
    name = reader.text("name", refs[at], path)
    # A controller we cannot name still owns the Pod: it is not a workload of its own.
    return (kind or "", name or "")


def _resolve_owner(owner: tuple[str, str] | None, labels: Mapping[str, str]) -> tuple[str, str] | None:
    """Map a Pod's controller to the workload controller: a ReplicaSet stands for its Deployment."""
    if owner is None:
        return None
    kind, name = owner
    if kind == "ReplicaSet":
        # ReplicaSets of a Deployment are named `<deployment>-<pod-template-hash>`.
        suffix = labels.get("pod-template-hash")
        if suffix and name.endswith(f"-{suffix}"):
            return ("Deployment", name[: -len(suffix) - 1])
        return ("Deployment", name.rsplit("-", 1)[0])
    return (kind, name)
