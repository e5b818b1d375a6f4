"""The CSR exchange ConfigMap: how a CSR travels from a mesh's cluster to the management side and back.

One ConfigMap `meshrules-csr-<mesh>` in the mesh's namespace of its cluster carries one request at
a time (docs/trust.md, "Live: the agent and the CSR exchange"). Two writers share it, each owning
its own keys:

- the management side (`meshrules.kube.signing`) writes the *request* — which mesh identity, from
  which root, under a fresh ``nonce`` — and later the *answer* to one CSR: the certificates, or a
  refusal with its code;
- the agent (`meshrules.kube.agent`) writes the CSR for the request's nonce and its *progress*
  (`CsrSent`, `Installed` with the installed root, `Refused`, `Failed`).

For a root rotation (`meshrules.kube.rotation`) the management side also writes ``bundle``, the
roots the mesh must trust; the agent makes it the mesh's trust bundle and acknowledges it
(``bundleWritten``), and on every pass reports what the mesh *serves* (``served``): the management
side cannot read the mesh's Secrets, so these two keys are all it knows of the mesh's CA state.

Only public material crosses it: a CSR, certificates, fingerprints and messages. The intermediate
key stays in the agent's Secret `meshrules-intermediate-key`, which the management side never reads.

Both writers read, change their keys and `replace` with the resourceVersion they read: a concurrent
write by the other side fails with 409 and is retried on the next pass instead of being lost (a
server-side apply by the same field manager would silently drop the other side's keys).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from meshrules.emit.naming import is_owned
from meshrules.errors import ClusterError, Location
from meshrules.kube import resources as R
from meshrules.kube.cluster import NOT_OWNED, Cluster, Object
from meshrules.model.common import MANAGEMENT_NAMESPACE
from meshrules.trust import MeshIdentity, ReportedChain, bundle_fingerprints
from meshrules.trust.objects import OWNER_LABEL

PREFIX = "meshrules-csr-"
# Lets the agent find every request in its namespaces with one list call.
EXCHANGE_LABEL = "meshrules.io/csr-exchange"

# Keys the management side writes.
MESH = "mesh"  # the MeshIdentity, as JSON (for people and the agent; signing uses its own record)
NONCE = "nonce"  # a new one each time the management side wants a new intermediate
ROOT = "root"  # fingerprint of the root the intermediate is to chain to
ANSWER_FOR = "answerFor"  # SHA-256 of the CSR answered
CERTIFICATE = "certificate.pem"
CHAIN = "chain.pem"  # certificates strictly between the intermediate and the root (often empty)
ROOT_CERTIFICATE = "root.pem"
REFUSED = "refused"  # `MR07xx: message` when the CSR was refused
BUNDLE = "bundle"  # PEM roots the mesh must trust; absent: the bundle stays as install leaves it

# Keys the agent writes.
CSR = "csr.pem"
CSR_NONCE = "csrNonce"
PHASE = "phase"
INSTALLED_NONCE = "installedNonce"
INSTALLED_ROOT = "installedRoot"
MESSAGE = "message"
BUNDLE_WRITTEN = "bundleWritten"  # `bundle_digest` of the `bundle` made the mesh's trust bundle
SERVED = "served"  # JSON {"bundle": [fingerprints], "issuerRoot": fingerprint or null}: what the mesh serves

MANAGEMENT_KEYS = (MESH, NONCE, ROOT, ANSWER_FOR, CERTIFICATE, CHAIN, ROOT_CERTIFICATE, REFUSED, BUNDLE)
ANSWER_KEYS = (ANSWER_FOR, CERTIFICATE, CHAIN, ROOT_CERTIFICATE, REFUSED)
AGENT_KEYS = (CSR, CSR_NONCE, PHASE, INSTALLED_NONCE, INSTALLED_ROOT, MESSAGE, BUNDLE_WRITTEN, SERVED)
# 128 bits: request nonces only need to be unique per mesh, never secret.
_NONCE_BYTES = 16


class Phase(StrEnum):
    """Where a request is, as the agent reports it (the management side writes `Requested`)."""

    REQUESTED = "Requested"
    CSR_SENT = "CsrSent"
    INSTALLED = "Installed"
    REFUSED = "Refused"
    FAILED = "Failed"


def exchange_name(mesh_name: str) -> str:
    """The name of the exchange ConfigMap of mesh ``mesh_name``."""
    return PREFIX + mesh_name


def csr_digest(csr_pem: str) -> str:
    """SHA-256 of a CSR's text: what an answer names, so it can never be mistaken for another CSR's."""
    return hashlib.sha256(csr_pem.strip().encode()).hexdigest()


def bundle_digest(pem_text: str) -> str:
    """What `bundleWritten` names: SHA-256 over the sorted root fingerprints of a bundle.

    Over fingerprints rather than text, so whitespace or order never makes a written bundle look
    different from the one asked for.
    """
    return hashlib.sha256(",".join(sorted(bundle_fingerprints(pem_text))).encode()).hexdigest()


def served_text(chain: ReportedChain) -> str:
    """The `served` value for what a mesh serves."""
    return json.dumps({"bundle": sorted(chain.bundle), "issuerRoot": chain.issuer_root}, sort_keys=True)


@dataclass(frozen=True)
class Exchange:
    """One exchange ConfigMap as read: its data, labels and resourceVersion (for `replace`)."""

    namespace: str
    name: str
    data: Mapping[str, str]
    resource_version: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)

    def get(self, key: str) -> str:
        """The value of ``key``, empty when absent."""
        return self.data.get(key, "")

    @property
    def mesh(self) -> MeshIdentity | None:
        """The mesh the request is for, as the management side wrote it (None when unreadable)."""
        try:
            wire = json.loads(self.get(MESH))
            return MeshIdentity.from_wire({str(k): str(v) for k, v in wire.items()})
        except (ValueError, KeyError, AttributeError):
            return None

    @property
    def answered(self) -> bool:
        """Whether the CSR now in the exchange has an answer (certificates or a refusal)."""
        return bool(self.get(CSR)) and self.get(ANSWER_FOR) == csr_digest(self.get(CSR))

    @property
    def installed(self) -> bool:
        """Whether the agent installed a chain for the current request."""
        return bool(self.get(NONCE)) and self.get(INSTALLED_NONCE) == self.get(NONCE)

    @property
    def served(self) -> ReportedChain | None:
        """What the agent last reported the mesh serves (None: no report, or unreadable)."""
        try:
            wire = json.loads(self.get(SERVED))
            issuer = wire.get("issuerRoot")
            return ReportedChain(frozenset(str(f) for f in wire["bundle"]), str(issuer) if issuer else None)
        except (ValueError, KeyError, TypeError, AttributeError):
            return None

    @property
    def issuing_root(self) -> str | None:
        """The root the mesh issues from, by the agent's reports (None: not enrolled)."""
        served = self.served
        if served is not None and served.issuer_root:
            return served.issuer_root
        return self.get(INSTALLED_ROOT) or None

    @property
    def bundle_roots(self) -> frozenset[str]:
        """Fingerprints of the roots the management side asks the mesh to trust (empty: none asked)."""
        return bundle_fingerprints(self.get(BUNDLE)) if self.get(BUNDLE) else frozenset()

    @property
    def bundle_applied(self) -> bool:
        """Whether the agent made the asked-for bundle the mesh's trust bundle."""
        return bool(self.get(BUNDLE)) and self.get(BUNDLE_WRITTEN) == bundle_digest(self.get(BUNDLE))

    def with_data(self, changes: Mapping[str, str | None]) -> dict[str, str]:
        """The data with ``changes`` applied (None removes a key)."""
        data = dict(self.data)
        for key, value in changes.items():
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value
        return data

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> Exchange:
        """An exchange from a ConfigMap in wire form."""
        meta = obj.get("metadata") or {}
        return cls(
            namespace=str(meta.get("namespace", "")),
            name=str(meta.get("name", "")),
            data={str(k): str(v) for k, v in (obj.get("data") or {}).items()},
            resource_version=str(meta.get("resourceVersion", "")),
            labels=dict(meta.get("labels") or {}),
        )


