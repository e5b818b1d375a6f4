"""Trust status: per VirtualMesh and member mesh, the chain in place or planned, and what to worry about.

A pure function of plain data — each mesh's identity, the roots it publishes (PEM), and optionally
its CA Secret's data — so a scenario, a live cluster and a test feed it alike. Secret data is read
to find the issuer chain and to check that the key belongs to it; nothing from a Secret other than
certificate facts (subject, SANs, fingerprint, validity) ever reaches the report.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from cryptography import x509

from meshrules.discovery.trust_bundle import bundles_overlap
from meshrules.errors import Diagnostic, Severity, TrustError
from meshrules.model.base import ApiModel
from meshrules.model.discovery import Mesh, MeshType
from meshrules.model.policy import VirtualMesh
from meshrules.model.source import KubeObject
from meshrules.trust.ca import RootSettings
from meshrules.trust.keys import KeyType, describe_key, load_key, same_public_key
from meshrules.trust.mesh import MeshIdentity
from meshrules.trust.objects import (
    ISTIO_ROOT_CERT,
    LINKERD_BUNDLE,
    LINKERD_TRUST_ROOTS,
    issuer_certificates_pem,
    issuer_key_pem,
    issuer_secret_name,
)
from meshrules.trust.pem import dedupe, fingerprint, load_certificates, subject_alt_names, walk_to_root

# Certificates are flagged this long before they expire: a month leaves time for a planned rotation.
WARN_BEFORE = timedelta(days=30)

ISTIO_ROOT_CONFIGMAP = "istio-ca-root-cert"

EXPIRES_SOON = "MR0731"
EXPIRED = "MR0732"
NO_SHARED_ROOT = "MR0733"
ISSUER_NOT_TRUSTED = "MR0734"
KEY_MISMATCH = "MR0735"
UNREADABLE = "MR0736"
NO_PUBLISHED_ROOTS = "MR0737"
PEER_NOT_TRUSTED = "MR0738"
UNKNOWN_MEMBER = "MR0739"
CHAIN_INCOMPLETE = "MR0740"
TTL_PAST_ROOT = "MR0741"


class TrustMode(StrEnum):
    """How a VirtualMesh handles certificates."""

    SHARED = "shared"
    LIMITED = "limited"
    UNMANAGED = "unmanaged"  # `trust` omitted: meshrules leaves certificates alone


class ChainSource(StrEnum):
    """Where a mesh's reported chain comes from."""

    SECRET = "secret"  # the mesh's CA Secret (`cacerts`, `linkerd-identity-issuer`)
    PUBLISHED = "published"  # only the roots the mesh publishes
    PLANNED = "planned"  # what shared trust will issue
    NONE = "none"


# --- inputs -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MeshTrustInput:
    """One mesh as trust status reads it.

    ``published_roots``: PEM texts of the roots the mesh publishes (ConfigMap `istio-ca-root-cert`,
    `linkerd-identity-trust-roots`). ``ca_secret``: the data of its CA Secret when known — values as
    bytes, PEM text, or base64 as in a Secret's `data`. Never shown by ``repr``.
    """

    mesh: MeshIdentity
    published_roots: tuple[str, ...] = ()
    ca_secret: Mapping[str, bytes | str] | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class VirtualMeshTrustInput:
    """A VirtualMesh as trust status reads it: members by mesh name and its `spec.trust`."""

    name: str
    namespace: str
    members: tuple[str, ...]
    mode: TrustMode = TrustMode.UNMANAGED
    root: RootSettings | None = None  # `generated` settings
    root_secret: str | None = None  # `namespace/name` of an imported root
    intermediate_ttl_days: int = 365

    @classmethod
    def of(cls, vm: VirtualMesh) -> VirtualMeshTrustInput:
        """The trust view of a VirtualMesh policy."""
        members = tuple(ref.name for ref in vm.spec.meshes)
        trust = vm.spec.trust
        if trust is None:
            return cls(vm.name, vm.namespace, members)
        if trust.shared is None:
            return cls(vm.name, vm.namespace, members, TrustMode.LIMITED)
        rca = trust.shared.root_certificate_authority
        root = secret = None
        if rca.generated is not None:
            gen = rca.generated
            root = RootSettings(KeyType(gen.key_algorithm.value), gen.ttl_days, gen.org_name)
        elif rca.secret is not None:
            secret = f"{rca.secret.namespace or vm.namespace}/{rca.secret.name}"
        return cls(vm.name, vm.namespace, members, TrustMode.SHARED, root, secret, trust.shared.intermediate_ttl_days)


