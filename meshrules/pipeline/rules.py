"""The rules stage of the pipeline: an analysed scenario and a rule set in, a `Decision` out.

    decision = decide(analyse(scenario))               # rules/ plus the scenario's policies/*.rules
    decision = decide(analysis, rules_dir=Path("my-rules"))   # --rules DIR replaces rules/
    decision.intent                                   # what the emitters and the simulator read
    print(decision.explain('federated("reviews-bookinfo-cluster-2", "istiod-istio-system-cluster-1")').render())

The rule set is the directory's ``*.rules`` files (the default set unless ``rules_dir`` replaces
it) followed by the scenario's own rule files, which extend it. The scenario's files arrive as
text (``Scenario.rule_files``, read by ``meshrules.kube.scenario``); the rule directory is read
by the rule language's loader (``meshrules.dsl.loader``) — the one file read this layer allows
itself, so that ``--rules DIR`` and the installed ``rules/`` need no extra plumbing. Callers
that must not touch the disk pass a ``Program`` to ``decide_with``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from meshrules.dsl.checks import check
from meshrules.dsl.loader import load_modules, read_file, rule_files
from meshrules.dsl.program import Program
from meshrules.engine.builtins import BuiltinRegistry
from meshrules.engine.intent import Decision
from meshrules.engine.intent import decide as decide_graph
from meshrules.engine.mesh_builtins import mesh_builtins
from meshrules.model.scenario import RuleSource
from meshrules.pipeline.discovery import Analysis
from meshrules.resources import default_rules_dir


@dataclass(frozen=True)
class RuleInputs:
    """The rule files a decision reads: their names in load order, and how to read each one."""

    files: tuple[str, ...]
    read: Callable[[str], str]

    def load(self, builtins: BuiltinRegistry) -> Program:
        """Parse and check the files (and what they include) against ``builtins``."""
        modules, sources = load_modules(self.files, self.read)
        return check(modules, builtins.signatures(), sources)

    def loaded(self, files: Sequence[str], program: Program) -> bool:
        """Whether ``program``, loaded from ``files``, is what these inputs load now.

        Parsing and checking are functions of the files' names and texts, so equal names and texts
        give an equal program; a file that cannot be read any more counts as changed.
        """
        if tuple(files) != self.files:
            return False
        for path, text in program.sources.items():
            try:
                if self.read(path) != text:
                    return False
            except (OSError, UnicodeDecodeError):
                return False
        return True


def rule_inputs(rules_dir: Path | None = None, extra: Sequence[RuleSource] = ()) -> RuleInputs:
    """The files of ``rules_dir`` (default: the shipped ``rules/``), then the ``extra`` texts.

    Raises ``InputError`` when the directory does not exist.
    """
    directory = rules_dir if rules_dir is not None else default_rules_dir()
    in_memory = {os.path.normpath(r.path): r.text for r in extra}

    def read(path: str) -> str:
        text = in_memory.get(os.path.normpath(path))
        return text if text is not None else read_file(path)

    return RuleInputs(tuple([_shown(f) for f in rule_files([directory])] + list(in_memory)), read)


def load_rules(
    rules_dir: Path | None = None,
    extra: Sequence[RuleSource] = (),
    builtins: BuiltinRegistry | None = None,
) -> Program:
    """Check the rule files of ``rules_dir`` (default: the shipped ``rules/``) plus ``extra`` texts.

    Raises ``RuleError`` carrying every diagnostic of every file, and ``InputError`` when the
    directory does not exist.
    """
    return rule_inputs(rules_dir, extra).load(builtins if builtins is not None else mesh_builtins())


def _shown(path: str) -> str:
    """A rule file as explanations and diagnostics name it: relative to the working directory
    when it is below it (`rules/federation.rules:12:1`), else absolute."""
    relative = os.path.relpath(path)
    return path if relative.startswith(os.pardir) else relative


def decide(analysis: Analysis, rules_dir: Path | None = None) -> Decision:
    """Decide ``analysis`` with the default rules (or ``rules_dir``'s) plus the scenario's rule files."""
    registry = mesh_builtins()
    program = load_rules(rules_dir, analysis.scenario.rule_files, registry)
    return decide_with(analysis, program, registry)


def decide_with(analysis: Analysis, program: Program, builtins: BuiltinRegistry | None = None) -> Decision:
    """Decide ``analysis`` with an already checked ``program`` (checked against ``builtins``)."""
    return decide_graph(analysis.graph, program, analysis.scenario, builtins)


__all__ = ["Decision", "RuleInputs", "decide", "decide_with", "load_rules", "rule_inputs"]
