"""Intermediate CAs through CSRs: the agent asks, the management side checks and signs.

Agent side (runs in the mesh's cluster): `create_intermediate_request` generates the intermediate's
key there and a PKCS#10 request naming exactly what the mesh needs. Management side: `check_csr`
refuses anything that is not that (`CsrRefused`, one reason each), and `sign_intermediate` issues the
certificate from a fixed profile — it copies no extension from the request, so a request can only
ever get what its mesh may have:

- subjectAltName: the mesh's identity only (`MeshIdentity.identity`);
- basicConstraints: CA:TRUE, pathlen:0 (critical) — the intermediate signs workloads, never CAs;
- keyUsage: keyCertSign, cRLSign (critical);
- nameConstraints (critical, Linkerd): DNS names under `identity.<ns>.<trustDomain>`, so a stolen
  issuer key cannot mint names of other meshes (see `expected_name_constraints` for Istio);
- validity: at most the configured TTL, never past the CA's own expiry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from meshrules.discovery.trust_bundle import bundle_fingerprints
from meshrules.errors import CsrRefused
from meshrules.model.discovery import MeshType
from meshrules.trust.ca import CLOCK_SKEW, CertificateAuthority
from meshrules.trust.keys import (
    KeyType,
    describe_key,
    generate_key,
    key_to_pem,
    key_type_of,
    load_key,
    signature_hash,
)
from meshrules.trust.mesh import MeshIdentity
from meshrules.trust.pem import cert_pem, subject_alt_names

DEFAULT_INTERMEDIATE_TTL = timedelta(days=365)
# X.509's upper bound for a common name (RFC 5280 ub-common-name).
_MAX_CN = 64

# Key usages an intermediate may ask for; it is issued keyCertSign and cRLSign whatever it asks.
_ALLOWED_USAGES = ("key_cert_sign", "crl_sign", "digital_signature")
_USAGE_NAMES = {
    "digital_signature": "digitalSignature",
    "content_commitment": "nonRepudiation",
    "key_encipherment": "keyEncipherment",
    "data_encipherment": "dataEncipherment",
    "key_agreement": "keyAgreement",
    "key_cert_sign": "keyCertSign",
    "crl_sign": "cRLSign",
}
# Extensions a request may carry; any other is refused rather than silently dropped.
_ALLOWED_EXTENSIONS = (
    x509.SubjectAlternativeName,
    x509.BasicConstraints,
    x509.KeyUsage,
    x509.NameConstraints,
    x509.SubjectKeyIdentifier,
)

INTERMEDIATE_KEY_USAGE = x509.KeyUsage(
    digital_signature=False,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=True,
    crl_sign=True,
    encipher_only=False,
    decipher_only=False,
)

# Stable codes of each refusal reason (MR07xx is trust).
CSR_UNREADABLE = "MR0711"
CSR_BAD_SIGNATURE = "MR0712"
CSR_KEY_TYPE = "MR0713"
CSR_IDENTITY = "MR0714"
CSR_BASIC_CONSTRAINTS = "MR0715"
CSR_KEY_USAGE = "MR0716"
CSR_EXTENSION = "MR0717"
CSR_TTL = "MR0718"
CSR_NAME_CONSTRAINTS = "MR0719"


@dataclass(frozen=True, slots=True)
class SigningPolicy:
    """What the management side is willing to issue (VirtualMesh `intermediateTtlDays` and more)."""

    max_ttl: timedelta = DEFAULT_INTERMEDIATE_TTL
    # Add the mesh's name constraints to its intermediates (`expected_name_constraints`).
    name_constraints: bool = True

    @classmethod
    def from_days(cls, intermediate_ttl_days: int, *, name_constraints: bool = True) -> SigningPolicy:
        """A policy from VirtualMesh `intermediateTtlDays`."""
        return cls(max_ttl=timedelta(days=intermediate_ttl_days), name_constraints=name_constraints)


@dataclass(frozen=True, slots=True)
class IntermediateRequest:
    """The agent's half: a fresh key (stays in the cluster) and the CSR sent for signing."""

    key_pem: bytes = field(repr=False)
    csr_pem: str