def read_exchange(
    cluster: Cluster, namespace: str, mesh_name: str, owner: str = MANAGEMENT_NAMESPACE
) -> Exchange | None:
    """The exchange of ``mesh_name`` in ``namespace``, or None; refused when a user's ConfigMap has its name."""
    obj = cluster.get(R.CONFIG_MAP, exchange_name(mesh_name), namespace)
    if obj is None:
        return None
    if not is_owned(obj, owner):
        raise ClusterError(
            f"ConfigMap `{namespace}/{exchange_name(mesh_name)}` exists and meshrules does not own it",
            code=NOT_OWNED,
            location=Location(
                cluster=cluster.name, kind="ConfigMap", namespace=namespace, name=exchange_name(mesh_name)
            ),
            hint="meshrules exchanges CSRs through this ConfigMap; move the user's ConfigMap away",
        )
    return Exchange.of(obj)


def list_exchanges(cluster: Cluster, namespace: str, owner: str = MANAGEMENT_NAMESPACE) -> tuple[Exchange, ...]:
    """Every exchange meshrules owns in ``namespace``, by name."""
    found = cluster.list(R.CONFIG_MAP, namespace, f"{EXCHANGE_LABEL}=true").items
    return tuple(sorted((Exchange.of(o) for o in found if is_owned(o, owner)), key=lambda e: e.name))


