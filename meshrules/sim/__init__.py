"""meshrules.sim."""

from meshrules.sim.request import Protocol, Request

__all__ = ["Protocol", "Request"]
