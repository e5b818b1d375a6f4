"""Registration, then deregistration, leaves exactly the expected objects — and then none."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from meshrules.emit.naming import OWNER_LABEL
from meshrules.errors import ClusterError, UsageError
from meshrules.kube import resources as R
from meshrules.kube.apply import apply_outputs
from meshrules.kube.client import KubeCluster
from meshrules.kube.deploy import manifests
from meshrules.kube.registration import deregister, list_clusters, register, registered_kubeconfig
from meshrules.model.discovery import CLUSTER_LABEL

from .conftest import FAST, Emulators, connect
from .emulator import Emulator

Key = tuple[str, str, str]


def inventory(emu: Emulator) -> set[Key]:
    """Every object of the emulated cluster as (kind, namespace, name)."""
    return {(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]) for o in emu.store.objects()}


def namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


@pytest.fixture
def clusters(emulators: Emulators) -> tuple[Emulator, Emulator]:
    remote = emulators("cluster-1", tls=True)
    remote.seed([namespace("bookinfo"), namespace("linkerd-multicluster"), namespace("istio-system")])
    mgmt = emulators("mgmt")
    mgmt.seed([namespace("meshrules-system")])
    return remote, mgmt


def test_register_then_deregister_leaves_exactly_the_expected_objects(
    clusters: tuple[Emulator, Emulator], tmp_path: Path
) -> None:
    remote_emu, mgmt_emu = clusters
    remote, mgmt = connect(remote_emu, tmp_path), connect(mgmt_emu, tmp_path)
    remote_before, mgmt_before = inventory(remote_emu), inventory(mgmt_emu)

    done = register("cluster-1", remote, mgmt, server=remote.server, region="us-east1")

    assert inventory(remote_emu) - remote_before == {
        ("Namespace", "", "meshrules-system"),
        ("ServiceAccount", "meshrules-system", "meshrules-remote"),
        ("Secret", "meshrules-system", "meshrules-remote-token"),
        ("ClusterRole", "", "meshrules-remote-meshrules-system"),
        ("ClusterRoleBinding", "", "meshrules-remote-meshrules-system"),
        ("Role", "linkerd-multicluster", "meshrules-remote-meshrules-system"),
        ("RoleBinding", "linkerd-multicluster", "meshrules-remote-meshrules-system"),
        # The CSR exchange in the mesh namespace that exists (`linkerd` does not).
        ("Role", "istio-system", "meshrules-remote-csr-exchange"),
        ("RoleBinding", "istio-system", "meshrules-remote-csr-exchange"),
    }
    assert inventory(mgmt_emu) - mgmt_before == {
        ("Secret", "meshrules-system", "cluster-1"),
        ("KubernetesCluster", "meshrules-system", "cluster-1"),
    }
    assert done.writes == 11
    (row,) = list_clusters(mgmt)
    assert (row.name, row.secret_name, row.has_secret, row.region) == ("cluster-1", "cluster-1", True, "us-east1")

    # The stored kubeconfig reaches the remote cluster over TLS with the token and the inlined CA.
    via_secret = KubeCluster.from_kubeconfig_text(registered_kubeconfig(mgmt, "cluster-1"), name="c1", timeouts=FAST)
    assert via_secret.get(R.NAMESPACE, "bookinfo") is not None

    # Outputs meshrules owns there, a patched user Service, and a user object it must not touch.
    remote_emu.seed(
        [
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "reviews", "namespace": "bookinfo", "labels": {"app": "reviews"}},
                "spec": {"ports": [{"port": 9080}]},
            },
            {
                "apiVersion": "networking.istio.io/v1",
                "kind": "VirtualService",
                "metadata": {"name": "users", "namespace": "bookinfo"},
                "spec": {"hosts": ["x"]},
            },
        ]
    )
    user_objects = {("Service", "bookinfo", "reviews"), ("VirtualService", "bookinfo", "users")}
    export = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "reviews", "namespace": "bookinfo", "labels": {"mirror.linkerd.io/exported": "true"}},
    }
    output = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": {"name": "reviews", "namespace": "bookinfo"},
        "spec": {"host": "reviews"},
    }
    apply_outputs(via_secret, [output], [export])

    gone = deregister("cluster-1", mgmt, remote)

    assert not gone.failed
    assert inventory(remote_emu) == remote_before | user_objects
    assert inventory(mgmt_emu) == mgmt_before
    service = remote.get(R.SERVICE, "reviews", "bookinfo")
    assert service is not None and service["metadata"]["labels"] == {"app": "reviews"}
    assert list_clusters(mgmt) == []


def exchange_roles(emu: Emulator) -> set[Key]:
    """The CSR-exchange Roles and RoleBindings of the emulated cluster."""
    return {k for k in inventory(emu) if k[0] in ("Role", "RoleBinding") and k[2] == "meshrules-remote-csr-exchange"}


def test_the_exchange_roles_are_the_objects_deploy_agent_renders(
    clusters: tuple[Emulator, Emulator], tmp_path: Path
) -> None:
    remote_emu, mgmt_emu = clusters
    remote_emu.seed([namespace("linkerd")])
    register("cluster-1", connect(remote_emu, tmp_path), connect(mgmt_emu, tmp_path), server=remote_emu.url)

    def essence(obj: dict[str, Any]) -> dict[str, Any]:
        # Everything but the labels (registration's name the cluster; deploy's the app) and server fields.
        meta = obj["metadata"]
        body = {k: v for k, v in obj.items() if k in ("apiVersion", "kind", "rules", "roleRef", "subjects")}
        return {**body, "metadata": {"name": meta["name"], "namespace": meta["namespace"]}}

    rendered = [
        essence(o) for o in manifests()["agent/rbac.yaml"] if o["metadata"]["name"] == "meshrules-remote-csr-exchange"
    ]
    live = [
        essence(o)
        for o in remote_emu.store.objects()
        if o["kind"] in ("Role", "RoleBinding") and o["metadata"]["name"] == "meshrules-remote-csr-exchange"
    ]
    assert len(rendered) == 4
    key = lambda o: (o["kind"], o["metadata"]["namespace"])  # noqa: E731
    assert sorted(live, key=key) == sorted(rendered, key=key)


def test_control_plane_and_requested_namespaces_get_the_exchange_role(
    clusters: tuple[Emulator, Emulator], tmp_path: Path
) -> None:
    remote_emu, mgmt_emu = clusters
    remote_emu.seed(
        [
            # An istiod revision outside istio-system; a Linkerd control plane outside `linkerd`.
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "istiod-canary", "namespace": "istio-canary", "labels": {"app": "istiod"}},
                "spec": {},
            },
            # Labelled like istiod but not named like it: discovery would not call it a mesh either.
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "sidecar", "namespace": "bookinfo", "labels": {"app": "istiod"}},
                "spec": {},
            },
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": "linkerd-edge", "labels": {"linkerd.io/is-control-plane": "true"}},
            },
            namespace("mesh-x"),
        ]
    )
    done = register(
        "cluster-1",
        connect(remote_emu, tmp_path),
        connect(mgmt_emu, tmp_path),
        server=remote_emu.url,
        mesh_namespaces=["mesh-x", "istio-system"],
    )
    want = {"istio-system", "istio-canary", "linkerd-edge", "mesh-x"}
    assert exchange_roles(remote_emu) == {
        (k, ns, "meshrules-remote-csr-exchange") for k in ("Role", "RoleBinding") for ns in want
    }
    assert {k.namespace for k in done.remote if k.name == "meshrules-remote-csr-exchange"} == want


def test_a_requested_mesh_namespace_that_does_not_exist_stops_registration_unwritten(
    clusters: tuple[Emulator, Emulator], tmp_path: Path
) -> None:
    remote_emu, mgmt_emu = clusters
    marks = remote_emu.mark(), mgmt_emu.mark()
    with pytest.raises(UsageError) as err:
        register(
            "cluster-1",
            connect(remote_emu, tmp_path),
            connect(mgmt_emu, tmp_path),
            server=remote_emu.url,
            mesh_namespaces=["istio-typo", "Not_A_Name"],
        )
    assert err.value.code == "MR0813"
    assert "`istio-typo`, `Not_A_Name`" in str(err.value)
    assert remote_emu.writes(since=marks[0]) == [] and mgmt_emu.writes(since=marks[1]) == []


def test_registering_after_deploy_agent_adopts_its_exchange_roles_and_deregistering_removes_them(
    clusters: tuple[Emulator, Emulator], tmp_path: Path
) -> None:
    remote_emu, mgmt_emu = clusters
    # `kubectl apply -k deploy/agent` first (its namespace and the agent's own objects too).
    agent_objects = [o for path in ("agent/namespace.yaml", "agent/rbac.yaml") for o in manifests()[path]]
    remote_emu.seed(agent_objects)
    remote, mgmt = connect(remote_emu, tmp_path), connect(mgmt_emu, tmp_path)

    register("cluster-1", remote, mgmt, server=remote.server)

    role = remote.get(R.ROLE, "meshrules-remote-csr-exchange", "linkerd")
    assert role is not None and role["metadata"]["labels"][CLUSTER_LABEL] == "cluster-1"
    deregister("cluster-1", mgmt, remote)
    assert exchange_roles(remote_emu) == set()
    # The agent's own Roles are not registration's: they stay.
    assert remote.get(R.ROLE, "meshrules-agent", "linkerd") is not None


def test_registering_twice_writes_nothing(clusters: tuple[Emulator, Emulator], tmp_path: Path) -> None:
    remote_emu, mgmt_emu = clusters
    remote, mgmt = connect(remote_emu, tmp_path), connect(mgmt_emu, tmp_path)
    register("cluster-1", remote, mgmt, server=remote.server)
    marks = remote_emu.mark(), mgmt_emu.mark()
    again = register("cluster-1", remote, mgmt, server=remote.server)
    assert again.writes == 0
    assert remote_emu.writes(since=marks[0]) == [] and mgmt_emu.writes(since=marks[1]) == []


def test_an_existing_object_meshrules_does_not_own_stops_registration(
    clusters: tuple[Emulator, Emulator], tmp_path: Path
) -> None:
    remote_emu, mgmt_emu = clusters
    theirs = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "meshrules-remote-meshrules-system"},
        "rules": [],
    }
    remote_emu.seed([theirs])
    before = remote_emu.store.get(R.CLUSTER_ROLE, "", "meshrules-remote-meshrules-system")
    with pytest.raises(ClusterError) as err:
        register("cluster-1", connect(remote_emu, tmp_path), connect(mgmt_emu, tmp_path), server=remote_emu.url)
    assert err.value.code == "MR0806" and "ClusterRole meshrules-remote-meshrules-system" in str(err.value)
    assert remote_emu.store.get(R.CLUSTER_ROLE, "", "meshrules-remote-meshrules-system") == before


def test_deregistering_the_management_cluster_itself_keeps_other_clusters(emulators: Emulators, tmp_path: Path) -> None:
    mgmt_emu = emulators("mgmt")
    other_emu = emulators("cluster-2")
    mgmt, other = connect(mgmt_emu, tmp_path), connect(other_emu, tmp_path)
    register("cluster-2", other, mgmt, server=other.server)
    register("cluster-1", mgmt, mgmt, server=mgmt.server)
    deregister("cluster-1", mgmt, mgmt)
    assert [c.name for c in list_clusters(mgmt)] == ["cluster-2"]
    assert mgmt.get(R.SECRET, "cluster-2", "meshrules-system") is not None
    # The management namespace was created by meshrules, not by the registration of cluster-1.
    namespace = mgmt.get(R.NAMESPACE, "meshrules-system")
    assert namespace is not None and namespace["metadata"]["labels"] == {OWNER_LABEL: "meshrules-system"}


def test_deregistering_an_unknown_cluster_is_a_usage_error(emulator: Emulator, tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        deregister("nope", connect(emulator, tmp_path), None)


def test_a_cluster_name_must_be_a_dns_label(emulator: Emulator, tmp_path: Path) -> None:
    cluster = connect(emulator, tmp_path)
    with pytest.raises(UsageError):
        register("Not_Valid", cluster, cluster, server=cluster.server)
