"""What the controller needs from the pure pipeline: a `Translate` callable, injected.

The controller reads live clusters into a `Scenario` and calls `translate(scenario)`; it never
decides anything itself. The result says what to write: outputs per cluster (`EmitResult`, or
None to leave outputs alone), each policy's status (spec §3.4, without `observedGeneration`,
which the controller adds from the generation it read), and the discovery to publish.

`full_pipeline` runs discovery, the rule set, both emitters and the statuses. `incremental_pipeline`
gives the same results over a stream of scenarios, reusing what an edit leaves alone (see
`meshrules.pipeline.incremental`); `default_translate` is one, for `meshrules controller` and
`meshrules apply` (whose single call runs whole). `discovery_only` publishes discovery and writes
no outputs (and so prunes nothing); tests and a cautious first rollout use it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from meshrules.discovery import Discovery
from meshrules.emit.output import EmitResult
from meshrules.engine.intent import gc_paused
from meshrules.model.scenario import Scenario
from meshrules.pipeline import Analysis, IncrementalTranslator, analyse
from meshrules.pipeline.rules import decide
from meshrules.pipeline.translate import Translation as PipelineTranslation
from meshrules.pipeline.translate import translate

if TYPE_CHECKING:  # only for the annotation: prometheus_client is not loaded for `apply`
    from meshrules.kube.metrics import Metrics

log = logging.getLogger(__name__)


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
    """Discover, decide with the default rules (plus the scenario's), emit, and assemble statuses.

    The cyclic garbage collector is paused for the whole step, as the incremental translator
    pauses it: everything built is large and acyclic (see `gc_paused`).
    """
    with gc_paused():
        analysis = analyse(scenario)
        return from_pipeline(analysis, translate(analysis, decide(analysis).intent))


def incremental_pipeline(metrics: Metrics | None = None) -> Translate:
    """`full_pipeline`'s results, from a translator that reuses what each scenario shares with the last.

    The closure keeps the previous scenario's analysis and decision; call it from one thread (the
    controller's reconcile loop does). Each call logs the path taken at debug level and, given
    ``metrics``, counts it (`meshrules_translations_total{path}`, `Retranslation.label`: `full`,
    `redecide`, `update`, `unchanged`, or `rediscover-…` when cluster inputs moved without changing
    what the translation reads).
    """
    translator = IncrementalTranslator()

    def translate_scenario(scenario: Scenario) -> Translation:
        started = time.monotonic()
        step = translator.translate(scenario)
        translation = from_pipeline(step.analysis, step.translation)
        log.debug(
            "translated on the %s path in %.3f s%s",
            step.label,
            time.monotonic() - started,
            f" (re-decided {', '.join(step.updated)})" if step.updated else "",
        )
        if metrics is not None:
            metrics.translations.labels(step.label).inc()
        return translation

    return translate_scenario


def default_translate(metrics: Metrics | None = None) -> Translate:
    """The translation `meshrules controller` and `meshrules apply` use: `incremental_pipeline`."""
    return incremental_pipeline(metrics)
