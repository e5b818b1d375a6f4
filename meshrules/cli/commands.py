"""Import every subcommand module so that each registers itself on the app."""

from meshrules.cli import crds, demo, discover

__all__ = ["crds", "demo", "discover"]