def mesh_trust_input(mesh: Mesh, objects: Sequence[KubeObject]) -> MeshTrustInput:
    """Gather a discovered mesh's published roots and CA Secret from its cluster's objects."""
    identity = MeshIdentity.of(mesh)
    if mesh.type is MeshType.ISTIO:
        cm_name, cm_key = ISTIO_ROOT_CONFIGMAP, ISTIO_ROOT_CERT
    else:
        cm_name, cm_key = LINKERD_TRUST_ROOTS, LINKERD_BUNDLE
    roots: tuple[str, ...] = ()
    secret: dict[str, bytes | str] | None = None
    for obj in objects:
        if obj.cluster != mesh.cluster or obj.namespace != mesh.namespace:
            continue
        if obj.kind == "ConfigMap" and obj.name == cm_name:
            data = obj.body.get("data")
            value = data.get(cm_key) if isinstance(data, Mapping) else None
            if isinstance(value, str):
                roots = (value,)
        elif obj.kind == "Secret" and obj.name == issuer_secret_name(identity):
            secret = {}
            for key in ("data", "stringData"):
                part = obj.body.get(key)
                if isinstance(part, Mapping):
                    secret.update({str(k): v for k, v in part.items() if isinstance(v, str | bytes)})
    return MeshTrustInput(identity, roots, secret)


# --- the report ---------------------------------------------------------------------------------------


class TrustFinding(ApiModel):
    """Something about trust a person should know, with what to do about it."""

    code: str
    severity: Severity
    message: str
    hint: str = ""
    mesh: str = ""


class CertificateSummary(ApiModel):
    """Public facts about one certificate of a chain (planned ones have no fingerprint)."""

    role: str  # `issuer` (the mesh's CA), `intermediate`, `root`
    subject: str
    fingerprint: str = ""
    not_before: datetime | None = None
    not_after: datetime
    days_left: int
    key_algorithm: str
    sans: tuple[str, ...] = ()
    ca: bool = True
    path_length: int | None = None
    planned: bool = False


class MeshTrust(ApiModel):
    """A mesh's chain (issuer first, root last), its bundle, and findings about it."""

    name: str
    type: MeshType
    cluster: str
    namespace: str
    trust_domain: str
    source: ChainSource
    root_fingerprint: str | None = None
    bundle: tuple[str, ...] = ()
    chain: tuple[CertificateSummary, ...] = ()
    expires: datetime | None = None
    findings: tuple[TrustFinding, ...] = ()


class VirtualMeshTrust(ApiModel):
    """A VirtualMesh's trust: its members and whether they share a root."""

    name: str
    namespace: str
    mode: TrustMode
    shared_root: bool | None = None  # None: some member's roots are unknown
    common_roots: tuple[str, ...] = ()
    members: tuple[MeshTrust, ...] = ()
    findings: tuple[TrustFinding, ...] = ()


class TrustReport(ApiModel):
    """Trust status of every VirtualMesh, and of meshes in none."""

    generated_at: datetime
    virtual_meshes: tuple[VirtualMeshTrust, ...] = ()
    other_meshes: tuple[MeshTrust, ...] = ()

    def all_findings(self) -> tuple[TrustFinding, ...]:
        """Every finding, VirtualMesh ones with their members', then other meshes'."""
        out: list[TrustFinding] = []
        for vm in self.virtual_meshes:
            out.extend(vm.findings)
            for m in vm.members:
                out.extend(m.findings)
        for m in self.other_meshes:
            out.extend(m.findings)
        return tuple(out)

    def diagnostics(self) -> tuple[Diagnostic, ...]:
        """The findings as meshrules diagnostics (for `check`)."""
        return tuple(
            Diagnostic(code=f.code, message=f.message, severity=f.severity, hint=f.hint, object=f"Mesh {f.mesh}")
            for f in self.all_findings()
        )


# --- computing it ---------------------------------------------------------------------------------------


