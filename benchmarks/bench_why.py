"""`why` and `matrix` on generated fleets: one query's latency at L, the whole matrix at M.

Not part of the test suite. Run:

    python benchmarks/bench_why.py                      # why on L (1,000 random queries), matrix on M
    python benchmarks/bench_why.py --why-size M --matrix-size S --queries 200

Scenarios are generated once (benchmarks/out/<size>-seed<seed>, reused when complete). Reported:

- pipeline: load + discovery + rules + emitters + building the simulator's fleet (not a query's cost);
- precompile: compiling every cluster's evaluators (routing, authorization, mTLS, Linkerd policy)
  up front, as a long-running process would;
- why: median / p90 / max of single queries from a random workload to a random destination on its
  default port, with a random method and path: the full answer (route, every backend, explanation
  walked through the rule engine's provenance, assumptions, the nearest miss — not its re-run);
- verified nearest miss: a denied query with its edit re-run through the whole pipeline;
- matrix: every workload class × destination at the matrix size (budget: ≤ 30 s at M).
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from run import ensure_scenario  # noqa: E402

from meshrules.kube.scenario import load_scenario  # noqa: E402
from meshrules.pipeline import analyse  # noqa: E402
from meshrules.pipeline.query import Simulation, simulate, verify  # noqa: E402
from meshrules.sim.matrix import default_port, destination_ref, reachability_matrix  # noqa: E402
from meshrules.sim.why import Query, answer  # noqa: E402

_METHODS = ("GET", "GET", "GET", "POST", "PUT", "DELETE")
_PATHS = ("/", "/api/v1/items", "/healthz", "/reviews/0", "/ratings/1")


def _timed(label: str, seconds: float, note: str = "") -> None:
    print(f"{label:<44} {seconds:8.3f} s  {note}".rstrip())


def _load(size: str, seed: int, out: Path) -> Simulation:
    path = ensure_scenario(size, seed, out)
    started = time.perf_counter()
    sim = simulate(analyse(load_scenario(path)))
    _timed(f"[{size}] pipeline (load, rules, emit, fleet)", time.perf_counter() - started)
    # The fleet lives as long as the process: keep the collector from walking it on every query.
    gc.collect()
    gc.freeze()
    return sim


def bench_why(size: str, seed: int, queries: int, out: Path) -> None:
    sim = _load(size, seed, out)
    fleet = sim.fleet
    started = time.perf_counter()
    fleet.precompile()
    _timed(f"[{size}] precompile every cluster", time.perf_counter() - started)
    rng = random.Random(seed)
    workloads = sorted(fleet.workload_by_ref)
    destinations = sorted(fleet.destinations.values(), key=destination_ref)
    asked = []
    for _ in range(queries):
        d = rng.choice(destinations)
        asked.append(Query(rng.choice(workloads), destination_ref(d), default_port(d), rng.choice(_METHODS),
                           rng.choice(_PATHS)))
    times: list[float] = []
    codes: Counter[str] = Counter()
    denied = None
    for query in asked:
        t0 = time.perf_counter()
        v = answer(fleet, query)
        times.append(time.perf_counter() - t0)
        codes[v.code] += 1
        if denied is None and v.nearest_miss is not None:
            denied = (query, v)
    times.sort()
    median = statistics.median(times)
    print(f"[{size}] why: {len(times)} queries  median {median * 1000:.2f} ms  "
          f"p90 {times[int(len(times) * 0.9)] * 1000:.2f} ms  max {times[-1] * 1000:.2f} ms  (budget: median ≤ 50 ms)")
    print(f"[{size}] codes: {dict(codes.most_common())}")
    if denied is not None:
        t0 = time.perf_counter()
        checked = verify(sim, *denied)
        miss = checked.nearest_miss
        _timed(f"[{size}] one verified nearest miss", time.perf_counter() - t0,
               f"verified={miss.verified if miss else None}")


def bench_matrix(size: str, seed: int, out: Path) -> None:
    sim = _load(size, seed, out)
    started = time.perf_counter()
    m = reachability_matrix(sim.fleet)
    elapsed = time.perf_counter() - started
    codes = Counter(c.code for c in m.cells)
    _timed(f"[{size}] matrix", elapsed, f"{len(m.classes)} classes × {len(m.destinations)} destinations = "
           f"{len(m.cells)} cells (budget: ≤ 30 s at M)")
    print(f"[{size}] codes: {dict(codes.most_common())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--why-size", default="L", choices=("S", "M", "L"))
    parser.add_argument("--matrix-size", default="M", choices=("S", "M", "L"))
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=HERE / "out")
    parser.add_argument("--skip-why", action="store_true")
    parser.add_argument("--skip-matrix", action="store_true")
    args = parser.parse_args()
    if not args.skip_why:
        bench_why(args.why_size, args.seed, args.queries, args.out)
    if not args.skip_matrix:
        gc.unfreeze()
        bench_matrix(args.matrix_size, args.seed, args.out)


if __name__ == "__main__":
    main()
