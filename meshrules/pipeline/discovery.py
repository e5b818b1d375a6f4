"""From a loaded scenario to discovery and the service graph: the first stages of every command."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from meshrules.discovery import ClusterInput, Discovery, discover
from meshrules.errors import Diagnostic, Location
from meshrules.graph import ServiceGraph, build_graph
from meshrules.model.discovery import KubernetesClusterConfig, parse_cluster_config
from meshrules.model.scenario import ClusterSnapshot, Scenario, validation_diagnostics


@dataclass(frozen=True)
class Analysis:
    """A scenario with what was discovered in it and the graph over both."""

    scenario: Scenario
    discovery: Discovery
    graph: ServiceGraph

    @property
    def diagnostics(self) -> tuple[Diagnostic, ...]:
        """Every problem found while loading and discovering, sorted by location."""
        return tuple(sorted((*self.scenario.diagnostics, *self.discovery.diagnostics), key=Diagnostic.sort_key))


def cluster_input(snapshot: ClusterSnapshot, diagnostics: list[Diagnostic]) -> ClusterInput:
    """The discovery input of one cluster directory; a bad `cluster.yaml` is reported and ignored."""
    config: KubernetesClusterConfig | None = None
    doc = snapshot.config
    if doc is not None:
        try:
            config = parse_cluster_config(doc.body)
        except ValidationError as exc:
            diagnostics.extend(validation_diagnostics(exc, doc, KubernetesClusterConfig))
    # The one finding about `cluster.yaml` (MR0140) is about its name: point at that line.
    where = Location(file=doc.location.file, line=doc.line_of("metadata.name")) if doc is not None else None
    return ClusterInput(name=snapshot.name, objects=snapshot.objects, config=config, config_location=where)


def analyse(scenario: Scenario) -> Analysis:
    """Discover every cluster of ``scenario`` and build the service graph with its policies."""
    extra: list[Diagnostic] = []
    inputs = {c.name: cluster_input(c, extra) for c in scenario.clusters}
    found = discover(inputs)
    if extra:
        found = Discovery(
            clusters=found.clusters,
            meshes=found.meshes,
            workloads=found.workloads,
            destinations=found.destinations,
            diagnostics=tuple(sorted((*found.diagnostics, *extra), key=Diagnostic.sort_key)),
        )
    return Analysis(scenario=scenario, discovery=found, graph=build_graph(found, scenario.policies))
