"""Scenarios for `why` tests: the bundled one, and small variations of it written to a temporary directory.

Each variation changes one thing of `simulator/scenarios/bookinfo-multicluster` (a mesh setting, a
gateway address, a user object, a policy field) so that a test reads as "given this change, `why`
answers that code".
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from meshrules.kube.scenario import load_scenario
from meshrules.pipeline import analyse
from meshrules.pipeline.query import Simulation, simulate
from meshrules.sim.why import Query
from meshrules.testing import Topology

BOOKINFO = Path(__file__).resolve().parents[2] / "simulator" / "scenarios" / "bookinfo-multicluster"
PRODUCTPAGE = "cluster-1/bookinfo/productpage-v1"
REVIEWS_V2 = "cluster-2/bookinfo/reviews-v2"
REVIEWS_V1 = "cluster-1/bookinfo/reviews-v1"


@cache
def bookinfo() -> Simulation:
    """The bundled scenario through the whole pipeline (shared: treat as read-only)."""
    return simulate(analyse(load_scenario(BOOKINFO)))


def load(path: Path) -> Simulation:
    """A scenario directory through the whole pipeline."""
    return simulate(analyse(load_scenario(path)))


def q(source: str, target: str, port: int | None = None, method: str = "GET", path: str = "/",
      **headers: str) -> Query:
    """A `why` query; keyword arguments are headers (``end_user="jason"`` is ``end-user: jason``)."""
    named = tuple(sorted((k.replace("_", "-"), v) for k, v in headers.items()))
    return Query(source, target, port, method, path, named)


class Variation:
    """A copy of the bundled scenario to change before loading."""

    def __init__(self, root: Path) -> None:
        self.root = root
        shutil.copytree(BOOKINFO, root)

    def edit(self, rel: str, change: Callable[[dict[str, Any]], None], *, kind: str, name: str) -> Variation:
        """Apply ``change`` to the document ``kind``/``name`` of file ``rel``."""
        path = self.root / rel
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
        hits = [d for d in docs if d.get("kind") == kind and d.get("metadata", {}).get("name") == name]
        assert hits, f"no {kind} {name} in {rel}"
        for d in hits:
            change(d)
        path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
        return self

    def add(self, rel: str, docs: Iterable[dict[str, Any]]) -> Variation:
        """Write ``docs`` to a new file ``rel``."""
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump_all(list(docs), sort_keys=False))
        return self

    def simulate(self) -> Simulation:
        """Load the changed scenario through the pipeline."""
        return load(self.root)


def mesh_config(change: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    """A change of the `mesh` key of Istio's ConfigMap `istio` (YAML inside YAML)."""

    def apply(doc: dict[str, Any]) -> None:
        config = yaml.safe_load(doc["data"]["mesh"])
        change(config)
        doc["data"]["mesh"] = yaml.safe_dump(config, sort_keys=False)

    return apply


def self_signed_pem(common_name: str) -> str:
    """A fresh self-signed CA certificate (PEM): a trust root no other mesh shares."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def root_cert_configmap(pem: str) -> dict[str, Any]:
    """Istio's published root (`istio-ca-root-cert` in the istiod namespace)."""
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "istio-ca-root-cert", "namespace": "istio-system"},
            "data": {"root-cert.pem": pem}}


def user_object(kind: str, api_version: str, namespace: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """An object a user already has in a cluster."""
    return {"apiVersion": api_version, "kind": kind, "metadata": {"name": name, "namespace": namespace},
            "spec": spec}


def two_linkerd_clusters(root: Path, *, mode: str = "gateway") -> Variation:
    """emojivoto on cluster-3 and a copy on cluster-4 (gateway 203.0.113.4), one VirtualMesh, shared trust.

    web on cluster-3 may call emoji-svc and voting-svc in any cluster.
    """
    v = Variation(root)
    shutil.copytree(root / "clusters" / "cluster-3", root / "clusters" / "cluster-4")
    cluster_yaml = root / "clusters" / "cluster-4" / "cluster.yaml"
    cluster_yaml.write_text(cluster_yaml.read_text().replace("name: cluster-3", "name: cluster-4"))

    def readdress(doc: dict[str, Any]) -> None:
        doc["status"]["loadBalancer"]["ingress"][0]["ip"] = "203.0.113.4"

    def both(doc: dict[str, Any]) -> None:
        doc["spec"]["meshes"].append({"name": "linkerd-destination-linkerd-cluster-4", "namespace": "meshrules-system"})
        doc["spec"]["trust"] = {"shared": {"rootCertificateAuthority": {"generated": {}}}}
        doc["spec"]["federation"] = {"linkerd": {"mode": mode}}

    def anywhere(doc: dict[str, Any]) -> None:
        for selector in doc["spec"]["destinationSelector"]:
            for ref in selector["services"]:
                ref.pop("cluster", None)

    return (v.edit("clusters/cluster-4/linkerd-multicluster.yaml", readdress, kind="Service", name="linkerd-gateway")
            .edit("policies/virtual-meshes.yaml", both, kind="VirtualMesh", name="emojivoto")
            .edit("policies/access.yaml", anywhere, kind="AccessPolicy", name="web-calls-emoji-and-voting"))


def write_topology(topology: Topology, root: Path, policies: Iterable[dict[str, Any]] | None = None) -> Path:
    """A generated topology laid out as a scenario directory (``policies`` replaces its policies)."""
    for cluster, objects in topology.clusters.items():
        directory = root / "clusters" / cluster
        directory.mkdir(parents=True)
        (directory / "objects.yaml").write_text(yaml.safe_dump_all(list(objects), sort_keys=True))
    (root / "policies").mkdir(parents=True, exist_ok=True)
    chosen = list(topology.policies if policies is None else policies)
    (root / "policies" / "all.yaml").write_text(yaml.safe_dump_all(chosen, sort_keys=True))
    return root


def generated(topology: Topology, root: Path, policies: Iterable[dict[str, Any]] | None = None,
              *, memoise: bool = True) -> Simulation:
    """A generated topology through the whole pipeline."""
    write_topology(topology, root, policies)
    return simulate(analyse(load_scenario(root)), memoise=memoise)
