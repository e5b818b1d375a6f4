"""Istio control planes and gateways, on the rendered istiod and on small variations of it."""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from discovery_builders import (
    ISTIO_CP,
    Discover,
    Kube,
    codes,
    configmap,
    deployment,
    dump,
    eastwest_gateway,
    istiod,
    ns,
)

from meshrules.errors import Severity
from meshrules.model.discovery import GatewayKind, MeshType


def test_rendered_istiod_is_an_istio_mesh(kube: Kube, run: Discover) -> None:
    found = run(c1=kube(ISTIO_CP))
    assert [m.name for m in found.meshes] == ["istiod-istio-system-c1"]
    mesh = found.meshes[0]
    assert mesh.type is MeshType.ISTIO
    assert mesh.cluster == "c1"
    assert mesh.namespace == "istio-system"
    assert mesh.control_plane == "istiod"
    assert mesh.version == "1.1.4"  # registry.istio.io/release/pilot:1.1.4
    assert mesh.revision == "default"
    assert mesh.trust_domain == "cluster.local"
    assert mesh.accepted_trust_domains == ("cluster.local",)
    assert mesh.root_namespace == "istio-control"  # the render's meshConfig.rootNamespace
    assert mesh.dns_capture is False
    assert mesh.trust_roots == ()
    assert mesh.issuer_scheme is None
    assert mesh.gateways == ()
    # istiod itself, its webhooks and RBAC are neither workloads nor destinations.
    assert found.workloads == () and found.destinations == ()
    assert found.diagnostics == ()


def _mesh_config(text: str) -> str:
    return dump(*istiod(mesh=text))


def test_trust_domain_aliases_and_ca_certificates_are_accepted(kube: Kube, run: Discover) -> None:
    mesh_text = """
trustDomain: east.example
trustDomainAliases: [old.example, east.example]
caCertificates:
- pem: "..."
  trustDomains: [west.example]
defaultConfig:
  proxyMetadata:
    ISTIO_META_DNS_CAPTURE: "true"
"""
    mesh = run(c1=kube(_mesh_config(mesh_text))).meshes[0]
    assert mesh.trust_domain == "east.example"
    assert mesh.accepted_trust_domains == ("east.example", "old.example", "west.example")
    # Only `trustDomainAliases` rewrite principals for authorization; `caCertificates` domains
    # only say which root verifies whose certificates (mTLS). The own domain is no alias.
    assert mesh.trust_domain_aliases == ("old.example",)
    assert mesh.dns_capture is True
    assert mesh.root_namespace == "istio-system"  # default: istiod's namespace


def test_skip_validate_trust_domain_accepts_every_domain(kube: Kube, run: Discover) -> None:
    objs = istiod(env={"PILOT_SKIP_VALIDATE_TRUST_DOMAIN": "true"})
    assert run(c1=kube(dump(*objs))).meshes[0].accepted_trust_domains == ("*",)


def test_skip_validate_trust_domain_keeps_the_aliases_for_authorization(kube: Kube, run: Discover) -> None:
    # Skipping the peer trust-domain check does not switch off ReplaceTrustDomainAliases.
    objs = istiod(env={"PILOT_SKIP_VALIDATE_TRUST_DOMAIN": "true"}, mesh="trustDomainAliases: [old.example]\n")
    mesh = run(c1=kube(dump(*objs))).meshes[0]
    assert (mesh.accepted_trust_domains, mesh.trust_domain_aliases) == (("*",), ("old.example",))


def test_missing_mesh_config_uses_defaults_with_a_finding(kube: Kube, run: Discover) -> None:
    found = run(c1=kube(dump(istiod()[0])))
    assert found.meshes[0].trust_domain == "cluster.local"
    assert codes(found) == ["MR0103"]
    assert "ConfigMap `istio` not found in namespace `istio-system`" in found.diagnostics[0].message


@pytest.mark.parametrize(
    ("mesh_text", "message"),
    [
        ("trustDomain: [unclosed", "`mesh` is not valid YAML"),
        ("- a list", "`mesh` should be a YAML object"),
        ("trustDomain: 42", "`trustDomain` in `mesh` should be a string"),
        ("trustDomainAliases: one.example", "`trustDomainAliases` in `mesh` should be a list"),
        ("defaultConfig: on", "`defaultConfig` in `mesh` should be an object"),
    ],
)
def test_broken_mesh_config_is_a_finding_not_an_error(kube: Kube, run: Discover, mesh_text: str, message: str) -> None:
    found = run(c1=kube(_mesh_config(mesh_text)))
    mesh = found.meshes[0]
    assert mesh.trust_domain == "cluster.local"
    assert [d.code for d in found.diagnostics] == ["MR0102"]
    diag = found.diagnostics[0]
    assert message in diag.message
    assert diag.field == "data.mesh"
    assert diag.location is not None and diag.location.file == "test.yaml" and diag.location.line > 1


def _pem() -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "meshrules test root")])
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode(), cert.fingerprint(hashes.SHA256()).hex()


def test_trust_roots_are_certificate_fingerprints(kube: Kube, run: Discover) -> None:
    (pem1, fp1), (pem2, fp2) = _pem(), _pem()
    roots = configmap("istio-ca-root-cert", "istio-system", {"root-cert.pem": pem1 + pem2 + pem1})
    mesh = run(c1=kube(dump(*istiod(), roots))).meshes[0]
    assert mesh.trust_roots == tuple(sorted({fp1, fp2}))


def test_unreadable_trust_root_is_a_finding(kube: Kube, run: Discover) -> None:
    pem, fp = _pem()
    broken = "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n"
    roots = configmap("istio-ca-root-cert", "istio-system", {"root-cert.pem": broken + pem})
    found = run(c1=kube(dump(*istiod(), roots)))
    assert found.meshes[0].trust_roots == (fp,)
    assert codes(found) == ["MR0104"]
    assert "certificate 1 is not valid base64" in found.diagnostics[0].message


