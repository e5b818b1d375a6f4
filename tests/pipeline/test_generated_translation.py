"""Generated topologies, translated end to end: every emitted object validates against the real CRDs."""

from __future__ import annotations

import tempfile
from pathlib import Path

import yaml
from hypothesis import given, settings

from meshrules.emit.schema import CrdRegistry, validate
from meshrules.kube.scenario import load_scenario
from meshrules.pipeline import analyse
from meshrules.pipeline.rules import decide
from meshrules.pipeline.translate import translate
from meshrules.testing import Topology, topologies, topology_params

LINKERD = CrdRegistry.bundled("linkerd")


def _write(topology: Topology, root: Path) -> None:
    for cluster, objects in topology.clusters.items():
        directory = root / "clusters" / cluster
        directory.mkdir(parents=True)
        (directory / "objects.yaml").write_text(yaml.safe_dump_all(list(objects), sort_keys=True))
    (root / "policies").mkdir()
    (root / "policies" / "all.yaml").write_text(yaml.safe_dump_all(list(topology.policies), sort_keys=True))


@settings(max_examples=12)
@given(topologies(topology_params(max_clusters=3, max_services=5, max_policies=4)))
def test_every_object_emitted_for_a_generated_topology_validates(topology: Topology) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        _write(topology, Path(tmp))
        analysis = analyse(load_scenario(Path(tmp)))
    translation = translate(analysis, decide(analysis).intent)
    for cluster, objects in translation.objects.items():
        for obj in objects:
            registry = LINKERD if "linkerd" in str(obj["apiVersion"]) else None
            assert validate(obj, registry) == [], (cluster, obj["kind"], obj["metadata"]["name"])
    for patches in translation.patches.values():
        for patch in patches:  # SSA patches own only the export label of a user's Service
            assert set(patch["metadata"]) <= {"name", "namespace", "labels", "annotations"}
