"""`KubeCluster` (the official kubernetes client) against the emulator: requests, errors, timeouts, watches."""

from __future__ import annotations

import base64
import threading
import time
from pathlib import Path

import pytest
import yaml

from meshrules.errors import ClusterError
from meshrules.kube import resources as R
from meshrules.kube.client import KubeCluster, Timeouts
from meshrules.kube.cluster import ApiError, ConflictError, Unreachable, WatchEvent, WatchExpired

from .conftest import Emulators, connect, write_kubeconfig
from .emulator import Emulator

CM = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "namespace": "default"}, "data": {"k": "v"}}


def test_served_kinds_come_from_discovery(emulators: Emulators, tmp_path: Path) -> None:
    no_linkerd = tuple(r for r in R.ALL if "linkerd" not in r.group)
    emu = emulators("c1", resources=no_linkerd)
    served = connect(emu, tmp_path).served()
    assert served[("apps", "Deployment")] == "v1"
    assert ("policy.linkerd.io", "Server") not in served
    assert served[("networking.istio.io", "VirtualService")] == "v1"


def test_a_group_served_at_another_version_is_read_at_that_version(emulators: Emulators, tmp_path: Path) -> None:
    old_server = R.LINKERD_SERVER.with_version("v1beta1")
    emu = emulators("c1", resources=(*[r for r in R.ALL if r != R.LINKERD_SERVER], old_server))
    assert connect(emu, tmp_path).served()[("policy.linkerd.io", "Server")] == "v1beta1"


def test_writes_use_field_manager_meshrules_and_apply_patches(emulator: Emulator, tmp_path: Path) -> None:
    cluster = connect(emulator, tmp_path)
    mark = emulator.mark()
    cluster.apply(CM, force=True)
    cluster.create({**CM, "metadata": {"name": "other", "namespace": "default"}})
    (apply_req, create_req) = emulator.writes(mark)
    assert apply_req.method == "PATCH" and apply_req.content_type == "application/apply-patch+yaml"
    assert apply_req.query["fieldManager"] == "meshrules" and apply_req.query["force"] == "true"
    assert create_req.method == "POST" and create_req.query["fieldManager"] == "meshrules"
    assert apply_req.user_agent.startswith("meshrules/")


def test_list_items_get_their_kind_back(emulator: Emulator, tmp_path: Path) -> None:
    cluster = connect(emulator, tmp_path)
    cluster.apply(CM)
    (item,) = cluster.list(R.CONFIG_MAP, "default").items
    assert (item["apiVersion"], item["kind"]) == ("v1", "ConfigMap")


def test_errors_name_the_cluster_and_object(emulator: Emulator, tmp_path: Path) -> None:
    cluster = connect(emulator, tmp_path, name="east")
    cluster.create(CM)
    with pytest.raises(ConflictError) as err:
        cluster.create(CM)
    assert str(err.value).startswith("east: ConfigMap default/cm: create failed with 409")
    emulator.faults.fail(500, times=1)
    with pytest.raises(ApiError) as failed:
        cluster.get(R.CONFIG_MAP, "cm", "default")
    assert failed.value.status == 500 and "back-off" in str(failed.value)


def test_a_missing_object_is_none_and_a_missing_kind_is_an_error(emulators: Emulators, tmp_path: Path) -> None:
    emu = emulators("c1", resources=tuple(r for r in R.ALL if r.group != "policy.linkerd.io"))
    cluster = connect(emu, tmp_path)
    assert cluster.get(R.CONFIG_MAP, "nope", "default") is None
    with pytest.raises(ApiError) as err:
        cluster.list(R.LINKERD_SERVER)
    assert err.value.status == 404


def test_rejected_credentials_never_print_the_token(emulator: Emulator, tmp_path: Path) -> None:
    secret = "not-a-valid-token-1234567890"
    file = tmp_path / "kubeconfig"
    file.write_text(yaml.safe_dump(emulator.kubeconfig("c1", token=secret)), encoding="utf-8")
    cluster = KubeCluster.from_kubeconfig("c1", file, timeouts=Timeouts(1, 2))
    with pytest.raises(ClusterError) as err:
        cluster.list(R.NAMESPACE)
    assert "401" in str(err.value) and secret not in str(err.value) and secret not in repr(err.value)


