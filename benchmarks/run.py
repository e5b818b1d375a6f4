"""Benchmarks of the pipeline at the sizes the issues name (S, M, L): time per stage and peak memory.

    python benchmarks/run.py --sizes S M L [--seed 1] [--out benchmarks/out] [--json FILE]

Each size runs in its own child process, so its peak RSS (`ru_maxrss`) is that size's alone. The
scenario is generated once per size and seed (`benchmarks/generate.py`) and reused. Stages:

- load: `load_scenario` (YAML with line marks, strict policy parsing)
- discover: discovery of every cluster
- graph: the typed service graph, every policy selector resolved
- emit: both emitters and the policy statuses (`translate` without the file writing)
- write: the YAML files of `translate --out` (into a temporary directory)
- rules: facts from the graph, the default rule set evaluated, the intent read (`bench_rules.py`
  has the details: naive ratio, incremental re-evaluation)

Nothing here is part of the test suite's pass/fail: the machines are noisy.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from generate import SIZES, write_scenario  # noqa: E402


def ensure_scenario(size: str, seed: int, out: Path) -> Path:
    """Generate the scenario of ``size`` once; reuse it when its marker file says it is complete."""
    from dataclasses import replace

    from meshrules.testing.topology import generate_topology

    path = out / f"{size}-seed{seed}"
    marker = path / ".complete"
    if not marker.exists():
        if path.exists():
            import shutil

            shutil.rmtree(path)
        write_scenario(generate_topology(replace(SIZES[size], seed=seed)), path)
        marker.write_text("ok\n")
    return path


def measure(path: Path) -> dict[str, Any]:
    """Run every stage once on the scenario at ``path``; return seconds per stage and counts."""
    from meshrules.cli.translate import write_tree
    from meshrules.discovery import discover
    from meshrules.graph import build_graph
    from meshrules.kube.scenario import load_scenario
    from meshrules.pipeline import cluster_input

    timings: dict[str, float] = {}
    start = time.perf_counter()
    scenario = load_scenario(path)
    timings["load"] = time.perf_counter() - start

    start = time.perf_counter()
    extra: list[Any] = []
    found = discover({c.name: cluster_input(c, extra) for c in scenario.clusters})
    timings["discover"] = time.perf_counter() - start

    start = time.perf_counter()
    graph = build_graph(found, scenario.policies)
    timings["graph"] = time.perf_counter() - start

    from meshrules.engine.intent import decide
    from meshrules.pipeline import Analysis
    from meshrules.pipeline.rules import load_rules
    from meshrules.pipeline.translate import translate

    start = time.perf_counter()
    decision = decide(graph, load_rules(), scenario)
    timings["rules"] = time.perf_counter() - start

    start = time.perf_counter()
    translation = translate(Analysis(scenario, found, graph), decision.intent)
    timings["emit"] = time.perf_counter() - start

    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        write_tree(Path(out) / "out", translation.objects, translation.patches, [])
    timings["write"] = time.perf_counter() - start

    timings["total"] = sum(timings.values())
    return {
        "seconds": {k: round(v, 3) for k, v in timings.items()},
        "counts": {
            "objects": sum(len(c.objects) for c in scenario.clusters),
            "policies": len(scenario.policies),
            "workloads": len(found.workloads),
            "destinations": len(found.destinations),
            "graph_nodes": graph.graph.number_of_nodes(),
            "graph_edges": graph.graph.number_of_edges(),
            "diagnostics": len(scenario.diagnostics) + len(found.diagnostics),
            "base_facts": decision.model.stats.base_facts,
            "derived_facts": decision.model.stats.derived_facts,
            "emitted_objects": translation.object_count(),
        },
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks and print one line per size (and JSON with --json)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["S", "M", "L"], choices=sorted(SIZES))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=HERE / "out")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--one", type=Path, default=None, help=argparse.SUPPRESS)  # child mode
    args = parser.parse_args(argv)
    if args.one is not None:
        print(json.dumps(measure(args.one)))
        return 0
    results = {}
    for size in args.sizes:
        path = ensure_scenario(size, args.seed, args.out)
        child = subprocess.run(
            [sys.executable, __file__, "--one", str(path)], check=True, capture_output=True, text=True
        )
        result = json.loads(child.stdout.strip().splitlines()[-1])
        results[size] = result
        secs = " ".join(f"{k}={v:.2f}s" for k, v in result["seconds"].items())
        counts = result["counts"]
        print(
            f"{size}: {secs} peak={result['peak_rss_mib']:.0f}MiB "
            f"({counts['workloads']} workloads, {counts['destinations']} destinations, {counts['policies']} policies)"
        )
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
