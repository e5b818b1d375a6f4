"""Workload equivalence classes, and the matrix that answers once per class and per memo key.

Invariants: members of one class answer alike to every destination; the memoised matrix (`CellMemo`,
route and authorization memos) equals a fresh `answer` for every cell.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings

from meshrules.sim.classes import relevant_label_keys, workload_classes
from meshrules.sim.matrix import cell_answer, default_port, destination_ref, reachability_matrix
from meshrules.testing import Topology, topologies, topology_params

from .why_scenarios import Variation, bookinfo, generated

_EXAMPLES = int(os.environ.get("MESHRULES_WHY_EXAMPLES", "4"))
_SLOW = settings(max_examples=_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_bookinfo_classes_tell_subsets_apart() -> None:
    fleet = bookinfo().fleet
    classes = workload_classes(fleet)
    names = [c.representative for c in classes]
    assert "cluster-2/bookinfo/reviews-v2" in names and "cluster-2/bookinfo/reviews-v3" in names
    keys = relevant_label_keys((o for objs in fleet.objects.values() for o in objs), fleet.policies)
    assert {"app", "version"} <= keys
    assert len(classes) == len(fleet.workload_by_ref)  # every bookinfo workload is its own class


def test_an_identical_copy_of_a_workload_joins_its_class_and_answers_alike(tmp_path: Path) -> None:
    v = Variation(tmp_path / "s")
    docs = yaml.safe_load_all((v.root / "clusters/cluster-1/bookinfo.yaml").read_text())
    twin = next(d for d in docs if d and d["kind"] == "Deployment" and d["metadata"]["name"] == "productpage-v1")
    twin["metadata"]["name"] = "productpage-v1-twin"
    fleet = v.add("clusters/cluster-1/twin.yaml", [twin]).simulate().fleet
    klass = next(c for c in workload_classes(fleet) if "cluster-1/bookinfo/productpage-v1" in c.members)
    assert klass.members == ("cluster-1/bookinfo/productpage-v1", "cluster-1/bookinfo/productpage-v1-twin")
    for d in fleet.destinations.values():
        a = cell_answer(fleet, klass.members[0], d, default_port(d))
        b = cell_answer(fleet, klass.members[1], d, default_port(d))
        assert a is not None and b is not None
        assert a.summary() == b.summary(), destination_ref(d)


def _fresh_codes(topology: Topology, root: Path) -> dict[tuple[str, str], str]:
    fleet = generated(topology, root, memoise=False).fleet
    out = {}
    for w in sorted(fleet.workload_by_ref):
        for d in fleet.destinations.values():
            v = cell_answer(fleet, w, d, default_port(d))
            if v is not None:
                out[(w, destination_ref(d))] = v.code
    return out


@_SLOW
@given(topologies(topology_params(max_clusters=3, max_services=5, max_policies=4)))
def test_class_members_and_memoised_matrix_answer_like_fresh_answers(topology: Topology) -> None:
    """Soundness of the equivalence classes and of every memo key (`sim.memo`, `CellMemo`)."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = _fresh_codes(topology, Path(tmp) / "fresh")
        fleet = generated(topology, Path(tmp) / "memo").fleet
        matrix = reachability_matrix(fleet)
        by_class = {(c.source, c.destination): c.code for c in matrix.cells}
        for klass in matrix.classes:
            for member in klass.members:
                for d in fleet.destinations.values():
                    key = (member, destination_ref(d))
                    if key in fresh:
                        assert fresh[key] == by_class[(klass.name, destination_ref(d))], key
