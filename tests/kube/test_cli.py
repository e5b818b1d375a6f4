"""The live commands end to end on emulated clusters: cluster register/list/deregister, snapshot, apply."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from meshrules.cli.apply import apply_command
from meshrules.cli.cluster import cluster_app
from meshrules.cli.controller import controller_command
from meshrules.cli.snapshot import snapshot_command
from meshrules.kube import resources as R

from .conftest import BOOKINFO, Emulators, bundled_objects, write_kubeconfig
from .emulator import Emulator
from .translate_stub import stub_translate


def cli() -> typer.Typer:
    """The commands under test on their own app (the lead registers them on `meshrules`)."""
    app = typer.Typer()
    app.add_typer(cluster_app, name="cluster")
    app.command("snapshot")(snapshot_command)
    app.command("apply")(apply_command)
    app.command("controller")(controller_command)
    return app


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli(), [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def kubeconfig(emulators: Emulators, tmp_path: Path) -> tuple[Path, Emulator, Emulator]:
    mgmt = emulators("mgmt")
    mgmt.seed([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "meshrules-system"}}])
    remote = emulators("cluster-1")
    remote.seed(bundled_objects("cluster-1"))
    return write_kubeconfig(tmp_path / "kubeconfig", {"mgmt": mgmt, "c1": remote}), mgmt, remote


def test_cluster_register_list_deregister(kubeconfig: tuple[Path, Emulator, Emulator]) -> None:
    file, mgmt, remote = kubeconfig
    code, out, err = run("cluster", "register", "cluster-1", "--remote-context", "c1", "--kubeconfig", file)
    assert code == 0, err
    assert "cluster `cluster-1` registered" in err and "Secret meshrules-system/cluster-1" in out
    tokens = [remote.admin_token, mgmt.admin_token, *remote.store.tokens]
    assert not any(t in out + err for t in tokens)

    code, out, _ = run("cluster", "list", "--kubeconfig", file, "-o", "json")
    assert code == 0 and '"name": "cluster-1"' in out and "kubeconfig" not in out

    code, out, err = run("cluster", "deregister", "cluster-1", "--remote-context", "c1", "--kubeconfig", file)
    assert code == 0, err
    assert "removed cluster-1: ClusterRole meshrules-remote-meshrules-system" in out
    assert mgmt.store.objects(R.KUBERNETES_CLUSTER) == []


def test_cluster_register_mesh_namespace(kubeconfig: tuple[Path, Emulator, Emulator]) -> None:
    file, _, remote = kubeconfig
    args = ("cluster", "register", "cluster-1", "--remote-context", "c1", "--kubeconfig", file)
    code, _, err = run(*args, "--mesh-namespace", "istio-canary")
    assert code == 2 and "cluster-1: Namespace istio-canary: mesh namespace `istio-canary` does not exist" in err
    remote.seed([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "istio-canary"}}])
    code, out, err = run(*args, "--mesh-namespace", "istio-canary", "--mesh-namespace", "istio-system")
    assert code == 0, err
    for ns in ("istio-canary", "istio-system"):
        assert f"cluster-1: Role {ns}/meshrules-remote-csr-exchange" in out
        assert f"cluster-1: RoleBinding {ns}/meshrules-remote-csr-exchange" in out


def test_deregister_with_the_stored_kubeconfig_reports_what_it_could_not_remove(
    kubeconfig: tuple[Path, Emulator, Emulator],
) -> None:
    file, mgmt, remote = kubeconfig
    assert run("cluster", "register", "cluster-1", "--remote-context", "c1", "--kubeconfig", file)[0] == 0
    code, _, err = run("cluster", "deregister", "cluster-1", "--kubeconfig", file)
    assert code == 0, err
    assert "warning: left cluster-1: ClusterRole objects labelled" in err
    assert remote.store.get(R.SERVICE_ACCOUNT, "meshrules-system", "meshrules-remote")
    assert mgmt.store.objects(R.KUBERNETES_CLUSTER) == []


def test_unknown_cluster_is_exit_2(kubeconfig: tuple[Path, Emulator, Emulator]) -> None:
    file, _, _ = kubeconfig
    code, _, err = run("cluster", "deregister", "nope", "--skip-remote", "--kubeconfig", file)
    assert code == 2 and "cluster `nope` is not registered" in err


def test_snapshot_command(kubeconfig: tuple[Path, Emulator, Emulator], tmp_path: Path) -> None:
    file, _, _ = kubeconfig
    out_dir = tmp_path / "scn" / "clusters" / "cluster-1"
    code, out, err = run("snapshot", "--context", "c1", "--out", out_dir, "--kubeconfig", file)
    assert code == 0, err
    assert "ns-bookinfo.yaml" in out and "objects to" in err
    assert (out_dir / "cluster-scoped.yaml").exists()


def test_apply_dry_run_then_apply_then_nothing_to_do(
    kubeconfig: tuple[Path, Emulator, Emulator], monkeypatch: pytest.MonkeyPatch
) -> None:
    file, _, remote = kubeconfig
    monkeypatch.setattr("meshrules.cli.apply.default_translate", lambda: stub_translate)
    assert (
        run("cluster", "register", "cluster-1", "--remote-context", "c1", "--kubeconfig", file, "--region", "us-east1")[
            0
        ]
        == 0
    )
    mark = remote.mark()
    code, out, err = run("apply", BOOKINFO, "--context", "mgmt", "--kubeconfig", file, "--dry-run")
    assert code == 0, err
    assert "+++ create cluster-1/DestinationRule bookinfo/reviews-meshrules" in out
    assert remote.writes(since=mark) == []

    code, out, err = run("apply", BOOKINFO, "--context", "mgmt", "--kubeconfig", file)
    assert code == 0, err
    assert remote.store.get(R.ISTIO_DESTINATION_RULE, "bookinfo", "reviews-meshrules")
    mark = remote.mark()
    code, out, _ = run("apply", BOOKINFO / "policies", "--context", "mgmt", "--kubeconfig", file)
    assert code == 0 and remote.writes(since=mark) == []


def test_apply_reports_an_object_it_does_not_own_and_exits_1(
    kubeconfig: tuple[Path, Emulator, Emulator], monkeypatch: pytest.MonkeyPatch
) -> None:
    file, _, remote = kubeconfig
    monkeypatch.setattr("meshrules.cli.apply.default_translate", lambda: stub_translate)
    remote.seed(
        [
            {
                "apiVersion": "networking.istio.io/v1",
                "kind": "DestinationRule",
                "metadata": {"name": "reviews-meshrules", "namespace": "bookinfo"},
                "spec": {"host": "mine"},
            }
        ]
    )
    assert run("cluster", "register", "cluster-1", "--remote-context", "c1", "--kubeconfig", file)[0] == 0
    code, _, err = run("apply", BOOKINFO, "--context", "mgmt", "--kubeconfig", file)
    assert code == 1
    assert "warning: cluster-1: DestinationRule bookinfo/reviews-meshrules: exists without label" in err
    assert remote.store.get(R.ISTIO_DESTINATION_RULE, "bookinfo", "reviews-meshrules")["spec"] == {"host": "mine"}


def test_apply_runs_the_whole_pipeline_and_writes_only_owned_objects(
    kubeconfig: tuple[Path, Emulator, Emulator],
) -> None:
    from meshrules.emit.naming import OWNER_LABEL

    file, _, remote = kubeconfig
    assert run("cluster", "register", "cluster-1", "--remote-context", "c1", "--kubeconfig", file)[0] == 0
    before = {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in remote.store.objects()}
    code, _, err = run("apply", BOOKINFO, "--context", "mgmt", "--kubeconfig", file)
    assert code == 0, err
    # Only cluster-1 is registered: details lives there, so its policy is accepted.
    assert "TrafficPolicy bookinfo/details-resilience: ACCEPTED" in err
    new = [
        o
        for o in remote.store.objects()
        if (o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) not in before
        and o["apiVersion"].split("/")[0] in ("networking.istio.io", "security.istio.io")
    ]
    assert {o["kind"] for o in new} >= {"DestinationRule", "AuthorizationPolicy"}
    assert all(o["metadata"]["labels"][OWNER_LABEL] == "meshrules-system" for o in new)
    # Applying the same input again changes nothing.
    mark = remote.mark()
    assert run("apply", BOOKINFO, "--context", "mgmt", "--kubeconfig", file)[0] == 0
    assert [w for w in remote.writes(since=mark) if "istio.io" in w.path] == []


def test_controller_refuses_a_bad_health_address(kubeconfig: tuple[Path, Emulator, Emulator]) -> None:
    file, _, _ = kubeconfig
    code, _, err = run("controller", "--context", "mgmt", "--kubeconfig", file, "--health-address", "nowhere")
    assert code == 2 and "is not HOST:PORT" in err
