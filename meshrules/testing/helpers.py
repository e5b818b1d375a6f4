"""Helpers for users' own property tests: load a scenario, ask `why`, get a `Verdict`.

    from meshrules.testing import load_scenario, why

    scenario = load_scenario("simulator/scenarios/bookinfo-multicluster")
    verdict = why(scenario, "cluster-1/bookinfo/productpage-v1", "reviews", port=9080,
                  path="/reviews/0", headers={"end-user": "jason"})
    assert verdict.allowed and verdict.timeout == "2s"

`why` takes a `Scenario`, an `Analysis` or a `Simulation` (``meshrules.pipeline.query``); the
pipeline (decide, translate, fleet) runs once per scenario object and is kept for the next calls,
so a Hypothesis test that asks many questions of one scenario pays for it once.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from meshrules.kube.scenario import load_scenario as _load_scenario
from meshrules.model.scenario import Scenario
from meshrules.pipeline.discovery import Analysis, analyse
from meshrules.pipeline.query import Simulation, simulate
from meshrules.pipeline.query import why as _why
from meshrules.sim.verdict import Verdict
from meshrules.sim.why import Query

__all__ = ["load_scenario", "simulation", "why"]

# Simulations by the identity of the object they were built from. Scenarios are immutable, so a
# cached simulation never goes stale; the object is kept alongside so its id cannot be reused.
# A handful is enough for a test session that switches between a few scenarios.
_CACHE_SIZE = 8
_cache: dict[int, tuple[object, Simulation]] = {}


def load_scenario(path: str | Path) -> Scenario:
    """Load a scenario directory (clusters, policies, tests), as `meshrules` commands do."""
    return _load_scenario(path)


def simulation(scenario: Scenario | Analysis | Simulation, rules_dir: Path | None = None) -> Simulation:
    """The scenario taken through the pipeline (cached per scenario object and rule directory)."""
    if isinstance(scenario, Simulation):
        return scenario
    key = hash((id(scenario), rules_dir))
    hit = _cache.get(key)
    if hit is not None and hit[0] is scenario:
        return hit[1]
    analysis = scenario if isinstance(scenario, Analysis) else analyse(scenario)
    sim = simulate(analysis, rules_dir)
    if len(_cache) >= _CACHE_SIZE:
        _cache.pop(next(iter(_cache)))
    _cache[key] = (scenario, sim)
    return sim


def why(
    scenario: Scenario | Analysis | Simulation,
    from_: str,
    to: str,
    *,
    port: int | None = None,
    method: str = "GET",
    path: str = "/",
    headers: Mapping[str, str] | None = None,
    verify: bool = False,
) -> Verdict:
    """What the mesh does with one request (``meshrules why``): a `Verdict`.

    ``from_`` is ``cluster/namespace/workload``; ``to`` a destination ``cluster/namespace/service``
    or a hostname as the caller dials it. ``verify=True`` re-runs the pipeline with a denial's
    nearest-miss edit (slower; the CLI's default).
    """
    query = Query(
        from_, to, port, method.upper(), path, tuple(sorted((k.lower(), v) for k, v in (headers or {}).items()))
    )
    return _why(simulation(scenario), query, verify_miss=verify)