def trust_status(
    virtual_meshes: Sequence[VirtualMeshTrustInput],
    meshes: Sequence[MeshTrustInput],
    *,
    now: datetime | None = None,
    warn_before: timedelta = WARN_BEFORE,
) -> TrustReport:
    """Trust status per VirtualMesh and mesh: chain (present or planned), expiry, root, findings.

    Present chains come from CA Secret data, else from published roots; a member of a VirtualMesh
    with shared trust and no CA Secret shows the planned chain. Members share a root when their
    bundles have one in common; a member whose issuing root another member does not trust is an
    error, and a certificate within ``warn_before`` of expiry a warning.
    """
    # Whole seconds: certificates carry no finer time, and reports read better without it.
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    by_name = {m.mesh.name: m for m in meshes}
    in_vm: set[str] = set()
    vms: list[VirtualMeshTrust] = []
    for vm in sorted(virtual_meshes, key=lambda v: (v.namespace, v.name)):
        members: list[MeshTrust] = []
        findings: list[TrustFinding] = []
        for name in vm.members:
            if name not in by_name:
                findings.append(
                    TrustFinding(
                        code=UNKNOWN_MEMBER,
                        severity=Severity.WARNING,
                        message=f"member mesh `{name}` of VirtualMesh `{vm.name}` was not discovered",
                        hint="check the mesh name against `meshrules discover`",
                        mesh=name,
                    )
                )
                continue
            in_vm.add(name)
            members.append(_mesh_trust(by_name[name], vm, now, warn_before))
        vms.append(_virtual_mesh_trust(vm, members, findings))
    others = tuple(
        _mesh_trust(m, None, now, warn_before)
        for m in sorted(meshes, key=lambda m: m.mesh.name)
        if m.mesh.name not in in_vm
    )
    return TrustReport(generated_at=now, virtual_meshes=tuple(vms), other_meshes=others)


def _virtual_mesh_trust(
    vm: VirtualMeshTrustInput,
    members: list[MeshTrust],
    findings: list[TrustFinding],
) -> VirtualMeshTrust:
    known = [m for m in members if m.bundle]
    common: frozenset[str] = frozenset()
    shared: bool | None = None
    if members and len(known) == len(members):
        common = frozenset(known[0].bundle).intersection(*(m.bundle for m in known[1:]))
        shared = bool(common) and all(
            bundles_overlap(a.bundle, b.bundle) for a in known for b in known if a.name < b.name
        )
    if shared is False:
        severity = Severity.INFO if vm.mode is not TrustMode.SHARED else Severity.WARNING
        hint = (
            "the meshrules agent issues every member an intermediate of the shared root"
            if vm.mode is TrustMode.SHARED
            else "mTLS between these meshes fails; give the VirtualMesh `trust.shared` to share a root"
        )
        findings.append(
            TrustFinding(
                code=NO_SHARED_ROOT,
                severity=severity,
                message=f"member meshes of VirtualMesh `{vm.name}` do not share a root",
                hint=hint,
            )
        )
    for a in members:
        for b in members:
            if a.name == b.name or a.source is not ChainSource.SECRET or not b.bundle or a.root_fingerprint is None:
                continue
            if a.root_fingerprint not in b.bundle:
                findings.append(
                    TrustFinding(
                        code=PEER_NOT_TRUSTED,
                        severity=Severity.ERROR,
                        message=f"mesh `{b.name}` does not trust the root mesh `{a.name}` issues from",
                        hint=f"add root `{a.root_fingerprint[:16]}…` to `{b.name}`'s trust bundle, or rotate",
                        mesh=b.name,
                    )
                )
    return VirtualMeshTrust(
        name=vm.name,
        namespace=vm.namespace,
        mode=vm.mode,
        shared_root=shared,
        common_roots=tuple(sorted(common)),
        members=tuple(members),
        findings=tuple(findings),
    )


