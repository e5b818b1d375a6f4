"""The pure pipeline (scenario → discovery → graph → rules → outputs) that commands and the controller share.

It sits between the I/O edges (`kube`, `cli`) and the stages it composes (`sim`, `emit`, `trust`,
`engine`, …): it reads no file and talks to no cluster. `IncrementalTranslator` runs the same
stages over a stream of scenarios, reusing what an edit leaves alone (the controller's path).
"""

from meshrules.pipeline.discovery import Analysis, analyse, cluster_input
from meshrules.pipeline.incremental import IncrementalTranslator, Retranslation, TranslationPath

__all__ = ["Analysis", "IncrementalTranslator", "Retranslation", "TranslationPath", "analyse", "cluster_input"]
