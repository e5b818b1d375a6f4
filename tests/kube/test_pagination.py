"""Lists in pages (`limit` + `continue`): the emulator pages as the API server does, and `KubeCluster.list`
returns every object exactly once with the snapshot's resourceVersion — also when the snapshot expires
mid-list, and for everything built on it (informers, snapshot, apply's live read).
"""

from __future__ import annotations

import base64
import json
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from meshrules.kube import resources as R
from meshrules.kube.apply import read_live
from meshrules.kube.client import KubeCluster
from meshrules.kube.informer import Informer
from meshrules.kube.snapshot import snapshot

from .conftest import Emulators, bundled_objects, connect
from .emulator import Emulator, Request

CM_PATH = "/api/v1/configmaps"


def config_map(name: str, namespace: str = "default", **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
    }


def seeded(emu: Emulator, count: int) -> set[tuple[str, str]]:
    """``count`` ConfigMaps over two namespaces; their (namespace, name)."""
    objects = [config_map(f"cm-{i}", "default" if i % 2 else "team-a") for i in range(count)]
    emu.seed(objects)
    return {(o["metadata"]["namespace"], o["metadata"]["name"]) for o in objects}


def paged(emu: Emulator, tmp_path: Path, page_size: int) -> KubeCluster:
    cluster = connect(emu, tmp_path)
    cluster.page_size = page_size
    return cluster


def lists(emu: Emulator, since: int, path: str = CM_PATH) -> list[Request]:
    return [r for r in emu.requests[since:] if r.method == "GET" and not r.watch and r.path == path]


def keys(items: Any) -> list[tuple[str, str]]:
    return [(o["metadata"].get("namespace", ""), o["metadata"]["name"]) for o in items]


def raw_list(emu: Emulator, path: str = CM_PATH, **query: str) -> tuple[int, dict[str, Any]]:
    """One LIST straight over HTTP (the client never sends a bad token; the emulator must still refuse it)."""
    url = f"{emu.url}{path}?{'&'.join(f'{k}={v}' for k, v in query.items())}"
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {emu.admin_token}"})
    try:
        with urllib.request.urlopen(request, timeout=3) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


# --- the emulator pages like the API server ------------------------------------------------------


def test_the_emulator_pages_with_opaque_tokens_and_remaining_counts(emulator: Emulator) -> None:
    seeded(emulator, 5)
    status, first = raw_list(emulator, limit="2")
    assert status == 200 and len(first["items"]) == 2
    assert first["metadata"]["remainingItemCount"] == 3
    token = first["metadata"]["continue"]
    # Opaque to clients, but the API server's shape: base64 JSON of the snapshot and the next key.
    decoded = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    assert decoded["rv"] == int(first["metadata"]["resourceVersion"]) and decoded["start"].endswith("\x00")
    emulator.seed([config_map("late")])  # after the snapshot: not part of this list
    _, second = raw_list(emulator, limit="2", **{"continue": token})
    _, last = raw_list(emulator, limit="2", **{"continue": second["metadata"]["continue"]})
    assert second["metadata"]["resourceVersion"] == last["metadata"]["resourceVersion"] == str(decoded["rv"])
    assert "continue" not in last["metadata"] and "remainingItemCount" not in last["metadata"]
    names = [i["metadata"]["name"] for page in (first, second, last) for i in page["items"]]
    assert sorted(names) == [f"cm-{i}" for i in range(5)]


def test_with_a_selector_the_remaining_count_is_unknown(emulator: Emulator) -> None:
    emulator.seed([config_map(f"cm-{i}", app="x") for i in range(4)])
    _, page = raw_list(emulator, limit="1", labelSelector="app=x")
    assert page["metadata"]["continue"] and "remainingItemCount" not in page["metadata"]


def test_a_token_the_server_never_made_is_a_bad_request(emulator: Emulator) -> None:
    status, body = raw_list(emulator, limit="2", **{"continue": "bm90LWEtdG9rZW4"})
    assert status == 400 and body["reason"] == "BadRequest" and "invalid continue token" in body["message"]


def test_a_compacted_snapshot_is_410_expired_with_a_token_to_carry_on(emulators: Emulators) -> None:
    emu = emulators("c1", history=4)
    seeded(emu, 6)
    _, first = raw_list(emu, limit="2")
    emu.seed([config_map(f"new-{i}") for i in range(8)])  # compacts the history past the snapshot
    status, body = raw_list(emu, limit="2", **{"continue": first["metadata"]["continue"]})
    assert status == 410 and body["reason"] == "Expired" and "too old" in body["message"]
    # The inconsistent way on: the current state, after the key served last.
    _, rest = raw_list(emu, **{"continue": body["metadata"]["continue"]})
    served = {i["metadata"]["name"] for i in first["items"]}
    assert served.isdisjoint(i["metadata"]["name"] for i in rest["items"])


# --- KubeCluster.list ----------------------------------------------------------------------------


def test_a_list_of_several_pages_returns_every_object_exactly_once(emulator: Emulator, tmp_path: Path) -> None:
    want = seeded(emulator, 7)
    cluster = paged(emulator, tmp_path, 3)
    mark = emulator.mark()
    listed = cluster.list(R.CONFIG_MAP)
    got = keys(listed.items)
    assert len(got) == len(set(got)) and set(got) == want
    requests = lists(emulator, mark)
    assert [r.query["limit"] for r in requests] == ["3", "3", "3"]
    assert ["continue" in r.query for r in requests] == [False, True, True]
    assert listed.resource_version == emulator.store.resource_version
    assert all(o["kind"] == "ConfigMap" for o in listed.items)


