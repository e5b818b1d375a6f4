"""`snapshot`: a live cluster becomes a scenario cluster directory that discovers like the original files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from meshrules.errors import UsageError
from meshrules.kube import resources as R
from meshrules.kube.live import LiveCluster, live_scenario, read_objects
from meshrules.kube.scenario import load_scenario
from meshrules.kube.snapshot import snapshot
from meshrules.pipeline import analyse

from .conftest import BOOKINFO, Emulators, bundled_objects, connect

SECRET = {
    "apiVersion": "v1",
    "kind": "Secret",
    "metadata": {"name": "cacerts", "namespace": "istio-system"},
    "data": {"ca-key.pem": "c2VjcmV0LWtleQ=="},
}


def test_snapshot_round_trips_discovery(emulators: Emulators, tmp_path: Path) -> None:
    emu = emulators("cluster-1")
    emu.seed([*bundled_objects("cluster-1"), SECRET])
    out = tmp_path / "scenario" / "clusters" / "cluster-1"
    result = snapshot(connect(emu, tmp_path), out)
    shutil.copy(BOOKINFO / "clusters" / "cluster-1" / "cluster.yaml", out / "cluster.yaml")

    original = analyse(load_scenario(BOOKINFO)).discovery
    captured = load_scenario(tmp_path / "scenario")
    assert captured.ok, captured.diagnostics
    again = analyse(captured).discovery
    want = [x for x in original.clusters + original.meshes if x.name.endswith("cluster-1") or x.name == "cluster-1"]
    assert list(again.clusters + again.meshes) == want
    assert again.workloads == tuple(w for w in original.workloads if w.cluster == "cluster-1")
    assert again.destinations == tuple(d for d in original.destinations if d.cluster == "cluster-1")
    assert "Secret" not in result.counts
    assert "ca-key" not in "".join(p.read_text() for p in out.iterdir())


def test_snapshot_layout_is_deterministic_and_strips_managed_fields(emulators: Emulators, tmp_path: Path) -> None:
    emu = emulators("cluster-1")
    emu.seed(bundled_objects("cluster-1"))
    cluster = connect(emu, tmp_path)
    first = snapshot(cluster, tmp_path / "a" / "cluster-1")
    second = snapshot(cluster, tmp_path / "b" / "cluster-1")
    assert first.files == second.files
    assert "cluster-scoped.yaml" in first.files and "ns-bookinfo.yaml" in first.files
    for name in first.files:
        text = (tmp_path / "a" / "cluster-1" / name).read_text()
        assert text == (tmp_path / "b" / "cluster-1" / name).read_text()
        assert "managedFields" not in text
        for doc in yaml.safe_load_all(text):
            ns = doc["metadata"].get("namespace")
            assert name == ("cluster-scoped.yaml" if ns is None else f"ns-{ns}.yaml")


def test_snapshot_removes_files_of_vanished_namespaces_and_keeps_cluster_yaml(
    emulators: Emulators, tmp_path: Path
) -> None:
    emu = emulators("cluster-1")
    out = tmp_path / "cluster-1"
    out.mkdir()
    (out / "ns-gone.yaml").write_text("{}\n")
    (out / "cluster.yaml").write_text("# mine\n")
    snapshot(connect(emu, tmp_path), out)
    assert not (out / "ns-gone.yaml").exists()
    assert (out / "cluster.yaml").read_text() == "# mine\n"


def test_snapshot_refuses_a_directory_that_is_not_a_cluster_name(emulators: Emulators, tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        snapshot(connect(emulators("c1"), tmp_path), tmp_path / "Not_A_Name")


def test_live_objects_discover_like_the_files(emulators: Emulators, tmp_path: Path) -> None:
    emu = emulators("cluster-1")
    emu.seed(bundled_objects("cluster-1"))
    objects = read_objects(connect(emu, tmp_path), R.CLUSTER_INPUTS)
    live = analyse(live_scenario([LiveCluster("cluster-1", objects, "cluster.local", "us-east1")], [])).discovery
    original = analyse(load_scenario(BOOKINFO)).discovery
    assert live.destinations == tuple(d for d in original.destinations if d.cluster == "cluster-1")
    assert live.workloads == tuple(w for w in original.workloads if w.cluster == "cluster-1")