def _mesh_trust(
    item: MeshTrustInput, vm: VirtualMeshTrustInput | None, now: datetime, warn_before: timedelta
) -> MeshTrust:
    mesh = item.mesh
    findings: list[TrustFinding] = []
    published = _published(item, findings)
    secret = _decoded(item.ca_secret) if item.ca_secret is not None else None
    bundle = {fingerprint(c) for c in published}
    if not bundle and secret is not None and secret.get(ISTIO_ROOT_CERT) and mesh.mesh_type is MeshType.ISTIO:
        bundle = {fingerprint(c) for c in _certs(secret[ISTIO_ROOT_CERT], ISTIO_ROOT_CERT, mesh, findings)}
    chain: tuple[CertificateSummary, ...] = ()
    root_fp: str | None = None
    source = ChainSource.NONE
    issuer_text = issuer_certificates_pem(mesh, secret) if secret is not None else None
    if issuer_text is not None and secret is not None:
        certs = _certs(issuer_text, issuer_secret_name(mesh), mesh, findings)
        if certs:
            source = ChainSource.SECRET
            chain, root_fp = _present_chain(mesh, certs, published, secret, now, findings)
    if source is ChainSource.NONE and vm is not None and vm.mode is TrustMode.SHARED:
        source = ChainSource.PLANNED
        chain = _planned_chain(mesh, vm, now, findings)
    elif source is ChainSource.NONE and published:
        source = ChainSource.PUBLISHED
        chain = tuple(_summary(c, "root", now) for c in published)
        root_fp = fingerprint(published[0]) if len(published) == 1 else None
    if not published and source is not ChainSource.PLANNED:
        findings.append(
            TrustFinding(
                code=NO_PUBLISHED_ROOTS,
                severity=Severity.INFO,
                message=f"mesh `{mesh.name}` publishes no trust roots",
                hint="mTLS with other meshes cannot be judged without its root ConfigMap",
                mesh=mesh.name,
            )
        )
    if root_fp is not None and bundle and root_fp not in bundle:
        findings.append(
            TrustFinding(
                code=ISSUER_NOT_TRUSTED,
                severity=Severity.ERROR,
                message=f"mesh `{mesh.name}` issues from a root its own trust bundle does not hold",
                hint="its workloads cannot verify each other; put the root in the bundle or reissue the intermediate",
                mesh=mesh.name,
            )
        )
    for cert in chain:
        findings.extend(_expiry(mesh, cert, warn_before))
    expiries = [c.not_after for c in chain]
    return MeshTrust(
        name=mesh.name,
        type=mesh.mesh_type,
        cluster=mesh.cluster,
        namespace=mesh.namespace,
        trust_domain=mesh.trust_domain,
        source=source,
        root_fingerprint=root_fp,
        bundle=tuple(sorted(bundle)),
        chain=chain,
        expires=min(expiries) if expiries else None,
        findings=tuple(findings),
    )


def _published(item: MeshTrustInput, findings: list[TrustFinding]) -> tuple[x509.Certificate, ...]:
    certs: list[x509.Certificate] = []
    for text in item.published_roots:
        certs.extend(_certs(text, "published trust roots", item.mesh, findings))
    return dedupe(certs)


def _certs(
    text: str | bytes, what: str, mesh: MeshIdentity, findings: list[TrustFinding]
) -> tuple[x509.Certificate, ...]:
    try:
        return load_certificates(text, what)
    except TrustError as err:
        findings.append(
            TrustFinding(code=UNREADABLE, severity=Severity.WARNING, message=err.message, hint=err.hint, mesh=mesh.name)
        )
        return ()


def _decoded(data: Mapping[str, bytes | str]) -> dict[str, bytes]:
    """Secret values as bytes: bytes kept, PEM text encoded, anything else read as base64 (`data`)."""
    out: dict[str, bytes] = {}
    for key, value in data.items():
        if isinstance(value, bytes):
            out[key] = value
        elif "-----BEGIN" in value:
            out[key] = value.encode()
        else:
            try:
                out[key] = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                out[key] = value.encode()
    return out


def _present_chain(
    mesh: MeshIdentity,
    certs: tuple[x509.Certificate, ...],
    published: tuple[x509.Certificate, ...],
    secret: Mapping[str, bytes],
    now: datetime,
    findings: list[TrustFinding],
) -> tuple[tuple[CertificateSummary, ...], str | None]:
    signer = certs[0]
    between, root = walk_to_root(signer, dedupe((*certs, *published)))
    summaries = [_summary(signer, "issuer", now), *(_summary(c, "intermediate", now) for c in between)]
    if root is not None and fingerprint(root) != fingerprint(signer):
        summaries.append(_summary(root, "root", now))
    if root is None:
        findings.append(
            TrustFinding(
                code=CHAIN_INCOMPLETE,
                severity=Severity.WARNING,
                message=f"issuer chain of mesh `{mesh.name}` does not reach a root it publishes",
                hint="the root it chains to is missing from the published trust roots and the Secret",
                mesh=mesh.name,
            )
        )
    key_pem = issuer_key_pem(mesh, secret)
    if key_pem:
        # The key is loaded only to compare public halves; it goes nowhere else.
        try:
            matches = same_public_key(load_key(key_pem, issuer_secret_name(mesh)).public_key(), signer.public_key())
        except TrustError:
            matches = False
        if not matches:
            findings.append(
                TrustFinding(
                    code=KEY_MISMATCH,
                    severity=Severity.ERROR,
                    message=f"the key in `{issuer_secret_name(mesh)}` does not belong to mesh `{mesh.name}`'s issuer",
                    hint="the control plane cannot sign with it; reissue the intermediate",
                    mesh=mesh.name,
                )
            )
    return tuple(summaries), fingerprint(root) if root is not None else None


