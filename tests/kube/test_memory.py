"""The in-memory API server (behind `FakeCluster` and the emulator) acts as kube-apiserver does for meshrules."""

from __future__ import annotations

import threading

import pytest

from meshrules.kube import resources as R
from meshrules.kube.cluster import ConflictError, WatchExpired
from meshrules.kube.fake import FakeCluster
from meshrules.kube.fields import from_fields_v1, leaf_paths, managed_paths, matches_selector, to_fields_v1
from meshrules.kube.memory import MemoryApiServer, StoreError


def config_map(data: dict[str, str], labels: dict[str, str] | None = None, **meta: str) -> dict[str, object]:
    metadata: dict[str, object] = {"name": "cm", "namespace": "default", **meta}
    if labels:
        metadata["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data}


@pytest.fixture
def fake() -> FakeCluster:
    cluster = FakeCluster("c1")
    cluster.seed([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}}])
    return cluster


def test_fields_v1_round_trips_leaf_paths() -> None:
    obj = {"metadata": {"labels": {"a": "1"}}, "spec": {"hosts": ["x"], "tls": {"mode": "ISTIO_MUTUAL"}, "empty": {}}}
    paths = leaf_paths(obj)
    assert paths == {("metadata", "labels", "a"), ("spec", "hosts"), ("spec", "tls", "mode"), ("spec", "empty")}
    assert from_fields_v1(to_fields_v1(paths)) == paths


def test_fields_v1_treats_associative_lists_as_one_field() -> None:
    real = {"f:spec": {"f:ports": {".": {}, 'k:{"port":80,"protocol":"TCP"}': {"f:port": {}}}, "f:type": {}}}
    assert from_fields_v1(real) == {("spec", "ports"), ("spec", "type")}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("a=1", True),
        ("a!=1", False),
        ("a", True),
        ("!a", False),
        ("a in (1,2),b", False),
        ("a notin (2)", True),
        ("", True),
    ],
)
def test_label_selectors(selector: str, expected: bool) -> None:
    assert matches_selector({"a": "1"}, selector) is expected


def test_reapplying_the_same_config_is_not_a_write(fake: FakeCluster) -> None:
    first = fake.apply(config_map({"k": "v"}))
    again = fake.apply(config_map({"k": "v"}))
    assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]


def test_apply_removes_fields_its_manager_stopped_setting(fake: FakeCluster) -> None:
    fake.apply(config_map({"k": "v", "old": "x"}, {"mine": "1"}))
    after = fake.apply(config_map({"k": "v"}))
    assert after["data"] == {"k": "v"}
    assert "labels" not in after["metadata"]
    assert managed_paths(after, "meshrules") == {("data", "k")}


def test_apply_conflicts_on_fields_another_manager_set_differently(fake: FakeCluster) -> None:
    fake.server.create(R.CONFIG_MAP, "default", config_map({"k": "theirs"}), "kubectl")
    with pytest.raises(ConflictError) as err:
        fake.apply(config_map({"k": "ours"}))
    assert err.value.status == 409
    forced = fake.apply(config_map({"k": "ours"}), force=True)
    assert forced["data"] == {"k": "ours"}
    assert ("data", "k") not in managed_paths(forced, "kubectl")


def test_apply_keeps_fields_other_managers_own(fake: FakeCluster) -> None:
    fake.server.create(R.CONFIG_MAP, "default", config_map({"user": "1"}, {"app": "web"}), "kubectl")
    export = {"name": "cm", "namespace": "default", "labels": {"mirror.linkerd.io/exported": "true"}}
    patched = fake.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": export})
    assert patched["metadata"]["labels"] == {"app": "web", "mirror.linkerd.io/exported": "true"}
    released = fake.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "namespace": "default"}})
    assert released["metadata"]["labels"] == {"app": "web"}
    assert released["data"] == {"user": "1"}


def test_resource_version_is_a_precondition(fake: FakeCluster) -> None:
    created = fake.create(config_map({"k": "v"}))
    fake.apply(config_map({"k": "w"}), force=True)
    stale = config_map({"k": "x"}, resourceVersion=created["metadata"]["resourceVersion"])
    with pytest.raises(ConflictError):
        fake.replace(stale)
    with pytest.raises(ConflictError):
        fake.apply(stale, force=True)
    with pytest.raises(ConflictError):
        fake.delete(R.CONFIG_MAP, "cm", "default", resource_version=created["metadata"]["resourceVersion"])
    assert fake.delete(R.CONFIG_MAP, "cm", "default")
    assert not fake.delete(R.CONFIG_MAP, "cm", "default")


