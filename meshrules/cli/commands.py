"""Import every subcommand module so that each registers itself on the app."""

from meshrules.cli import (
    agent,
    apply,
    check,
    controller,
    crds,
    demo,
    describe,
    diff,
    discover,
    matrix,
    snapshot,
    test,
    translate,
    why,
)
from meshrules.cli.app import app
from meshrules.cli.cluster import cluster_app
from meshrules.cli.rules import rules_app
from meshrules.cli.trust import trust_app

app.add_typer(cluster_app, name="cluster")
app.add_typer(rules_app, name="rules")
app.add_typer(trust_app, name="trust")

__all__ = [
    "agent",
    "apply",
    "check",
    "controller",
    "crds",
    "demo",
    "describe",
    "diff",
    "discover",
    "matrix",
    "snapshot",
    "test",
    "translate",
    "why",
]
