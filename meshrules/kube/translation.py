"""What the controller needs from the pure pipeline: a `Translate` callable, injected.

The controller reads live clusters into a `Scenario` and calls `translate(scenario)`; it never
decides anything itself. The result says what to write: outputs per cluster (`EmitResult`, or
None to leave outputs alone), each policy's status (spec §3.4, without `observedGeneration`,
which the controller adds from the generation it read), and the discovery to publish.

`full_pipeline` is what `meshrules apply` and `meshrules controller` run: discovery, the rule
set, both emitters and the statuses. `discovery_only` publishes discovery and writes no outputs
(and so prunes nothing); tests and a cautious first rollout use it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from meshrules.discovery import Discovery
from meshrules.emit.output import EmitResult
from meshrules.model.scenario import Scenario
from meshrules.pipeline import Analysis, analyse
from meshrules.pipeline.rules import decide
from meshrules.pipeline.translate import Translation as PipelineTranslation
from meshrules.pipeline.translate import translate


@dataclass(frozen=True)
class Translation:
    """The controller's input from the pure pipeline."""

    # Objects and patches per cluster; None when outputs are not translated (nothing is applied or pruned).
    outputs: EmitResult | None
    # `Kind namespace/name` of a policy → its status body (`state`, `errors`, `destinations`, …).
    statuses: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # The discovery objects to publish in the management namespace (None: publish nothing).
    discovery: Discovery | None = None


Translate = Callable[[Scenario], Translation]


def discovery_only(scenario: Scenario) -> Translation:
    """Publish discovery only: no outputs, no statuses."""
    return Translation(outputs=None, discovery=analyse(scenario).discovery)


def from_pipeline(analysis: Analysis, translated: PipelineTranslation) -> Translation:
    """The controller's view of `meshrules.pipeline.translate`'s result for ``analysis``."""
    statuses: dict[str, dict[str, Any]] = {}
    for ref, status in translated.statuses.items():
        body = status.model_dump(mode="json", by_alias=True, exclude_none=True)
        # The controller writes the generation it read, not the one a snapshot carried.
        body.pop("observedGeneration", None)
        statuses[ref] = body
    outputs = EmitResult(objects=dict(translated.objects), patches=dict(translated.patches))
    return Translation(outputs=outputs, statuses=statuses, discovery=analysis.discovery)


def full_pipeline(scenario: Scenario) -> Translation:
    """Discover, decide with the default rules (plus the scenario's), emit, and assemble statuses."""
    analysis = analyse(scenario)
    return from_pipeline(analysis, translate(analysis, decide(analysis).intent))


def default_translate() -> Translate:
    """The translation `meshrules apply` and `meshrules controller` use: the whole pipeline."""
    return full_pipeline