def create_exchange(cluster: Cluster, namespace: str, mesh_name: str, data: Mapping[str, str], owner: str) -> Exchange:
    """Create the exchange of ``mesh_name`` (409 when it appeared meanwhile: the next pass reads it)."""
    obj: Object = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": exchange_name(mesh_name),
            "namespace": namespace,
            "labels": {OWNER_LABEL: owner, EXCHANGE_LABEL: "true"},
        },
        "data": dict(sorted(data.items())),
    }
    return Exchange.of(cluster.create(obj))


def replace_exchange(cluster: Cluster, exchange: Exchange, data: Mapping[str, str]) -> Exchange:
    """Write ``data`` into ``exchange`` if nobody changed it since it was read (409 otherwise)."""
    obj: Object = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": exchange.name,
            "namespace": exchange.namespace,
            "labels": dict(exchange.labels),
            "resourceVersion": exchange.resource_version,
        },
        "data": dict(sorted(data.items())),
    }
    return Exchange.of(cluster.replace(obj))


def open_request(
    cluster: Cluster, ex: Exchange | None, mesh: MeshIdentity, root: str, owner: str = MANAGEMENT_NAMESPACE
) -> Exchange:
    """Ask the agent for a new intermediate of ``mesh`` from ``root``: a fresh nonce, any old answer dropped.

    Dropping the answer matters: the agent must never install a chain meant for another request.
    """
    request = {
        MESH: json.dumps(mesh.to_wire(), sort_keys=True),
        NONCE: secrets.token_hex(_NONCE_BYTES),
        ROOT: root,
        PHASE: Phase.REQUESTED.value,
    }
    if ex is None:
        return create_exchange(cluster, mesh.namespace, mesh.name, request, owner)
    changes: dict[str, str | None] = {k: None for k in ANSWER_KEYS}
    return replace_exchange(cluster, ex, ex.with_data({**changes, **request}))


def withdraw_answer(cluster: Cluster, ex: Exchange) -> Exchange:
    """Take back certificates the agent has not installed yet (their root is being rotated away)."""
    return replace_exchange(cluster, ex, ex.with_data({k: None for k in ANSWER_KEYS}))


def ask_bundle(cluster: Cluster, ex: Exchange, roots_pem: str) -> Exchange:
    """Ask the agent to make ``roots_pem`` the mesh's trust bundle."""
    return replace_exchange(cluster, ex, ex.with_data({BUNDLE: roots_pem}))
