"""Unique, valid names for the Linkerd objects of one run.

`meshrules.emit.naming.object_name` makes a name valid; a `NameBook` also makes it unique per
(cluster, kind, namespace) and keeps it off the names of objects meshrules does not own, so an
emitted object can never overwrite a user's (spec §4). A taken name gets a stable hash suffix of
what the object is for, so the result does not depend on the order names are asked for as long
as the callers ask in a stable order (they do: everything is planned in sorted order).
"""

from __future__ import annotations

from collections.abc import Iterable

from meshrules.emit.naming import MAX_LABEL, object_name, stable_hash

# Most kinds allow DNS subdomains (253 characters), but every name here is kept a DNS label (63):
# short enough for any kind and for a person to read in `kubectl get`.
_LIMIT = MAX_LABEL


class NameBook:
    """Hands out names; remembers them and the names of objects meshrules must not touch."""

    def __init__(self, taken: Iterable[tuple[str, str, str, str]] = ()) -> None:
        # (cluster, kind, namespace, name) of user objects, and of names already handed out.
        self._user: frozenset[tuple[str, str, str, str]] = frozenset(taken)
        self._taken: set[tuple[str, str, str, str]] = set(self._user)
        # (cluster, kind, namespace, wanted, given) where a user object held the wanted name.
        self.renamed: list[tuple[str, str, str, str, str]] = []

    def name(self, cluster: str, kind: str, namespace: str, *parts: str) -> str:
        """A valid name from ``parts``, unique for (cluster, kind, namespace)."""
        wanted = object_name(*parts, limit=_LIMIT)
        given = wanted
        probe = 0
        while (cluster, kind, namespace, given) in self._taken:
            probe += 1
            given = object_name(*parts, stable_hash(f"{kind}/{'/'.join(parts)}#{probe}"), limit=_LIMIT)
        if (cluster, kind, namespace, wanted) in self._user:
            self.renamed.append((cluster, kind, namespace, wanted, given))
        self._taken.add((cluster, kind, namespace, given))
        return given
