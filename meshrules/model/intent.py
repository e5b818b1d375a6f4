"""Intent: what the rule set decided, as typed data for the emitters and the simulator.

The rule engine (`meshrules.engine`) evaluates `rules/*.rules` over facts from the service graph
and reads its derived relations into an `Intent`. Emitters render an `Intent` into each mesh's
resources, and the simulator compares its own answers with it; neither re-decides anything
the rules decide (federation, which policy applies where and with which fields, who may call
whom, conflicts, enforcement, findings). Values (a timeout, a weight) are read from the policy
objects the intent names.

Every decision carries a `Derivation` handle: the rule and the derived fact, which
`meshrules.engine` can expand into the full provenance tree down to user objects (file:line).

Names used here:
- destination: a discovery `Destination` name (`<svc>-<ns>-<cluster>`);
- mesh: a discovery `Mesh` name; workload: a discovery `Workload` name;
- policy: `Kind namespace/name` (e.g. `TrafficPolicy bookinfo/reviews-canary`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from meshrules.errors import Diagnostic


@dataclass(frozen=True, slots=True, order=True)
class Derivation:
    """Which rule derived a decision, and the derived fact (`relation`, arguments) to explain it."""

    rule: str
    relation: str
    args: tuple[str | int | bool, ...]


@dataclass(frozen=True, slots=True)
class MeshMembership:
    """How one mesh is governed: its VirtualMesh (if any), trust, federation and enforcement."""

    mesh: str
    virtual_mesh: str | None  # `VirtualMesh namespace/name`, None when in no VirtualMesh
    enforced: bool  # ENFORCED access: deny unless an AccessPolicy allows
    shared_trust: bool
    hostname_suffix: str = "global"
    linkerd_mode: str = "gateway"  # or "remote-discovery"
    why: Derivation | None = None


@dataclass(frozen=True, slots=True)
class FederationEdge:
    """Destination `destination` is made visible in mesh `mesh` (not its own) under `host`.

    `host` is what a caller in `mesh` dials: Istio `<svc>.<ns>.svc.<cluster>.<suffix>`; Linkerd's
    mirror `<svc>-<cluster>.<ns>.svc.<clusterDomain>`.
    """

    destination: str
    mesh: str
    virtual_mesh: str
    host: str
    why: Derivation


class NotFederatedReason(StrEnum):
    """Why a destination is not visible in a mesh of its VirtualMesh."""

    LIMITED_TRUST = "LIMITED_TRUST"  # the VirtualMesh has no shared root
    MIXED_MESH_TYPES = "MIXED_MESH_TYPES"  # members are not all of one type
    NOT_SELECTED = "NOT_SELECTED"  # federation selectors leave it out
    NAMESPACE_MISSING = "NAMESPACE_MISSING"  # Linkerd mirror needs the namespace in the target cluster
    NO_VIRTUAL_MESH = "NO_VIRTUAL_MESH"  # one of the two meshes is in no VirtualMesh / different ones


@dataclass(frozen=True, slots=True)
class FederationBlocked:
    """Destination `destination` is NOT visible in mesh `mesh`, and why (for `why` NOT_FEDERATED)."""

    destination: str
    mesh: str
    reason: NotFederatedReason
    message: str
    why: Derivation | None = None


@dataclass(frozen=True, slots=True)
class TrafficApplication:
    """Accepted TrafficPolicy `policy` applies at `destination`, contributing `fields` there.

    `fields` are wire names of `spec.policy` (`requestTimeout`, `retries`, `trafficShift`, …): the
    fields this policy provides at this destination after conflicts removed what lost. A policy
    that is INVALID for a destination has no `TrafficApplication` there (see `PolicyStatusEntry`).
    """

    policy: str
    destination: str
    fields: tuple[str, ...]
    why: Derivation


class Specificity(StrEnum):
    """How the request spaces (sources x matchers) of two policies at one destination relate."""

    MORE_SPECIFIC = "MORE_SPECIFIC"  # `policy` selects a strict subset of what `other` selects
    SAME = "SAME"  # identical selectors and matchers
    OVERLAP = "OVERLAP"  # they intersect, neither contains the other
    DISJOINT = "DISJOINT"


@dataclass(frozen=True, slots=True)
class TrafficPrecedence:
    """At `destination`, for `field`, `winner` beats `loser` wherever both apply to a request.

    Emitted for every pair of applicable policies that both set `field` and whose request spaces
    are not disjoint: the more specific wins; otherwise the earlier accepted. (`SAME` with
    different values is a conflict instead: the later is INVALID there and has no application.)
    """

    destination: str
    field: str
    winner: str
    loser: str
    relation: Specificity
    why: Derivation


@dataclass(frozen=True, slots=True)
class IdentityPattern:
    """A set of caller identities an AccessPolicy source stands for.

    `None` means any. `cluster` narrows to callers running in that cluster (which identity alone
    cannot tell apart when meshes share a trust domain: `check` warns).
    """

    trust_domain: str | None = None
    namespace: str | None = None
    service_account: str | None = None
    cluster: str | None = None


@dataclass(frozen=True, slots=True)
class AccessRule:
    """AccessPolicy `policy` allows `sources` to call `destination` on these operations.

    Empty `sources` means any authenticated identity. Empty `paths`/`methods`/`ports` mean any.
    `gateway_identities` are the identities a destination actually sees for callers in other
    clusters (Linkerd gateway mode): emitters authorise them on exactly these operations.
    """

    policy: str
    destination: str
    sources: tuple[IdentityPattern, ...]
    paths: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()
    ports: tuple[int, ...] = ()
    gateway_identities: tuple[str, ...] = ()
    why: Derivation | None = None


@dataclass(frozen=True, slots=True)
class PolicyStatusEntry:
    """A status error of a policy: spec-level (`destination` None) or for one destination."""

    policy: str
    code: str
    message: str
    field: str = ""
    destination: str | None = None
    why: Derivation | None = None


@dataclass(frozen=True, slots=True)
class TrustRejection:
    """Mesh `mesh` rejects callers from member `caller`: it does not accept their `trust_domain`.

    Both meshes share trust in one VirtualMesh, but the receiver's mesh config does not list the
    caller's trust domain (Istio `trustDomainAliases` / `caCertificates[].trustDomains`); the
    simulator answers TRUST_DOMAIN_REJECTED, `check` reports the change to make.
    """

    mesh: str
    caller: str
    trust_domain: str
    why: Derivation | None = None


@dataclass(frozen=True, slots=True)
class FederationGap:
    """Destination `destination` is federated into `mesh`, but calls by its federated name fail.

    `code` is the simulator's answer: `NO_DNS` (the calling Istio mesh does not capture DNS, so
    the `.global` name does not resolve) or `NO_GATEWAY_ADDRESS` (the destination's mesh has no
    federation gateway with an address).
    """

    destination: str
    mesh: str
    code: str
    message: str
    why: Derivation | None = None


@dataclass(frozen=True)
class Intent:
    """Everything the rule set decided for a scenario."""

    memberships: tuple[MeshMembership, ...] = ()
    federation: tuple[FederationEdge, ...] = ()
    blocked: tuple[FederationBlocked, ...] = ()
    traffic: tuple[TrafficApplication, ...] = ()
    precedence: tuple[TrafficPrecedence, ...] = ()
    access: tuple[AccessRule, ...] = ()
    statuses: tuple[PolicyStatusEntry, ...] = ()
    findings: tuple[Diagnostic, ...] = ()
    # policy → selected source workloads (TrafficPolicy) for status `workloads`/`workloadCount`.
    selected_sources: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Added by the rule set (issue 3): why federated calls fail, for `why` and the simulator.
    trust_rejections: tuple[TrustRejection, ...] = ()
    gaps: tuple[FederationGap, ...] = ()
