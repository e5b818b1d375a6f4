"""Apply: unowned objects are untouched and reported, stale owned objects pruned, unchanged re-apply writes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from meshrules.emit.naming import OWNER_LABEL
from meshrules.kube import resources as R
from meshrules.kube.apply import Action, ObjectKey, apply_outputs, execute, live_index, plan_apply, read_live
from meshrules.kube.fake import FakeCluster

from .conftest import Emulators, connect
from .emulator import Emulator

OWNED = {OWNER_LABEL: "meshrules-system"}


def dr(name: str, host: str, labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": "bookinfo"}
    if labels is not None:
        metadata["labels"] = labels
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": metadata,
        "spec": {"host": host, **spec},
    }


def service(name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "bookinfo", "labels": labels},
        "spec": {"selector": {"app": name}, "ports": [{"port": 9080, "name": "http"}]},
    }


EXPORT = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "reviews", "namespace": "bookinfo", "labels": {"mirror.linkerd.io/exported": "true"}},
}


def seeded(emulators: Emulators, *objects: dict[str, Any]) -> Emulator:
    emu = emulators("cluster-1")
    emu.seed([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bookinfo"}}, *objects])
    return emu


def test_first_apply_creates_and_unchanged_reapply_sends_no_writes(emulators: Emulators, tmp_path: Path) -> None:
    emu = seeded(emulators, service("reviews", {"app": "reviews"}))
    cluster = connect(emu, tmp_path)
    desired = [dr("reviews", "reviews.bookinfo.svc.cluster.local", trafficPolicy={"tls": {"mode": "ISTIO_MUTUAL"}})]
    plan, result = apply_outputs(cluster, desired, [EXPORT])
    assert [c.action for c in plan.writes] == [Action.CREATE, Action.PATCH]
    assert result is not None and result.ok and not result.unsettled
    live = cluster.get(R.ISTIO_DESTINATION_RULE, "reviews", "bookinfo")
    assert live is not None and live["metadata"]["labels"] == OWNED

    mark = emu.mark()
    plan, result = apply_outputs(cluster, desired, [EXPORT])
    assert plan.writes == ()
    assert {c.action for c in plan.changes} == {Action.UNCHANGED}
    assert emu.writes(since=mark) == []


def test_an_unowned_object_with_the_same_name_is_untouched_and_reported(emulators: Emulators, tmp_path: Path) -> None:
    users = dr("reviews", "reviews", {"team": "bookinfo"}, trafficPolicy={"loadBalancer": {"simple": "RANDOM"}})
    emu = seeded(emulators, users)
    cluster = connect(emu, tmp_path)
    before = cluster.get(R.ISTIO_DESTINATION_RULE, "reviews", "bookinfo")
    mark = emu.mark()
    plan, result = apply_outputs(cluster, [dr("reviews", "reviews.bookinfo.svc.cluster.local")])
    assert [(c.action, str(c.key)) for c in plan.changes] == [(Action.NOT_OWNED, "DestinationRule bookinfo/reviews")]
    assert "meshrules.io/owner" in plan.changes[0].message
    assert result is not None and [str(c.key) for c in result.reported] == ["DestinationRule bookinfo/reviews"]
    assert emu.writes(since=mark) == []
    assert cluster.get(R.ISTIO_DESTINATION_RULE, "reviews", "bookinfo") == before


def test_stale_owned_objects_are_pruned_and_unowned_ones_never(emulators: Emulators, tmp_path: Path) -> None:
    emu = seeded(
        emulators,
        dr("old-output", "old", OWNED),
        dr("users-own", "users", {"team": "x"}),
        dr("keep", "keep", OWNED),
    )
    cluster = connect(emu, tmp_path)
    plan, result = apply_outputs(cluster, [dr("keep", "keep")])
    assert [(c.action, c.key.name) for c in plan.writes] == [(Action.DELETE, "old-output")]
    assert result is not None and result.ok
    names = [o["metadata"]["name"] for o in cluster.list(R.ISTIO_DESTINATION_RULE).items]
    assert names == ["keep", "users-own"]


def test_an_update_removes_fields_no_longer_desired(emulators: Emulators, tmp_path: Path) -> None:
    emu = seeded(emulators)
    cluster = connect(emu, tmp_path)
    apply_outputs(cluster, [dr("r", "r", trafficPolicy={"tls": {"mode": "ISTIO_MUTUAL"}}, subsets=[{"name": "v1"}])])
    plan, result = apply_outputs(cluster, [dr("r", "r", subsets=[{"name": "v2"}])])
    assert [c.action for c in plan.writes] == [Action.UPDATE]
    assert result is not None and result.ok and not result.unsettled
    live = cluster.get(R.ISTIO_DESTINATION_RULE, "r", "bookinfo")
    assert live is not None and live["spec"] == {"host": "r", "subsets": [{"name": "v2"}]}
    plan, _ = apply_outputs(cluster, [dr("r", "r", subsets=[{"name": "v2"}])])
    assert plan.writes == ()


def test_patches_own_only_their_fields_and_are_released_when_no_longer_wanted(
    emulators: Emulators, tmp_path: Path
) -> None:
    emu = seeded(emulators, service("reviews", {"app": "reviews"}))
    cluster = connect(emu, tmp_path)
    apply_outputs(cluster, [], [EXPORT])
    live = cluster.get(R.SERVICE, "reviews", "bookinfo")
    assert live is not None and live["metadata"]["labels"] == {"app": "reviews", "mirror.linkerd.io/exported": "true"}
    assert OWNER_LABEL not in live["metadata"]["labels"]
    plan, _ = apply_outputs(cluster, [], [])
    assert [(c.action, c.key.name) for c in plan.writes] == [(Action.RELEASE, "reviews")]
    live = cluster.get(R.SERVICE, "reviews", "bookinfo")
    assert live is not None and live["metadata"]["labels"] == {"app": "reviews"}
    assert live["spec"]["selector"] == {"app": "reviews"}


def test_a_patch_never_creates_its_target(emulators: Emulators, tmp_path: Path) -> None:
    emu = seeded(emulators)
    cluster = connect(emu, tmp_path)
    plan, result = apply_outputs(cluster, [], [EXPORT])
    assert [c.action for c in plan.changes] == [Action.MISSING_TARGET]
    assert result is not None and result.reported
    assert cluster.get(R.SERVICE, "reviews", "bookinfo") is None


def test_a_users_explicit_value_wins_over_a_patch(emulators: Emulators, tmp_path: Path) -> None:
    emu = seeded(emulators, service("reviews", {"app": "reviews", "mirror.linkerd.io/exported": "false"}))
    cluster = connect(emu, tmp_path)
    _, result = apply_outputs(cluster, [], [EXPORT])
    assert result is not None and [(c.key.name, e.status) for c, e in result.failed] == [("reviews", 409)]  # type: ignore[attr-defined]
    live = cluster.get(R.SERVICE, "reviews", "bookinfo")
    assert live is not None and live["metadata"]["labels"]["mirror.linkerd.io/exported"] == "false"


def test_an_object_taken_over_after_planning_is_not_deleted(emulators: Emulators, tmp_path: Path) -> None:
    emu = seeded(emulators, dr("old", "old", OWNED))
    cluster = connect(emu, tmp_path)
    plan = plan_apply(cluster.name, [], read_live(cluster))
    assert [c.action for c in plan.writes] == [Action.DELETE]
    # The user claims it between planning and execution: the resourceVersion precondition fails.
    emu.store.merge_patch(R.ISTIO_DESTINATION_RULE, "bookinfo", "old", {"metadata": {"labels": None}}, "kubectl")
    result = execute(plan, cluster)
    assert [c.key.name for c, _ in result.failed] == ["old"]
    assert cluster.get(R.ISTIO_DESTINATION_RULE, "old", "bookinfo") is not None


def test_a_created_field_no_longer_desired_is_removed() -> None:
    # Created with POST (an Update entry, not an Apply one), then a field goes: apply alone would keep it.
    cluster = FakeCluster("c1")
    cluster.seed([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bookinfo"}}])
    apply_outputs(cluster, [dr("r", "r", trafficPolicy={"tls": {"mode": "ISTIO_MUTUAL"}})])
    plan, _result = apply_outputs(cluster, [dr("r", "r")])
    assert [c.action for c in plan.writes] == [Action.UPDATE]
    assert plan.writes[0].remove == (("spec", "trafficPolicy", "tls", "mode"),)
    live = cluster.get(R.ISTIO_DESTINATION_RULE, "r", "bookinfo")
    assert live is not None and live["spec"] == {"host": "r"}
    assert apply_outputs(cluster, [dr("r", "r")])[0].writes == ()


def test_without_prune_nothing_is_deleted() -> None:
    live = live_index([dr("old", "old", OWNED)])
    assert plan_apply("c1", [], live, prune=False).writes == ()


def test_dry_run_prints_a_unified_diff_per_object_and_writes_nothing(emulators: Emulators, tmp_path: Path) -> None:
    emu = seeded(emulators, dr("old", "old", OWNED), dr("changed", "before", OWNED))
    cluster = connect(emu, tmp_path)
    mark = emu.mark()
    plan, result = apply_outputs(cluster, [dr("new", "new"), dr("changed", "after")], dry_run=True)
    assert result is None and emu.writes(since=mark) == []
    diff = plan.diff()
    assert "+++ create cluster-1/DestinationRule bookinfo/new" in diff
    assert "--- live cluster-1/DestinationRule bookinfo/changed" in diff
    assert "-  host: before\n+  host: after\n" in diff
    assert "+++ /dev/null" in diff and "managedFields" not in diff


_names = st.sampled_from(["a", "b", "c", "d"])
_owners = st.sampled_from([None, "meshrules-system", "someone-else"])


@settings(max_examples=60, deadline=None)
@given(
    live=st.dictionaries(_names, st.tuples(_owners, st.sampled_from(["h1", "h2"])), max_size=4),
    desired=st.dictionaries(_names, st.sampled_from(["h1", "h2"]), max_size=4),
    prune=st.booleans(),
)
def test_plan_never_writes_an_object_meshrules_does_not_own(
    live: dict[str, tuple[str | None, str]], desired: dict[str, str], prune: bool
) -> None:
    live_objects = [dr(n, h, {OWNER_LABEL: o} if o else {}) for n, (o, h) in live.items()]
    plan = plan_apply("c1", [dr(n, h) for n, h in desired.items()], live_index(live_objects), prune=prune)
    for change in plan.writes:
        owner = live.get(change.key.name, (None, ""))[0] if change.key.name in live else "absent"
        assert owner in ("meshrules-system", "absent"), change
        if change.action is Action.DELETE:
            assert change.key.name not in desired and prune
    for name, (owner, _) in live.items():
        if name in desired and owner != "meshrules-system":
            assert ObjectKey("networking.istio.io", "DestinationRule", "bookinfo", name) in {
                c.key for c in plan.reported
            }


def test_a_diff_never_shows_secret_data() -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "link-credentials", "namespace": "linkerd-multicluster"},
        "data": {"kubeconfig": "dG9wLXNlY3JldC10b2tlbg=="},
    }
    diff = plan_apply("c1", [secret], {}).diff()
    assert "kubeconfig: <redacted" in diff and "dG9wLXNlY3JldC10b2tlbg" not in diff


def test_a_plan_from_a_lagging_cache_fails_with_409_and_overwrites_nothing(
    emulators: Emulators, tmp_path: Path
) -> None:
    """A cache that has not seen an object yet plans a create; the create's precondition stops it."""
    users = dr("reviews", "users.example", labels={"team": "a"})
    emu = seeded(emulators, service("reviews", {"app": "reviews"}), users)
    cluster = connect(emu, tmp_path)
    desired = [dr("reviews", "reviews.bookinfo.svc.cluster.local", labels=OWNED)]

    def lagging(res: Any) -> list[dict[str, Any]] | None:
        return [] if res.kind == "DestinationRule" else None

    live = read_live(cluster, desired, cached=lagging)
    plan = plan_apply(cluster.name, desired, live)
    assert [c.action for c in plan.writes] == [Action.CREATE]
    result = execute(plan, cluster)
    assert [err.status for _, err in result.failed] == [409]  # type: ignore[attr-defined]
    assert emu.store.get(R.ISTIO_DESTINATION_RULE, "bookinfo", "reviews")["spec"] == {"host": "users.example"}
    # Read fresh, the same desired state is recognised as a user's object: reported, untouched.
    plan = plan_apply(cluster.name, desired, read_live(cluster, desired))
    assert plan.writes == () and [c.key.name for c in plan.reported] == ["reviews"]


def test_kinds_a_cache_holds_are_not_listed(emulators: Emulators, tmp_path: Path) -> None:
    emu = seeded(emulators, service("reviews", {"app": "reviews"}))
    cluster = connect(emu, tmp_path)
    held = {"DestinationRule": [], "VirtualService": []}
    mark = emu.mark()
    read_live(cluster, cached=lambda res: held.get(res.kind))
    listed = {r.path.rsplit("/", 1)[-1] for r in emu.requests[mark:] if r.method == "GET" and not r.watch}
    assert "destinationrules" not in listed and "virtualservices" not in listed
    assert "services" in listed
