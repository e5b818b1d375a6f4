"""Import every subcommand module so that each registers itself on the app."""

from meshrules.cli import crds, demo, discover
from meshrules.cli.app import app
from meshrules.cli.trust import trust_app

app.add_typer(trust_app, name="trust")

__all__ = ["crds", "demo", "discover"]
