"""Whether an Istio connection uses mutual TLS, and whether it succeeds — as a pure evaluator.

Two proxies decide together (Istio's "Understanding TLS Configuration" page): the client's sidecar
sends what the DestinationRule's ``tls`` settings say — or, when no DestinationRule sets TLS, what
auto mTLS chooses (Istio mTLS to workloads with a sidecar, plaintext to the others) — and the
server's sidecar accepts what its PeerAuthentication mode says (``PERMISSIVE`` both, ``STRICT``
only mTLS, ``DISABLE`` only plaintext). This module computes both sides from the raw objects and
the outcome, naming the objects responsible. It sits beside ``meshrules.sim.istio.routing``
(which picks the DestinationRule for each backend) and ``meshrules.sim.istio.authz`` (which needs
to know whether the request carries a peer identity).

Outcomes (API §6 codes): ``ALLOWED`` with ``mtls`` true or false, or ``MTLS_MISMATCH`` — plaintext
to a STRICT server, Istio mTLS to a DISABLE server or to a workload without a sidecar, TLS other
than Istio's to a STRICT server. A separate helper judges trust domains (TRUST_DOMAIN_REJECTED).

PeerAuthentication resolution (the authentication concept page): one mesh-wide policy (root
namespace, no selector), one namespace-wide policy per namespace, workload policies (selector);
newer duplicates of mesh- or namespace-wide policies are ignored, the oldest matching workload
policy wins; the narrowest applies, an ``UNSET`` mode (or no ``mtls``) inherits from the parent,
and an unset mesh-wide mode is ``PERMISSIVE``. ``portLevelMtls`` applies only with a selector and
names the workload (container) port.

Auto mTLS honours the server's effective ``DISABLE`` (istiod checks PeerAuthentications when it
labels endpoints, Istio ≥ 1.12) and, as istiod's best-effort service inference does, a DISABLE at
namespace or mesh level even when a workload policy is STRICT (istio/istio#56084): that case is a
MTLS_MISMATCH, reported with both policies.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from meshrules.sim.istio.routing import DestinationRuleChoice
from meshrules.sim.objects import (
    Obj,
    as_list,
    as_map,
    creation_key,
    dedupe,
    first_int,
    kind_of,
    name_of,
    namespace_of,
    sorted_pairs,
    spec,
    subset_of,
)

__all__ = [
    "ALLOWED",
    "MTLS_MISMATCH",
    "TRUST_DOMAIN_REJECTED",
    "ClientTls",
    "MtlsDecision",
    "PeerAuthentications",
    "ServerMtls",
    "TrustDecision",
    "client_tls",
    "compile_peer_authentications",
    "connection",
    "trust_domain_accepted",
]

ALLOWED = "ALLOWED"
MTLS_MISMATCH = "MTLS_MISMATCH"
TRUST_DOMAIN_REJECTED = "TRUST_DOMAIN_REJECTED"

ServerMode: TypeAlias = Literal["STRICT", "PERMISSIVE", "DISABLE"]
_MODES = frozenset({"STRICT", "PERMISSIVE", "DISABLE"})
_CLIENT_MODES = frozenset({"DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL"})
_DEFAULT_ROOT_NAMESPACE = "istio-system"


# ================================================================================================
# Client side
# ================================================================================================


@dataclass(frozen=True, slots=True)
class ClientTls:
    """What the client's sidecar is configured to send.

    ``mode`` is a DestinationRule TLS mode (``DISABLE``, ``SIMPLE``, ``MUTUAL``, ``ISTIO_MUTUAL``),
    ``AUTO`` when no DestinationRule sets TLS (auto mTLS decides per endpoint), or ``NONE`` when the
    client has no sidecar (it sends what the application sends: plaintext for mesh traffic).
    ``source`` names the setting (``DestinationRule ns/name trafficPolicy.portLevelSettings[9080].tls``).
    """

    mode: str
    source: str
    rule: str | None = None  # namespace/name of the DestinationRule, when one set it


def _port_level(policy: Mapping[str, Any], port: int) -> Mapping[str, Any] | None:
    for entry in as_list(policy.get("portLevelSettings")):
        e = as_map(entry)
        if first_int(as_map(e.get("port")).get("number")) == port:
            return e
    return None


def _mode_of(tls: Any) -> str:
    # ClientTLSSettings.mode is a proto3 enum whose zero value is DISABLE.
    mode = str(as_map(tls).get("mode") or "DISABLE").upper()
    return mode if mode in _CLIENT_MODES else "DISABLE"


def client_tls(choice: DestinationRuleChoice | None, port: int, subset: str | None = None, *,
               client_meshed: bool = True, auto_mtls: bool = True) -> ClientTls:
    """The TLS the client's sidecar originates to one backend (service ``port``, optional ``subset``).

    Precedence, as istiod merges traffic policies: the subset's port-level settings, then the
    subset's ``tls``, then the rule's port-level settings, then the rule's ``tls``. A matching
    port-level entry replaces the level above entirely ("default values will be applied to fields
    omitted in port-level traffic policies"), so a port-level entry without ``tls`` means auto mTLS.
    """
    if not client_meshed:
        return ClientTls("NONE", "the client has no sidecar: it sends what the application sends (plaintext)")
    if choice is None:
        return ClientTls("AUTO" if auto_mtls else "DISABLE",
                         "no DestinationRule applies: auto mTLS" if auto_mtls
                         else "no DestinationRule applies and auto mTLS is off: plaintext")
    rule = choice.traffic_policy_from
    tls: Any = None
    where = ""
    top = choice.traffic_policy
    level = _port_level(top, port)
    if level is not None:
        tls, where = level.get("tls"), f"trafficPolicy.portLevelSettings[{port}].tls"
    elif top.get("tls") is not None:
        tls, where = top.get("tls"), "trafficPolicy.tls"
    if subset is not None and subset in choice.subsets:
        _, sub_policy, sub_rule = choice.subsets[subset]
        if sub_policy.get("tls") is not None:
            tls, where, rule = sub_policy.get("tls"), f"subsets[{subset}].trafficPolicy.tls", sub_rule
        sub_level = _port_level(sub_policy, port)
        if sub_level is not None:
            tls, rule = sub_level.get("tls"), sub_rule
            where = f"subsets[{subset}].trafficPolicy.portLevelSettings[{port}].tls"
    if tls is None:
        why = f" ({where} is unset)" if where else ""
        return ClientTls("AUTO" if auto_mtls else "DISABLE",
                         f"DestinationRule {', '.join(choice.rules)} sets no TLS{why}: "
                         + ("auto mTLS" if auto_mtls else "plaintext (auto mTLS is off)"))
    return ClientTls(_mode_of(tls), f"DestinationRule {rule} {where}", rule)


# ================================================================================================
# Server side
# ================================================================================================


@dataclass(frozen=True, slots=True)
class ServerMtls:
    """The mTLS mode a server sidecar enforces on one port, and the policies that made it.

    ``scope`` is where the mode came from: ``port`` (portLevelMtls), ``workload``, ``namespace``,
    ``mesh`` or ``default`` (no policy: PERMISSIVE). ``chain`` lists every policy consulted, widest
    first, with its mode. ``service_mode`` is the namespace- or mesh-level mode auto mTLS reads.
    """

    mode: ServerMode
    scope: str
    policy: str | None
    chain: tuple[str, ...]
    service_mode: ServerMode
    service_policy: str | None
    ignored: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _PeerAuthentication:
    namespace: str
    name: str
    selector: tuple[tuple[str, str], ...] | None
    mode: str  # STRICT | PERMISSIVE | DISABLE | UNSET
    ports: tuple[tuple[int, str], ...]
    order: tuple[float, str, str]

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


def _pa_mode(value: Any) -> str:
    mode = str(as_map(value).get("mode") or "UNSET").upper()
    return mode if mode in _MODES else "UNSET"


def _as_mode(mode: str) -> ServerMode:
    """A resolved (non-UNSET) mode as the typed literal."""
    return "STRICT" if mode == "STRICT" else "DISABLE" if mode == "DISABLE" else "PERMISSIVE"


def _compile_pa(obj: Obj) -> _PeerAuthentication:
    s = spec(obj)
    sel = as_map(as_map(s.get("selector")).get("matchLabels"))
    ports = []
    for raw_port, settings in as_map(s.get("portLevelMtls")).items():
        number = first_int(raw_port)
        if number is not None:
            ports.append((number, _pa_mode(settings)))
    return _PeerAuthentication(
        namespace_of(obj), name_of(obj),
        sorted_pairs({str(k): str(v) for k, v in sel.items()}) if sel else None,
        _pa_mode(s.get("mtls")), tuple(sorted(ports)), creation_key(obj, name_first=True),
    )


class PeerAuthentications:
    """All PeerAuthentications of a mesh, compiled; :meth:`server_mode` answers per workload port."""

    __slots__ = ("_by_ns", "_cache", "root_namespace")

    def __init__(self, policies: Iterable[_PeerAuthentication], root_namespace: str) -> None:
        self.root_namespace = root_namespace
        self._by_ns: dict[str, list[_PeerAuthentication]] = {}
        for pa in sorted(policies, key=lambda p: p.order):
            self._by_ns.setdefault(pa.namespace, []).append(pa)
        self._cache: dict[tuple[str, tuple[tuple[str, str], ...], int | None], ServerMtls] = {}

    def _wide(self, namespace: str) -> tuple[_PeerAuthentication | None, list[str]]:
        """The namespace-wide policy of ``namespace`` (oldest without selector), and the ignored ones."""
        wide = [p for p in self._by_ns.get(namespace, ()) if p.selector is None]
        ignored = [f"PeerAuthentication {p.key} (newer than {wide[0].key}; Istio ignores it)" for p in wide[1:]]
        return (wide[0] if wide else None), ignored

    def server_mode(self, namespace: str, labels: Mapping[str, str] | Sequence[tuple[str, str]],
                    port: int | None = None) -> ServerMtls:
        """The mode the sidecar of a workload (``namespace``, pod ``labels``) enforces on ``port``.

        ``port`` is the workload's (container) port, not the Service port.
        """
        pairs = tuple(sorted(labels.items())) if isinstance(labels, Mapping) else tuple(sorted(labels))
        key = (namespace, pairs, port)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        label_map = dict(pairs)
        chain: list[str] = []
        mesh, ignored = self._wide(self.root_namespace)
        mode: ServerMode = "PERMISSIVE"
        scope, policy = "default", None
        if mesh is not None:
            chain.append(f"mesh {mesh.key}: {mesh.mode}")
            if mesh.mode != "UNSET":
                mode, scope, policy = _as_mode(mesh.mode), "mesh", mesh.key
            else:
                # "Mesh-wide peer authentication policies with an unset mode use the PERMISSIVE mode"
                scope, policy = "mesh", mesh.key
        ns_policy = None
        if namespace != self.root_namespace:
            ns_policy, more = self._wide(namespace)
            ignored += more
            if ns_policy is not None:
                chain.append(f"namespace {ns_policy.key}: {ns_policy.mode}")
                if ns_policy.mode != "UNSET":
                    mode, scope, policy = _as_mode(ns_policy.mode), "namespace", ns_policy.key
        service_mode, service_policy = mode, policy
        workload = [p for p in self._by_ns.get(namespace, ())
                    if p.selector is not None and subset_of(dict(p.selector), label_map)]
        if workload:
            chosen = workload[0]
            ignored += [f"PeerAuthentication {p.key} (also selects the workload; the oldest, {chosen.key}, wins)"
                        for p in workload[1:]]
            chain.append(f"workload {chosen.key}: {chosen.mode}")
            if chosen.mode != "UNSET":
                mode, scope, policy = _as_mode(chosen.mode), "workload", chosen.key
            if port is not None:
                for number, port_mode in chosen.ports:
                    if number == port and port_mode != "UNSET":
                        chain.append(f"workload {chosen.key} port {port}: {port_mode}")
                        mode, scope, policy = _as_mode(port_mode), "port", chosen.key
        for pa in (p for ns in (namespace, self.root_namespace) for p in self._by_ns.get(ns, ())):
            if pa.selector is None and pa.ports:
                ignored.append(f"PeerAuthentication {pa.key} portLevelMtls (applies only with a selector)")
        result = ServerMtls(mode, scope, policy, tuple(chain), service_mode, service_policy,
                            tuple(dict.fromkeys(ignored)))
        self._cache[key] = result
        return result


def compile_peer_authentications(objects: Iterable[Obj], *,
                                 root_namespace: str = _DEFAULT_ROOT_NAMESPACE) -> PeerAuthentications:
    """Compile the PeerAuthentications among ``objects`` (other kinds ignored, duplicates collapsed)."""
    policies = [_compile_pa(o) for o in dedupe(objects)
                if kind_of(o) == "PeerAuthentication"
                and str(o.get("apiVersion") or "").startswith("security.istio.io/")]
    return PeerAuthentications(policies, root_namespace)


# ================================================================================================
# The connection
# ================================================================================================


@dataclass(frozen=True, slots=True)
class MtlsDecision:
    """What happens on the wire between two sidecars, and who decided it.

    ``mtls`` is true when the connection is Istio mutual TLS (the server then sees the client's
    identity); ``tls`` when any TLS is originated by the client sidecar. ``objects`` names the
    DestinationRule and PeerAuthentications responsible.
    """

    code: str
    mtls: bool
    tls: bool
    client: ClientTls
    server: ServerMtls | None
    reason: str
    objects: tuple[str, ...] = ()
    assumptions: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when the connection succeeds."""
        return self.code == ALLOWED


def connection(client: ClientTls, server: ServerMtls | None, *, server_meshed: bool = True) -> MtlsDecision:
    """Combine the client's TLS and the server's mode into the connection outcome.

    ``server`` is None (or ``server_meshed`` False) for a destination without a sidecar.
    """
    meshed = server_meshed and server is not None
    objects: list[str] = []
    if client.rule:
        objects.append(f"DestinationRule {client.rule}")
    if meshed and server is not None and server.policy:
        objects.append(f"PeerAuthentication {server.policy}")
    mode = client.mode
    if mode == "AUTO":
        if not meshed:
            return MtlsDecision(ALLOWED, False, False, client, server,
                                "auto mTLS sends plaintext to a workload without a sidecar", tuple(objects))
        assert server is not None  # INVARIANT: meshed implies a server mode
        if server.mode == "DISABLE":
            return MtlsDecision(ALLOWED, False, False, client, server,
                                f"auto mTLS sends plaintext because the server's mode is DISABLE ({server.scope} "
                                f"policy {server.policy})", tuple(objects))
        if server.service_mode == "DISABLE":
            # istiod infers the service's mode from namespace/mesh policies only (istio/istio#56084).
            extra = [f"PeerAuthentication {server.service_policy}"] if server.service_policy else []
            if server.mode == "STRICT":
                return MtlsDecision(MTLS_MISMATCH, False, False, client, server,
                                    f"auto mTLS sends plaintext because {server.service_policy} sets DISABLE for the "
                                    f"namespace or mesh, but {server.policy} makes the workload STRICT",
                                    tuple(dict.fromkeys(objects + extra)))
            return MtlsDecision(ALLOWED, False, False, client, server,
                                f"auto mTLS sends plaintext ({server.service_policy} sets DISABLE); the server is "
                                f"{server.mode}", tuple(dict.fromkeys(objects + extra)))
        return MtlsDecision(ALLOWED, True, True, client, server,
                            f"auto mTLS sends Istio mTLS to a workload with a sidecar; the server is {server.mode}",
                            tuple(objects))
    if mode in ("DISABLE", "NONE"):
        who = "the client without a sidecar" if mode == "NONE" else client.source
        if meshed and server is not None and server.mode == "STRICT":
            return MtlsDecision(MTLS_MISMATCH, False, False, client, server,
                                f"{who} sends plaintext but the server is STRICT ({server.scope} policy "
                                f"{server.policy}): the connection is refused", tuple(objects))
        return MtlsDecision(ALLOWED, False, False, client, server, f"{who} sends plaintext, which the server "
                            + (f"accepts ({server.mode})" if meshed and server is not None else "(no sidecar) takes"),
                            tuple(objects))
    if mode == "ISTIO_MUTUAL":
        if not meshed:
            return MtlsDecision(MTLS_MISMATCH, True, True, client, server,
                                f"{client.source} sends Istio mTLS to a workload without a sidecar, which cannot "
                                "terminate it (HTTP 503)", tuple(objects))
        assert server is not None  # INVARIANT: meshed implies a server mode
        if server.mode == "DISABLE":
            return MtlsDecision(MTLS_MISMATCH, True, True, client, server,
                                f"{client.source} sends Istio mTLS but the server only accepts plaintext (DISABLE, "
                                f"{server.scope} policy {server.policy})", tuple(objects))
        return MtlsDecision(ALLOWED, True, True, client, server,
                            f"{client.source} sends Istio mTLS; the server accepts it ({server.mode})", tuple(objects))
    # SIMPLE / MUTUAL: TLS originated with user certificates, not Istio's.
    if meshed and server is not None and server.mode == "STRICT":
        return MtlsDecision(MTLS_MISMATCH, False, True, client, server,
                            f"{client.source} originates {mode} TLS, not Istio mTLS, but the server is STRICT",
                            tuple(objects))
    return MtlsDecision(ALLOWED, False, True, client, server,
                        f"{client.source} originates {mode} TLS; it reaches the application as is",
                        tuple(objects), ("APPLICATION_TLS_ASSUMED",))


# ================================================================================================
# Trust domains
# ================================================================================================


@dataclass(frozen=True, slots=True)
class TrustDecision:
    """Whether a destination mesh accepts identities of a trust domain."""

    accepted: bool
    code: str
    reason: str


def trust_domain_accepted(caller_trust_domain: str, accepted_trust_domains: Sequence[str], *,
                          destination_trust_domain: str | None = None) -> TrustDecision:
    """Whether identities ``spiffe://<caller_trust_domain>/...`` are accepted by the destination mesh.

    ``accepted_trust_domains`` is the destination mesh's ``Mesh.acceptedTrustDomains`` (its own
    domain, ``trustDomainAliases``, the trust domains of ``caCertificates``); ``["*"]`` means istiod
    skips the check (``PILOT_SKIP_VALIDATE_TRUST_DOMAIN``). An empty list stands for the
    destination's own trust domain.
    """
    accepted = list(accepted_trust_domains)
    if not accepted and destination_trust_domain:
        accepted = [destination_trust_domain]
    if "*" in accepted:
        return TrustDecision(True, ALLOWED, "the destination mesh accepts every trust domain")
    if caller_trust_domain in accepted:
        return TrustDecision(True, ALLOWED, f"trust domain `{caller_trust_domain}` is accepted")
    listed = ", ".join(f"`{d}`" for d in accepted) or "none"
    return TrustDecision(False, TRUST_DOMAIN_REJECTED,
                         f"trust domain `{caller_trust_domain}` is not among the destination mesh's accepted trust "
                         f"domains ({listed})")
