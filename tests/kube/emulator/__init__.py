"""A Kubernetes API emulator for tests: the real kubernetes client against loopback "clusters".

See `server.py` for what is emulated and what is not; `faults.py` for fault injection.
"""

from .faults import Faults, Rule
from .server import Emulator, Request

__all__ = ["Emulator", "Faults", "Request", "Rule"]
