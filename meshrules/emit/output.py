"""What an emitter returns: objects per cluster, status entries and findings (spec §3.4, §4)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from meshrules.errors import Diagnostic
from meshrules.model.intent import PolicyStatusEntry


@dataclass(frozen=True)
class EmitResult:
    """Resources to write per cluster, plus what a mesh could not express and what was noticed.

    `objects` maps a cluster name to its objects (plain dicts in wire form), sorted by
    apiVersion, kind, namespace, name. `patches` are server-side-apply patches of objects meshrules
    does not own (e.g. the Linkerd export label on a user's Service): they own only the fields they
    set. `statuses` add to the rule set's status entries (e.g. a feature the mesh cannot express).
    """

    objects: Mapping[str, tuple[Mapping[str, Any], ...]] = field(default_factory=dict)
    patches: Mapping[str, tuple[Mapping[str, Any], ...]] = field(default_factory=dict)
    statuses: tuple[PolicyStatusEntry, ...] = ()
    findings: tuple[Diagnostic, ...] = ()
