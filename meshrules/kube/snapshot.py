"""`meshrules snapshot`: a live cluster written as a scenario cluster directory (spec §1.1).

Only the kinds discovery and the simulator read are written (`resources.CLUSTER_INPUTS`) —
never a Secret, not even its name. The layout is deterministic: cluster-scoped objects in
`cluster-scoped.yaml`, each namespace's objects in `ns-<namespace>.yaml`, objects sorted by
apiVersion, kind and name, keys sorted; managedFields and kubectl's last-applied copy stripped.
`cluster.yaml` (the optional KubernetesCluster settings) is the user's and never touched.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from meshrules.errors import UsageError
from meshrules.kube import resources as R
from meshrules.kube.cluster import Cluster
from meshrules.kube.live import read_objects
from meshrules.model.common import is_dns1123_label

CLUSTER_SCOPED_FILE = "cluster-scoped.yaml"
NAMESPACE_FILE_PREFIX = "ns-"
BAD_OUT_DIR = "MR0810"

try:
    from yaml import CSafeDumper as _Dumper
except ImportError:  # pragma: no cover
    from yaml import SafeDumper as _Dumper  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class SnapshotResult:
    """What a snapshot wrote: files (relative to the directory) and object counts per kind."""

    directory: Path
    files: tuple[str, ...]
    counts: Mapping[str, int]


def snapshot(cluster: Cluster, out: str | Path) -> SnapshotResult:
    """Write ``cluster``'s inputs to the scenario cluster directory ``out`` (its name is the cluster name)."""
    directory = Path(out)
    if not is_dns1123_label(directory.name):
        raise UsageError(
            f"output directory `{directory.name}` is not a valid cluster name",
            code=BAD_OUT_DIR,
            hint="the directory name is the cluster name: use `<scenario>/clusters/<name>` with a DNS-1123 label",
        )
    objects = read_objects(cluster, R.CLUSTER_INPUTS)
    files = layout(objects)
    directory.mkdir(parents=True, exist_ok=True)
    # Files of namespaces that no longer exist would otherwise resurrect them on the next load.
    for stale in directory.glob(f"{NAMESPACE_FILE_PREFIX}*.yaml"):
        if stale.name not in files:
            stale.unlink()
    if CLUSTER_SCOPED_FILE not in files:
        (directory / CLUSTER_SCOPED_FILE).unlink(missing_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    counts: dict[str, int] = defaultdict(int)
    for obj in objects:
        counts[str(obj.get("kind"))] += 1
    return SnapshotResult(directory=directory, files=tuple(sorted(files)), counts=dict(sorted(counts.items())))


def layout(objects: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """File name → YAML text for ``objects``, deterministic whatever their order."""
    groups: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for obj in objects:
        if obj.get("kind") == "Secret":
            continue  # INVARIANT: a snapshot never holds a Secret
        namespace = (obj.get("metadata") or {}).get("namespace")
        res = R.resource_of(obj)
        scoped = res is not None and not res.namespaced
        groups[CLUSTER_SCOPED_FILE if scoped or not namespace else f"{NAMESPACE_FILE_PREFIX}{namespace}.yaml"].append(
            obj
        )
    out = {}
    for name, items in groups.items():
        items.sort(key=_order)
        out[name] = yaml.dump_all(
            [_plain(o) for o in items], Dumper=_Dumper, sort_keys=True, default_flow_style=False, allow_unicode=True
        )
    return out


def _order(obj: Mapping[str, Any]) -> tuple[str, str, str]:
    meta = obj.get("metadata") or {}
    return (str(obj.get("apiVersion")), str(obj.get("kind")), str(meta.get("name")))


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
