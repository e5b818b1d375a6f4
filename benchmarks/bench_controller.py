"""The controller's translation after one policy edit: the whole pipeline against the incremental one.

Not part of the test suite. Run:

    python benchmarks/bench_controller.py              # L: 50 clusters, 10k workloads, 2k policies
    python benchmarks/bench_controller.py --size M

The scenario is generated once (benchmarks/out/<size>-seed<seed>, reused when complete) and read
twice into live scenarios (`live_scenario`, as the controller builds them), so the scenario after an
edit shares no `KubeObject` with the one before, as two reads of the informers' caches do not. A
live cluster also holds what a snapshot leaves out: a running Pod per Deployment (owned by its
ReplicaSet, with the mesh's proxy), one bare Pod per cluster and a Node; they are added. Every
cluster object gets a `metadata.uid` and `resourceVersion`, as live objects have (`--no-versions`
leaves them out: cluster inputs are then compared by value). Reported:

- comparing the cluster inputs of two reads (what decides whether discovery is reused), by
  uid/resourceVersion and by value;
- the translator's first (whole) translation, and an unchanged scenario translated again;
- a TrafficPolicy edit (a new request timeout) and an AccessPolicy edit (one more method and one
  more namespace of callers), each made and undone `--repeat` times: `full_pipeline`, the
  translator's whole path (reset first) and the translator after the previous scenario (as
  `incremental_pipeline` runs it), the path taken, medians and ratios, and a check that the
  translations are equal;
- what a live fleet does all the time, the same way: a Pod's status update (one Pod, then one Pod
  in every cluster), a label change on a Pod its Deployment speaks for, and a label change on a
  bare Pod (a workload of its own: discovery changes, so everything runs);
- peak RSS (the translator keeps the previous scenario's analysis and decision).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from run import ensure_scenario  # noqa: E402

from meshrules.kube.live import LiveCluster, live_scenario  # noqa: E402
from meshrules.kube.scenario import load_scenario  # noqa: E402
from meshrules.kube.translation import Translation, from_pipeline, full_pipeline  # noqa: E402
from meshrules.model.common import IdentitySelector  # noqa: E402
from meshrules.model.policy import AccessPolicy, Policy, TrafficPolicy  # noqa: E402
from meshrules.model.scenario import Scenario  # noqa: E402
from meshrules.pipeline import IncrementalTranslator, Retranslation  # noqa: E402
from meshrules.pipeline.incremental import same_cluster_inputs  # noqa: E402
from meshrules.testing.topology import live_extras  # noqa: E402


def _timed(label: str, seconds: float, note: str = "") -> None:
    print(f"{label:<56} {seconds:7.2f} s  {note}".rstrip())


@dataclass(frozen=True)
class Seconds:
    """Wall and CPU seconds of one run (CPU time is what other processes on the machine cannot inflate)."""

    wall: float
    cpu: float

    def __str__(self) -> str:
        return f"{self.wall:.2f} s (CPU {self.cpu:.2f} s)"


@contextmanager
def _clock(into: list[Seconds]) -> Iterator[None]:
    wall, cpu = time.perf_counter(), time.process_time()
    yield
    into.append(Seconds(time.perf_counter() - wall, time.process_time() - cpu))


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass
class LiveFleet:
    """What the informers hold: each cluster's object bodies and settings, and the policy bodies."""

    clusters: list[LiveCluster]
    policies: list[dict[str, Any]]

    def scenario(self) -> Scenario:
        return live_scenario(self.clusters, self.policies)

    def edited(self, cluster: str, name: str, edit: Callable[[dict[str, Any]], None]) -> LiveFleet:
        """The fleet after a write to object ``name`` of ``cluster``: a new body, a new resourceVersion."""
        clusters = []
        for live in self.clusters:
            bodies = list(live.objects)
            if live.name == cluster:
                at = next(i for i, b in enumerate(bodies) if b["metadata"]["name"] == name)
                body = copy.deepcopy(bodies[at])
                edit(body)
                if "resourceVersion" in body["metadata"]:
                    body["metadata"]["resourceVersion"] = str(int(body["metadata"]["resourceVersion"]) + 1)
                bodies[at] = body
            clusters.append(dataclasses.replace(live, objects=bodies))
        return LiveFleet(clusters, self.policies)


def _load(path: Path, versions: bool) -> Scenario:
    """The scenario as the controller reads it: live objects (no files, no lines), in fresh copies."""
    return _read(path, versions).scenario()


