"""Write a synthetic topology as a scenario directory (spec §1.1) and report what it wrote.

    python benchmarks/generate.py --size S|M|L [--seed 1] --out DIR [--force]

The topology itself comes from the pure generator ``meshrules.testing.topology``; this script is the
I/O edge: it lays the objects out as ``clusters/<cluster>/*.yaml`` (a few multi-document files per
cluster, the namespaces as a ``kind: List`` the way ``kubectl get ns -o yaml`` prints them) and
``policies/<namespace>.yaml`` (one file per owning team), then prints timings and object counts.
The sizes are the benchmark sizes of issue 2; see ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TextIO

import yaml

from meshrules.testing.topology import (
    MANAGEMENT_NAMESPACE,
    KubeObject,
    Topology,
    TopologyParams,
    generate_topology,
)

SIZES: Mapping[str, TopologyParams] = {
    # The Linkerd shares put a Linkerd cluster beside the Istio ones at every size, as in the bundled
    # bookinfo-multicluster scenario, so discovery and emitters are measured on both meshes.
    "S": TopologyParams(
        clusters=3,
        namespaces_per_cluster=3,
        services=50,
        workloads_per_service=2,
        subsets=2,
        traffic_policies=10,
        access_policies=10,
        linkerd_share=1 / 3,
    ),
    "M": TopologyParams(
        clusters=10,
        namespaces_per_cluster=10,
        services=1_000,
        workloads_per_service=2,
        subsets=2,
        traffic_policies=100,
        access_policies=100,
        linkerd_share=0.2,
    ),
    "L": TopologyParams(
        clusters=50,
        namespaces_per_cluster=20,
        services=5_000,
        workloads_per_service=2,
        subsets=2,
        traffic_policies=1_000,
        access_policies=1_000,
        linkerd_share=0.2,
    ),
}

# Namespaces of control planes and gateways: their objects go to control-plane.yaml.
_SYSTEM_NAMESPACES = frozenset({"istio-system", "linkerd", "linkerd-multicluster", "kube-system"})

_BaseDumper: type[Any] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Dumper(_BaseDumper):  # type: ignore[misc]
    """The libyaml emitter, with multi-line strings (mesh config, Linkerd values) as ``|`` blocks."""


def _represent_str(dumper: Any, value: str) -> Any:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def dump_all(documents: Iterable[Any], stream: TextIO) -> None:
    """Write YAML documents with sorted keys, as ``kubectl get -o yaml`` does."""
    yaml.dump_all(documents, stream, Dumper=_Dumper, sort_keys=True, default_flow_style=False, width=120)


def cluster_files(objects: Iterable[KubeObject]) -> dict[str, list[KubeObject]]:
    """Group one cluster's objects into the files of its snapshot directory."""
    files: dict[str, list[KubeObject]] = {}
    for obj in objects:
        kind = obj["kind"]
        if kind == "Namespace":
            name = "namespaces.yaml"
        elif obj["metadata"].get("namespace") in _SYSTEM_NAMESPACES:
            name = "control-plane.yaml"
        else:
            name = f"{kind.lower()}s.yaml"
        files.setdefault(name, []).append(obj)
    return files


def write_scenario(topology: Topology, path: Path) -> list[Path]:
    """Write ``topology`` under ``path`` in the layout of spec §1.1; return the files written, sorted."""
    written: list[Path] = []
    for cluster, objects in topology.clusters.items():
        directory = path / "clusters" / cluster
        directory.mkdir(parents=True, exist_ok=True)
        for name, docs in sorted(cluster_files(objects).items()):
            target = directory / name
            with target.open("w", encoding="utf-8") as stream:
                if name == "namespaces.yaml":
                    # One `kind: List` per cluster, so loaders meet both forms of spec §1.1.
                    dump_all([{"apiVersion": "v1", "kind": "List", "items": docs}], stream)
                else:
                    dump_all(docs, stream)
            written.append(target)
    by_namespace: dict[str, list[KubeObject]] = {}
    for policy in topology.policies:
        namespace = policy["metadata"].get("namespace", MANAGEMENT_NAMESPACE)
        by_namespace.setdefault(namespace, []).append(policy)
    policy_dir = path / "policies"
    policy_dir.mkdir(parents=True, exist_ok=True)
    for namespace, docs in sorted(by_namespace.items()):
        target = policy_dir / f"{namespace}.yaml"
        with target.open("w", encoding="utf-8") as stream:
            dump_all(docs, stream)
        written.append(target)
    return sorted(written)


def _prepare(out: Path, force: bool) -> None:
    """Refuse to mix a new scenario into an old one; with --force, remove only what we would write."""
    stale = [out / "clusters", out / "policies"]
    if any(p.exists() for p in stale):
        if not force:
            raise SystemExit(f"generate: `{out}` already holds a scenario (use --force to replace it)")
        for p in stale:
            if p.exists():
                shutil.rmtree(p)
    out.mkdir(parents=True, exist_ok=True)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: generate, write, and print timings and counts."""
    parser = argparse.ArgumentParser(description="Write a synthetic meshrules scenario.")
    parser.add_argument("--size", choices=sorted(SIZES), required=True, help="benchmark size preset")
    parser.add_argument("--seed", type=int, default=1, help="random seed (same seed, same bytes)")
    parser.add_argument("--out", type=Path, required=True, help="scenario directory to write")
    parser.add_argument("--force", action="store_true", help="replace clusters/ and policies/ in --out")
    args = parser.parse_args(argv)

    params = dataclasses.replace(SIZES[args.size], seed=args.seed)
    _prepare(args.out, args.force)

    started = time.perf_counter()
    topology = generate_topology(params)
    generated = time.perf_counter()
    files = write_scenario(topology, args.out)
    written = time.perf_counter()

    size_bytes = sum(f.stat().st_size for f in files)
    print(f"size {args.size} seed {args.seed} -> {args.out}")
    print(f"  generate  {generated - started:6.2f} s")
    print(f"  write     {written - generated:6.2f} s  ({len(files)} files, {size_bytes / 2**20:.1f} MiB)")
    print(
        f"  clusters {len(topology.clusters)}, services {len(topology.services)}, workloads {len(topology.workloads)}"
    )
    print(f"  kubernetes objects {topology.object_count()}, policies {len(topology.policies)}")
    for kind, count in topology.kind_counts().items():
        print(f"    {kind:<16} {count:>7}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
