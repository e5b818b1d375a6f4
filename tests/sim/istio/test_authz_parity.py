"""Parity: our Istio evaluator on the input policies == Envoy semantics on istiod's expected filters.

For every case of Istio's builder test table (``tests/fixtures/upstream/istio-authz-testdata/
CASES.yaml``), Hypothesis generates at least 200 requests on the case's own protocol (HTTP for
``http/``, TCP for ``tcp/``), biased towards the values the policies mention and their near misses
(prefix/suffix variants, case changes, neighbouring ports and addresses, other trust domains, dot
segments and percent-encoding in paths). Each request goes through

* ``meshrules.sim.istio.compile_policies(<input>).evaluate(request)``, and
* ``envoy_rbac.evaluate_filters(<expected filters>, request)`` (test-only Envoy semantics),

for the proxy context of CASES.yaml (workload ``foo`` / ``app=httpbin,version=v1``), and the two
must agree on allow/deny. Cases with CUSTOM providers must also agree on whether an ext_authz
server is consulted (our assumption code ``CUSTOM_AUTHZ_NOT_MODELLED``).

Each case prints ``parity <case>: <n> requests (<allowed> allowed, <denied> denied, <custom>
custom)``; run with ``-s`` to see the counts.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshrules.sim.istio import (
    CUSTOM_AUTHZ_NOT_MODELLED,
    CompiledAuthz,
    TrustDomainBundle,
    compile_policies,
    ext_authz_providers,
)
from meshrules.sim.request import Request

from .envoy_rbac import evaluate_filters

VECTORS = Path(__file__).resolve().parents[2] / "fixtures" / "upstream" / "istio-authz-testdata"
INDEX = yaml.safe_load((VECTORS / "CASES.yaml").read_text())
NAMESPACE = INDEX["proxy"]["namespace"]
LABELS: dict[str, str] = INDEX["proxy"]["labels"]
KNOWN_SERVICES = [(s["hostname"], s["namespace"]) for s in INDEX["knownServices"]]
MIN_REQUESTS = 200


@dataclass(frozen=True)
class Case:
    """One row of the builder test table, resolved to files."""

    name: str
    protocol: str  # "http" | "tcp"
    input: str
    want: tuple[str, ...]
    mesh_config: str | None
    bundle: TrustDomainBundle | None

    @property
    def id(self) -> str:
        return f"{self.protocol}/{self.name}"


def _cases() -> list[Case]:
    out = []
    for protocol in ("http", "tcp"):
        for row in INDEX[protocol]:
            tdb = row.get("trustDomainBundle")
            bundle = None if tdb is None else TrustDomainBundle(tdb["trustDomain"], tuple(tdb.get("aliases") or ()))
            out.append(Case(row["name"], protocol, row["input"], tuple(row["want"]), row.get("meshConfig"), bundle))
    # Present upstream but no longer in the Go table (pre-1.11 proxies got regex host matchers);
    # the semantics are the same, so it is one more vector for free.
    out.append(Case("allow-host-before-111 (unreferenced)", "http", "allow-host-before-111-in.yaml",
                    ("allow-host-before-111-out.yaml",), None, None))
    return out


CASES = _cases()
# Cases whose every request gets the same answer by construction, so the generator cannot reach
# both: everything allowed (allow-empty-rule, audit-only, dry-run-only, CUSTOM assumed to allow,
# an HTTP provider on a TCP port) or everything denied (an ALLOW without rules; notPaths/notHosts
# "*" excluding every request; single-policy, whose principals have no "/ns/" yet every `from`
# also requires a namespace; a DENY rule that widens to everything on TCP). For these the
# rule-by-rule comparison below still checks each rule's match.
ONE_SIDED = {
    "http/allow-empty-rule", "http/deny-empty-rule", "http/allow-nil-rule", "http/allow-path",
    "http/single-policy", "http/dry-run-allow", "http/dry-run-allow-and-deny", "http/audit-full-rule",
    "http/custom-grpc-provider-no-namespace", "http/custom-grpc-provider", "http/custom-http-provider",
    "http/allow-host-before-111 (unreferenced)",
    "tcp/allow-only-http", "tcp/custom-only-http", "tcp/custom-both-http-tcp", "tcp/audit-both-http-tcp",
    "tcp/deny-both-http-tcp",
}
_RULE_NAME = re.compile(r"ns\[(?P<ns>[^\]]*)\]-policy\[(?P<name>.*)\]-rule\[(?P<rule>\d+)\]")


@cache
def _load(case: Case) -> tuple[CompiledAuthz, list[dict[str, Any]], list[dict[str, Any]]]:
    folder = VECTORS / case.protocol
    policies = [d for d in yaml.safe_load_all((folder / case.input).read_text()) if d]
    filters = [yaml.safe_load((folder / f).read_text()) for f in case.want]
    providers = None
    if case.mesh_config is not None:
        providers = ext_authz_providers(INDEX["meshConfigs"][case.mesh_config], known_services=KNOWN_SERVICES)
    compiled = compile_policies(policies, trust_domains=case.bundle, ext_authz=providers)
    return compiled, policies, filters


# ================================================================================================
# Rule-directed request generation
# ================================================================================================
#
# Each request "focuses" on one combination (rule, from[i], to[j]) of one policy — or on the union of
# everything the policies mention. For every attribute the focus constrains, the generator mostly
# draws a value the positive field accepts, sometimes a near miss or a value of the negative field;
# so a focused request often satisfies its rule, and the near misses land on both sides of it.

Attr = str  # "principal", "namespace", "account", "trustDomain", "requestPrincipal", "directIp",
# "remoteIp", "destIp", "port", "host", "method", "path", "sni", "header:<name>",
# "claim:<a>\0<b>", "meta:<filter>\0<key>"

_SOURCE_ATTRS = {
    "principals": "principal", "namespaces": "namespace", "serviceAccounts": "account",
    "trustDomains": "trustDomain", "requestPrincipals": "requestPrincipal", "ipBlocks": "directIp",
    "remoteIpBlocks": "remoteIp",
}
_OPERATION_ATTRS = {"hosts": "host", "ports": "port", "methods": "method", "paths": "path"}
_CONDITION_ATTRS = {
    "source.ip": "directIp", "remote.ip": "remoteIp", "source.namespace": "namespace",
    "source.principal": "principal", "request.auth.principal": "requestPrincipal",
    "request.auth.audiences": "claim:aud", "request.auth.presenter": "claim:azp", "destination.ip": "destIp",
    "destination.port": "port", "connection.sni": "sni",
}


@dataclass
class Focus:
    """Patterns a request should satisfy (``pos``) and avoid (``neg``), per attribute."""

    pos: dict[Attr, set[str]] = field(default_factory=dict)
    neg: dict[Attr, set[str]] = field(default_factory=dict)
    miss: bool = False  # draw near misses of every mentioned value (reaches "nothing matched")

    def add(self, attr: Attr, values: Any, negative: bool = False) -> None:
        if values:
            (self.neg if negative else self.pos).setdefault(attr, set()).update(str(v) for v in values)

    def merged(self, other: Focus) -> Focus:
        out = Focus({k: set(v) for k, v in self.pos.items()}, {k: set(v) for k, v in self.neg.items()})
        for k, v in other.pos.items():
            out.pos.setdefault(k, set()).update(v)
        for k, v in other.neg.items():
            out.neg.setdefault(k, set()).update(v)
        return out

    def key(self) -> tuple[Any, ...]:
        return (tuple(sorted((k, tuple(sorted(v))) for k, v in self.pos.items())),
                tuple(sorted((k, tuple(sorted(v))) for k, v in self.neg.items())))


def _condition_attr(key: str) -> Attr | None:
    if key in _CONDITION_ATTRS:
        return _CONDITION_ATTRS[key]
    if key.startswith("request.headers[") and key.endswith("]"):
        return "header:" + key[len("request.headers["):-1]
    if key.startswith("request.auth.claims[") and key.endswith("]"):
        return "claim:" + "\0".join(key[len("request.auth.claims["):-1].split("]["))
    if key.startswith("experimental.") and key.endswith("]"):
        filt, _, k = key[len("experimental."):-1].partition("[")
        return f"meta:{filt}\0{k}"
    return None


def _foci(policies: list[dict[str, Any]]) -> list[Focus]:
    foci: list[Focus] = []
    everything = Focus()
    for policy in policies:
        namespace = policy["metadata"]["namespace"]
        for rule in (policy.get("spec") or {}).get("rules") or ():
            if not rule:
                continue
            when = Focus()
            for cond in rule.get("when") or ():
                attr = _condition_attr(cond["key"])
                if attr is not None:
                    when.add(attr, cond.get("values"))
                    when.add(attr, cond.get("notValues"), negative=True)
            sources = []
            for entry in rule.get("from") or [{}]:
                src, f = (entry or {}).get("source") or {}, Focus()
                for key, attr in _SOURCE_ATTRS.items():
                    values = src.get(key) or []
                    not_values = src.get("not" + key[0].upper() + key[1:]) or []
                    if attr == "account":  # "<ns>/<sa>" or "<sa>" in the policy's namespace
                        values = [v if "/" in v else f"{namespace}/{v}" for v in values]
                        not_values = [v if "/" in v else f"{namespace}/{v}" for v in not_values]
                    f.add(attr, values)
                    f.add(attr, not_values, negative=True)
                sources.append(f)
            operations = []
            for entry in rule.get("to") or [{}]:
                op, f = (entry or {}).get("operation") or {}, Focus()
                for key, attr in _OPERATION_ATTRS.items():
                    f.add(attr, op.get(key))
                    f.add(attr, op.get("not" + key[0].upper() + key[1:]), negative=True)
                operations.append(f)
            for src_focus in sources:
                for op_focus in operations:
                    combo = when.merged(src_focus).merged(op_focus)
                    foci.append(combo)
                    everything = everything.merged(Focus({**combo.pos}, {}).merged(Focus(dict(combo.neg), {})))
    foci.append(everything)
    foci.append(Focus(everything.pos, everything.neg, miss=True))
    return foci


WORD = st.text(alphabet="abcxyz-019", min_size=0, max_size=4)
NONEMPTY = st.text(alphabet="abcxyz-019", min_size=1, max_size=4)


@cache
def _hit(pattern: str) -> st.SearchStrategy[str]:
    """A string Istio's glob ``pattern`` accepts."""
    if pattern == "*":
        return NONEMPTY
    if pattern.startswith("*"):
        return WORD.map(lambda w: w + pattern[1:])
    if pattern.endswith("*"):
        return WORD.map(lambda w: pattern[:-1] + w)
    return st.just(pattern)