@dataclass(frozen=True, slots=True)
class IssuedChain:
    """A signed intermediate and everything above it, as PEM (certificates only, no key).

    ``chain`` holds the certificates strictly between the intermediate and the root (non-empty only
    when the CA is itself an imported intermediate).
    """

    certificate: str
    chain: tuple[str, ...]
    root: str
    not_after: datetime

    @property
    def root_fingerprint(self) -> str:
        """SHA-256 fingerprint of the root this chain ends at."""
        return next(iter(bundle_fingerprints(self.root)))

    @property
    def issuer_pem(self) -> str:
        """Intermediate then chain, without the root (Linkerd `crt.pem` / `tls.crt`)."""
        return self.certificate + "".join(self.chain)

    @property
    def full_chain_pem(self) -> str:
        """Intermediate, chain and root (Istio `cert-chain.pem`, and what `trust sign` prints)."""
        return self.issuer_pem + self.root


def expected_name_constraints(mesh: MeshIdentity) -> x509.NameConstraints | None:
    """The name subtree a mesh's intermediate is confined to, or None when it is not confined.

    Linkerd: DNS names under `identity.<ns>.<trustDomain>` — every workload name Linkerd issues
    ends so, and only DNS names are constrained, so other SANs (Linkerd's SPIFFE URIs) stay free.
    Istio: none. A URI constraint on the trust domain would be the equivalent, but webpki-based
    verifiers (rustls — Istio's ztunnel — and `cryptography`'s own) reject URI name constraints
    outright, which would break every workload certificate under the intermediate.
    """
    if mesh.mesh_type is MeshType.ISTIO:
        return None
    return x509.NameConstraints(permitted_subtrees=[x509.DNSName(mesh.identity)], excluded_subtrees=None)


def _san(mesh: MeshIdentity) -> x509.SubjectAlternativeName:
    if mesh.mesh_type is MeshType.ISTIO:
        return x509.SubjectAlternativeName([x509.UniformResourceIdentifier(mesh.identity)])
    return x509.SubjectAlternativeName([x509.DNSName(mesh.identity)])


def _common_name(mesh: MeshIdentity) -> str:
    # Linkerd's own install names the issuer after its identity; Istio only reads the SAN.
    name = mesh.identity if mesh.mesh_type is MeshType.LINKERD else f"{mesh.name} intermediate CA"
    return name if len(name) <= _MAX_CN else name[: _MAX_CN - 1] + "~"


def create_intermediate_request(
    mesh: MeshIdentity, key_type: KeyType = KeyType.ECDSA_P256, *, key_pem: bytes | None = None
) -> IntermediateRequest:
    """Agent side: a new intermediate key and the CSR for ``mesh`` (or a CSR for an existing ``key_pem``)."""
    key = load_key(key_pem, "intermediate key") if key_pem is not None else generate_key(key_type)
    builder = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, _common_name(mesh))]))
        .add_extension(_san(mesh), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(INTERMEDIATE_KEY_USAGE, critical=True)
    )
    constraints = expected_name_constraints(mesh)
    if constraints is not None:
        builder = builder.add_extension(constraints, critical=True)
    csr = builder.sign(key, signature_hash(key))
    return IntermediateRequest(
        key_pem=key_pem if key_pem is not None else key_to_pem(key),
        csr_pem=csr.public_bytes(serialization.Encoding.PEM).decode(),
    )


