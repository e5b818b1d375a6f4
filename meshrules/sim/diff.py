"""`diff`: which (workload class, destination) answers change between two versions of the policies.

Both fleets hold the same clusters; only policies (and so intent and emitted objects) differ.
Classes are built with the label keys relevant in *either* version, so both sides speak of the
same classes. Each pair is asked ``GET /`` on the destination's default port and, to catch changes
a plain GET cannot show, the requests the policies at that destination single out in either
version (their methods, paths, ports and matcher headers). The first request whose answer differs
(code, allowed, backends, timeout, retries, mTLS) is the pair's witness.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from meshrules.model.discovery import Destination
from meshrules.model.policy import TrafficPolicy
from meshrules.sim.classes import relevant_label_keys, workload_classes
from meshrules.sim.fleet import Fleet, parents_of
from meshrules.sim.matrix import CellMemo, default_port, destination_ref
from meshrules.sim.verdict import Verdict

__all__ = ["Change", "Witness", "diff_fleets", "witness_requests"]

# A pair is tried on at most this many requests: GET / plus what the policies single out.
_MAX_REQUESTS = 12
# Methods to find one no AccessPolicy lists (Istio matches methods exactly, so any other will do).
_METHODS = ("PUT", "PATCH", "DELETE", "POST", "GET", "HEAD", "OPTIONS", "CONNECT", "TRACE", "MESHRULES")
_UNLISTED_PATH = "/meshrules-witness-unlisted"


@dataclass(frozen=True, slots=True)
class Witness:
    """A request that shows a change: ``meshrules why`` arguments."""

    source: str
    destination: str
    port: int | None
    method: str = "GET"
    path: str = "/"
    headers: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> dict[str, Any]:
        """``{from, to, port, method, path, headers}``."""
        return {"from": self.source, "to": self.destination, "port": self.port, "method": self.method,
                "path": self.path, "headers": dict(self.headers)}


@dataclass(frozen=True, slots=True)
class Change:
    """One pair whose answer changed, with the witness and both answers."""

    source: str  # class name
    destination: str
    witness: Witness
    before: Verdict
    after: Verdict

    def to_json(self) -> dict[str, Any]:
        """``{source, destination, witness, before, after}`` (answers as code, allowed, backends)."""
        return {"source": self.source, "destination": self.destination, "witness": self.witness.to_json(),
                "before": _brief(self.before), "after": _brief(self.after)}


    def changed_fields(self) -> tuple[str, ...]:
        """Which parts of the answer differ (`code`, `allowed`, `backends`, `timeout`, `retries`, `mtls`)."""
        before, after = _brief(self.before), _brief(self.after)
        return tuple(k for k in before if before[k] != after[k])


def _brief(v: Verdict) -> dict[str, Any]:
    return {"code": v.code, "allowed": v.allowed, "backends": [b.to_json() for b in v.backends],
            "timeout": v.timeout, "retries": None if v.retries is None else v.retries.to_json(), "mtls": v.mtls}


def _concrete(pattern: str) -> str:
    """A path an Istio path pattern matches (exact, ``x*`` prefix, ``*x`` suffix)."""
    if pattern == "*":
        return "/"
    if pattern.endswith("*"):
        return pattern[:-1] or "/"
    if pattern.startswith("*"):
        return "/x" + pattern[1:]
    return pattern


def witness_requests(fleets: Iterable[Fleet], dest: Destination) -> list[tuple[int | None, str, str,
                                                                              tuple[tuple[str, str], ...]]]:
    """``GET /`` on the default port, then the requests the policies at ``dest`` single out."""
    port = default_port(dest)
    out: list[tuple[int | None, str, str, tuple[tuple[str, str], ...]]] = [(port, "GET", "/", ())]
    for fleet in fleets:
        for rule in fleet.access.get(dest.name, ()):
            for p in rule.ports:
                out.append((p, "GET", "/", ()))
            for method in rule.methods:
                out.append((port, method, _concrete(rule.paths[0]) if rule.paths else "/", ()))
            for pattern in rule.paths:
                out.append((port, rule.methods[0] if rule.methods else "GET", _concrete(pattern), ()))
        # A list that allows some requests denies the others: try one outside every list too.
        rules = fleet.access.get(dest.name, ())
        listed_methods = {m for r in rules for m in r.methods}
        if listed_methods:
            other = next(m for m in _METHODS if m not in listed_methods)
            out.append((port, other, "/", ()))
        if any(r.paths for r in rules):
            out.append((port, "GET", _UNLISTED_PATH, ()))
        listed_ports = {p for r in rules for p in r.ports}
        if listed_ports:
            out += [(p.port, "GET", "/", ()) for p in dest.ports if p.port not in listed_ports][:1]
        for app in fleet.traffic.get(dest.name, ()):
            policy = fleet.policy_by_ref.get(app.policy)
            if not isinstance(policy, TrafficPolicy):
                continue
            for m in policy.spec.http_request_matchers:
                uri = (m.uri.value if m.uri.kind != "regex" else "/") if m.uri is not None else "/"
                headers = tuple(sorted((h.name.lower(), h.value) for h in m.headers if not h.regex
                                       and not h.invert_match and h.value))
                out.append((port, m.method or "GET", uri, headers))
    return list(dict.fromkeys(out))[:_MAX_REQUESTS]


def diff_fleets(before: Fleet, after: Fleet) -> tuple[list[Change], int]:
    """The pairs whose answers differ, and how many pairs were compared.

    A destination whose own decisions and emitted objects are the same on both sides (and when
    nothing mesh-wide changed) answers every caller alike on both sides: its pairs are compared
    without being asked again.
    """
    keys = relevant_label_keys((o for objs in after.objects.values() for o in objs), after.policies)
    classes = workload_classes(before, keys)
    memo_before, memo_after = CellMemo(before), CellMemo(after)
    global_before, per_before = _signatures(before)
    global_after, per_after = _signatures(after)
    everything = global_before != global_after
    changes: list[Change] = []
    compared = 0
    for dest in sorted(before.destinations.values(), key=destination_ref):
        compared += len(classes)
        if not everything and per_before.get(dest.name) == per_after.get(dest.name):
            continue
        requests = witness_requests((before, after), dest)
        for c in classes:
            caller = before.workload_by_ref[c.representative]
            for port, method, path, headers in requests:
                a = memo_before.answer(caller, dest, port, method, path, headers)
                b = memo_after.answer(caller, dest, port, method, path, headers)
                if a is None or b is None:
                    continue
                if a.summary() != b.summary():
                    witness = Witness(c.representative, destination_ref(dest), port, method, path, headers)
                    changes.append(Change(c.name, destination_ref(dest), witness, a, b))
                    break
    return sorted(changes, key=lambda ch: (ch.source, ch.destination)), compared


def _signatures(fleet: Fleet) -> tuple[str, dict[str, str]]:
    """What decides answers mesh-wide, and per destination (its decisions and emitted objects)."""
    per: dict[str, list[str]] = defaultdict(list)
    mesh_wide: list[str] = [repr(sorted(fleet.intent.memberships, key=lambda m: m.mesh))]
    for cluster in sorted(fleet.emitted):
        for body in fleet.emitted[cluster]:
            text = json.dumps(body, sort_keys=True, default=str)
            owners = [p.partition("/")[2] for p in parents_of(body) if p.startswith("Destination ")]
            for name in owners:
                per[name].append(text)
            if not owners:
                mesh_wide.append(text)
    intent = fleet.intent
    for items in (intent.federation, intent.blocked, intent.traffic, intent.precedence, intent.access, intent.gaps):
        for item in items:
            per[item.destination].append(repr(_without_why(item)))
    for t in intent.trust_rejections:
        mesh_wide.append(repr(_without_why(t)))
    return "\n".join(sorted(mesh_wide)), {d: "\n".join(sorted(v)) for d, v in per.items()}


def _without_why(item: Any) -> Any:
    """An intent item without its derivation handle (which may name rules, not decisions)."""
    return replace(item, why=None) if getattr(item, "why", None) is not None else item