def _planned_chain(
    mesh: MeshIdentity, vm: VirtualMeshTrustInput, now: datetime, findings: list[TrustFinding]
) -> tuple[CertificateSummary, ...]:
    root_days = vm.root.ttl_days if vm.root is not None else None
    days = vm.intermediate_ttl_days if root_days is None else min(vm.intermediate_ttl_days, root_days)
    if root_days is not None and vm.intermediate_ttl_days > root_days:
        findings.append(
            TrustFinding(
                code=TTL_PAST_ROOT,
                severity=Severity.WARNING,
                message=(
                    f"`intermediateTtlDays` ({vm.intermediate_ttl_days}) of VirtualMesh `{vm.name}` "
                    "exceeds the root's TTL"
                ),
                hint=f"intermediates are cut to the root's {root_days} days",
                mesh=mesh.name,
            )
        )
    intermediate = CertificateSummary(
        role="issuer",
        subject=f"CN={_planned_cn(mesh)}" + (f",O={vm.root.org_name}" if vm.root is not None else ""),
        not_after=now + timedelta(days=days),
        days_left=days,
        key_algorithm=KeyType.ECDSA_P256.label,
        sans=(mesh.san,),
        path_length=0,
        planned=True,
    )
    if vm.root is None:
        return (intermediate,)
    root = CertificateSummary(
        role="root",
        subject=f"CN={vm.root.org_name} root CA,O={vm.root.org_name}",
        not_after=now + timedelta(days=vm.root.ttl_days),
        days_left=vm.root.ttl_days,
        key_algorithm=vm.root.key_type.label,
        path_length=1,
        planned=True,
    )
    return intermediate, root


def _planned_cn(mesh: MeshIdentity) -> str:
    # As `sign_intermediate` names it (written like `Name.rfc4514_string`, most specific first).
    return mesh.identity if mesh.mesh_type is MeshType.LINKERD else f"{mesh.name} intermediate CA"


def _summary(cert: x509.Certificate, role: str, now: datetime) -> CertificateSummary:
    try:
        bc: x509.BasicConstraints | None = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        bc = None
    try:
        sans = subject_alt_names(cert)
    except ValueError:
        sans = ()
    return CertificateSummary(
        role=role,
        subject=cert.subject.rfc4514_string(),
        fingerprint=fingerprint(cert),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        days_left=(cert.not_valid_after_utc - now) // timedelta(days=1),
        key_algorithm=describe_key(cert.public_key()),
        sans=sans,
        ca=bool(bc and bc.ca),
        path_length=bc.path_length if bc else None,
    )


def _expiry(mesh: MeshIdentity, cert: CertificateSummary, warn_before: timedelta) -> list[TrustFinding]:
    if cert.planned:
        return []
    what = f"{cert.role} certificate `{cert.subject}` of mesh `{mesh.name}`"
    if cert.days_left < 0:
        return [
            TrustFinding(
                code=EXPIRED,
                severity=Severity.ERROR,
                message=f"{what} expired on {cert.not_after:%Y-%m-%d}",
                hint="mTLS with certificates from it fails; rotate (`meshrules trust rotate`)",
                mesh=mesh.name,
            )
        ]
    if cert.days_left * timedelta(days=1) < warn_before:
        return [
            TrustFinding(
                code=EXPIRES_SOON,
                severity=Severity.WARNING,
                message=f"{what} expires on {cert.not_after:%Y-%m-%d}, in {cert.days_left} days",
                hint="rotate before then (`meshrules trust rotate`)",
                mesh=mesh.name,
            )
        ]
    return []
