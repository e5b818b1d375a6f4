"""Linkerd control planes and the multicluster gateway, on the rendered `linkerd install` output."""

from __future__ import annotations

import yaml
from discovery_builders import LINKERD_CP, LINKERD_MC, Discover, Kube, codes, dump

from meshrules.model.discovery import GatewayKind, MeshType
from meshrules.model.source import KubeObject

# sha256 of the DER of the golden's test trust anchor (`linkerd-identity-trust-roots`), checked
# against `cryptography`'s fingerprint when this test was written.
GOLDEN_ROOT = "946daad71e4bf3360abe98d657bc422e7c3ffcbde7c5be380d7dcdb8b823814d"


def test_rendered_linkerd_is_a_linkerd_mesh(kube: Kube, run: Discover) -> None:
    found = run(c3=kube(LINKERD_CP, "c3"))
    assert [m.name for m in found.meshes] == ["linkerd-destination-linkerd-c3"]
    mesh = found.meshes[0]
    assert mesh.type is MeshType.LINKERD
    assert (mesh.cluster, mesh.namespace, mesh.control_plane) == ("c3", "linkerd", "linkerd-destination")
    assert mesh.trust_domain == "cluster.local"  # values: identityTrustDomain
    assert mesh.accepted_trust_domains == ("cluster.local",)
    assert mesh.issuer_scheme == "linkerd.io/tls"  # values: identity.issuer.scheme
    assert mesh.version == "install-control-plane-version"  # the golden's placeholder image tag
    assert mesh.revision is None and mesh.root_namespace is None
    assert mesh.trust_roots == (GOLDEN_ROOT,)
    # linkerd-identity, -destination and -proxy-injector carry linkerd-proxy but are the control plane.
    assert found.workloads == () and found.destinations == ()
    assert found.diagnostics == ()


def test_trust_root_fingerprint_matches_cryptography(kube: Kube) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    roots = next(o for o in kube(LINKERD_CP) if o.name == "linkerd-identity-trust-roots")
    cert = x509.load_pem_x509_certificate(roots.body["data"]["ca-bundle.crt"].encode())
    assert cert.fingerprint(hashes.SHA256()).hex() == GOLDEN_ROOT


def _with_values(objects: list[KubeObject], **changes: object) -> str:
    """The control plane as YAML, with `linkerd-config` values changed."""
    docs = []
    for obj in objects:
        body = dict(obj.body)
        if obj.name == "linkerd-config":
            values = yaml.safe_load(body["data"]["values"])
            for path, value in changes.items():
                cur = values
                *parents, last = path.split("__")
                for part in parents:
                    cur = cur[part]
                cur[last] = value
            body["data"] = {**body["data"], "values": yaml.safe_dump(values)}
        docs.append(body)
    return dump(*docs)


def test_trust_domain_and_issuer_scheme_come_from_values(kube: Kube, run: Discover) -> None:
    text = _with_values(
        kube(LINKERD_CP), identityTrustDomain="west.example", identity__issuer__scheme="kubernetes.io/tls"
    )
    found = run(c3=kube(text, "c3"))
    mesh = found.meshes[0]
    assert (mesh.trust_domain, mesh.issuer_scheme) == ("west.example", "kubernetes.io/tls")
    assert found.diagnostics == ()


def test_multicluster_gateway_without_address(kube: Kube, run: Discover) -> None:
    found = run(c3=[*kube(LINKERD_CP, "c3"), *kube(LINKERD_MC, "c3")])
    (gateway,) = found.meshes[0].gateways
    assert gateway.kind is GatewayKind.LINKERD_GATEWAY
    assert (gateway.service, gateway.namespace, gateway.port, gateway.address) == (
        "linkerd-gateway",
        "linkerd-multicluster",
        4143,
        None,
    )
    assert gateway.workload_labels == {"app": "linkerd-gateway", "linkerd.io/extension": "multicluster"}
    assert codes(found) == ["MR0110"]
    # The gateway and the local service mirror (meshed by annotation) are not workloads.
    assert found.workloads == ()


def test_multicluster_gateway_with_address(kube: Kube, run: Discover) -> None:
    docs = [dict(o.body) for o in kube(LINKERD_MC)]
    for doc in docs:
        if doc["kind"] == "Service" and doc["metadata"]["name"] == "linkerd-gateway":
            doc["status"] = {"loadBalancer": {"ingress": [{"ip": "203.0.113.3"}]}}
    found = run(c3=[*kube(LINKERD_CP, "c3"), *kube(dump(*docs), "c3")])
    assert found.meshes[0].gateways[0].address == "203.0.113.3"
    assert found.diagnostics == ()


def test_multicluster_gateway_without_control_plane(kube: Kube, run: Discover) -> None:
    found = run(c3=kube(LINKERD_MC, "c3"))
    assert found.meshes == ()
    assert codes(found) == ["MR0112"]


def test_linkerd_destination_outside_a_control_plane_namespace_is_not_a_mesh(kube: Kube, run: Discover) -> None:
    docs = [dict(o.body) for o in kube(LINKERD_CP) if o.kind == "Deployment" and o.name == "linkerd-destination"]
    docs[0]["metadata"] = {**docs[0]["metadata"], "namespace": "tools"}
    assert run(c3=kube(dump(*docs), "c3")).meshes == ()


def test_old_linkerd_without_trust_roots_configmap_reads_values(kube: Kube, run: Discover) -> None:
    objs = [o for o in kube(LINKERD_CP, "c3") if o.name != "linkerd-identity-trust-roots"]
    assert run(c3=objs).meshes[0].trust_roots == (GOLDEN_ROOT,)  # values: identityTrustAnchorsPEM
