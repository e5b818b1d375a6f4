"""The reachability matrix: every workload class × destination → the `why` code of ``GET /``.

One representative per equivalence class (`meshrules.sim.classes`) asks every destination on its
default port (the first HTTP port, else the first) through the same walk as `why`, without the
explanation and the nearest miss. `describe` reads rows and columns of it; `diff` compares two.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from meshrules.errors import MeshrulesError
from meshrules.model.discovery import Destination, MeshType, Workload
from meshrules.sim.classes import WorkloadClass, workload_classes
from meshrules.sim.fleet import Fleet, dialed
from meshrules.sim.verdict import Verdict
from meshrules.sim.why import Query, answer

__all__ = ["Cell", "CellMemo", "Matrix", "cell_answer", "default_port", "destination_ref", "reachability_matrix"]

_HTTP_PREFIXES = ("http", "grpc", "h2c")


@dataclass(frozen=True, slots=True)
class Cell:
    """One (class, destination, port) answer."""

    source: str  # class name
    destination: str  # cluster/namespace/service
    port: int | None
    code: str
    allowed: bool

    def to_json(self) -> dict[str, Any]:
        """``{source, destination, port, code, allowed}``."""
        return {"source": self.source, "destination": self.destination, "port": self.port, "code": self.code,
                "allowed": self.allowed}


@dataclass(frozen=True)
class Matrix:
    """Classes, destinations and one cell per pair."""

    classes: tuple[WorkloadClass, ...]
    destinations: tuple[tuple[str, int | None], ...]
    cells: tuple[Cell, ...]

    def to_json(self) -> dict[str, Any]:
        """The published JSON (`docs/schemas/matrix.schema.json`)."""
        return {
            "request": {"method": "GET", "path": "/"},
            "classes": [c.to_json() for c in self.classes],
            "destinations": [{"destination": d, "port": p} for d, p in self.destinations],
            "cells": [c.to_json() for c in self.cells],
        }


def destination_ref(d: Destination) -> str:
    """``cluster/namespace/service``."""
    return f"{d.cluster}/{d.namespace}/{d.service}"


def default_port(d: Destination) -> int | None:
    """The first HTTP port of a destination (by appProtocol or port name), else its first port."""
    for p in d.ports:
        proto = (p.app_protocol or p.name or "").lower()
        if proto.startswith(_HTTP_PREFIXES):
            return p.port
    return d.ports[0].port if d.ports else None


def cell_answer(fleet: Fleet, source: str, dest: Destination, port: int | None, method: str = "GET",
                path: str = "/", headers: tuple[tuple[str, str], ...] = ()) -> Verdict | None:
    """The answer for one cell (None when the query cannot be asked, e.g. a destination without ports)."""
    try:
        return answer(fleet, Query(source, destination_ref(dest), port, method, path, headers), nearest=False,
                      explain=False)
    except MeshrulesError:
        return None


def reachability_matrix(fleet: Fleet, classes: Sequence[WorkloadClass] | None = None,
                        destinations: Iterable[Destination] | None = None) -> Matrix:
    """Every class × destination (default port) → code."""
    found = list(classes) if classes is not None else workload_classes(fleet)
    dests = sorted(destinations if destinations is not None else fleet.destinations.values(),
                   key=destination_ref)
    ports = [(d, destination_ref(d), default_port(d)) for d in dests]
    memo = CellMemo(fleet)
    cells: list[Cell] = []
    # Classes that differ only in labels no route reads (e.g. `version`, which subsets read on the
    # destination side) are the same caller: their rows are computed once.
    rows: dict[tuple[object, ...], list[tuple[str, int | None, tuple[str, bool] | None]]] = {}
    for c in found:
        caller = fleet.workload_by_ref[c.representative]
        key = (caller.cluster, caller.mesh, caller.namespace, caller.identity,
               tuple(sorted((k, v) for k, v in caller.pod_labels.items()
                            if k in fleet.route_keys(caller.cluster).all_keys())))
        row = rows.get(key) if fleet.memoise else None
        if row is None:
            row = [(ref, port, memo.code(caller, d, port)) for d, ref, port in ports]
            rows[key] = row
        name = c.name
        cells.extend(Cell(name, ref, port, got[0], got[1]) for ref, port, got in row if got is not None)
    return Matrix(tuple(found), tuple((ref, port) for _, ref, port in ports), tuple(cells))


class CellMemo:
    """Answers for many callers, computed once per group of callers no check tells apart.

    Two callers get the same answer to a request when they share what routing reads of them
    (cluster, mesh, namespace and the labels the host's routes read: `RouteKeys`) and, at each
    destination their route reaches, what its authorization can see of their identity
    (`PrincipalClasses`; for Linkerd `LinkerdIdentityClasses`, or the gateway's identity in gateway
    mode). The first caller of a group gets a full `answer` (without explanation); the others get
    the same verdict — its codes, backends and configuration are theirs, its hop names the first's.
    """

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self._targets: dict[tuple[object, ...], tuple[tuple[str, str], ...]] = {}
        self._answers: dict[tuple[object, ...], Verdict | None] = {}

    def code(self, caller: Workload, dest: Destination, port: int | None) -> tuple[str, bool] | None:
        """(code, allowed) of ``GET /`` from ``caller`` to ``dest`` on ``port`` (None: cannot be asked)."""
        v = self.answer(caller, dest, port)
        return None if v is None else (v.code, v.allowed)

    def answer(self, caller: Workload, dest: Destination, port: int | None, method: str = "GET", path: str = "/",
               headers: tuple[tuple[str, str], ...] = ()) -> Verdict | None:
        """The answer from ``caller`` to ``dest`` (None when the query cannot be asked)."""
        fleet = self.fleet
        host = dialed(fleet, caller, dest)
        request = (port, method, path, headers)
        if host is None:
            route: tuple[object, ...] = ("unfederated", caller.mesh, dest.name, request)
        else:
            mesh = fleet.meshes.get(caller.mesh)
            if mesh is not None and mesh.type == MeshType.LINKERD:
                route = ("linkerd", caller.cluster, caller.mesh, caller.namespace, host, request)
            else:
                labels = fleet.route_keys(caller.cluster).labels_for(host, caller.pod_labels)
                route = ("istio", caller.cluster, caller.mesh, caller.namespace, labels, host, request)
        targets = self._targets.get(route)
        if targets is not None and fleet.memoise:
            key = (route, tuple(self._seen(t, caller) for t in targets))
            if key in self._answers:
                return self._answers[key]
        ref = f"{caller.cluster}/{caller.namespace}/{caller.controller.name}"
        v = cell_answer(fleet, ref, dest, port, method, path, headers)
        if targets is None:
            # The route (same for the whole group) decides which destination clusters judge the caller.
            targets = self._reached(v)
            self._targets[route] = targets
        self._answers[(route, tuple(self._seen(t, caller) for t in targets))] = v
        return v

    def _reached(self, v: Verdict | None) -> tuple[tuple[str, str], ...]:
        out: list[tuple[str, str]] = []
        for b in v.backends if v is not None else ():
            d = self.fleet.destination_by_ref.get(b.destination)
            if d is not None and (d.cluster, d.mesh or "") not in out:
                out.append((d.cluster, d.mesh or ""))
        return tuple(out)

    def _seen(self, target: tuple[str, str], caller: Workload) -> object:
        """What the destination side ``target`` (cluster, mesh) can see of the caller's identity."""
        fleet = self.fleet
        cluster, mesh_name = target
        mesh = fleet.meshes.get(mesh_name)
        if mesh is not None and mesh.type == MeshType.LINKERD:
            member = fleet.membership.get(caller.mesh)
            if cluster != caller.cluster and (member is None or member.linkerd_mode != "remote-discovery"):
                return "gateway"  # gateway mode: the destination sees the gateway, whoever calls
            return fleet.linkerd_identity_classes(cluster).key(caller.identity)
        return fleet.principal_classes(cluster, mesh).key(caller.identity.removeprefix("spiffe://"))