@cache
def _near(pattern: str) -> st.SearchStrategy[str]:
    """Strings that just miss ``pattern``: shorter, longer, other case."""
    core = pattern.strip("*") or "x"
    return st.one_of(
        st.sampled_from(sorted({core[:-1], core[1:], core.upper(), core.swapcase(), core + "/"})),
        NONEMPTY.map(lambda w: w + "." + core), NONEMPTY.map(lambda w: core + "." + w),
    )


def _choose(focus: Focus, attr: Attr, hit: Any, near: Any, absent: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly a hit of a positive pattern; else a near miss, a hit of a negative one, or ``absent``."""
    pos, neg = sorted(focus.pos.get(attr, ())), sorted(focus.neg.get(attr, ()))
    options: list[st.SearchStrategy[Any]] = []
    if focus.miss and (pos or neg):
        return st.one_of(st.sampled_from(pos + neg).flatmap(near), absent)
    if pos:
        options += [st.sampled_from(pos).flatmap(hit)] * 6 + [st.sampled_from(pos).flatmap(near)] * 2
    if neg:
        options += [st.sampled_from(neg).flatmap(hit)] * (1 if pos else 3) + [st.sampled_from(neg).flatmap(near)]
    options.append(absent)
    return st.one_of(*options)


@cache
def _ip_hit(cidr: str) -> st.SearchStrategy[str]:
    net = ipaddress.ip_network(cidr, strict=False)
    first, last = int(net.network_address), int(net.broadcast_address)
    return st.sampled_from(sorted({str(ipaddress.ip_address(c)) for c in (first, last, (first + last) // 2)}))


@cache
def _ip_near(cidr: str) -> st.SearchStrategy[str]:
    net = ipaddress.ip_network(cidr, strict=False)
    first, last = int(net.network_address), int(net.broadcast_address)
    top = 2**32 - 1 if net.version == 4 else 2**128 - 1
    return st.sampled_from(sorted({str(ipaddress.ip_address(c)) for c in (max(first - 1, 0), min(last + 1, top))}))


RANDOM_IP = st.sampled_from(["10.0.0.5", "192.168.1.1", "2001:db8::1"])


def _port_hit(port: str) -> st.SearchStrategy[int]:
    return st.just(int(port))


def _port_near(port: str) -> st.SearchStrategy[int]:
    return st.sampled_from([int(port) - 1, int(port) + 1])


def _account_hit(pair: str) -> st.SearchStrategy[str]:
    ns, sa = pair.split("/", 1)
    return _hit(ns).flatmap(lambda n: _hit(sa).map(lambda a: f"{n}\0{a}"))


def _account_near(pair: str) -> st.SearchStrategy[str]:
    ns, sa = pair.split("/", 1)
    return st.one_of(_near(sa).map(lambda a: f"{ns}\0{a}"), _near(ns).map(lambda n: f"{n}\0{sa}"))


def _principal(focus: Focus, bundle: TrustDomainBundle | None) -> st.SearchStrategy[str | None]:
    members = sorted(set(bundle.members) if bundle else set()) or ["cluster.local"]
    domains = _choose(focus, "trustDomain", _hit, _near, st.sampled_from([*members, "other-td"]))
    namespaces = _choose(focus, "namespace", _hit, _near, st.sampled_from(["foo", "default"]))
    accounts = _choose(focus, "account", _account_hit, _account_near, st.none())

    def compose(td: str, ns: str, account: str | None, extra: str) -> str:
        if account is not None:
            ns, sa = account.split("\0")
        else:
            sa = "httpbin"
        return f"{td}/ns/{ns}/{extra}sa/{sa}"

    composed = st.builds(compose, domains, namespaces, accounts, st.sampled_from(["", "", "", "x/y/"]))
    written = _choose(focus, "principal", _hit, _near, composed).filter(bool)

    def swap(principal: str, td: str) -> str:
        parts = principal.split("/")
        return "/".join([td, *parts[1:]]) if len(parts) == 5 else principal

    swapped = st.builds(swap, written, st.sampled_from([*members, "other-td", "cluster.local"]))
    return st.one_of(st.none(), composed, composed, written, written, swapped)


def _path(focus: Focus) -> st.SearchStrategy[str]:
    def hit(pattern: str) -> st.SearchStrategy[str]:
        if "{*}" in pattern or "{**}" in pattern:
            return st.builds(lambda a, b: pattern.replace("{**}", a).replace("{*}", b),
                             st.sampled_from(["", "a", "a/b", "x.y/z"]), st.sampled_from(["seg", "a-b", "", "a/b"]))
        return _hit(pattern)

    base = _choose(focus, "path", hit, _near, st.sampled_from(["/", "/index.html"]))

    def decorate(path: str, how: int) -> str:
        if not path.startswith("/"):
            return path
        return [path, path, path, path + "?q=1", "/a/.." + path, "/./" + path[1:], path.replace("e", "%65", 1),
                path.replace("/", "\\", 1), "/" + path, path + "/", path.replace("-", "%2d", 1)][how]

    return st.builds(decorate, base, st.integers(0, 10))


def _claims(focus: Focus) -> st.SearchStrategy[dict[str, Any]]:
    def split(value: str, how: int) -> tuple[str, str]:
        if how == 0:
            return (value.rpartition("/")[0], value.rpartition("/")[2]) if "/" in value else (value, "")
        return ("issuer", value) if how == 1 else (value, "subject")

    rp = _choose(focus, "requestPrincipal", _hit, _near, st.none())
    entries: dict[str, st.SearchStrategy[Any]] = {
        "rp": st.builds(lambda v, how: None if v is None else split(v, how), rp, st.integers(0, 2)),
    }
    for attr in sorted(set(focus.pos) | set(focus.neg)):
        if attr.startswith("claim:"):
            one = _choose(focus, attr, _hit, _near, WORD)
            entries[attr] = st.one_of(st.none(), one, st.lists(one, max_size=3))

    def shape(d: dict[str, Any]) -> dict[str, Any]:
        claims: dict[str, Any] = {}
        if d.pop("rp") is not None:
            pass
        for attr, value in d.items():
            if value is None:
                continue
            *path, last = attr[len("claim:"):].split("\0")
            node = claims
            for key in path:
                node = node.setdefault(key, {})
            node[last] = value
        return claims

    def finish(d: dict[str, Any]) -> dict[str, Any]:
        pair = d.get("rp")
        claims = shape(dict(d))
        if pair is not None:
            claims.setdefault("iss", pair[0])
            claims.setdefault("sub", pair[1])
        return claims

    return st.fixed_dictionaries(entries).map(finish)


def _headers(focus: Focus) -> st.SearchStrategy[dict[str, str]]:
    entries = {}
    for attr in sorted(set(focus.pos) | set(focus.neg)):
        if attr.startswith("header:"):
            entries[attr[len("header:"):]] = _choose(focus, attr, _hit, _near, st.none())
    if not entries:
        return st.just({})
    return st.fixed_dictionaries(entries).map(lambda d: {k.lower(): v for k, v in d.items() if v is not None})


def _metadata(focus: Focus) -> st.SearchStrategy[dict[str, dict[str, Any]]]:
    entries = {}
    for attr in sorted(set(focus.pos) | set(focus.neg)):
        if attr.startswith("meta:"):
            one = _choose(focus, attr, lambda p: _hit(p.strip("[]")), lambda p: _near(p.strip("[]")), WORD)
            entries[attr[len("meta:"):]] = st.one_of(st.none(), one, st.lists(one, max_size=3).map(tuple))

    def shape(d: dict[str, Any]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for k, v in d.items():
            if v is not None:
                filt, key = k.split("\0")
                out.setdefault(filt, {})[key] = v
        return out

    return st.fixed_dictionaries(entries).map(shape) if entries else st.just({})


def _focused(focus: Focus, protocol: str, bundle: TrustDomainBundle | None) -> st.SearchStrategy[Request]:
    ip = st.one_of(st.none(), RANDOM_IP)
    common: dict[str, st.SearchStrategy[Any]] = {
        "source_principal": _principal(focus, bundle),
        "source_ip": _choose(focus, "directIp", _ip_hit, _ip_near, ip),
        "remote_ip": _choose(focus, "remoteIp", _ip_hit, _ip_near, st.none()),
        "destination_ip": _choose(focus, "destIp", _ip_hit, _ip_near, ip),
        "destination_port": _choose(focus, "port", _port_hit, _port_near, st.integers(1, 65535)),
        "sni": _choose(focus, "sni", _hit, _near, st.sampled_from([None, "outbound_.80_._.httpbin.foo.svc"])),
        "metadata": _metadata(focus),
    }
    if protocol == "tcp":
        return st.fixed_dictionaries(common).map(
            lambda kw: Request.tcp(destination_namespace=NAMESPACE, destination_labels=LABELS, **kw))
    host = _choose(focus, "host", _hit, _near, st.sampled_from([None, "httpbin.foo"]))
    http = {
        **common,
        "host": st.one_of(host, host.map(lambda h: h and h.upper()), host.map(lambda h: h and h + ":8000")),
        "method": _choose(focus, "method", _hit, _near, st.sampled_from(["GET", "POST"])),
        "path": _path(focus),
        "headers": _headers(focus),
        "claims": _claims(focus),
    }
    return st.fixed_dictionaries(http).map(
        lambda kw: Request.http(destination_namespace=NAMESPACE, destination_labels=LABELS, **kw))


@cache
def _requests(case: Case) -> st.SearchStrategy[Request]:
    _, policies, _ = _load(case)
    return st.one_of(*(_focused(f, case.protocol, case.bundle) for f in _foci(policies)))


# ================================================================================================
# The test
# ================================================================================================


def _ids(cases: list[Case]) -> Iterator[str]:
    return (c.id for c in cases)


@pytest.mark.parametrize("case", CASES, ids=list(_ids(CASES)))
def test_evaluator_matches_envoy_rbac_of_istiod_output(case: Case, record_property: Any) -> None:
    compiled, _, filters = _load(case)
    assert not compiled.diagnostics, compiled.diagnostics
    tally = {"requests": 0, "allowed": 0, "denied": 0, "custom": 0, "rule_checks": 0}
    rule_outcomes: dict[str, set[bool]] = {}

    @settings(max_examples=MIN_REQUESTS, derandomize=True, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
    @given(request=_requests(case))
    def check(request: Request) -> None:
        ours = compiled.evaluate(request)
        envoy = evaluate_filters(filters, request)
        assert ours.allowed == envoy.allowed, (
            f"{case.id}: meshrules says {ours.code} ({ours.reason}), Envoy says "
            f"{'allowed' if envoy.allowed else 'denied: ' + envoy.denied_by}\n{request}")
        _compare_rules(case, compiled, request, envoy.policy_matches)
        tally["rule_checks"] += len(envoy.policy_matches)
        for name, matched in envoy.policy_matches.items():
            rule_outcomes.setdefault(name, set()).add(matched)
        custom = CUSTOM_AUTHZ_NOT_MODELLED in ours.assumptions
        assert custom == envoy.custom, f"{case.id}: ext_authz consulted? meshrules {custom}, Envoy {envoy.custom}"
        tally["requests"] += 1
        tally["allowed" if ours.allowed else "denied"] += 1
        tally["custom"] += custom

    check()
    both = sum(1 for seen in rule_outcomes.values() if len(seen) == 2)
    print(f"\nparity {case.id}: {tally['requests']} requests ({tally['allowed']} allowed, "
          f"{tally['denied']} denied, {tally['custom']} custom); {tally['rule_checks']} rule checks, "
          f"{both}/{len(rule_outcomes)} Envoy rules seen matching and not matching")
    record_property("parity_requests", tally["requests"])
    record_property("parity_rule_checks", tally["rule_checks"])
    assert tally["requests"] >= MIN_REQUESTS
    if case.id not in ONE_SIDED:
        assert tally["allowed"] and tally["denied"], f"{case.id}: the generator never reached both answers: {tally}"
    if case.mesh_config is not None and case.id not in {"http/custom-bad-invalid-config",
                                                         "http/custom-bad-multiple-providers",
                                                         "tcp/custom-only-http"}:
        assert tally["custom"], f"{case.id}: no request reached the CUSTOM provider"


def _compare_rules(case: Case, compiled: CompiledAuthz, request: Request, envoy: dict[str, bool]) -> None:
    """Every RBAC policy istiod emitted matches exactly when our compiled rule matches.

    istiod names each Envoy policy after its rule (``…ns[foo]-policy[name]-rule[i]…``). A rule we
    compile to "never on this protocol" (an ALLOW rule with HTTP fields on TCP) must be absent.
    """
    ours = compiled.rule_matches(request)
    for envoy_name, matched in envoy.items():
        m = _RULE_NAME.search(envoy_name)
        assert m, envoy_name
        key = (m["ns"], m["name"], int(m["rule"]))
        assert key in ours and ours[key] is not None, f"{case.id}: Envoy has {envoy_name}, we never match that rule"
        assert ours[key] == matched, (
            f"{case.id}: rule {key} — meshrules {'matches' if ours[key] else 'does not match'}, Envoy policy "
            f"{envoy_name} {'matches' if matched else 'does not'}\n{request}")
    emitted = {tuple(x) for x in ((m["ns"], m["name"], int(m["rule"])) for m in map(_RULE_NAME.search, envoy) if m)}
    for key, value in ours.items():
        if value is None:
            assert key not in emitted, f"{case.id}: we drop rule {key} on {request.protocol}, istiod emitted it"


def test_every_indexed_case_is_checked() -> None:
    """The parametrisation covers the whole index (a new row in CASES.yaml is never skipped)."""
    indexed = {f"{p}/{row['name']}" for p in ("http", "tcp") for row in INDEX[p]}
    assert indexed <= {c.id for c in CASES}
    assert len(indexed) == 29