def _read(path: Path, versions: bool) -> LiveFleet:
    files = load_scenario(path)
    clusters = []
    for cluster in files.clusters:
        spec = (cluster.config.body.get("spec") or {}) if cluster.config is not None else {}
        bodies = copy.deepcopy([dict(o.body) for o in cluster.objects])
        bodies.extend(_pods_and_node(cluster.name, bodies))
        if versions:
            # What the informers' objects carry; the same object gets the same pair in every load.
            for i, body in enumerate(bodies):
                body["metadata"]["uid"] = f"{cluster.name}-{i}"
                body["metadata"]["resourceVersion"] = "1"
        clusters.append(LiveCluster(cluster.name, bodies, spec.get("clusterDomain"), spec.get("region")))
    policies = [dict(files.sources[p.ref].body) for p in files.policies]
    return LiveFleet(clusters, policies)


def _pods_and_node(cluster: str, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A running Pod per app Deployment, one bare Pod (a workload of its own) and a Node (`live_extras`)."""
    linkerd = any(b["kind"] == "Namespace" and b["metadata"]["name"] == "linkerd" for b in bodies)
    apps = [b for b in bodies if b["kind"] == "Deployment" and "version" in b["metadata"].get("labels", {})]
    return live_extras(cluster, apps, "linkerd" if linkerd else "istio")


def _status_bump(body: dict[str, Any]) -> None:
    body["status"]["conditions"] = [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-10T09:00:00Z"}]


def _version_label(body: dict[str, Any]) -> None:
    labels = body["metadata"]["labels"]
    labels["version"] = "v9" if labels.get("version") != "v9" else "v1"


def _with(scenario: Scenario, edited: Policy) -> Scenario:
    return dataclasses.replace(
        scenario, policies=tuple(edited if p.ref == edited.ref else p for p in scenario.policies)
    )


def _traffic_edit(policies: tuple[Policy, ...]) -> TrafficPolicy:
    target = next(p for p in policies if isinstance(p, TrafficPolicy) and p.spec.policy.request_timeout is not None)
    config = target.spec.policy.model_copy(update={"request_timeout": "7s"})
    return target.model_copy(update={"spec": target.spec.model_copy(update={"policy": config})})


def _access_edit(policies: tuple[Policy, ...]) -> AccessPolicy:
    target = next(p for p in policies if isinstance(p, AccessPolicy))
    spec = target.spec.model_copy(
        update={
            "allowed_methods": [*target.spec.allowed_methods, "PATCH"],
            "source_selector": [*target.spec.source_selector, IdentitySelector(namespaces=["ads"])],
        }
    )
    return target.model_copy(update={"spec": spec})


def _incremental(translator: IncrementalTranslator, scenario: Scenario) -> tuple[Retranslation, Translation, Seconds]:
    """One step of `incremental_pipeline`'s closure (the translator, then the controller's view)."""
    clock: list[Seconds] = []
    with _clock(clock):
        step = translator.translate(scenario)
        translation = from_pipeline(step.analysis, step.translation)
    return step, translation, clock[0]


def _compare(
    label: str, translator: IncrementalTranslator, whole: IncrementalTranslator, scenario: Scenario
) -> tuple[Seconds, Seconds, Seconds]:
    clock: list[Seconds] = []
    with _clock(clock):
        expected = full_pipeline(scenario)
    # The translator's own whole path (GC paused for the whole step): what reuse alone saves.
    whole.reset()
    _, _, whole_s = _incremental(whole, scenario)
    step, translation, incremental_s = _incremental(translator, scenario)
    print(f"  {label}: full_pipeline {clock[0]}, whole path {whole_s}, {step.label} {incremental_s}")
    assert translation == expected, f"{label}: incremental and full translations differ"
    return clock[0], whole_s, incremental_s


def _edits(
    label: str,
    translator: IncrementalTranslator,
    whole: IncrementalTranslator,
    base: Scenario,
    edited: Scenario,
    repeat: int,
) -> dict[str, Seconds]:
    """``repeat`` edits, back and forth between ``base`` and ``edited`` (each one a real edit)."""
    runs = [_compare(label, translator, whole, edited if i % 2 == 0 else base) for i in range(repeat)]
    return _medians(label, runs)


def _medians(label: str, runs: list[tuple[Seconds, Seconds, Seconds]]) -> dict[str, Seconds]:
    full, whole_path, incremental = (
        Seconds(statistics.median(r[i].wall for r in runs), statistics.median(r[i].cpu for r in runs)) for i in range(3)
    )
    print(f"{label}, medians of {len(runs)}:")
    print(f"  full_pipeline {full}; translator whole path {whole_path}; translator incremental {incremental}")
    print(
        f"  full / incremental = {full.wall / incremental.wall:.2f} wall, {full.cpu / incremental.cpu:.2f} CPU; "
        f"whole path / incremental = {whole_path.wall / incremental.wall:.2f} wall, "
        f"{whole_path.cpu / incremental.cpu:.2f} CPU"
    )
    return {"full": full, "whole": whole_path, "incremental": incremental}


def run(size: str, seed: int, out: Path, versions: bool, repeat: int = 3) -> dict[str, Any]:
    """Measure one size; returns the seconds measured."""
    path = ensure_scenario(size, seed, out)
    fleet = _read(path, versions)
    before, after = fleet.scenario(), _load(path, versions)
    policies = sum(1 for _ in before.policies)
    objects = sum(len(c.objects) for c in before.clusters)
    print(f"size {size}: {objects} cluster objects, {policies} policies; uid/resourceVersion: {versions}")
    results: dict[str, Any] = {}

    started = time.perf_counter()
    assert same_cluster_inputs(before.clusters, after.clusters)
    results["compare"] = time.perf_counter() - started
    _timed("compare cluster inputs of two reads", results["compare"], "by uid/resourceVersion" if versions else "")
    if versions:
        plain_a, plain_b = _load(path, False), _load(path, False)
        started = time.perf_counter()
        assert same_cluster_inputs(plain_a.clusters, plain_b.clusters)
        _timed("compare cluster inputs of two reads", time.perf_counter() - started, "by value")
        del plain_a, plain_b

    translator = IncrementalTranslator()
    step, _, first_s = _incremental(translator, before)
    print(f"translator: first translation ({step.label}) {first_s}")
    step, _, again_s = _incremental(translator, after)
    print(f"translator: the same scenario read again ({step.label}) {again_s}")

    whole = IncrementalTranslator()
    traffic = _with(after, _traffic_edit(after.policies))
    results["TrafficPolicy"] = _edits("TrafficPolicy edit", translator, whole, after, traffic, repeat)
    last = traffic if repeat % 2 else after
    access = _with(last, _access_edit(last.policies))
    results["AccessPolicy"] = _edits("AccessPolicy edit", translator, whole, last, access, repeat)
    last = access if repeat % 2 else last

    # What a live fleet does all the time, from the fleet as read first (policies unedited).
    translator.translate(fleet.scenario())
    first = fleet.clusters[0]
    pods = [b["metadata"]["name"] for b in first.objects if b["kind"] == "Pod"]
    owned, bare = pods[0], next(p for p in pods if p.endswith("-debug"))
    cases: dict[str, Callable[[LiveFleet], LiveFleet]] = {
        "Pod status update": lambda f: f.edited(first.name, owned, _status_bump),
        "Pod status update in every cluster": lambda f: _in_every_cluster(f),
        "label change on a Deployment's Pod": lambda f: f.edited(first.name, owned, _version_label),
        "label change on a bare Pod (a workload)": lambda f: f.edited(first.name, bare, _version_label),
    }
    for label, edit in cases.items():
        current = fleet
        runs = []
        for _ in range(repeat):
            current = edit(current)
            runs.append(_compare(label, translator, whole, current.scenario()))
        results[label] = _medians(label, runs)
        translator.translate(fleet.scenario())  # back to the fleet as read first
    print(f"peak RSS {_peak_mib():.0f} MiB")
    return results


def _in_every_cluster(fleet: LiveFleet) -> LiveFleet:
    for live in fleet.clusters:
        pod = next(b["metadata"]["name"] for b in live.objects if b["kind"] == "Pod")
        fleet = fleet.edited(live.name, pod, _status_bump)
    return fleet


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark at one size."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="L", choices=["S", "M", "L"])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=HERE / "out")
    parser.add_argument("--no-versions", dest="versions", action="store_false", help="objects without uid/rv")
    parser.add_argument("--repeat", type=int, default=3, help="edits of each kind, back and forth (median shown)")
    args = parser.parse_args(argv)
    run(args.size, args.seed, args.out, args.versions, args.repeat)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
