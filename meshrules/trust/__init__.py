"""Shared trust (spec §3.1 `trust`, §4 Trust): root CA, mesh intermediates through CSRs, mesh CA
objects, rotation and trust status.

Above `engine` and beside `sim` and `emit`; the only package that uses `cryptography`. Pure logic:
clusters are reached through the `TrustCluster` Protocol (live implementation in `meshrules.kube`,
in-memory `FakeCluster` here). See docs/trust.md.
"""

from meshrules.discovery.trust_bundle import (
    ReportedChain,
    bundle_fingerprints,
    bundles_overlap,
    fingerprint_der,
    trust_each_other,
)
from meshrules.trust.agent import (
    discard_pending,
    install_intermediate,
    issuer_root,
    prepare_intermediate,
    read_bundle,
    write_bundle,
    written_chain,
)
from meshrules.trust.ca import CertificateAuthority, RootSettings
from meshrules.trust.cluster import TrustCluster
from meshrules.trust.csr import (
    IntermediateRequest,
    IssuedChain,
    SigningPolicy,
    check_csr,
    create_intermediate_request,
    expected_name_constraints,
    sign_intermediate,
)
from meshrules.trust.fake import FakeCluster
from meshrules.trust.keys import KeyType
from meshrules.trust.mesh import IssuerScheme, MeshIdentity
from meshrules.trust.objects import ConfigMapObject, SecretObject, ca_objects
from meshrules.trust.pem import Validity, certificate_validity
from meshrules.trust.rotation import (
    PhaseRecord,
    RotationPhase,
    RotationScope,
    RotationStatus,
    advance_rotation,
    enroll_mesh,
    next_phase,
    rollback_rotation,
    run_rotation,
    start_rotation,
)
from meshrules.trust.status import (
    MeshTrustInput,
    TrustMode,
    TrustReport,
    VirtualMeshTrustInput,
    mesh_trust_input,
    trust_status,
)

__all__ = [
    "CertificateAuthority",
    "ConfigMapObject",
    "FakeCluster",
    "IntermediateRequest",
    "IssuedChain",
    "IssuerScheme",
    "KeyType",
    "MeshIdentity",
    "MeshTrustInput",
    "PhaseRecord",
    "ReportedChain",
    "RootSettings",
    "RotationPhase",
    "RotationScope",
    "RotationStatus",
    "SecretObject",
    "SigningPolicy",
    "TrustCluster",
    "TrustMode",
    "TrustReport",
    "Validity",
    "VirtualMeshTrustInput",
    "advance_rotation",
    "bundle_fingerprints",
    "bundles_overlap",
    "ca_objects",
    "certificate_validity",
    "check_csr",
    "create_intermediate_request",
    "discard_pending",
    "enroll_mesh",
    "expected_name_constraints",
    "fingerprint_der",
    "install_intermediate",
    "issuer_root",
    "mesh_trust_input",
    "next_phase",
    "prepare_intermediate",
    "read_bundle",
    "rollback_rotation",
    "run_rotation",
    "sign_intermediate",
    "start_rotation",
    "trust_each_other",
    "trust_status",
    "write_bundle",
    "written_chain",
]