def check_csr(
    csr_pem: str | bytes, mesh: MeshIdentity, *, policy: SigningPolicy, ttl: timedelta | None = None
) -> x509.CertificateSigningRequest:
    """Management side: the parsed CSR if it asks for exactly what ``mesh`` may be issued.

    Raises `CsrRefused` with one reason: unreadable, bad signature, key type, identity (SAN),
    basic constraints, key usage, an extension intermediates are not issued, name constraints, TTL.
    """
    data = csr_pem.encode() if isinstance(csr_pem, str) else csr_pem
    try:
        csr = x509.load_pem_x509_csr(data)
    except ValueError as exc:
        raise CsrRefused(
            "certificate request is not a PEM PKCS#10 request",
            code=CSR_UNREADABLE,
            hint="pass the CSR the agent produced, or one from `openssl req -new` (see docs/trust.md)",
        ) from exc
    if not csr.is_signature_valid:
        raise CsrRefused(
            "certificate request signature does not verify",
            code=CSR_BAD_SIGNATURE,
            hint="the request was changed after its key signed it; ask the agent for a new one",
        )
    _check_key(csr, mesh)
    _check_identity(csr, mesh)
    _check_basic_constraints(csr)
    _check_key_usage(csr)
    _check_extensions(csr, mesh)
    requested = policy.max_ttl if ttl is None else ttl
    if requested <= timedelta(0) or requested > policy.max_ttl:
        raise CsrRefused(
            f"certificate request asks for {_days(requested)}; at most {_days(policy.max_ttl)} are allowed",
            code=CSR_TTL,
            hint="ask for a shorter TTL, or raise `intermediateTtlDays` on the VirtualMesh",
        )
    return csr


def _days(delta: timedelta) -> str:
    days = delta.total_seconds() / 86400
    return f"{days:g} day" if days == 1 else f"{days:g} days"


def _check_key(csr: x509.CertificateSigningRequest, mesh: MeshIdentity) -> None:
    public_key = csr.public_key()
    kt = key_type_of(public_key)
    if kt is None or kt not in mesh.allowed_key_types:
        allowed = ", ".join(k.label for k in sorted(mesh.allowed_key_types))
        raise CsrRefused(
            f"certificate request for mesh `{mesh.name}` uses an {describe_key(public_key)} key",
            code=CSR_KEY_TYPE,
            hint=f"{mesh.mesh_type.value} intermediates may use: {allowed}",
        )


def _check_identity(csr: x509.CertificateSigningRequest, mesh: MeshIdentity) -> None:
    try:
        sans = subject_alt_names(csr)
    except (ValueError, x509.DuplicateExtension) as exc:
        raise CsrRefused(
            "certificate request has an unreadable subjectAltName",
            code=CSR_IDENTITY,
            field="subjectAltName",
            hint=str(exc),
        ) from exc
    if not sans:
        raise CsrRefused(
            f"certificate request names no identity; mesh `{mesh.name}` must ask for `{mesh.san}`",
            code=CSR_IDENTITY,
            field="subjectAltName",
        )
    if sans != (mesh.san,):
        asked = ", ".join(f"`{s}`" for s in sans)
        raise CsrRefused(
            f"certificate request asks for {asked}; mesh `{mesh.name}` may only be issued `{mesh.san}`",
            code=CSR_IDENTITY,
            field="subjectAltName",
            hint="a CSR is signed only for the identity of the mesh it comes from",
        )


def _check_basic_constraints(csr: x509.CertificateSigningRequest) -> None:
    try:
        bc = csr.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        bc = None
    if bc is None or not bc.ca:
        raise CsrRefused(
            "certificate request does not ask for a CA certificate",
            code=CSR_BASIC_CONSTRAINTS,
            field="basicConstraints",
            hint="a mesh intermediate needs basicConstraints CA:TRUE, pathlen:0",
        )
    if bc.path_length != 0:
        asked = "no path length limit" if bc.path_length is None else f"path length `{bc.path_length}`"
        raise CsrRefused(
            f"certificate request asks for {asked}; mesh intermediates get path length 0",
            code=CSR_BASIC_CONSTRAINTS,
            field="basicConstraints",
            hint="a mesh intermediate signs workload certificates only, never other CAs",
        )