def test_an_unknown_context_is_a_kubeconfig_error(emulator: Emulator, tmp_path: Path) -> None:
    file = write_kubeconfig(tmp_path / "kubeconfig", {"c1": emulator})
    with pytest.raises(ClusterError) as err:
        KubeCluster.from_kubeconfig("nope", file)
    assert err.value.code == "MR0805"
    assert emulator.admin_token not in str(err.value)


def test_slow_answers_time_out(emulator: Emulator, tmp_path: Path) -> None:
    cluster = connect(emulator, tmp_path)
    cluster.timeouts = Timeouts(connect=1.0, read=0.3)
    emulator.faults.slow(2.0, times=1)
    started = time.monotonic()
    with pytest.raises(Unreachable) as err:
        cluster.get(R.CONFIG_MAP, "cm", "default")
    assert time.monotonic() - started < 1.5
    assert "timed out" in str(err.value)
    assert cluster.get(R.CONFIG_MAP, "cm", "default") is None  # the next call works


def test_a_dropped_connection_is_unreachable(emulator: Emulator, tmp_path: Path) -> None:
    cluster = connect(emulator, tmp_path)
    emulator.faults.fail(0, times=1)
    with pytest.raises(Unreachable):
        cluster.list(R.NAMESPACE)


def _collect(stream: object, into: list[WatchEvent]) -> threading.Thread:
    def run() -> None:
        try:
            for event in stream:  # type: ignore[attr-defined]
                into.append(event)
        except ClusterError as err:
            into.append(WatchEvent("RAISED", {"error": err}))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_watch_streams_changes_and_close_unblocks_it(emulator: Emulator, tmp_path: Path) -> None:
    cluster = connect(emulator, tmp_path)
    rv = cluster.list(R.CONFIG_MAP).resource_version
    events: list[WatchEvent] = []
    watch = cluster.watch(R.CONFIG_MAP, rv, timeout_seconds=30)
    thread = _collect(watch, events)
    cluster.apply(CM)
    cluster.delete(R.CONFIG_MAP, "cm", "default")
    deadline = time.monotonic() + 3
    while len([e for e in events if e.type != "BOOKMARK"]) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    watch.close()
    thread.join(2)
    assert not thread.is_alive()
    assert [e.type for e in events if e.type != "BOOKMARK"] == ["ADDED", "DELETED"]


def test_a_dropped_watch_ends_with_an_error_and_resumes_without_losing_events(
    emulator: Emulator, tmp_path: Path
) -> None:
    cluster = connect(emulator, tmp_path)
    rv = cluster.list(R.CONFIG_MAP).resource_version
    events: list[WatchEvent] = []
    thread = _collect(cluster.watch(R.CONFIG_MAP, rv, timeout_seconds=30), events)
    time.sleep(0.2)
    emulator.faults.drop_watches()
    thread.join(3)
    assert not thread.is_alive()
    assert events[-1].type == "RAISED"
    cluster.apply(CM)  # changed while nobody watched
    resumed = [e.type for e in cluster.watch(R.CONFIG_MAP, rv, timeout_seconds=1) if e.type != "BOOKMARK"]
    assert resumed == ["ADDED"]


def test_a_watch_too_far_behind_expires(emulators: Emulators, tmp_path: Path) -> None:
    emu = emulators("c1", history=2)
    cluster = connect(emu, tmp_path)
    rv = cluster.list(R.CONFIG_MAP).resource_version
    for i in range(5):
        cluster.apply({**CM, "data": {"k": str(i)}})
    with pytest.raises(WatchExpired):
        list(cluster.watch(R.CONFIG_MAP, rv, timeout_seconds=1))


def test_tls_with_the_inlined_ca(emulators: Emulators, tmp_path: Path) -> None:
    emu = emulators("c1", tls=True)
    cluster = connect(emu, tmp_path)
    assert cluster.list(R.NAMESPACE).items
    assert cluster.ca_pem() == emu.ca_pem
    wrong = emu.kubeconfig("c1")
    wrong["clusters"][0]["cluster"]["certificate-authority-data"] = base64.b64encode(b"garbage").decode()
    file = tmp_path / "wrong"
    file.write_text(yaml.safe_dump(wrong), encoding="utf-8")
    with pytest.raises(ClusterError):
        KubeCluster.from_kubeconfig("c1", file, timeouts=Timeouts(1, 2)).list(R.NAMESPACE)