def test_one_namespace_and_selectors_page_too(emulator: Emulator, tmp_path: Path) -> None:
    emulator.seed([config_map(f"cm-{i}", "team-a", app="x" if i % 3 else "y") for i in range(9)])
    cluster = paged(emulator, tmp_path, 2)
    assert len(cluster.list(R.CONFIG_MAP, "team-a").items) == 9
    assert sorted(keys(cluster.list(R.CONFIG_MAP, "team-a", "app=x").items)) == sorted(
        ("team-a", f"cm-{i}") for i in range(9) if i % 3
    )


def test_pages_come_from_one_snapshot_whose_version_a_watch_resumes_from(emulator: Emulator, tmp_path: Path) -> None:
    want = seeded(emulator, 6)
    cluster = paged(emulator, tmp_path, 2)
    changed = threading.Event()

    def write_after_the_first_page(request: Request) -> None:
        if request.path == CM_PATH and "limit" in request.query and not changed.is_set():
            changed.set()
            emulator.seed([config_map("added-mid-list")])
            emulator.store.delete(R.CONFIG_MAP, "team-a", "cm-4", None)

    emulator.on_answer = write_after_the_first_page
    listed = cluster.list(R.CONFIG_MAP)
    emulator.on_answer = None
    # The list is the state when it began; its resourceVersion is that state's, not the latest.
    assert set(keys(listed.items)) == want
    assert int(listed.resource_version) < int(emulator.store.resource_version)
    watch = cluster.watch(R.CONFIG_MAP, listed.resource_version, timeout_seconds=1)
    events = {(e.type, e.object["metadata"]["name"]) for e in watch if e.type != "BOOKMARK"}
    assert events == {("ADDED", "added-mid-list"), ("DELETED", "cm-4")}


def test_an_expired_token_mid_list_recovers_with_one_full_list(emulators: Emulators, tmp_path: Path) -> None:
    emu = emulators("c1", history=4)
    seeded(emu, 6)
    cluster = paged(emu, tmp_path, 2)
    compacted = threading.Event()

    def compact_after_the_first_page(request: Request) -> None:
        if request.path == CM_PATH and not compacted.is_set():
            compacted.set()
            emu.seed([config_map(f"new-{i}") for i in range(8)])

    emu.on_answer = compact_after_the_first_page
    mark = emu.mark()
    listed = cluster.list(R.CONFIG_MAP)
    emu.on_answer = None
    got = keys(listed.items)
    assert len(got) == len(set(got)) == 14 and set(got) == set(keys(emu.store.list(R.CONFIG_MAP)[0]))
    assert listed.resource_version == emu.store.resource_version
    requests = lists(emu, mark)
    assert [(r.status, "limit" in r.query, "continue" in r.query) for r in requests] == [
        (200, True, False),
        (410, True, True),
        (200, False, False),  # client-go's fallback: the whole list at once
    ]


def test_page_size_zero_lists_in_one_request(emulator: Emulator, tmp_path: Path) -> None:
    seeded(emulator, 3)
    mark = emulator.mark()
    assert len(paged(emulator, tmp_path, 0).list(R.CONFIG_MAP).items) == 3
    (request,) = lists(emulator, mark)
    assert "limit" not in request.query


# --- what is built on Cluster.list gets it for free ----------------------------------------------


def test_an_informer_syncs_through_pages_then_follows_changes(emulator: Emulator, tmp_path: Path) -> None:
    want = seeded(emulator, 5)
    cluster = paged(emulator, tmp_path, 2)
    seen: list[tuple[str, str]] = []
    added = threading.Event()

    def on_change(_: Any, before: Any, after: Any) -> None:
        if before is None and after is not None:
            seen.append((after["metadata"]["namespace"], after["metadata"]["name"]))
            if after["metadata"]["name"] == "after-sync":
                added.set()

    mark = emulator.mark()
    informer = Informer(cluster, R.CONFIG_MAP, on_change, watch_seconds=5).start()
    try:
        assert informer.synced.wait(5)
        assert set(keys(informer.objects())) == want and sorted(seen) == sorted(want)
        assert sum("continue" in r.query for r in lists(emulator, mark)) == 2
        emulator.seed([config_map("after-sync")])
        assert added.wait(5)
    finally:
        informer.stop()
    assert set(keys(informer.objects())) == want | {("default", "after-sync")}


def test_snapshot_and_read_live_read_every_page(emulator: Emulator, tmp_path: Path) -> None:
    emulator.seed(bundled_objects("cluster-1"))
    cluster = paged(emulator, tmp_path, 2)
    mark = emulator.mark()
    result = snapshot(cluster, tmp_path / "scenario" / "clusters" / "cluster-1")
    assert result.counts["Deployment"] == len(emulator.store.objects(R.DEPLOYMENT)) == 5
    assert sum("continue" in r.query for r in lists(emulator, mark, "/apis/apps/v1/deployments")) == 2

    rules = [
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "DestinationRule",
            "metadata": {"name": f"dr-{i}", "namespace": "bookinfo"},
            "spec": {"host": f"h{i}"},
        }
        for i in range(5)
    ]
    emulator.seed(rules)
    mark = emulator.mark()
    live = read_live(cluster)
    assert {k.name for k in live if k.kind == "DestinationRule"} == {f"dr-{i}" for i in range(5)}
    path = "/apis/networking.istio.io/v1/destinationrules"
    assert sum("continue" in r.query for r in lists(emulator, mark, path)) == 2


@pytest.mark.parametrize("page_size", [1, 4, 500])
def test_every_page_size_gives_the_same_list(emulator: Emulator, tmp_path: Path, page_size: int) -> None:
    seeded(emulator, 9)
    whole = paged(emulator, tmp_path, 0).list(R.CONFIG_MAP)
    assert paged(emulator, tmp_path, page_size).list(R.CONFIG_MAP) == whole
