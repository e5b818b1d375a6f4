"""meshrules.sim."""

from meshrules.sim.objects import Hop
from meshrules.sim.request import Protocol, Request

__all__ = ["Hop", "Protocol", "Request"]
