"""The pure pipeline (scenario → discovery → graph → rules → outputs) that commands and the controller share.

It sits between the I/O edges (`kube`, `cli`) and the stages it composes (`sim`, `emit`, `trust`,
`engine`, …): it reads no file and talks to no cluster.
"""

from meshrules.pipeline.discovery import Analysis, analyse, cluster_input

__all__ = ["Analysis", "analyse", "cluster_input"]
