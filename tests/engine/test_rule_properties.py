"""Properties of the default rule set on generated topologies (`meshrules.testing`)."""

from __future__ import annotations

import dataclasses
import random
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from meshrules.dsl import Module, format_module, parse
from meshrules.engine import program_from_text
from meshrules.engine.mesh_builtins import mesh_builtins
from meshrules.kube.scenario import load_scenario
from meshrules.model.intent import Intent
from meshrules.pipeline import Analysis, analyse
from meshrules.pipeline.rules import decide, decide_with
from meshrules.resources import default_rules_dir
from meshrules.testing import Topology, topologies, topology_params

SMALL = topologies(topology_params(max_clusters=3, max_services=5, max_policies=4))


def _analyse(topology: Topology) -> Analysis:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for cluster, objects in topology.clusters.items():
            directory = root / "clusters" / cluster
            directory.mkdir(parents=True)
            (directory / "objects.yaml").write_text(yaml.safe_dump_all(list(objects), sort_keys=True))
        (root / "policies").mkdir()
        (root / "policies" / "all.yaml").write_text(yaml.safe_dump_all(list(topology.policies), sort_keys=True))
        return analyse(load_scenario(root))


@settings(max_examples=12)
@given(SMALL)
def test_the_intent_never_federates_a_destination_into_its_own_mesh(topology: Topology) -> None:
    analysis = _analyse(topology)
    intent = decide(analysis).intent
    home = {d.name: d.mesh for d in analysis.discovery.destinations}
    for edge in intent.federation:
        assert edge.mesh != home[edge.destination]
        assert edge.host  # every federated destination has a name to dial
    governing = {m.mesh: m.virtual_mesh for m in intent.memberships}
    assert all(governing[e.mesh] == governing[home[e.destination]] == e.virtual_mesh for e in intent.federation)


def _shuffled_rules(rnd: random.Random) -> dict[str, str]:
    """The default rule files with their statements (and the files themselves) in a random order."""
    files = sorted(default_rules_dir().glob("*.rules"))
    rnd.shuffle(files)
    texts = {}
    for i, path in enumerate(files):
        module = parse(path.read_text(), path.name)
        statements = list(module.statements)
        rnd.shuffle(statements)
        texts[f"{i:02d}-{path.name}"] = format_module(Module(tuple(statements)))
    return texts


def _without_handles(intent: Intent) -> dict[str, Any]:
    """The intent's decisions: items without their `why` (a fact two rules conclude may name either)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(intent):
        value = getattr(intent, f.name)
        if isinstance(value, tuple):
            value = sorted(
                (dataclasses.replace(v, why=None) if hasattr(v, "why") else v for v in value),
                key=repr,
            )
        out[f.name] = value
    return out


@settings(max_examples=8)
@given(SMALL, st.randoms(use_true_random=False))
def test_rule_order_does_not_change_the_intent(topology: Topology, rnd: random.Random) -> None:
    analysis = _analyse(topology)
    registry = mesh_builtins()
    reordered = program_from_text(_shuffled_rules(rnd), builtins=registry)
    assert _without_handles(decide_with(analysis, reordered, registry).intent) == _without_handles(
        decide(analysis).intent
    )
