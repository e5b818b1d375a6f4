"""meshrules' rule engine: bottom-up evaluation of checked rule programs, with a derivation per fact.

Neighbours: ``meshrules.dsl`` parses and checks the rules this package evaluates; fact
extraction (above) fills ``Facts``; emitters and the simulator read the ``Model``. Inside:
``fixpoint`` runs strata (semi-naive or naive), ``plan`` orders joins, ``compiler`` turns plans
into Python, ``store`` keeps facts and indexes, ``solve`` and ``provenance`` explain.
"""

from meshrules.dsl.program import Program
from meshrules.engine.builtins import Builtin, BuiltinRegistry, define, standard_builtins
from meshrules.engine.evaluate import evaluate, load_program, program_from_text
from meshrules.engine.facts import Facts
from meshrules.engine.fixpoint import Strategy, StratumStats
from meshrules.engine.model import Answer, EvaluationStats, Model
from meshrules.engine.provenance import Derivation
from meshrules.engine.values import FrozenMap, freeze, show_fact

__all__ = [
    "Answer",
    "Builtin",
    "BuiltinRegistry",
    "Derivation",
    "EvaluationStats",
    "Facts",
    "FrozenMap",
    "Model",
    "Program",
    "Strategy",
    "StratumStats",
    "define",
    "evaluate",
    "freeze",
    "load_program",
    "program_from_text",
    "show_fact",
    "standard_builtins",
]
