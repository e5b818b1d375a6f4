"""The federation data path: destination D (cluster C) reachable from another mesh's cluster C′.

Place: rendered by `emit_istio` for every `FederatedHost` of the topology (an intent federation
edge with an east-west gateway address). The design, hop by hop, is in `docs/federation.md`:

* C′ (caller side, in the calling mesh's root namespace): a ServiceEntry for the federated host
  with a stable 240.0.0.0/4 address (Istio's DNS proxy answers it), D's ports, and endpoints at
  C's east-west gateway address on its TLS port; a DestinationRule with `ISTIO_MUTUAL` and D's
  subsets. With `ISTIO_MUTUAL` the sidecar sends SNI `outbound_.<port>_.<subset>_.<host>`.
* C (D's side): a Gateway with an AUTO_PASSTHROUGH TLS server for `*.<suffix>` on the east-west
  gateway, which routes by that SNI to its own cluster of the same name
  (https://istio.io/latest/docs/reference/config/networking/gateway/#ServerTLSSettings-TLSmode);
  for that cluster to exist the gateway needs the host (a ServiceEntry selecting D's pods,
  exported to the gateway's namespace) and the subset (a DestinationRule with the same subsets).

Subsets across the gateway: the gateway endpoint in C′ cannot carry D's pod labels, yet the
caller's subset cluster selects endpoints by labels. So C′'s ServiceEntry lists the gateway once
per subset, labelled with that subset's labels (Istio's endpoint index keeps endpoints that share
an address); the caller's subset cluster then holds the gateway, its SNI names the subset, and C's
gateway picks D's pods with those labels. Without subsets one unlabelled endpoint suffices.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Set
from typing import Any

from meshrules.emit.istio.destination_rule import destination_rule_spec
from meshrules.emit.istio.existing import (
    CODE_USER_DESTINATION_RULE,
    CODE_USER_SERVICE_ENTRY,
    ExistingConfig,
    conflict_finding,
)
from meshrules.emit.istio.objects import Draft
from meshrules.emit.istio.ports import mesh_ports, port_name, protocol, target_port
from meshrules.emit.istio.subsets import Subset
from meshrules.emit.istio.topology import API_NETWORKING, FederatedHost, IstioTopology, is_ip, policy_parent
from meshrules.emit.naming import AddressBook, object_name
from meshrules.errors import Diagnostic
from meshrules.model.discovery import Destination, Gateway
from meshrules.model.policy import MtlsMode

# The port name of meshrules' AUTO_PASSTHROUGH server; Istio merges servers of several Gateways
# on one port, so it must not clash with the `tls` server of Istio's own cross-network Gateway.
GATEWAY_PORT_NAME = "tls-meshrules"


def federation_drafts(
    topo: IstioTopology,
    subsets: Mapping[str, Set[Subset]],
    addresses: AddressBook,
    existing: ExistingConfig,
) -> tuple[list[Draft], list[Diagnostic]]:
    """Both sides of every federated host, and findings for user config in the way."""
    drafts: list[Draft] = []
    findings: list[Diagnostic] = []
    gateway_hosts: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    gateway_parents: dict[tuple[str, str, str], dict[tuple[str, str], None]] = defaultdict(dict)
    gateways: dict[tuple[str, str, str], Gateway] = {}
    # What depends only on the destination (its subsets, ports, the client spec's shared parts)
    # and the server side, which depends only on the destination and its host: built once, however
    # many clusters call it (L federates each destination into dozens of meshes).
    per_dest: dict[str, _DestinationParts] = {}
    server_side: dict[tuple[str, str], list[Draft]] = {}
    for key in sorted(topo.federated):
        fed = topo.federated[key]
        dest = topo.destinations[fed.destination]
        parts = per_dest.get(dest.name)
        if parts is None:
            parts = per_dest[dest.name] = _DestinationParts(dest, fed, sorted(subsets.get(dest.name, set())))
        dest_subsets = parts.subsets
        parents = _parents(topo, fed, dest)
        # --- the caller's cluster C′
        caller = topo.meshes[fed.mesh]
        root = topo.root_namespace(caller)
        base = object_name(dest.service, dest.namespace, dest.cluster, fed.host.rpartition(".")[2])
        drafts += _guarded(
            existing,
            findings,
            Draft(
                fed.cluster,
                API_NETWORKING,
                "ServiceEntry",
                root,
                base,
                f"client/{fed.host}",
                parts.client_service_entry(fed.host, addresses.address(fed.host)),
                parents,
            ),
        )
        drafts += _guarded(
            existing,
            findings,
            Draft(
                fed.cluster,
                API_NETWORKING,
                "DestinationRule",
                root,
                base,
                f"client/{fed.host}",
                parts.client_destination_rule(fed.host),
                parents,
            ),
        )
        # --- D's cluster C (one set per host, whatever the number of calling clusters)
        gw_key = (dest.cluster, fed.gateway.namespace, fed.gateway.service)
        gateways.setdefault(gw_key, fed.gateway)
        gateway_hosts[gw_key].add(fed.gateway_host)
        gateway_parents[gw_key].update(
            dict.fromkeys([topo.parent("Mesh", dest.mesh or ""), *(p for p in parents if p[0] == "VirtualMesh")])
        )
        known = server_side.get((dest.name, fed.host))
        if known is not None:
            # Same key as the drafts already built: `finalize` would merge them; merge the parents here.
            for draft in known:
                draft.parents.extend(parents)
            continue
        exports = {".", fed.gateway.namespace} if fed.gateway.namespace != dest.namespace else {"."}
        server_base = object_name(dest.service, fed.host.rpartition(".")[2])
        server: list[Draft] = []
        server += _guarded(
            existing,
            findings,
            Draft(
                dest.cluster,
                API_NETWORKING,
                "ServiceEntry",
                dest.namespace,
                server_base,
                f"server/{fed.host}",
                _server_service_entry(topo, dest, fed, exports),
                list(parents),
            ),
        )
        server += _guarded(
            existing,
            findings,
            Draft(
                dest.cluster,
                API_NETWORKING,
                "DestinationRule",
                dest.namespace,
                server_base,
                f"server/{fed.host}",
                destination_rule_spec(
                    fed.host, tls_mode=MtlsMode.ISTIO_MUTUAL, subsets=dest_subsets, export_to=exports
                ),
                list(parents),
            ),
        )
        server_side[(dest.name, fed.host)] = server
        drafts += server
    drafts += _gateways(gateways, gateway_hosts, gateway_parents)
    return drafts, findings


class _DestinationParts:
    """The parts of a destination's client-side ServiceEntry and DestinationRule common to every caller.

    The emitted specs share these (read-only) parts: only the host and the address differ per caller.
    """

    __slots__ = ("_endpoints", "_ports", "_resolution", "_rule_rest", "subsets")

    def __init__(self, dest: Destination, fed: FederatedHost, subsets: list[Subset]) -> None:
        self.subsets = subsets
        template = _client_service_entry(dest, fed, subsets, "")
        self._ports = template["ports"]
        self._resolution = template["resolution"]
        self._endpoints = template["endpoints"]
        rule = destination_rule_spec("", tls_mode=MtlsMode.ISTIO_MUTUAL, subsets=subsets)
        self._rule_rest = [(k, v) for k, v in rule.items() if k != "host"]

    def client_service_entry(self, host: str, address: str) -> dict[str, Any]:
        """`_client_service_entry` for ``host`` at ``address`` (the gateway is the destination's)."""
        return {
            "hosts": [host],
            "addresses": [address],
            "location": "MESH_INTERNAL",
            "resolution": self._resolution,
            "ports": self._ports,
            "endpoints": self._endpoints,
        }

    def client_destination_rule(self, host: str) -> dict[str, Any]:
        """`destination_rule_spec(host, tls_mode=ISTIO_MUTUAL, subsets=…)`."""
        return {"host": host, **dict(self._rule_rest)}


def _parents(topo: IstioTopology, fed: FederatedHost, dest: Destination) -> list[tuple[str, str]]:
    parents = [
        topo.parent("Destination", dest.name),
        topo.parent("Mesh", fed.mesh),
        topo.parent("Mesh", dest.mesh or ""),
    ]
    parents += [policy_parent(e.virtual_mesh) for e in fed.edges]
    return parents


def _guarded(existing: ExistingConfig, findings: list[Diagnostic], draft: Draft) -> list[Draft]:
    """``draft`` unless a user object already configures its host there (then a finding)."""
    host = draft.identity.partition("/")[2]
    user = existing.for_host(draft.cluster, draft.kind, host)
    if user is None:
        return [draft]
    code = CODE_USER_SERVICE_ENTRY if draft.kind == "ServiceEntry" else CODE_USER_DESTINATION_RULE
    findings.append(conflict_finding(code, user, host, f"meshrules emits no {draft.kind} for the federated host there"))
    return []


def _ports(dest: Destination) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for port in mesh_ports(dest):
        entry: dict[str, Any] = {"number": port.port, "name": port_name(port)}
        proto = protocol(port)
        if proto is not None:
            entry["protocol"] = proto
        out.append(entry)
    return out


def _client_service_entry(dest: Destination, fed: FederatedHost, subsets: list[Subset], address: str) -> dict[str, Any]:
    gateway_address = fed.gateway.address or ""
    gateway_ports = {port_name(p): fed.gateway.port for p in mesh_ports(dest)}
    endpoints: list[dict[str, Any]] = []
    for subset in subsets or [()]:
        endpoint: dict[str, Any] = {"address": gateway_address, "ports": dict(sorted(gateway_ports.items()))}
        if subset:
            endpoint["labels"] = dict(subset)
        endpoints.append(endpoint)
    return {
        "hosts": [fed.host],
        "addresses": [address],
        "location": "MESH_INTERNAL",
        # A load balancer may publish a DNS name instead of an IP; STATIC needs IPs.
        "resolution": "STATIC" if is_ip(gateway_address) else "DNS",
        "ports": _ports(dest),
        "endpoints": endpoints,
    }


def _server_service_entry(
    topo: IstioTopology, dest: Destination, fed: FederatedHost, exports: Set[str]
) -> dict[str, Any]:
    workloads = [topo.inp.workload_by_name[w] for w in dest.workloads if w in topo.inp.workload_by_name]
    ports = _ports(dest)
    for entry, port in zip(ports, mesh_ports(dest), strict=True):
        number = target_port(dest, port, workloads)
        if number is not None:
            entry["targetPort"] = number
    return {
        "hosts": [fed.host],
        "location": "MESH_INTERNAL",
        "resolution": "STATIC",
        "ports": ports,
        "workloadSelector": {"labels": dict(sorted(dest.selector.items()))},
        "exportTo": sorted(exports),
    }


def _gateways(
    gateways: Mapping[tuple[str, str, str], Gateway],
    hosts: Mapping[tuple[str, str, str], set[str]],
    parents: Mapping[tuple[str, str, str], Mapping[tuple[str, str], None]],
) -> list[Draft]:
    drafts: list[Draft] = []
    for (cluster, namespace, service), patterns in sorted(hosts.items()):
        gateway = gateways[(cluster, namespace, service)]  # the first federated host's, in sorted order
        spec = {
            "selector": dict(sorted(gateway.workload_labels.items())),
            "servers": [
                {
                    "port": {"number": gateway.port, "name": GATEWAY_PORT_NAME, "protocol": "TLS"},
                    "tls": {"mode": "AUTO_PASSTHROUGH"},
                    "hosts": sorted(patterns),
                }
            ],
        }
        drafts.append(
            Draft(
                cluster,
                API_NETWORKING,
                "Gateway",
                namespace,
                object_name("meshrules", service),
                f"gateway/{namespace}/{service}",
                spec,
                list(parents[(cluster, namespace, service)]),
            )
        )
    return drafts