def test_status_subresource_is_separate_from_spec(fake: FakeCluster) -> None:
    fake.seed([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "meshrules-system"}}])
    policy = {
        "apiVersion": "networking.meshrules.io/v1alpha1",
        "kind": "TrafficPolicy",
        "metadata": {"name": "p", "namespace": "meshrules-system"},
        "spec": {"policy": {"requestTimeout": "1s"}},
        "status": {"state": "IGNORED"},
    }
    created = fake.apply(policy)
    assert "status" not in created and created["metadata"]["generation"] == 1
    with_status = fake.apply({**policy, "status": {"observedGeneration": 1, "state": "ACCEPTED"}}, subresource="status")
    assert with_status["status"] == {"observedGeneration": 1, "state": "ACCEPTED"}
    assert with_status["metadata"]["generation"] == 1
    edited = fake.apply({**policy, "spec": {"policy": {"requestTimeout": "2s"}}})
    assert edited["metadata"]["generation"] == 2
    assert edited["status"]["state"] == "ACCEPTED"


def test_watch_resumes_from_a_resource_version_and_expires_when_compacted() -> None:
    cluster = FakeCluster("c1", MemoryApiServer(history=4))
    cluster.seed([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}}])
    rv = cluster.list(R.CONFIG_MAP).resource_version
    cluster.apply(config_map({"k": "1"}))
    cluster.apply(config_map({"k": "2"}))
    events = []
    watch = cluster.watch(R.CONFIG_MAP, rv, timeout_seconds=0.2)
    for event in watch:
        events.append((event.type, event.object["data"]["k"]))
    assert events == [("ADDED", "1"), ("MODIFIED", "2")]
    for i in range(8):
        cluster.apply(config_map({"k": str(i + 3)}))
    with pytest.raises(WatchExpired):
        list(cluster.watch(R.CONFIG_MAP, rv, timeout_seconds=0.2))


def test_closing_a_watch_ends_it_from_another_thread(fake: FakeCluster) -> None:
    watch = fake.watch(R.CONFIG_MAP, fake.list(R.CONFIG_MAP).resource_version, timeout_seconds=30)
    done = threading.Event()

    def consume() -> None:
        for _ in watch:
            pass
        done.set()

    thread = threading.Thread(target=consume)
    thread.start()
    watch.close()
    assert done.wait(2)
    thread.join()


def test_label_selected_watch_sees_objects_leave_the_selection(fake: FakeCluster) -> None:
    rv = fake.list(R.CONFIG_MAP).resource_version
    fake.apply(config_map({"k": "v"}, {"sel": "yes"}))
    fake.apply(config_map({"k": "v"}, {"sel": "no"}))
    types = [e.type for e in fake.watch(R.CONFIG_MAP, rv, label_selector="sel=yes", timeout_seconds=0.2)]
    assert types == ["ADDED", "DELETED"]


def test_deleting_a_namespace_deletes_its_objects(fake: FakeCluster) -> None:
    fake.seed([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}])
    fake.apply(config_map({"k": "v"}) | {"metadata": {"name": "cm", "namespace": "shop"}})
    fake.delete(R.NAMESPACE, "shop")
    assert fake.list(R.CONFIG_MAP, "shop").items == ()


def test_the_token_controller_fills_service_account_token_secrets(fake: FakeCluster) -> None:
    fake.apply({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sa", "namespace": "default"}})
    secret = fake.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/service-account-token",
            "metadata": {
                "name": "t",
                "namespace": "default",
                "annotations": {"kubernetes.io/service-account.name": "sa"},
            },
        }
    )
    live = fake.get(R.SECRET, "t", "default")
    assert live is not None and {"token", "ca.crt", "namespace"} <= set(live["data"])
    assert secret["metadata"]["name"] == "t"
    fake.delete(R.SERVICE_ACCOUNT, "sa", "default")
    assert fake.get(R.SECRET, "t", "default") is None
    assert not fake.server.tokens


def test_a_past_snapshot_undoes_every_later_change_until_compacted() -> None:
    server = MemoryApiServer(history=4)
    server.create(R.NAMESPACE, "", {"metadata": {"name": "default"}}, "t")
    for name in ("a", "b", "c"):
        server.create(R.CONFIG_MAP, "default", config_map({"v": "1"}, name=name), "t")
    then, rv = server.list(R.CONFIG_MAP)
    server.replace(R.CONFIG_MAP, "default", "a", {**then[0], "data": {"v": "2"}}, "t")
    server.delete(R.CONFIG_MAP, "default", "b")
    server.create(R.CONFIG_MAP, "default", config_map({"v": "1"}, name="d"), "t")
    assert server.list_at(R.CONFIG_MAP, int(rv)) == then
    assert [o["metadata"]["name"] for o in server.list_at(R.CONFIG_MAP, int(rv), label_selector="x=y")] == []
    for i in range(6):
        server.create(R.CONFIG_MAP, "default", config_map({}, name=f"more-{i}"), "t")
    with pytest.raises(StoreError) as err:
        server.list_at(R.CONFIG_MAP, int(rv))
    assert err.value.status == 410
