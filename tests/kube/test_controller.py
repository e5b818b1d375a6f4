"""The controller end to end on emulated clusters: outputs, statuses, discovery, drift, debounce."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from meshrules.kube import resources as R
from meshrules.kube.registration import list_clusters

from .fleet import fleet, wait_until
from .translate_stub import stub_translate


def test_objects_written_equal_the_translation_of_the_same_clusters(tmp_path: Path) -> None:
    with fleet(tmp_path) as f:
        ctl = f.controller()
        assert wait_until(f.converged, 20), "the controller did not converge"
        # The same translation from the scenario files: live reading loses nothing translate reads.
        from meshrules.kube.scenario import load_scenario

        from .conftest import BOOKINFO

        from_files = stub_translate(load_scenario(BOOKINFO))
        assert from_files.outputs is not None
        for name in f.remotes:
            assert f.outputs_match(name, from_files), name
        # Discovery is published, and every registered cluster reports Ready.
        meshes = f.mgmt.store.objects(R.MESH)
        assert sorted(m["metadata"]["name"] for m in meshes) == sorted(m.name for m in from_files.discovery.meshes)  # type: ignore[union-attr]
        assert wait_until(lambda: all(c.status.get("state") == "Ready" for c in list_clusters(f.management())), 5)
        assert ctl.metrics.text().count(b"meshrules_objects_applied_total{") >= 2


def test_an_unchanged_reconcile_writes_nothing_and_a_policy_edit_is_translated(tmp_path: Path) -> None:
    with fleet(tmp_path, clusters=("cluster-1", "cluster-2")) as f:
        ctl = f.controller()
        assert wait_until(f.converged, 20)
        assert wait_until(lambda: all(m.worker is not None and m.worker.wait_idle(0) for m in ctl.members.values()), 5)
        marks = {n: e.mark() for n, e in f.remotes.items()}
        runs = {n: m.worker.runs for n, m in ctl.members.items() if m.worker is not None}
        ctl.changed()
        assert wait_until(lambda: ctl.reconciles >= 2, 5)
        # Each cluster's apply job ran again (and finished) before its requests are looked at.
        for n, m in ctl.members.items():
            assert m.worker is not None
            assert wait_until(lambda m=m, n=n: m.worker.runs > runs[n] and m.worker.idle.is_set(), 5), n  # type: ignore[union-attr]
        assert all(f.remotes[n].writes(since=marks[n]) == [] for n in f.remotes)
        # The apply planned from the informers' caches: no output kind was listed again.
        plurals = {r.plural for r in R.EMITTED}
        for name, emu in f.remotes.items():
            relisted = [
                r.path
                for r in emu.requests[marks[name] :]
                if r.method == "GET" and not r.watch and r.path.rsplit("/", 1)[-1] in plurals
            ]
            assert relisted == [], (name, relisted)

        f.mgmt.store.merge_patch(
            R.TRAFFIC_POLICY, "bookinfo", "ratings-timeout", {"spec": {"policy": {"requestTimeout": "7s"}}}, "kubectl"
        )
        assert wait_until(f.converged, 10)
        policy = f.mgmt.store.get(R.TRAFFIC_POLICY, "bookinfo", "ratings-timeout")
        assert policy["status"]["observedGeneration"] == 2 and policy["status"]["timeout"] == "7s"


def test_an_edited_output_is_restored_and_a_new_input_is_picked_up(tmp_path: Path) -> None:
    with fleet(tmp_path, clusters=("cluster-1",)) as f:
        ctl = f.controller()
        assert wait_until(f.converged, 20)
        store = f.remotes["cluster-1"].store
        (dr,) = [o for o in store.objects(R.ISTIO_DESTINATION_RULE) if o["metadata"]["name"] == "reviews-meshrules"]
        store.merge_patch(
            R.ISTIO_DESTINATION_RULE, "bookinfo", "reviews-meshrules", {"spec": {"host": "hijacked"}}, "kubectl"
        )
        assert wait_until(f.converged, 10), "drift was not corrected"
        assert ctl.reconciles >= 1
        # A new meshed Service appears: a new destination, a new output.
        f.remotes["cluster-1"].seed(
            [
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {"name": "reviews-copy", "namespace": "bookinfo"},
                    "spec": dr and {"selector": {"app": "reviews"}, "ports": [{"port": 9080, "name": "http"}]},
                }
            ]
        )
        assert wait_until(f.converged, 10)
        assert store.get(R.ISTIO_DESTINATION_RULE, "bookinfo", "reviews-copy-meshrules") is not None


def test_a_burst_of_changes_is_debounced(tmp_path: Path) -> None:
    with fleet(tmp_path, clusters=("cluster-1",)) as f:
        ctl = f.controller(debounce=0.3, max_delay=2.0)
        assert wait_until(f.converged, 20)
        before = ctl.reconciles
        store = f.remotes["cluster-1"].store
        for i in range(30):
            store.merge_patch(R.SERVICE, "bookinfo", "details", {"metadata": {"labels": {"burst": str(i)}}}, "kubectl")
        assert wait_until(lambda: ctl.reconciles > before, 5)
        wait_until(lambda: False, 0.6)
        assert ctl.reconciles - before <= 2


def test_a_deregistered_cluster_is_dropped_and_its_discovery_unpublished(tmp_path: Path) -> None:
    from meshrules.kube.registration import deregister

    with fleet(tmp_path, clusters=("cluster-1", "cluster-2")) as f:
        ctl = f.controller()
        assert wait_until(f.converged, 20)
        deregister("cluster-2", f.management(), None)
        assert wait_until(lambda: set(ctl.members) == {"cluster-1"}, 5)
        assert wait_until(
            lambda: all(
                o["metadata"]["labels"]["meshrules.io/cluster"] == "cluster-1"
                for r in (R.MESH, R.WORKLOAD, R.DESTINATION)
                for o in f.mgmt.store.objects(r)
            ),
            5,
        )


def test_the_pipelines_translation_is_written_through_the_adapter(tmp_path: Path) -> None:
    from meshrules.kube.translation import Translation, from_pipeline
    from meshrules.model.intent import Intent
    from meshrules.model.scenario import Scenario
    from meshrules.pipeline import analyse
    from meshrules.pipeline.translate import translate

    def pipeline(scenario: Scenario) -> Translation:
        analysis = analyse(scenario)
        return from_pipeline(analysis, translate(analysis, Intent()))

    with fleet(tmp_path, clusters=("cluster-1", "cluster-2")) as f:
        f.controller(translate=pipeline)
        assert wait_until(lambda: f.converged(pipeline), 20)
        status = f.mgmt.store.get(R.ACCESS_POLICY, "bookinfo", "productpage-reads-backends")["status"]
        assert status["observedGeneration"] == 1 and status["state"] == "ACCEPTED"
        assert status["workloadCount"] == 1 and "reviews-bookinfo-cluster-2" in status["destinations"]


def test_metrics_and_health_endpoints(tmp_path: Path) -> None:
    import urllib.request

    from meshrules.kube.metrics import HealthServer

    with fleet(tmp_path, clusters=("cluster-1",)) as f:
        ctl = f.controller()
        server = HealthServer(ctl.metrics, ctl.alive, ctl.ready).start()
        try:
            assert wait_until(f.converged, 20)
            base = f"http://127.0.0.1:{server.port}"
            with urllib.request.urlopen(f"{base}/healthz", timeout=2) as answer:
                assert answer.status == 200
            with urllib.request.urlopen(f"{base}/readyz", timeout=2) as answer:
                assert answer.status == 200

            def scraped() -> str:
                with urllib.request.urlopen(f"{base}/metrics", timeout=2) as answer:
                    return str(answer.read().decode())

            wanted = [
                "meshrules_reconcile_duration_seconds_count",
                'meshrules_objects_applied_total{action="create",cluster="cluster-1"}',
                'meshrules_cluster_up{cluster="cluster-1"} 1.0',
                "meshrules_leader 1.0",
            ]
            # The health gauges follow a moment after convergence (they are sampled).
            assert wait_until(lambda: all(w in scraped() for w in wanted), 5), scraped()
        finally:
            server.stop()


def test_kinds_a_cluster_starts_serving_later_are_watched_after_a_resync(tmp_path: Path) -> None:
    with fleet(tmp_path, clusters=("cluster-1",), without=(R.LINKERD_SERVER,)) as f:
        ctl = f.controller(resync=0.3)
        assert wait_until(f.converged, 20)
        emu = f.remotes["cluster-1"]
        emu.store.serve(R.LINKERD_SERVER)  # Linkerd's CRDs are installed
        server = {
            "apiVersion": "policy.linkerd.io/v1beta3",
            "kind": "Server",
            "metadata": {"name": "web", "namespace": "bookinfo"},
            "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "port": 8080},
        }
        emu.seed([server])
        member = ctl.members["cluster-1"]
        assert member.cache is not None
        assert wait_until(lambda: bool(member.cache and member.cache.objects([R.LINKERD_SERVER])), 5)


def test_the_leader_creates_the_shared_root_and_opens_a_csr_request_per_member(tmp_path: Path) -> None:
    """The bundled `bookinfo` VirtualMesh has shared trust: the leader creates its root on the
    management side and opens a CSR request in each member's mesh namespace, for the agents to answer
    (spec §3.1, §8; signing and installing are covered step by step in test_agent.py)."""
    from meshrules.kube import exchange as X
    from meshrules.kube.signing import root_secret_name

    members = {"cluster-1": "istiod-istio-system-cluster-1", "cluster-2": "istiod-istio-system-cluster-2"}
    with fleet(tmp_path) as f:
        f.controller()
        assert wait_until(f.converged, 20), "the controller did not converge"
        root = root_secret_name("bookinfo")

        def names(store: Any, resource: R.ApiResource) -> set[str]:
            return {o["metadata"]["name"] for o in store.objects(resource)}

        assert wait_until(lambda: root in names(f.mgmt.store, R.SECRET), 10)
        for cluster, mesh in members.items():
            store, name = f.remotes[cluster].store, X.exchange_name(mesh)
            assert wait_until(lambda s=store, n=name: n in names(s, R.CONFIG_MAP), 10), cluster
        # The root key never reaches a registered cluster.
        root_key = f.mgmt.store.get(R.SECRET, "meshrules-system", root)["data"]["tls.key"]  # type: ignore[index]
        for cluster in members:
            assert all(root_key not in str(o.get("data")) for o in f.remotes[cluster].store.objects(R.SECRET))


def test_the_virtual_mesh_status_carries_trust_and_a_rotation_runs_through_the_controller(tmp_path: Path) -> None:
    """Agents answer the controller's requests; the VirtualMesh's status gets a `trust` block beside
    its translated status (one status write), and a `meshrules.io/rotate-root` annotation rotates
    the generated root through every phase — the controller driven by exchange changes and its
    health tick, istiod publishing the new bundles as it would (docs/trust.md, "Live")."""
    import base64

    from meshrules.kube.agent import agent_step
    from meshrules.kube.memory import StoreError
    from meshrules.kube.signing import ROTATE_ROOT_ANNOTATION

    from .conftest import connect

    with fleet(tmp_path, clusters=("cluster-1", "cluster-2")) as f:
        f.controller()
        agents = {name: connect(emu, tmp_path, identity="agent") for name, emu in f.remotes.items()}

        def istiod(name: str) -> None:
            """Copy `root-cert.pem` of `cacerts` into `istio-ca-root-cert`, as istiod does."""
            store = f.remotes[name].store
            try:
                roots = base64.b64decode(store.get(R.SECRET, "istio-system", "cacerts")["data"]["root-cert.pem"])
            except StoreError:
                return
            try:
                published = store.get(R.CONFIG_MAP, "istio-system", "istio-ca-root-cert")
            except StoreError:
                meta = {"name": "istio-ca-root-cert", "namespace": "istio-system"}
                store.create(R.CONFIG_MAP, "istio-system", {"metadata": meta, "data": {}}, "istiod")
                published = store.get(R.CONFIG_MAP, "istio-system", "istio-ca-root-cert")
            if published["data"].get("root-cert.pem") != roots.decode():
                published["data"] = {"root-cert.pem": roots.decode()}
                store.replace(R.CONFIG_MAP, "istio-system", "istio-ca-root-cert", published, "istiod")

        def trust() -> dict[str, Any]:
            """One pass of each agent and istiod, then the VirtualMesh's `status.trust`."""
            for name, agent in agents.items():
                agent_step(agent, namespaces=("istio-system",))
                istiod(name)
            vmesh = f.mgmt.store.get(R.VIRTUAL_MESH, "meshrules-system", "bookinfo")
            return dict((vmesh.get("status") or {}).get("trust") or {})

        def installed() -> bool:
            meshes = trust().get("meshes") or []
            return len(meshes) == 2 and all(m["action"] == "Installed" for m in meshes)

        assert wait_until(installed, 20), trust()
        status = f.mgmt.store.get(R.VIRTUAL_MESH, "meshrules-system", "bookinfo")["status"]
        assert status["state"] == "ACCEPTED" and status["observedGeneration"] == 1  # the translated part stays
        old = status["trust"]["rootFingerprint"]
        for member in status["trust"]["meshes"]:
            assert member["issuingRoot"] == old and member["expires"] and member["cluster"] in f.remotes

        patch = {"metadata": {"annotations": {ROTATE_ROOT_ANNOTATION: "2026-q3"}}}
        f.mgmt.store.merge_patch(R.VIRTUAL_MESH, "meshrules-system", "bookinfo", patch, "kubectl")
        assert wait_until(lambda: (trust().get("rotation") or {}).get("phase") == "DONE", 30), trust()
        done = trust()
        new = done["rotation"]["toRoot"]
        assert done["rotation"]["fromRoot"] == old and new != old and done["rootFingerprint"] == new
        assert done["rotateRoot"] == {"value": "2026-q3", "outcome": "Rotated"}
        assert wait_until(lambda: all(m["issuingRoot"] == new for m in trust()["meshes"]), 5)
        assert wait_until(lambda: f.converged(), 10)  # the rest of the status is still the translation's
        # The controller rotated without ever asking a registered cluster for a Secret.
        for emu in f.remotes.values():
            paths = [r.path for r in emu.requests if "(replica-a)" in r.user_agent]
            assert paths and not [p for p in paths if "/secrets" in p]