def _check_key_usage(csr: x509.CertificateSigningRequest) -> None:
    try:
        ku = csr.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        ku = None
    if ku is None or not ku.key_cert_sign:
        raise CsrRefused(
            "certificate request does not ask for key usage keyCertSign",
            code=CSR_KEY_USAGE,
            field="keyUsage",
            hint="a mesh intermediate needs keyUsage keyCertSign (and cRLSign)",
        )
    extra = [name for attr, name in _USAGE_NAMES.items() if attr not in _ALLOWED_USAGES and getattr(ku, attr)]
    if extra:
        raise CsrRefused(
            f"certificate request asks for key usage {', '.join(f'`{u}`' for u in extra)}",
            code=CSR_KEY_USAGE,
            field="keyUsage",
            hint="mesh intermediates are issued keyCertSign and cRLSign only",
        )


def _check_extensions(csr: x509.CertificateSigningRequest, mesh: MeshIdentity) -> None:
    for ext in csr.extensions:
        if not isinstance(ext.value, _ALLOWED_EXTENSIONS):
            name = getattr(ext.oid, "_name", None) or ext.oid.dotted_string
            raise CsrRefused(
                f"certificate request asks for extension `{name}`, which mesh intermediates are not issued",
                code=CSR_EXTENSION,
                field=name,
                hint="ask only for subjectAltName, basicConstraints, keyUsage and nameConstraints",
            )
        if isinstance(ext.value, x509.NameConstraints) and ext.value != expected_name_constraints(mesh):
            raise CsrRefused(
                f"certificate request asks for name constraints other than mesh `{mesh.name}`'s",
                code=CSR_NAME_CONSTRAINTS,
                field="nameConstraints",
                hint="leave them out (meshrules adds them) or ask for exactly the mesh's subtree",
            )


def sign_intermediate(
    ca: CertificateAuthority,
    csr_pem: str | bytes,
    mesh: MeshIdentity,
    *,
    policy: SigningPolicy | None = None,
    ttl: timedelta | None = None,
    now: datetime | None = None,
) -> IssuedChain:
    """Management side: check the CSR for ``mesh`` and issue its intermediate from ``ca``.

    ``ttl`` is the requested lifetime (default: the policy's maximum). The certificate never
    outlives the CA's own path: its notAfter is the earlier of now + TTL and the CA's expiry.
    """
    policy = policy or SigningPolicy()
    csr = check_csr(csr_pem, mesh, policy=policy, ttl=ttl)
    now = now or datetime.now(UTC)
    lifetime = policy.max_ttl if ttl is None else ttl
    not_after = min(now + lifetime, ca.not_after)
    subject_attrs = [x509.NameAttribute(NameOID.COMMON_NAME, _common_name(mesh))]
    org = ca.root.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    if org:
        subject_attrs.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, str(org[0].value)))
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(subject_attrs))
        .issuer_name(ca.certificate.subject)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(max(now - CLOCK_SKEW, ca.certificate.not_valid_before_utc))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(INTERMEDIATE_KEY_USAGE, critical=True)
        .add_extension(_san(mesh), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(csr.public_key()), critical=False)
        .add_extension(_authority_key_id(ca.certificate), critical=False)
    )
    constraints = expected_name_constraints(mesh)
    if policy.name_constraints and constraints is not None:
        builder = builder.add_extension(constraints, critical=True)
    cert = builder.sign(ca.key, signature_hash(ca.key))
    chain = tuple(cert_pem(c) for c in ca.chain)
    if not ca.is_root:
        chain = (cert_pem(ca.certificate), *chain)
    return IssuedChain(certificate=cert_pem(cert), chain=chain, root=ca.root_pem, not_after=cert.not_valid_after_utc)


def _authority_key_id(issuer: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    # Chain builders (OpenSSL, Go) match AKI to the issuer's SKI; an imported CA's SKI may not be
    # the SHA-1 of its key, so copy it when there is one.
    try:
        ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.public_key())  # type: ignore[arg-type]
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
