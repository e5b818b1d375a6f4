"""Small hand-built scenarios for the default rule set: the bundled clusters, edited, with policies written here.

Imported by module name from the tests beside it (a unique name, so it never shadows another test
directory's helpers). A scenario is the bundled `bookinfo-multicluster` clusters copied into a
temporary directory — optionally edited, or with a second Linkerd cluster — plus the policies a
test writes, so each test states only what it is about.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from meshrules.kube.scenario import load_scenario
from meshrules.pipeline import analyse
from meshrules.pipeline.rules import Decision, decide
from meshrules.resources import bundled_scenario

BOOKINFO = bundled_scenario("bookinfo-multicluster")
MESH1 = "istiod-istio-system-cluster-1"
MESH2 = "istiod-istio-system-cluster-2"
MESH3 = "linkerd-destination-linkerd-cluster-3"
MESH4 = "linkerd-destination-linkerd-cluster-4"
REVIEWS1 = "reviews-bookinfo-cluster-1"
REVIEWS2 = "reviews-bookinfo-cluster-2"
RATINGS2 = "ratings-bookinfo-cluster-2"
DETAILS1 = "details-bookinfo-cluster-1"
PRODUCTPAGE1 = "productpage-bookinfo-cluster-1"

Edit = Callable[[str], str]


def clusters(
    root: Path,
    names: Iterable[str] = ("cluster-1", "cluster-2", "cluster-3"),
    edits: Mapping[str, Edit] | None = None,
) -> Path:
    """Copy bundled cluster directories into ``root/clusters``; ``edits`` maps `cluster/file.yaml` to a text edit."""
    for name in names:
        shutil.copytree(BOOKINFO / "clusters" / name, root / "clusters" / name)
    for path, edit in (edits or {}).items():
        target = root / "clusters" / path
        target.write_text(edit(target.read_text()))
    return root


def second_linkerd_cluster(root: Path, with_emojivoto: bool = True, namespace_only: bool = False) -> None:
    """Add `cluster-4`: a copy of cluster-3's Linkerd (and, if asked, its emojivoto app or just the namespace)."""
    source = BOOKINFO / "clusters" / "cluster-3"
    target = root / "clusters" / "cluster-4"
    target.mkdir(parents=True)
    for f in ("linkerd.yaml", "linkerd-multicluster.yaml"):
        shutil.copy(source / f, target / f)
    (target / "cluster.yaml").write_text(
        (source / "cluster.yaml").read_text().replace("cluster-3", "cluster-4").replace("europe-west1", "europe-west4")
    )
    if with_emojivoto:
        shutil.copy(source / "emojivoto.yaml", target / "emojivoto.yaml")
    elif namespace_only:
        (target / "emojivoto.yaml").write_text(
            yaml.safe_dump({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "emojivoto"}})
        )


def policies(root: Path, *docs: Mapping[str, Any], name: str = "policies.yaml") -> Path:
    """Write policy documents to ``root/policies/<name>``."""
    (root / "policies").mkdir(exist_ok=True)
    (root / "policies" / name).write_text(yaml.safe_dump_all([dict(d) for d in docs], sort_keys=False))
    return root


def virtual_mesh(
    name: str, meshes: Iterable[str], created: str = "2026-01-10T09:00:00Z", **spec: Any
) -> dict[str, Any]:
    """A VirtualMesh over ``meshes`` (shared trust unless ``trust`` is given)."""
    body: dict[str, Any] = {
        "meshes": [{"name": m, "namespace": "meshrules-system"} for m in meshes],
        "trust": {"shared": {}},
    }
    body.update(spec)
    return _object("VirtualMesh", name, "meshrules-system", created, body)


def traffic_policy(name: str, created: str, **spec: Any) -> dict[str, Any]:
    """A TrafficPolicy in namespace `bookinfo`."""
    return _object("TrafficPolicy", name, "bookinfo", created, spec)


def access_policy(name: str, created: str, **spec: Any) -> dict[str, Any]:
    """An AccessPolicy in namespace `bookinfo`."""
    return _object("AccessPolicy", name, "bookinfo", created, spec)


def _object(kind: str, name: str, namespace: str, created: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.meshrules.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": created},
        "spec": dict(spec),
    }


def service(name: str, cluster: str | None = None, namespace: str = "bookinfo") -> dict[str, Any]:
    """A `services` DestinationSelector entry."""
    ref = {"name": name, "namespace": namespace}
    if cluster is not None:
        ref["cluster"] = cluster
    return {"services": [ref]}


def decided(root: Path, rules_dir: Path | None = None) -> Decision:
    """Load, analyse and decide the scenario at ``root`` (failing on load errors)."""
    analysis = analyse(load_scenario(root))
    assert analysis.diagnostics == () or all(d.severity.value != "error" for d in analysis.diagnostics), [
        str(d) for d in analysis.diagnostics
    ]
    return decide(analysis, rules_dir)


def codes(decision: Decision) -> list[str]:
    """Finding codes, in report order."""
    return [d.code for d in decision.findings]
