"""Leader election: one leader at a time, takeover when the leader stops renewing, and only the leader writes."""

from __future__ import annotations

import time
from pathlib import Path

from meshrules.kube import resources as R
from meshrules.kube.fake import FakeCluster
from meshrules.kube.leader import LeaderElector, LeaseTiming

from .fleet import fleet, wait_until

TIMING = LeaseTiming(lease=0.6, renew_deadline=0.4, retry=0.05)


def management() -> FakeCluster:
    cluster = FakeCluster("mgmt")
    cluster.seed([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "meshrules-system"}}])
    return cluster


def test_only_one_replica_wins_and_the_other_takes_over_when_renewals_stop() -> None:
    cluster = management()
    a = LeaderElector(cluster, "a", timing=TIMING).start()
    assert wait_until(a.is_leader, 2)
    b = LeaderElector(cluster, "b", timing=TIMING).start()
    time.sleep(0.3)
    assert a.is_leader() and not b.is_leader()
    a.stop(release=False)  # a crash: the Lease is not given back
    assert not a.is_leader()
    started = time.monotonic()
    assert wait_until(b.is_leader, 3)
    # b waited for the Lease to expire (it was last renewed less than a lease ago).
    assert time.monotonic() - started >= TIMING.lease * 0.5
    lease = cluster.get(R.LEASE, "meshrules-controller", "meshrules-system")
    assert lease is not None and lease["spec"]["holderIdentity"] == "b" and lease["spec"]["leaseTransitions"] == 1
    b.stop()


def test_a_released_lease_is_taken_over_at_once() -> None:
    cluster = management()
    a = LeaderElector(cluster, "a", timing=LeaseTiming(lease=30, renew_deadline=20, retry=0.05)).start()
    assert wait_until(a.is_leader, 2)
    b = LeaderElector(cluster, "b", timing=LeaseTiming(lease=30, renew_deadline=20, retry=0.05)).start()
    a.stop(release=True)
    assert wait_until(b.is_leader, 2)
    b.stop()


def test_never_two_leaders_at_once_while_leaders_die() -> None:
    cluster = management()
    electors = [LeaderElector(cluster, name, timing=TIMING).start() for name in "abc"]
    leaders_seen: list[str] = []
    overlap = False
    deadline = time.monotonic() + 2.4
    next_kill = time.monotonic() + 0.3
    while time.monotonic() < deadline:
        leaders = [e for e in electors if e.is_leader()]
        overlap = overlap or len(leaders) > 1
        if leaders and (not leaders_seen or leaders_seen[-1] != leaders[0].identity):
            leaders_seen.append(leaders[0].identity)
        if leaders and time.monotonic() >= next_kill and len(leaders_seen) < 3:
            leaders[0].stop(release=False)  # crash the current leader
            next_kill = time.monotonic() + 0.3
        time.sleep(0.005)
    for e in electors:
        e.stop()
    assert not overlap
    assert len(leaders_seen) == 3, leaders_seen  # each crash handed the Lease to a survivor


def test_two_controller_replicas_only_the_leader_writes_then_the_other_takes_over(tmp_path: Path) -> None:
    with fleet(tmp_path, clusters=("cluster-1", "cluster-2")) as f:
        a = f.controller("replica-a")
        assert wait_until(a.elector.is_leader, 3)
        b = f.controller("replica-b")
        assert wait_until(f.converged, 20)
        assert wait_until(lambda: b.ready() and all(m.cache and m.cache.synced for m in b.members.values()), 5)
        f.mgmt.store.merge_patch(
            R.TRAFFIC_POLICY, "bookinfo", "ratings-timeout", {"spec": {"policy": {"requestTimeout": "9s"}}}, "kubectl"
        )
        assert wait_until(f.converged, 10)
        emulators = [f.mgmt, *f.remotes.values()]
        by_b = [r for e in emulators for r in e.writes() if "replica-b" in r.user_agent and "/leases" not in r.path]
        by_a = [r for e in emulators for r in e.writes() if "replica-a" in r.user_agent and "/leases" not in r.path]
        assert by_b == [] and by_a, "only the leader writes"

        a.stop(release=False)  # the leader dies without giving the Lease back
        assert wait_until(b.elector.is_leader, 5)
        f.mgmt.store.merge_patch(
            R.TRAFFIC_POLICY, "bookinfo", "ratings-timeout", {"spec": {"policy": {"requestTimeout": "11s"}}}, "kubectl"
        )
        assert wait_until(f.converged, 10), "the new leader did not take over the work"
        by_b = [r for e in emulators for r in e.writes() if "replica-b" in r.user_agent and "/leases" not in r.path]
        assert by_b
