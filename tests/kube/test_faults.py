"""Faults on one cluster: the others keep reconciling, it converges once the fault ends, no status update is lost.

Hypothesis picks the faulty cluster and a schedule of faults — 500s, 409s on writes, answers slower
than the client's timeout, dropped connections and watches. During each fault a policy is edited
and an input of the healthy cluster changes; the healthy cluster must follow while the faulty one
fails. Bounded: a handful of examples, each a few seconds.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshrules.kube import resources as R
from meshrules.kube.registration import list_clusters

from .emulator import Emulator
from .fleet import Fleet, fleet, wait_until

CLUSTERS = ("cluster-1", "cluster-2")


def inject(emu: Emulator, fault: str) -> None:
    """Start ``fault`` on ``emu`` (until `faults.clear()`)."""
    if fault == "500":
        emu.faults.fail(500)
    elif fault == "409":
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            emu.faults.fail(409, method=method)
    elif fault == "timeout":
        emu.faults.slow(2.0, watch=None)  # the clients give up after 1 s
    elif fault == "drop":
        emu.faults.fail(0)
    # Open watches break too, so the informers meet the fault when they reconnect.
    emu.faults.drop_watches()


def change_during_fault(f: Fleet, healthy: str, step: int) -> None:
    """A policy edit (a new generation to report) and a new input on the healthy cluster."""
    f.mgmt.store.merge_patch(
        R.TRAFFIC_POLICY,
        "bookinfo",
        "ratings-timeout",
        {"spec": {"policy": {"requestTimeout": f"{20 + step}s"}}},
        "kubectl",
    )
    namespace = "bookinfo" if healthy != "cluster-3" else "emojivoto"
    f.remotes[healthy].seed(
        [
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": f"extra-{step}", "namespace": namespace},
                "spec": {"selector": {"app": "reviews"}, "ports": [{"port": 9080, "name": "http"}]},
            }
        ]
    )


@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    faulty=st.sampled_from(CLUSTERS),
    schedule=st.lists(st.sampled_from(["500", "409", "timeout", "drop"]), min_size=1, max_size=3),
)
def test_a_faulty_cluster_does_not_stop_the_others_and_converges_after(
    tmp_path_factory: pytest.TempPathFactory, faulty: str, schedule: list[str]
) -> None:
    healthy = next(c for c in CLUSTERS if c != faulty)
    with fleet(tmp_path_factory.mktemp("faults"), clusters=CLUSTERS) as f:
        f.controller()
        assert wait_until(f.converged, 20)
        for step, fault in enumerate(schedule):
            inject(f.remotes[faulty], fault)
            change_during_fault(f, healthy, step)

            def others_follow() -> bool:
                expected = f.expected()
                return f.outputs_match(healthy, expected) and f.statuses_match(expected)

            assert wait_until(others_follow, 10), f"{healthy} stopped while {faulty} had {fault}"
            if fault != "409":
                assert wait_until(
                    lambda: any(
                        c.name == faulty and c.status.get("state") != "Ready" for c in list_clusters(f.management())
                    ),
                    5,
                ), f"{faulty} not reported unhealthy during {fault}"
            f.remotes[faulty].faults.clear()
        assert wait_until(f.converged, 15), f"no convergence after {schedule} on {faulty}"
        assert wait_until(lambda: all(c.status.get("state") == "Ready" for c in list_clusters(f.management())), 5)


def test_status_writes_that_fail_for_a_while_are_not_lost(tmp_path: Path) -> None:
    with fleet(tmp_path, clusters=("cluster-1",)) as f:
        f.controller()
        assert wait_until(f.converged, 20)
        conflicts = f.mgmt.faults.fail(409, method="PATCH", path=r"/status$")
        f.mgmt.store.merge_patch(
            R.TRAFFIC_POLICY, "bookinfo", "ratings-timeout", {"spec": {"policy": {"requestTimeout": "42s"}}}, "kubectl"
        )
        assert wait_until(lambda: f.outputs_match("cluster-1", f.expected()), 10)
        assert wait_until(lambda: conflicts.hits >= 2, 5)  # status writes were tried, and refused
        assert not f.statuses_match(f.expected())
        f.mgmt.faults.clear()
        assert wait_until(f.converged, 10)
        policy = f.mgmt.store.get(R.TRAFFIC_POLICY, "bookinfo", "ratings-timeout")
        assert (
            policy["status"]["timeout"] == "42s"
            and policy["status"]["observedGeneration"] == policy["metadata"]["generation"]
        )
