"""What the query commands (`why`, `describe`, `diff`, `matrix`) share: loading a scenario into a simulation.

Loading prints every input problem to stderr (one line each) and goes on, as every command does;
the caller exits 2 after answering when loading found input errors. Anything slower than a second
says so on stderr (spec §9).
"""

from __future__ import annotations

import time
from pathlib import Path

import typer

from meshrules.cli.scenario import load, with_scenario_rules
from meshrules.errors import UsageError
from meshrules.pipeline.query import Simulation, simulate

# Spec §9: progress on stderr for anything that takes over a second.
_PROGRESS_AFTER_S = 1.0


def load_simulation(scenario: Path, rules: Path | None = None, policies: Path | None = None) -> tuple[Simulation, int]:
    """Load, discover, decide, translate and build the fleet; return it and the input error count."""
    started = time.perf_counter()
    analysis, errors = load(scenario, policies)
    sim, rule_errors = with_scenario_rules(analysis, lambda a: simulate(a, rules))
    errors += rule_errors
    elapsed = time.perf_counter() - started
    if elapsed > _PROGRESS_AFTER_S:
        typer.echo(f"info: loaded, decided and translated `{scenario}` in {elapsed:.1f}s", err=True)
    return sim, errors


def parse_headers(values: list[str]) -> tuple[tuple[str, str], ...]:
    """``--header k=v`` values as sorted (name, value) pairs, names lower-cased."""
    out: dict[str, str] = {}
    for raw in values:
        name, sep, value = raw.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"`--header {raw}` is not `name=value`", hint="e.g. `--header end-user=jason`")
        out[name.strip().lower()] = value
    return tuple(sorted(out.items()))
