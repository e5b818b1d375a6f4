"""`meshrules check --invariants`: each analysis fires once on a policy written to break it, with
its witness; the bundled scenario breaks none of them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from meshrules.cli import app
from meshrules.cli.commands import __all__ as _registered  # noqa: F401  (registers the commands)
from meshrules.errors import Diagnostic
from meshrules.kube.scenario import load_scenario
from meshrules.pipeline.discovery import analyse
from meshrules.pipeline.invariants import invariants
from meshrules.pipeline.query import simulate
from meshrules.resources import bundled_scenario
from meshrules.testing import why

BROKEN = Path(__file__).parent / "data" / "invariant-policies.yaml"


def _findings(path: Path) -> list[Diagnostic]:
    sim = simulate(analyse(load_scenario(path)))
    return invariants(sim.analysis, sim.decision, sim.translation)


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("scenario") / "bookinfo"
    shutil.copytree(bundled_scenario("bookinfo-multicluster"), root)
    shutil.copy(BROKEN, root / "policies" / "broken.yaml")
    return root


def test_bundled_scenario_keeps_every_invariant() -> None:
    assert _findings(bundled_scenario("bookinfo-multicluster")) == []


def test_each_invariant_fires_with_its_witness(broken: Path) -> None:
    found = {(f.code, f.object): f for f in _findings(broken)}
    assert sorted(found) == [
        ("MR1001", "AccessPolicy bookinfo/productpage-reads-details-again"),
        ("MR1001", "TrafficPolicy bookinfo/ratings-timeout-again"),
        ("MR1002", "AccessPolicy bookinfo/reads-nowhere"),
        ("MR1003", "TrafficPolicy bookinfo/to-nowhere"),
        ("MR1004", "AccessPolicy bookinfo/anyone-reads-productpage"),
        ("MR1005", "TrafficPolicy meshrules-system/chaos-everywhere"),
    ]
    shadow = found[("MR1001", "TrafficPolicy bookinfo/ratings-timeout-again")]
    assert shadow.related == ("TrafficPolicy bookinfo/ratings-timeout", "cluster-2/bookinfo/ratings")
    assert str(shadow.location) == "policies/broken.yaml:2"
    access = found[("MR1001", "AccessPolicy bookinfo/productpage-reads-details-again")]
    assert access.related == ("AccessPolicy bookinfo/productpage-reads-backends at cluster-1/bookinfo/details",)
    disagree = found[("MR1005", "TrafficPolicy meshrules-system/chaos-everywhere")]
    assert disagree.related == ("cluster-1/bookinfo/details", "cluster-3/emojivoto/web-svc")


def test_always_allowed_witness_is_allowed_by_why(broken: Path) -> None:
    scenario = load_scenario(broken)
    finding = next(f for f in _findings(broken) if f.code == "MR1004")
    caller, _, rest = finding.related[0].partition(" -> ")
    target, method, path = rest.split(" ")
    dest, _, port = target.rpartition(":")
    verdict = why(scenario, caller, dest, port=int(port), method=method, path=path)
    assert verdict.allowed


def test_check_invariants_flag(broken: Path) -> None:
    runner = CliRunner()
    without = runner.invoke(app, ["check", str(broken), "-o", "json"])
    with_ = runner.invoke(app, ["check", str(broken), "-o", "json", "--invariants"])
    assert "MR1001" not in without.stdout
    assert "MR1001" in with_.stdout and "MR1005" in with_.stdout
