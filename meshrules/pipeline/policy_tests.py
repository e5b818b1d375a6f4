"""Policy tests (API §7): run ReachabilityTests against a simulation and measure what they covered.

`meshrules test` (``meshrules.cli.test``) loads a scenario, builds a `Simulation`
(``meshrules.pipeline.query.simulate``) and calls `run_tests`; everything here is pure.

- A **single test** (``from.workload`` and ``to.host|destination``) asks the simulator one question
  (``meshrules.sim.why.answer``) and compares the fields given under ``expect``.
- A **universal test** (``from.selector`` and/or ``to.selector``) means "for all pairs". Callers are
  checked one per workload equivalence class (``meshrules.sim.classes``) — the classes are refined
  by the label keys the test's own selector mentions, so every class is either wholly selected or
  not at all. The first failing pair, in sorted order, is the counterexample; it is re-asked with
  the full `why` (nearest miss verified) so the explanation printed is the one `meshrules why` gives.
- **Coverage** (`coverage`) counts the policy items (AccessPolicy × destination, TrafficPolicy ×
  matcher) and the federation edges the tests' answers used, and the rules in the derivations of
  those items. `docs/testing.md` defines the percentage.

Mismatch text is API: ``<field>: expected <value>, got <value>`` (`Mismatch.line`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from meshrules.errors import MeshrulesError
from meshrules.model.common import duration_ms
from meshrules.model.discovery import Destination, Workload
from meshrules.model.intent import Derivation
from meshrules.model.policy import AccessPolicy, TrafficPolicy
from meshrules.model.testing import Expectation, ExpectedBackend, ReachabilityTest
from meshrules.pipeline.query import Simulation
from meshrules.pipeline.query import why as full_why
from meshrules.sim.classes import WorkloadClass, workload_classes
from meshrules.sim.fleet import dialed
from meshrules.sim.traffic import contributing_policies, matcher_matches
from meshrules.sim.verdict import Verdict, hop_json
from meshrules.sim.why import Query, answer

__all__ = [
    "ERROR",
    "FAILED",
    "PASSED",
    "Coverage",
    "Mismatch",
    "Pair",
    "TestResult",
    "compare",
    "coverage",
    "format_backends",
    "format_hops",
    "run_test",
    "run_tests",
    "test_ref",
]

PASSED = "passed"
FAILED = "failed"
ERROR = "error"


@dataclass(frozen=True, slots=True)
class Mismatch:
    """One ``expect`` field whose answer differs: the field path and both values, as shown."""

    field: str
    expected: str
    actual: str

    def line(self) -> str:
        """``<field>: expected <value>, got <value>``."""
        return f"{self.field}: expected {self.expected}, got {self.actual}"

    def to_json(self) -> dict[str, str]:
        """``{field, expected, actual}``."""
        return {"field": self.field, "expected": self.expected, "actual": self.actual}


@dataclass(frozen=True, slots=True)
class Pair:
    """One (caller, target) question of a test, its answer, and how it differs from ``expect``.

    ``members`` is how many workloads the caller stands for (its equivalence class).
    """

    source: str
    target: str
    verdict: Verdict
    mismatches: tuple[Mismatch, ...] = ()
    members: int = 1

    @property
    def passed(self) -> bool:
        """Whether every expected field matched."""
        return not self.mismatches

    def to_json(self) -> dict[str, Any]:
        """``{from, to, mismatches, verdict}``."""
        return {
            "from": self.source,
            "to": self.target,
            "mismatches": [m.to_json() for m in self.mismatches],
            "verdict": self.verdict.to_json(),
        }


@dataclass(frozen=True)
class TestResult:
    """The outcome of one ReachabilityTest.

    ``status`` is `PASSED`, `FAILED` (``failure`` is the failing pair — for a universal test the
    counterexample — answered with the full `why`) or `ERROR` (``error``: the test names something
    the scenario does not have; an input error). ``pairs`` holds every answer, for coverage.
    """

    name: str
    location: str
    universal: bool
    status: str
    pairs: tuple[Pair, ...] = ()
    failure: Pair | None = None
    failing_pairs: int = 0
    error: str = ""
    # The workloads the checked callers stand for (a class counts all its members).
    workloads: int = 0
    __test__ = False  # a result, not a pytest test class

    def to_json(self) -> dict[str, Any]:
        """One entry of ``tests[]`` in `docs/schemas/test.schema.json`."""
        return {
            "name": self.name,
            "location": self.location,
            "universal": self.universal,
            "status": self.status,
            "pairs": len(self.pairs),
            "workloads": self.workloads,
            "failingPairs": self.failing_pairs,
            "failure": None if self.failure is None else self.failure.to_json(),
            "error": self.error or None,
        }


# ================================================================================================
# Comparing one answer with `expect`
# ================================================================================================


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _subset(subset: Iterable[tuple[str, str]] | None) -> str:
    return "" if subset is None else " " + ",".join(f"{k}={v}" for k, v in sorted(subset))


def _backend_key(
    destination: str, subset: Iterable[tuple[str, str]] | None
) -> tuple[str, tuple[tuple[str, str], ...] | None]:
    return destination, None if subset is None else tuple(sorted(subset))


def format_backends(backends: Iterable[tuple[str, tuple[tuple[str, str], ...] | None, int | None]]) -> str:
    """``{cluster-2/bookinfo/reviews version=v2 100%, …}`` (sorted), ``{}`` for none."""
    shown = sorted(f"{d}{_subset(s)}" + ("" if w is None else f" {w}%") for d, s, w in backends)
    return "{" + ", ".join(shown) + "}"


def format_hops(hops: Sequence[dict[str, Any]]) -> str:
    """``sidecar cluster-1/productpage-v1 -> eastwest-gateway cluster-2/203.0.113.2:15443 -> …``."""

    def one(h: dict[str, Any]) -> str:
        where = f"{h.get('address')}:{h.get('port')}" if "address" in h else str(h.get("name", "*"))
        return f"{h.get('kind', '*')} {h.get('cluster', '*')}/{where}"

    return " -> ".join(one(h) for h in hops) or "none"


def _same_duration(expected: str, actual: str | None) -> bool:
    # `2s` and `2000ms` are the same promise: compare the durations, not the spellings.
    return actual is not None and duration_ms(expected) == duration_ms(actual)


def _compare_backends(expected: Sequence[ExpectedBackend], verdict: Verdict) -> Mismatch | None:
    actual = [
        (b.destination, None if b.subset is None else tuple(sorted(b.subset)), b.weight) for b in verdict.backends
    ]
    weights = {_backend_key(d, s): w for d, s, w in actual}
    want: list[tuple[str, tuple[tuple[str, str], ...] | None, int | None]] = []
    for e in expected:
        key = _backend_key(e.destination, None if e.subset is None else e.subset.items())
        # Only the fields given are compared: a backend without `weight` takes the actual one.
        weight = e.weight if e.weight is not None else weights.get(key)
        want.append((key[0], key[1], weight))
    if set(want) == set(actual) and len(set(want)) == len(want):
        return None
    shown_want = [(d, s, e.weight) for (d, s, _), e in zip(want, expected, strict=True)]
    return Mismatch("backends", format_backends(shown_want), format_backends(actual))


def _compare_hops(expected: Sequence[dict[str, Any]], verdict: Verdict) -> Mismatch | None:
    actual = [hop_json(h) for h in verdict.hops]
    # Each expected hop names only the keys it cares about (e.g. `{kind: eastwest-gateway}`).
    same = len(expected) == len(actual) and all(
        all(a.get(k) == v for k, v in e.items()) for e, a in zip(expected, actual, strict=True)
    )
    return None if same else Mismatch("hops", format_hops(expected), format_hops(actual))


def compare(expect: Expectation, verdict: Verdict) -> tuple[Mismatch, ...]:
    """Every field given under ``expect`` that ``verdict`` answers differently, in field order."""
    out: list[Mismatch] = []
    if expect.allowed is not None and expect.allowed != verdict.allowed:
        out.append(Mismatch("allowed", _bool(expect.allowed), _bool(verdict.allowed)))
    if expect.code is not None and expect.code != verdict.code:
        out.append(Mismatch("code", expect.code, verdict.code))
    if expect.timeout is not None and not _same_duration(expect.timeout, verdict.timeout):
        out.append(Mismatch("timeout", expect.timeout, verdict.timeout or "none"))
    if expect.retries is not None:
        got = verdict.retries
        if expect.retries.attempts is not None and expect.retries.attempts != (got.attempts if got else 0):
            out.append(Mismatch("retries.attempts", str(expect.retries.attempts), str(got.attempts if got else 0)))
        per_try = expect.retries.per_try_timeout
        if per_try is not None and not _same_duration(per_try, got.per_try_timeout if got else None):
            out.append(Mismatch("retries.perTryTimeout", per_try, (got.per_try_timeout if got else None) or "none"))
    if expect.mtls is not None and expect.mtls != verdict.mtls:
        out.append(Mismatch("mtls", _bool(expect.mtls), _bool(verdict.mtls)))
    if expect.backends is not None:
        m = _compare_backends(expect.backends, verdict)
        if m is not None:
            out.append(m)
    if expect.hops is not None:
        m = _compare_hops(expect.hops, verdict)
        if m is not None:
            out.append(m)
    return tuple(out)


# ================================================================================================
# Running tests
# ================================================================================================


def test_ref(test: ReachabilityTest) -> str:
    """``ReachabilityTest <ns>/<name>``, as `Scenario.location_of` knows it."""
    return f"ReachabilityTest {test.metadata.namespace or 'meshrules-system'}/{test.metadata.name}"


def _callers(sim: Simulation, test: ReachabilityTest) -> list[tuple[str, int]]:
    """The callers to ask for: the named workload, or one representative per selected class."""
    src = test.spec.from_
    if src.workload is not None:
        return [(src.workload, 1)]
    assert src.selector is not None  # INVARIANT: the model requires exactly one of the two
    selected = sim.analysis.graph.select_workloads([src.selector])
    # Refining the classes by the selector's own label keys makes selection uniform per class.
    classes: list[WorkloadClass] = workload_classes(sim.fleet, extra_keys=src.selector.labels)
    out = []
    for c in classes:
        rep = sim.fleet.workload_by_ref.get(c.representative)
        if rep is not None and rep.name in selected:
            out.append((c.representative, len(c.members)))
    return out


def _targets(sim: Simulation, test: ReachabilityTest) -> list[str]:
    to = test.spec.to
    if to.host is not None:
        return [to.host]
    if to.destination is not None:
        return [to.destination]
    assert to.selector is not None
    names = sim.analysis.graph.select_destinations([to.selector])
    return sorted(
        f"{d.cluster}/{d.namespace}/{d.service}" for d in sim.analysis.discovery.destinations if d.name in names
    )


def _query(test: ReachabilityTest, source: str, target: str) -> Query:
    req = test.spec.request
    headers = tuple(sorted((k.lower(), v) for k, v in req.headers.items()))
    return Query(source, target, test.spec.to.port, req.method.upper(), req.path, headers)


def run_test(sim: Simulation, test: ReachabilityTest) -> TestResult:
    """Run one test: every (caller, target) pair it stands for, compared with its ``expect``."""
    name = f"{test.metadata.namespace or 'meshrules-system'}/{test.metadata.name}"
    loc = sim.analysis.scenario.location_of(test_ref(test))
    location = str(loc) if loc is not None else ""
    universal = test.spec.from_.selector is not None or test.spec.to.selector is not None
    pairs: list[Pair] = []
    try:
        callers = _callers(sim, test)
        targets = _targets(sim, test)
        for source, members in callers:
            for target in targets:
                verdict = answer(sim.fleet, _query(test, source, target), nearest=False)
                pairs.append(Pair(source, target, verdict, compare(test.spec.expect, verdict), members))
    except MeshrulesError as err:
        return TestResult(name, location, universal, ERROR, tuple(pairs), error=str(err))
    workloads = sum(members for _, members in callers)
    if universal and not pairs:
        return TestResult(
            name, location, universal, ERROR, error="the test's selectors select no (caller, destination) pair"
        )
    failing = [p for p in pairs if not p.passed]
    if not failing:
        return TestResult(name, location, universal, PASSED, tuple(pairs), workloads=workloads)
    first = failing[0]
    # Re-ask the counterexample with the full `why` (nearest miss verified): the explanation shown
    # is exactly what `meshrules why` prints for this pair, and its answer is the one compared.
    again = full_why(sim, _query(test, first.source, first.target))
    failure = Pair(first.source, first.target, again, compare(test.spec.expect, again), first.members)
    return TestResult(name, location, universal, FAILED, tuple(pairs), failure, len(failing), workloads=workloads)


def run_tests(sim: Simulation, tests: Iterable[ReachabilityTest] | None = None) -> list[TestResult]:
    """Run ``tests`` (default: the scenario's own), sorted by name."""
    chosen = sim.analysis.scenario.tests if tests is None else tests
    return [run_test(sim, t) for t in sorted(chosen, key=lambda t: (t.metadata.namespace or "", t.metadata.name))]


def explain_pair(sim: Simulation, test: ReachabilityTest, pair: Pair) -> Verdict:
    """``pair`` re-asked with the full `why` (for ``--explain full`` on passing tests)."""
    return full_why(sim, _query(test, pair.source, pair.target))


# ================================================================================================
# Coverage
# ================================================================================================


@dataclass(frozen=True)
class Coverage:
    """What the tests exercised, and what exists to exercise (see docs/testing.md).

    Items are strings: ``AccessPolicy ns/name -> <destination>``, ``TrafficPolicy ns/name
    matcher[i]`` (``matcher[*]`` for a policy without matchers), ``federation <destination> ->
    <mesh>``. ``percent`` is ``100 × covered items / all items`` (100 when there are none).
    """

    items: tuple[str, ...]
    covered: frozenset[str]
    rules: tuple[str, ...]
    covered_rules: frozenset[str]
    policies: tuple[str, ...]
    covered_policies: frozenset[str] = field(default_factory=frozenset)

    @property
    def percent(self) -> float:
        """Covered items over all items, in percent."""
        return 100.0 if not self.items else 100.0 * len(self.covered) / len(self.items)

    @property
    def rule_percent(self) -> float:
        """Rules in the derivations used over the rules of the program, in percent."""
        return 100.0 if not self.rules else 100.0 * len(self.covered_rules) / len(self.rules)

    @property
    def unexercised_policies(self) -> tuple[str, ...]:
        """Policies none of whose items the tests used, sorted."""
        return tuple(p for p in self.policies if p not in self.covered_policies)

    def to_json(self) -> dict[str, Any]:
        """``coverage`` in `docs/schemas/test.schema.json`."""
        return {
            "percent": round(self.percent, 1),
            "items": [{"item": i, "covered": i in self.covered} for i in self.items],
            "rules": {
                "percent": round(self.rule_percent, 1),
                "covered": sorted(self.covered_rules),
                "uncovered": [r for r in self.rules if r not in self.covered_rules],
            },
            "unexercisedPolicies": list(self.unexercised_policies),
        }


def _destination(sim: Simulation, ref: str) -> Destination | None:
    return sim.fleet.destination_by_ref.get(ref)


def _dialed_destinations(sim: Simulation, caller: Workload, verdict: Verdict) -> list[Destination]:
    """The destinations whose name the caller dialed (where its route config is attached)."""
    return [d for d in sim.analysis.discovery.destinations if dialed(sim.fleet, caller, d) == verdict.host]


def _policy_of(item: str) -> str:
    return " ".join(item.split(" ")[:2])


def coverage(sim: Simulation, results: Iterable[TestResult]) -> Coverage:
    """Which policy items, federation edges and rules the answers of ``results`` used."""
    intent = sim.decision.intent
    policies = {p.ref: p for p in sim.analysis.scenario.policies}
    items: set[str] = set()
    for rule in intent.access:
        items.add(f"{rule.policy} -> {_dest_ref(sim, rule.destination)}")
    for ref, p in policies.items():
        if isinstance(p, TrafficPolicy):
            n = len(p.spec.http_request_matchers)
            items.update(f"{ref} matcher[{i}]" for i in range(n)) if n else items.add(f"{ref} matcher[*]")
    for edge in intent.federation:
        items.add(f"federation {_dest_ref(sim, edge.destination)} -> {edge.mesh}")

    covered: set[str] = set()
    used: list[Derivation] = []
    cited_rules: set[str] = set()
    for result in results:
        for pair in result.pairs:
            caller = sim.fleet.workload_by_ref.get(pair.source)
            if caller is not None:
                _cover_pair(sim, caller, pair.verdict, policies, covered, used)
            # The rules the answer's explanation names (e.g. which precedence rule picked the route).
            cited_rules.update(r.strip() for step in pair.verdict.explanation for r in step.rule.split(","))
    covered &= items
    program_rules = tuple(sorted({r.name for r in sim.decision.model.program.rules}))
    fired = (_rules_in(sim, used) | cited_rules) & set(program_rules)
    named = sorted(policies)
    covered_policies = frozenset(_policy_of(i) for i in covered if not i.startswith("federation "))
    # A VirtualMesh is exercised when one of its federation edges is.
    covered_policies |= frozenset(
        e.virtual_mesh
        for e in intent.federation
        if f"federation {_dest_ref(sim, e.destination)} -> {e.mesh}" in covered
    )
    return Coverage(
        tuple(sorted(items)), frozenset(covered), program_rules, frozenset(fired), tuple(named), covered_policies
    )


def _dest_ref(sim: Simulation, name: str) -> str:
    d = sim.fleet.destinations.get(name)
    return name if d is None else f"{d.cluster}/{d.namespace}/{d.service}"


def _cover_pair(
    sim: Simulation,
    caller: Workload,
    verdict: Verdict,
    policies: dict[str, Any],
    covered: set[str],
    used: list[Derivation],
) -> None:
    intent = sim.decision.intent
    headers = dict(verdict.headers)
    # TrafficPolicies: the matchers of the policies that gave this request configuration.
    dialed_names = [d.name for d in _dialed_destinations(sim, caller, verdict)]
    apps = [a for a in intent.traffic if a.destination in dialed_names]
    for app in contributing_policies(apps, intent.precedence, policies, caller, verdict.method, verdict.path, headers):
        p = policies.get(app.policy)
        if not isinstance(p, TrafficPolicy):
            continue
        used.append(app.why)
        matchers = p.spec.http_request_matchers
        if not matchers:
            covered.add(f"{app.policy} matcher[*]")
        for i, m in enumerate(matchers):
            if matcher_matches(m, verdict.method, verdict.path, headers):
                covered.add(f"{app.policy} matcher[{i}]")
    # AccessPolicies: every rule at a backend that the answer cites (allowing rules for an
    # allowed request; for a denial, every rule there shaped it).
    cited = set(verdict.cited)
    for backend in verdict.backends:
        dest = _destination(sim, backend.destination)
        if dest is None:
            continue
        for rule in intent.access:
            if (
                rule.destination == dest.name
                and rule.policy in cited
                and isinstance(policies.get(rule.policy), AccessPolicy)
            ):
                covered.add(f"{rule.policy} -> {backend.destination}")
                if rule.why is not None:
                    used.append(rule.why)
        # Federation: the backend lives in another mesh than the caller's and the call got there.
        if dest.mesh != caller.mesh and backend.code not in ("NOT_FEDERATED", "NO_ROUTE"):
            for edge in intent.federation:
                if edge.destination == dest.name and edge.mesh == caller.mesh:
                    covered.add(f"federation {backend.destination} -> {edge.mesh}")
                    used.append(edge.why)
        member = next((m for m in intent.memberships if m.mesh == dest.mesh), None)
        if member is not None and member.why is not None and "DENIED_ENFORCED" in (backend.code, *backend.causes):
            used.append(member.why)


def _rules_in(sim: Simulation, used: Iterable[Derivation]) -> set[str]:
    """Every rule name in the derivation trees of ``used`` (the provenance of each intent item)."""
    names: set[str] = set()
    model = sim.decision.model
    seen: set[Derivation] = set()
    for why in used:
        if why in seen:
            continue
        seen.add(why)
        names.add(why.rule)
        try:
            tree = model.explain((why.relation, why.args))
        except Exception:  # a handle the model no longer holds: the rule it names still fired
            continue
        stack = [tree]
        while stack:
            node = stack.pop()
            if node.rule:
                names.add(node.rule)
            stack.extend(node.premises)
    return names


test_ref.__test__ = False  # type: ignore[attr-defined]  # not a pytest test
run_test.__test__ = False  # type: ignore[attr-defined]