def test_two_revisions_are_two_meshes(kube: Kube, run: Discover) -> None:
    objs = [*istiod("1-23", tag="1.23.4"), *istiod("1-24", tag="1.24.2", mesh="trustDomain: new.example\n")]
    found = run(c1=kube(dump(*objs)))
    assert [(m.name, m.revision, m.version, m.trust_domain) for m in found.meshes] == [
        ("istiod-1-23-istio-system-c1", "1-23", "1.23.4", "cluster.local"),
        ("istiod-1-24-istio-system-c1", "1-24", "1.24.2", "new.example"),
    ]


def test_istiod_without_pilot_image_is_not_a_mesh(kube: Kube, run: Discover) -> None:
    imposter = deployment("istiod", "istio-system", {"app": "istiod"}, image="nginx:1.27")
    assert run(c1=kube(dump(imposter))).meshes == ()


def test_eastwest_gateway_with_address(kube: Kube, run: Discover) -> None:
    found = run(c1=kube(dump(*istiod(), *eastwest_gateway(ip="203.0.113.1"))))
    (gateway,) = found.meshes[0].gateways
    assert gateway.kind is GatewayKind.EASTWEST
    assert (gateway.service, gateway.namespace, gateway.address, gateway.port) == (
        "istio-eastwestgateway",
        "istio-system",
        "203.0.113.1",
        15443,
    )
    assert gateway.workload_labels == {"app": "istio-eastwestgateway", "istio": "eastwestgateway"}
    assert found.workloads == ()  # the gateway's own proxy is never a workload
    assert found.diagnostics == ()


def test_gateway_without_address_is_a_warning_not_a_skip(kube: Kube, run: Discover) -> None:
    found = run(c1=kube(dump(*istiod(), *eastwest_gateway(ip=None))))
    (gateway,) = found.meshes[0].gateways
    assert gateway.address is None and gateway.port == 15443
    (diag,) = found.diagnostics
    assert diag.code == "MR0110"
    assert diag.severity is Severity.WARNING
    assert diag.message == "east-west gateway Service `istio-system/istio-eastwestgateway` has no address"
    assert diag.object == "Service istio-system/istio-eastwestgateway"
    assert diag.location is not None and diag.location.line > 0


def test_gateway_address_falls_back_to_hostname_then_external_ip(kube: Kube, run: Discover) -> None:
    dep, svc = eastwest_gateway(ip=None)
    svc["status"] = {"loadBalancer": {"ingress": [{"hostname": "ew.example.com"}]}}
    assert run(c1=kube(dump(*istiod(), dep, svc))).meshes[0].gateways[0].address == "ew.example.com"
    svc["status"] = {}
    svc["spec"]["externalIPs"] = ["198.51.100.7"]
    assert run(c1=kube(dump(*istiod(), dep, svc))).meshes[0].gateways[0].address == "198.51.100.7"


def test_eastwest_port_by_number_when_not_named_tls(kube: Kube, run: Discover) -> None:
    objs = eastwest_gateway(ports=({"name": "mtls", "port": 15443},))
    assert run(c1=kube(dump(*istiod(), *objs))).meshes[0].gateways[0].port == 15443
    objs = eastwest_gateway(ports=({"name": "https", "port": 443},))
    found = run(c1=kube(dump(*istiod(), *objs)))
    assert found.meshes[0].gateways[0].port is None
    assert codes(found) == ["MR0111"]


def test_ingress_gateway(kube: Kube, run: Discover) -> None:
    objs = eastwest_gateway(
        name="istio-ingressgateway",
        role="ingressgateway",
        ports=({"name": "status-port", "port": 15021}, {"name": "http2", "port": 80}, {"name": "https", "port": 443}),
    )
    (gateway,) = run(c1=kube(dump(*istiod(), *objs))).meshes[0].gateways
    assert (gateway.kind, gateway.port) == (GatewayKind.INGRESS, 80)


def test_gateway_belongs_to_the_revision_its_pods_name(kube: Kube, run: Discover) -> None:
    objs = [*istiod("1-23"), *istiod("1-24"), *eastwest_gateway(revision="1-24")]
    found = run(c1=kube(dump(*objs)))
    assert {m.revision: len(m.gateways) for m in found.meshes} == {"1-23": 0, "1-24": 1}


def test_gateway_of_a_missing_revision_is_a_finding(kube: Kube, run: Discover) -> None:
    found = run(c1=kube(dump(*istiod("1-23"), *eastwest_gateway(revision="canary"))))
    assert found.meshes[0].gateways == ()
    assert codes(found) == ["MR0112"]
    assert "revision `canary`" in found.diagnostics[0].message


def test_gateway_deployment_without_service_is_a_finding(kube: Kube, run: Discover) -> None:
    dep, _ = eastwest_gateway()
    found = run(c1=kube(dump(*istiod(), dep)))
    assert found.meshes[0].gateways == ()
    assert codes(found) == ["MR0113"]


def test_revision_tag_resolves_to_its_revision(kube: Kube, run: Discover) -> None:
    hook = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "istio-revision-tag-prod", "labels": {"istio.io/tag": "prod", "istio.io/rev": "1-24"}},
    }
    objs = [*istiod("1-23"), *istiod("1-24"), hook, ns("shop", {"istio.io/rev": "prod"})]
    objs.append(deployment("cart", "shop", {"app": "cart"}))
    found = run(c1=kube(dump(*objs)))
    assert [w.mesh for w in found.workloads] == ["istiod-1-24-istio-system-c1"]
