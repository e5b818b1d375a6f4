"""Discovery stays linear: 50 clusters, 5,000 Services and 10,000 workloads.

Timings are never asserted (machines are noisy); the test compares, in one run, the time for 50
clusters with the time for 10: linear work gives a ratio near 5, quadratic work near 25. The
absolute figures are the benchmark's job (`benchmarks/`).
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from discovery_builders import Discover, Kube

CLUSTERS, NAMESPACES, SERVICES, VERSIONS = 50, 10, 10, 2
# Linear is 5x for 5x the clusters, quadratic 25x; 15x leaves room for a loaded machine.
MAX_RATIO = 15.0


def _cluster(index: int) -> list[dict[str, Any]]:
    linkerd = index % 5 == 4  # every fifth cluster runs Linkerd, the others Istio
    if linkerd:
        objs: list[dict[str, Any]] = [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "linkerd"}},
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "linkerd-destination", "namespace": "linkerd"},
                "spec": {"template": {"spec": {"containers": [{"name": "destination", "image": "l5d/controller:2"}]}}},
            },
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "linkerd-config", "namespace": "linkerd"},
                "data": {"values": "identityTrustDomain: cluster.local\n"},
            },
        ]
    else:
        objs = [
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "istiod", "namespace": "istio-system"},
                "spec": {"template": {"spec": {"containers": [{"name": "discovery", "image": "istio/pilot:1.24.2"}]}}},
            },
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "istio", "namespace": "istio-system"},
                "data": {"mesh": "trustDomain: cluster.local\n"},
            },
        ]
    for n in range(NAMESPACES):
        namespace = f"team-{n}"
        meta: dict[str, Any] = {"name": namespace}
        if linkerd:
            meta["annotations"] = {"linkerd.io/inject": "enabled"}
        else:
            meta["labels"] = {"istio-injection": "enabled"}
        objs.append({"apiVersion": "v1", "kind": "Namespace", "metadata": meta})
        for s in range(SERVICES):
            app = f"svc-{s}"
            objs.append(
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {"name": app, "namespace": namespace, "labels": {"app": app}},
                    "spec": {"selector": {"app": app}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
                }
            )
            for v in range(VERSIONS):
                labels = {"app": app, "version": f"v{v}", "team": namespace}
                objs.append(
                    {
                        "apiVersion": "apps/v1",
                        "kind": "Deployment",
                        "metadata": {"name": f"{app}-v{v}", "namespace": namespace},
                        "spec": {
                            "selector": {"matchLabels": labels},
                            "template": {
                                "metadata": {"labels": labels},
                                "spec": {
                                    "serviceAccountName": app,
                                    "containers": [
                                        {"name": "app", "image": "app:1", "ports": [{"containerPort": 8080}]}
                                    ],
                                },
                            },
                        },
                    }
                )
    return objs


@pytest.mark.slow
def test_discovery_time_grows_linearly_with_the_fleet(live: Kube, run: Discover) -> None:
    clusters = {f"cluster-{i}": live(_cluster(i), f"cluster-{i}") for i in range(CLUSTERS)}
    small = dict(list(clusters.items())[: CLUSTERS // 5])
    small_times = []
    for _ in range(3):
        start = time.perf_counter()
        run(**small)
        small_times.append(time.perf_counter() - start)
    big_times = []
    for _ in range(2):
        start = time.perf_counter()
        found = run(**clusters)
        big_times.append(time.perf_counter() - start)
    elapsed = min(big_times)
    print(f"\ndiscovery of {len(found.workloads)} workloads, {len(found.destinations)} destinations: {elapsed:.2f}s")
    assert len(found.meshes) == CLUSTERS
    assert len(found.workloads) == CLUSTERS * NAMESPACES * SERVICES * VERSIONS == 10_000
    assert len(found.destinations) == CLUSTERS * NAMESPACES * SERVICES == 5_000
    assert all(d.subsets == {"version": ("v0", "v1")} for d in found.destinations)
    assert found.diagnostics == ()
    assert elapsed / min(small_times) < MAX_RATIO
