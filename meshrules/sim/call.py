"""A resolved `why` query and the record of one judged backend, shared by the `why` stages.

`meshrules.sim.why` resolves a query into a `Call`; `meshrules.sim.legs` judges each backend of
the route into a `Leg` (with `meshrules.sim.authorization` for the destination's decision); the
nearest miss (`meshrules.sim.nearest`) starts from a leg's `Denial`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from meshrules.model.discovery import Destination, Mesh, Workload
from meshrules.sim.fleet import Fleet
from meshrules.sim.istio.authz import RuleMiss
from meshrules.sim.request import Request
from meshrules.sim.verdict import DENIED_DEFAULT, DENIED_ENFORCED, Backend, Step

__all__ = ["Call", "Denial", "Leg", "caller_request", "enforce", "target_port"]


@dataclass(frozen=True)
class Call:
    """A resolved query: who calls (and from which mesh), dialing which host:port, with which request."""

    fleet: Fleet
    caller: Workload
    mesh: Mesh | None
    host: str
    port: int | None
    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    # False for bulk answers (matrix, diff): codes and config only, no explanation or citations.
    explain: bool = True

    @property
    def header_map(self) -> dict[str, str]:
        """Request headers, names lower-cased."""
        return {k.lower(): v for k, v in self.headers}


@dataclass(frozen=True)
class Denial:
    """What denied a backend at one pod: enough for the nearest miss to work from."""

    destination: Destination
    workload: Workload
    code: str
    service_port: int | None
    target_port: int | None
    identity_seen: str | None
    policy: str | None  # the deciding AuthorizationPolicy (namespace/name), for DENIED_EXPLICIT
    rule: int | None
    misses: tuple[RuleMiss, ...] = ()
    mesh_type: str = "istio"


@dataclass
class Leg:
    """The judgement of one backend: the answer, and what explains it."""

    backend: Backend
    steps: list[Step] = field(default_factory=list)
    cited: set[str] = field(default_factory=set)
    assumptions: list[str] = field(default_factory=list)
    denial: Denial | None = None


def target_port(dest: Destination, service_port: int | None, workload: Workload) -> int | None:
    """The container port behind a Service port (a named targetPort resolved on the workload)."""
    for p in dest.ports:
        if p.port == service_port:
            if isinstance(p.target_port, int):
                return p.target_port
            if p.target_port.isdigit():
                return int(p.target_port)
            for c in workload.ports:
                if c.name == p.target_port:
                    return c.container_port
            return None
    return service_port


def caller_request(call: Call, *, principal: str | None, dest: Destination, workload: Workload,
                   port: int | None, protocol: str) -> Request:
    """The request as the destination pod's proxy sees it (``port`` is the container port)."""
    if protocol != "http":
        return Request.tcp(source_principal=principal, source_namespace=call.caller.namespace,
                           destination_namespace=dest.namespace, destination_labels=workload.pod_labels,
                           destination_port=port or 0)
    return Request.http(source_principal=principal, source_namespace=call.caller.namespace,
                        destination_namespace=dest.namespace, destination_labels=workload.pod_labels,
                        destination_port=port or 0, host=call.host, method=call.method, path=call.path,
                        headers=call.header_map)


def enforce(fleet: Fleet, dest: Destination, code: str) -> str:
    """A default denial is DENIED_ENFORCED where only enforcement denies: the destination's mesh
    enforces access and no AccessPolicy selects the destination (spec §6). Where AccessPolicies
    select it, their ALLOW rules are what denies everything else: DENIED_DEFAULT, as without
    enforcement."""
    if code == DENIED_DEFAULT and fleet.enforced(dest.mesh) and not fleet.access.get(dest.name):
        return DENIED_ENFORCED
    return code
