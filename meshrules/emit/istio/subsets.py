"""Subsets: which label maps of a destination routes send to, and their names.

Place: read by the DestinationRule, VirtualService and federation renderers and by the plan. A
subset is named `<key>-<value>` joined with `-` in sorted key order (`naming.subset_name`); the
same name is used on every side of a federation, because the caller's SNI carries it to the
east-west gateway (`outbound_.<port>_.<subset>_.<host>`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from functools import lru_cache

from meshrules.emit.naming import subset_name
from meshrules.emit.routes import RouteTable

Subset = tuple[tuple[str, str], ...]


@lru_cache(maxsize=4096)
def subset_key(subset: Subset) -> str:
    """The subset name of a sorted label tuple (cached: every route and rule names subsets)."""
    return subset_name(dict(subset))


def used_subsets(tables: Iterable[RouteTable]) -> dict[str, set[Subset]]:
    """Per destination, the subsets traffic shifts send to (they need DestinationRule subsets)."""
    out: dict[str, set[Subset]] = defaultdict(set)
    for table in tables:
        for route in table.routes:
            shift = route.config.traffic_shift
            for backend in shift.value if shift is not None else ():
                if backend.subset:
                    out[backend.destination].add(backend.subset)
    return out


def subset_users(tables: Iterable[RouteTable]) -> dict[str, set[str]]:
    """Per destination, the policies whose traffic shifts name one of its subsets."""
    out: dict[str, set[str]] = defaultdict(set)
    for table in tables:
        for route in table.routes:
            shift = route.config.traffic_shift
            if shift is not None and any(b.subset for b in shift.value):
                for backend in shift.value:
                    if backend.subset:
                        out[backend.destination].add(shift.policy)
    return out
