"""Istio AuthorizationPolicy semantics as a pure evaluator: policies + one request -> a decision.

This is the Istio half of the simulator's authorization step: ``meshrules.sim.request.Request``
describes what the destination proxy sees, and this module decides what that proxy does with it,
the way Istio's `AuthorizationPolicy`_ reference documents it and the way istiod's RBAC builder
(``pilot/pkg/security/authz``) turns policies into Envoy filters. The parity tests in
``tests/sim/istio`` check every case of Istio's own builder test vectors against an evaluator of
the Envoy RBAC filters those vectors expect.

Decision order (the `authorization concepts`_ page)::

    CUSTOM  -> a matching CUSTOM policy sends the request to an ext_authz server; we cannot call it,
               so we assume it allows and say so (assumption CUSTOM_AUTHZ_NOT_MODELLED). A CUSTOM
               policy whose provider istiod cannot use becomes a DENY, as istiod does.
    DENY    -> any matching DENY policy denies (DENIED_EXPLICIT).
    ALLOW   -> no ALLOW policy for the workload: allow; one matches: allow; else DENIED_DEFAULT.
    AUDIT   -> never decides; matching AUDIT policies are listed in the decision.

Policies annotated ``istio.io/dry-run: "true"`` never decide either; matches are listed.

What is modelled beyond the plain field semantics, each mirroring istiod's builder:

* HTTP versus TCP. On a TCP port an ALLOW rule that uses any HTTP-only field (hosts, methods,
  paths, requestPrincipals, ``request.*`` conditions, …) is dropped, so it matches nothing; a
  DENY, AUDIT or CUSTOM rule drops only those fields and matches on what remains (everything,
  when nothing remains).
* An invalid value (a bad CIDR, port or header key) drops the whole rule of an ALLOW policy and
  only that value for the other actions; an unknown condition key drops the rule for every action.
  Each is reported as a diagnostic.
* A policy without rules matches nothing (so an ALLOW policy without rules denies everything); a
  rule ``{}`` matches everything.
* Trust-domain aliases (``TrustDomainBundle``) rewrite ``principals`` and ``source.principal``
  exactly as ``trustdomain.Bundle.ReplaceTrustDomainAliases`` does; ``cluster.local`` stands for
  the local trust domain.
* Namespaces are matched inside the peer's SPIFFE identity (``.*/ns/<ns>/.*``), so a plaintext
  request never matches ``namespaces``; the ``source_namespace`` of the request is not read.
* Paths are normalised first (mesh ``pathNormalization``, default ``BASE``), the query string is
  ignored, and ``{*}`` / ``{**}`` are Envoy URI templates.
* Applicability: the policy's namespace is the workload's or the root namespace; ``selector``
  labels are a subset of the workload's; ``targetRef(s)`` attach only to Kubernetes Gateway
  workloads (label ``gateway.networking.k8s.io/gateway-name``) in the policy's namespace. A policy
  targeting anything else (Service, ServiceEntry, GatewayClass — waypoints; HTTPRoute) never
  applies to a sidecar and adds assumption AUTHZ_TARGETREF_NOT_MODELLED.

Not modelled (the decision says so where it matters): what an ext_authz server answers, per-route
(HTTPRoute) policies, ambient waypoints, the rejection of lower-case methods or ``%00`` paths
(an HTTP 400 before authorization).

.. _AuthorizationPolicy: https://istio.io/latest/docs/reference/config/security/authorization-policy/
.. _authorization concepts: https://istio.io/latest/docs/concepts/security/#authorization-policies
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias, cast

from meshrules.errors import Diagnostic, Location, Severity
from meshrules.sim.request import Request

__all__ = [
    "ALLOWED",
    "AUTHZ_TARGETREF_NOT_MODELLED",
    "CUSTOM_AUTHZ_NOT_MODELLED",
    "DENIED_DEFAULT",
    "DENIED_EXPLICIT",
    "ROOT_NAMESPACE",
    "AuthzDecision",
    "CompiledAuthz",
    "CompiledPolicy",
    "CompiledRule",
    "ExtAuthzProvider",
    "RuleMiss",
    "TrustDomainBundle",
    "compile_policies",
    "evaluate",
    "ext_authz_providers",
    "normalize_path",
]

ROOT_NAMESPACE = "istio-system"

# Decision codes (API §6).
ALLOWED = "ALLOWED"
DENIED_EXPLICIT = "DENIED_EXPLICIT"
DENIED_DEFAULT = "DENIED_DEFAULT"

# Assumption codes: what the decision took for granted because meshrules does not model it.
CUSTOM_AUTHZ_NOT_MODELLED = "CUSTOM_AUTHZ_NOT_MODELLED"
AUTHZ_TARGETREF_NOT_MODELLED = "AUTHZ_TARGETREF_NOT_MODELLED"

# Diagnostic codes (MR06xx: simulator findings about the user's Istio objects).
AUTHZ_RULE_IGNORED = "MR0901"
AUTHZ_VALUE_IGNORED = "MR0902"
AUTHZ_BAD_DRY_RUN = "MR0903"
AUTHZ_UNKNOWN_ACTION = "MR0904"

Action: TypeAlias = Literal["ALLOW", "DENY", "AUDIT", "CUSTOM"]
PathNormalization: TypeAlias = Literal["NONE", "BASE", "MERGE_SLASHES", "DECODE_AND_MERGE_SLASHES"]

_GATEWAY_NAME_LABEL = "gateway.networking.k8s.io/gateway-name"
_GATEWAY_API_GROUP = "gateway.networking.k8s.io"
_DRY_RUN_ANNOTATION = "istio.io/dry-run"
_LOCAL_TRUST_DOMAIN = "cluster.local"  # in a policy, a pointer to the mesh's own trust domain
_ACTIONS: frozenset[str] = frozenset({"ALLOW", "DENY", "AUDIT", "CUSTOM"})
# Go's strconv.ParseBool, which istiod uses for the dry-run annotation.
_GO_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_GO_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})
# Envoy's envoy.type.v3.StatusCode values: istiod refuses any other `statusOnError`.
_ENVOY_STATUS_CODES = frozenset(
    {100, 200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304, 305, 307, 308}
    | set(range(400, 419)) - {418}
    | {421, 422, 423, 424, 426, 428, 429, 431, 500, 501, 502, 503, 504, 505, 506, 507, 508, 510, 511}
)


# ================================================================================================
# Inputs besides the policies
# ================================================================================================


@dataclass(frozen=True, slots=True)
class TrustDomainBundle:
    """The mesh trust domain and its aliases (MeshConfig ``trustDomain``, ``trustDomainAliases``)."""

    trust_domain: str = _LOCAL_TRUST_DOMAIN
    aliases: tuple[str, ...] = ()

    @property
    def members(self) -> tuple[str, ...]:
        """The trust domain first, then its aliases (istiod's order, which the vectors pin)."""
        return (self.trust_domain, *self.aliases)


@dataclass(frozen=True, slots=True)
class ExtAuthzProvider:
    """A MeshConfig extension provider as a CUSTOM policy sees it.

    ``kind`` is ``grpc`` (works on HTTP and TCP ports) or ``http`` (HTTP ports only; istiod leaves
    TCP ports alone); ``problem`` is why istiod cannot use it (then CUSTOM rules become DENY rules),
    empty when usable.
    """

    name: str
    kind: Literal["grpc", "http"] | None
    problem: str = ""

    @property
    def usable(self) -> bool:
        """True when istiod can build an ext_authz filter from this provider."""
        return not self.problem and self.kind is not None


def ext_authz_providers(
    mesh_config: Mapping[str, Any], *, known_services: Collection[tuple[str, str]] | None = None
) -> dict[str, ExtAuthzProvider]:
    """Read ``extensionProviders`` of a MeshConfig (proto-JSON names) into usable-or-not providers.

    ``known_services`` is the ``(hostname, namespace)`` pairs of services istiod knows; when given,
    a provider whose ``service`` is not among them is unusable, as in istiod.
    """
    out: dict[str, ExtAuthzProvider] = {}
    for entry in mesh_config.get("extensionProviders") or ():
        if not isinstance(entry, Mapping):
            continue
        name = str(entry.get("name") or "")
        kind: Literal["grpc", "http"] | None
        if isinstance(entry.get("envoyExtAuthzGrpc"), Mapping):
            kind, spec = "grpc", entry["envoyExtAuthzGrpc"]
        elif isinstance(entry.get("envoyExtAuthzHttp"), Mapping):
            kind, spec = "http", entry["envoyExtAuthzHttp"]
        else:
            out[name] = ExtAuthzProvider(name, None, "not an ext_authz provider")
            continue
        problems: list[str] = []
        if name in out:
            problems.append("duplicate provider name")
        port = spec.get("port")
        if not isinstance(port, int) or not 1 <= port <= 65535:
            problems.append(f"port must be in [1, 65535], found `{port}`")
        service = str(spec.get("service") or "")
        if not service:
            problems.append("service must not be empty")
        elif known_services is not None:
            namespace, _, hostname = service.rpartition("/")
            if not any(h == hostname and (not namespace or ns == namespace) for h, ns in known_services):
                problems.append(f"service `{service}` not found")
        status = str(spec.get("statusOnError") or "")
        if status and not (status.isdigit() and int(status) in _ENVOY_STATUS_CODES):
            problems.append(f"unsupported statusOnError `{status}`")
        prefix = spec.get("pathPrefix")
        if kind == "http" and prefix and not str(prefix).startswith("/"):
            problems.append(f"pathPrefix must begin with `/`, found `{prefix}`")
        out[name] = ExtAuthzProvider(name, kind, "; ".join(problems))
    return out


# ================================================================================================
# The answer
# ================================================================================================


@dataclass(frozen=True, slots=True)
class RuleMiss:
    """Why one rule of an applicable ALLOW policy did not match: the first field that excluded it."""

    policy: str  # namespace/name
    rule: int
    field: str  # e.g. rules[0].from[1].source.principals; "" when the rule can never match
    detail: str


@dataclass(frozen=True, slots=True)
class AuthzDecision:
    """What the destination proxy does with a request, and why — data, not log lines.

    ``code`` is ``ALLOWED``, ``DENIED_EXPLICIT`` (a DENY policy, or a CUSTOM policy istiod turned
    into a DENY) or ``DENIED_DEFAULT`` (ALLOW policies apply and none matched). ``action`` is the
    action of the policy that decided, or ``""`` when the default decided; ``policy`` and ``rule``
    name it (``namespace/name``, rule index).
    """

    allowed: bool
    code: str
    action: str
    policy: str | None
    rule: int | None
    reason: str
    assumptions: tuple[str, ...] = ()
    applied: tuple[str, ...] = ()  # enforced policies that apply to the workload, in order
    audited: tuple[str, ...] = ()  # AUDIT policies that matched
    dry_run: tuple[str, ...] = ()  # "namespace/name (ACTION)" of dry-run policies that matched
    misses: tuple[RuleMiss, ...] = ()  # for DENIED_DEFAULT: each ALLOW rule's first failing field


# ================================================================================================
# Compiled form
# ================================================================================================


class _View:
    """The request attributes the matchers read, computed once per evaluation."""

    __slots__ = ("client_ip", "dest_ip", "direct_ip", "full_path", "host", "path", "port", "principal",
                 "request", "sni", "spiffe")

    def __init__(self, request: Request, normalization: PathNormalization) -> None:
        self.request = request
        self.principal = request.source_principal
        self.spiffe = None if request.source_principal is None else "spiffe://" + request.source_principal
        self.direct_ip = _ip(request.source_ip)
        self.client_ip = _ip(request.client_ip)
        self.dest_ip = _ip(request.destination_ip)
        self.port = request.destination_port
        self.sni = request.sni or ""  # Envoy sees "" when the client sent no SNI
        self.host = request.host
        self.full_path = normalize_path(request.path, normalization)
        self.path = _strip_query(self.full_path)


Test: TypeAlias = Callable[[_View], bool]


@dataclass(frozen=True, slots=True)
class _Check:
    """One condition of a rule: a user field (values or notValues of one key) as a predicate."""

    field: str
    http_only: bool
    test: Test


Clause: TypeAlias = tuple[_Check, ...]


@dataclass(frozen=True, slots=True)
class _Form:
    """A rule ready for one protocol: (any source) and (any operation) and (all conditions)."""

    sources: tuple[Clause, ...]
    operations: tuple[Clause, ...]
    conditions: Clause

    def matches(self, view: _View) -> bool:
        for check in self.conditions:
            if not check.test(view):
                return False
        return any(all(c.test(view) for c in s) for s in self.sources) and any(
            all(c.test(view) for c in o) for o in self.operations
        )

    def first_miss(self, view: _View) -> tuple[str, str] | None:
        """The first field that excluded ``view`` (conditions, then sources, then operations)."""
        for check in self.conditions:
            if not check.test(view):
                return check.field, "condition not met"
        for clauses, what in ((self.sources, "source"), (self.operations, "operation")):
            if any(all(c.test(view) for c in clause) for clause in clauses):
                continue
            # Report the failing check of the closest entry: the one with the fewest failures.
            best: tuple[int, str] | None = None
            for clause in clauses:
                failed = [c.field for c in clause if not c.test(view)]
                if failed and (best is None or len(failed) < best[0]):
                    best = (len(failed), failed[0])
            assert best is not None  # INVARIANT: some clause failed, so some check failed
            return best[1], f"no {what} matched"
        return None


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """One rule of a policy, compiled for HTTP and for TCP (``None``: never matches there)."""

    index: int
    http: _Form | None
    tcp: _Form | None
    why_never: str = ""  # when both forms are None or one is, the reason (for explanations)

    def form(self, protocol: str) -> _Form | None:
        """The compiled rule for ``protocol`` (``http`` or ``tcp``)."""
        return self.tcp if protocol == "tcp" else self.http


@dataclass(frozen=True, slots=True)
class _TargetRef:
    group: str
    kind: str
    name: str
    namespace: str


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    """An AuthorizationPolicy compiled once into matchers."""

    namespace: str
    name: str
    action: Action
    dry_run: bool
    provider: str  # CUSTOM only
    selector: tuple[tuple[str, str], ...] | None
    target_refs: tuple[_TargetRef, ...]
    rules: tuple[CompiledRule, ...]

    @property
    def key(self) -> str:
        """``namespace/name``, how decisions name the policy."""
        return f"{self.namespace}/{self.name}"

    def _first_match(self, view: _View, protocol: str) -> int | None:
        """Index of the first rule matching ``view``, or None."""
        for rule in self.rules:
            form = rule.form(protocol)
            if form is not None and form.matches(view):
                return rule.index
        return None


@dataclass(frozen=True, slots=True)
class _Scope:
    """The policies that apply to one workload, split the way the decision order needs them."""

    custom: tuple[CompiledPolicy, ...]
    deny: tuple[CompiledPolicy, ...]
    allow: tuple[CompiledPolicy, ...]
    audit: tuple[CompiledPolicy, ...]
    dry_run: tuple[CompiledPolicy, ...]
    applied: tuple[str, ...]
    assumptions: tuple[str, ...]


class CompiledAuthz:
    """All AuthorizationPolicies of a cluster, compiled; ``evaluate`` answers one request.

    Applicable-policy sets are cached per (namespace, labels), so repeated queries for the same
    workload cost only the matching.
    """

    __slots__ = ("_by_namespace", "_scopes", "diagnostics", "ext_authz", "path_normalization", "policies",
                 "root_namespace")

    def __init__(
        self,
        policies: tuple[CompiledPolicy, ...],
        diagnostics: tuple[Diagnostic, ...],
        *,
        root_namespace: str,
        path_normalization: PathNormalization,
        ext_authz: Mapping[str, ExtAuthzProvider] | None,
    ) -> None:
        self.policies = policies
        self.diagnostics = diagnostics
        self.root_namespace = root_namespace
        self.path_normalization: PathNormalization = path_normalization
        self.ext_authz = dict(ext_authz) if ext_authz is not None else None
        self._scopes: dict[tuple[str, tuple[tuple[str, str], ...]], _Scope] = {}
        self._by_namespace: dict[str, list[CompiledPolicy]] = {}
        for p in policies:
            self._by_namespace.setdefault(p.namespace, []).append(p)

    # ------------------------------------------------------------------------------------------
    def applicable(self, namespace: str, labels: Mapping[str, str]) -> tuple[CompiledPolicy, ...]:
        """Every policy (any action, dry-run included) that applies to the workload, in order.

        Root-namespace policies come first, then the workload namespace's, each in input order
        (istiod orders by creation time; the input order stands for it).
        """
        return tuple(p for p in self._in_scope(namespace) if _attaches(p, namespace, labels))

    def _in_scope(self, namespace: str) -> list[CompiledPolicy]:
        """Root-namespace policies, then the namespace's own (once if they are the same)."""
        root = self._by_namespace.get(self.root_namespace, [])
        return root if namespace == self.root_namespace else root + self._by_namespace.get(namespace, [])

    def _scope(self, namespace: str, labels: tuple[tuple[str, str], ...]) -> _Scope:
        key = (namespace, labels)
        scope = self._scopes.get(key)
        if scope is None:
            label_map = dict(labels)
            found = self.applicable(namespace, label_map)
            enforced = [p for p in found if not p.dry_run]
            assumptions: tuple[str, ...] = ()
            if any(
                not _attaches(p, namespace, label_map) and p.target_refs
                and any(not (r.group == _GATEWAY_API_GROUP and r.kind == "Gateway") for r in p.target_refs)
                for p in self._in_scope(namespace)
            ):
                assumptions = (AUTHZ_TARGETREF_NOT_MODELLED,)
            scope = _Scope(
                custom=tuple(p for p in found if p.action == "CUSTOM"),
                deny=tuple(p for p in enforced if p.action == "DENY"),
                allow=tuple(p for p in enforced if p.action == "ALLOW"),
                audit=tuple(p for p in enforced if p.action == "AUDIT"),
                dry_run=tuple(p for p in found if p.dry_run and p.action != "CUSTOM"),
                applied=tuple(p.key for p in enforced),
                assumptions=assumptions,
            )
            self._scopes[key] = scope
        return scope

    # ------------------------------------------------------------------------------------------
    def evaluate(self, request: Request) -> AuthzDecision:
        """Decide ``request`` at its destination workload, in Istio's order (module docstring)."""
        scope = self._scope(request.destination_namespace, request.destination_labels)
        view = _View(request, self.path_normalization)
        protocol = request.protocol
        assumptions: list[str] = list(scope.assumptions)
        dry_run = [f"{p.key} ({p.action})" for p in scope.dry_run if p._first_match(view, protocol) is not None]
        audited = tuple(p.key for p in scope.audit if p._first_match(view, protocol) is not None)

        def decide(allowed: bool, code: str, action: str, policy: str | None, rule: int | None, reason: str,
                   misses: tuple[RuleMiss, ...] = ()) -> AuthzDecision:
            return AuthzDecision(allowed, code, action, policy, rule, reason, tuple(dict.fromkeys(assumptions)),
                                 scope.applied, audited, tuple(dry_run), misses)

        # 1. CUSTOM
        if scope.custom:
            denied = self._custom(scope.custom, view, protocol, assumptions, dry_run)
            if denied is not None:
                bad, bad_rule, why = denied
                return decide(False, DENIED_EXPLICIT, "CUSTOM", bad.key, bad_rule,
                              f"CUSTOM policy {bad.key} rule[{bad_rule}] matched and {why}, so istiod "
                              "turned it into a DENY rule")
        # 2. DENY
        for policy in scope.deny:
            matched = policy._first_match(view, protocol)
            if matched is not None:
                return decide(False, DENIED_EXPLICIT, "DENY", policy.key, matched,
                              f"DENY policy {policy.key} rule[{matched}] matched")
        # 3. ALLOW
        if not scope.allow:
            return decide(True, ALLOWED, "", None, None, "no ALLOW policy applies to the workload")
        for policy in scope.allow:
            matched = policy._first_match(view, protocol)
            if matched is not None:
                return decide(True, ALLOWED, "ALLOW", policy.key, matched,
                              f"ALLOW policy {policy.key} rule[{matched}] matched")
        misses = tuple(_misses(scope.allow, view, protocol))
        names = ", ".join(p.key for p in scope.allow)
        return decide(False, DENIED_DEFAULT, "", None, None,
                      f"ALLOW policies apply to the workload ({names}) and none matched", misses)

    def rule_matches(self, request: Request) -> dict[tuple[str, str, int], bool | None]:
        """Every rule of every policy (applicable or not) against ``request``, keyed by
        (namespace, name, rule index): True/False, or None when the rule can never match on the
        request's protocol. A policy without rules appears as rule 0, never matching (as istiod
        emits it). For explanations and tests; :meth:`evaluate` is the decision.
        """
        view = _View(request, self.path_normalization)
        out: dict[tuple[str, str, int], bool | None] = {}
        for policy in self.policies:
            if not policy.rules:
                out[(policy.namespace, policy.name, 0)] = False
            for rule in policy.rules:
                form = rule.form(request.protocol)
                out[(policy.namespace, policy.name, rule.index)] = None if form is None else form.matches(view)
        return out

    def _custom(
        self,
        policies: tuple[CompiledPolicy, ...],
        view: _View,
        protocol: str,
        assumptions: list[str],
        dry_run: list[str],
    ) -> tuple[CompiledPolicy, int, str] | None:
        """Apply the CUSTOM step; return (policy, rule, why) when istiod's bad-provider DENY fires."""
        providers = sorted({p.provider for p in policies})
        for policy in policies:
            problem = ""
            if self.ext_authz is not None:
                if len(providers) > 1:
                    # Default istiod (PILOT_ENABLE_MULTIPLE_CUSTOM_AUTHZ_PROVIDERS off).
                    problem = f"the workload has several CUSTOM providers ({', '.join(providers)})"
                else:
                    provider = self.ext_authz.get(policy.provider)
                    if provider is None:
                        problem = f"extension provider `{policy.provider}` is not defined"
                    elif not provider.usable:
                        problem = f"extension provider `{policy.provider}` is unusable: {provider.problem}"
                    elif protocol == "tcp" and provider.kind == "http":
                        continue  # istiod builds nothing for an HTTP provider on a TCP port
            rule = policy._first_match(view, protocol)
            if rule is None:
                continue
            if policy.dry_run:
                # istiod still sends dry-run CUSTOM matches to the provider; we record them only.
                dry_run.append(f"{policy.key} (CUSTOM)")
                if not problem:
                    assumptions.append(CUSTOM_AUTHZ_NOT_MODELLED)
                continue
            if problem:
                return policy, rule, problem
            assumptions.append(CUSTOM_AUTHZ_NOT_MODELLED)
        return None


def _misses(policies: Iterable[CompiledPolicy], view: _View, protocol: str) -> Iterable[RuleMiss]:
    for policy in policies:
        if not policy.rules:
            yield RuleMiss(policy.key, 0, "", "the policy has no rules, so it matches nothing")
        for rule in policy.rules:
            form = rule.form(protocol)
            if form is None:
                yield RuleMiss(policy.key, rule.index, "", rule.why_never or "the rule can never match")
                continue
            miss = form.first_miss(view)
            if miss is not None:
                yield RuleMiss(policy.key, rule.index, miss[0], miss[1])


def _attaches(policy: CompiledPolicy, namespace: str, labels: Mapping[str, str]) -> bool:
    """Istio's WorkloadPolicyMatcher.ShouldAttachPolicy for a sidecar or a Kubernetes Gateway."""
    gateway = labels.get(_GATEWAY_NAME_LABEL)
    if gateway is None or not policy.target_refs:
        # Sidecars ignore targetRef policies; gateways fall back to the selector when the policy
        # has no targetRef (istiod's default, PILOT_ENABLE_SELECTOR_BASED_K8S_GATEWAY_POLICY=true).
        if policy.target_refs:
            return False
        return policy.selector is None or all(labels.get(k) == v for k, v in policy.selector)
    return policy.namespace == namespace and any(
        ref.group == _GATEWAY_API_GROUP and ref.kind == "Gateway" and ref.name == gateway
        and ref.namespace in ("", namespace)
        for ref in policy.target_refs
    )


# ================================================================================================
# Compiling
# ================================================================================================


def compile_policies(
    policies: Iterable[Mapping[str, Any]],
    *,
    root_namespace: str = ROOT_NAMESPACE,
    trust_domains: TrustDomainBundle | None = None,
    path_normalization: PathNormalization = "BASE",
    ext_authz: Mapping[str, ExtAuthzProvider] | None = None,
) -> CompiledAuthz:
    """Compile AuthorizationPolicy objects (plain dicts as YAML gives them) once, for many queries.

    Objects of other kinds are skipped; a policy without ``metadata.namespace`` is in ``default``.
    Malformed fields never raise: what istiod would skip is skipped and reported in
    ``diagnostics``. ``trust_domains`` enables trust-domain aliasing (None: the
    principals are used as written). ``ext_authz`` is the MeshConfig's providers (see
    :func:`ext_authz_providers`); None means unknown, so every matching CUSTOM policy only adds the
    assumption ``CUSTOM_AUTHZ_NOT_MODELLED``.
    """
    compiled: list[CompiledPolicy] = []
    diagnostics: list[Diagnostic] = []
    for obj in policies:
        if obj.get("kind", "AuthorizationPolicy") != "AuthorizationPolicy":
            continue
        policy = _compile_policy(obj, trust_domains, diagnostics)
        if policy is not None:
            compiled.append(policy)
    return CompiledAuthz(
        tuple(compiled),
        tuple(sorted(diagnostics, key=Diagnostic.sort_key)),
        root_namespace=root_namespace,
        path_normalization=path_normalization,
        ext_authz=ext_authz,
    )


def evaluate(policies: Iterable[Mapping[str, Any]], request: Request, **options: Any) -> AuthzDecision:
    """Compile ``policies`` and decide ``request``: a convenience for one-off questions."""
    return compile_policies(policies, **options).evaluate(request)


class _Reporter:
    """Collects diagnostics about one policy object."""

    def __init__(self, namespace: str, name: str, out: list[Diagnostic]) -> None:
        self.namespace, self.name, self.out = namespace, name, out

    def report(self, code: str, field: str, message: str, hint: str = "") -> None:
        self.out.append(Diagnostic(
            code=code, message=message, severity=Severity.WARNING,
            location=Location(kind="AuthorizationPolicy", namespace=self.namespace, name=self.name),
            field=field, hint=hint, object=f"AuthorizationPolicy {self.namespace}/{self.name}",
        ))


def _compile_policy(
    obj: Mapping[str, Any], bundle: TrustDomainBundle | None, diagnostics: list[Diagnostic]
) -> CompiledPolicy | None:
    meta = _map(obj.get("metadata"))
    namespace, name = str(meta.get("namespace") or "default"), str(meta.get("name") or "")
    spec = _map(obj.get("spec"))
    out = _Reporter(namespace, name, diagnostics)
    action = str(spec.get("action") or "ALLOW")
    if action not in _ACTIONS:
        out.report(AUTHZ_UNKNOWN_ACTION, "spec.action", f"unknown action `{action}`, istiod ignores the policy")
        return None
    dry_run = False
    raw = _map(meta.get("annotations")).get(_DRY_RUN_ANNOTATION)
    if raw is not None:
        text = str(raw)
        dry_run = text in _GO_TRUE
        if text not in _GO_TRUE and text not in _GO_FALSE:
            out.report(AUTHZ_BAD_DRY_RUN, f"metadata.annotations[{_DRY_RUN_ANNOTATION}]",
                       f"`{text}` is not a boolean, istiod enforces the policy", "use \"true\" or \"false\"")
    selector = spec.get("selector")
    match_labels = None if selector is None else tuple(
        sorted((str(k), str(v)) for k, v in _map(_map(selector).get("matchLabels")).items()))
    refs = _seq(spec.get("targetRefs"))
    if not refs and spec.get("targetRef"):
        refs = [spec["targetRef"]]
    target_refs = tuple(
        _TargetRef(str(r.get("group") or ""), str(r.get("kind") or ""), str(r.get("name") or ""),
                   str(r.get("namespace") or ""))
        for r in refs if isinstance(r, Mapping)
    )
    rules: list[CompiledRule] = []
    for index, rule in enumerate(_seq(spec.get("rules"))):
        if not isinstance(rule, Mapping):
            what = "a null rule" if rule is None else "a rule that is not an object"
            out.report(AUTHZ_RULE_IGNORED, f"spec.rules[{index}]", f"{what} is skipped and matches nothing")
            rules.append(CompiledRule(index, None, None, f"{what} never matches"))
            continue
        rules.append(_compile_rule(index, rule, action, namespace, bundle, out))
    provider = str(_map(spec.get("provider")).get("name") or "")
    return CompiledPolicy(namespace, name, cast(Action, action), dry_run, provider, match_labels, target_refs,
                          tuple(rules))


# --- rules --------------------------------------------------------------------------------------


def _map(value: Any) -> Mapping[str, Any]:
    """A mapping field, or an empty one when the YAML holds null or something else."""
    return value if isinstance(value, Mapping) else {}


def _seq(value: Any) -> list[Any]:
    """A list field; a lone scalar counts as a one-item list, null as empty."""
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


_KeySpec: TypeAlias = tuple[str, bool]  # (kind, http_only)

_SOURCE_KEYS: dict[str, _KeySpec] = {
    "principals": ("principal", False),
    "requestPrincipals": ("requestPrincipal", True),
    "namespaces": ("namespace", False),
    "ipBlocks": ("directIp", False),
    "remoteIpBlocks": ("remoteIp", False),
    "serviceAccounts": ("serviceAccount", False),
    "trustDomains": ("trustDomain", False),
}
_OPERATION_KEYS: dict[str, _KeySpec] = {
    "hosts": ("host", True),
    "ports": ("port", False),
    "methods": ("method", True),
    "paths": ("path", True),
}
_CONDITION_KEYS: dict[str, _KeySpec] = {
    "source.ip": ("directIp", False),
    "remote.ip": ("remoteIp", False),
    "source.namespace": ("namespace", False),
    "source.principal": ("principal", False),
    "request.auth.principal": ("requestPrincipal", True),
    "request.auth.audiences": ("claim:aud", True),
    "request.auth.presenter": ("claim:azp", True),
    "destination.ip": ("destIp", False),
    "destination.port": ("port", False),
    "connection.sni": ("sni", False),
}


class _InvalidValue(ValueError):
    """A value istiod's generator rejects (bad CIDR, bad port, malformed key)."""


class _Collect:
    """Checks of one rule being built, plus whether the ALLOW form must be dropped."""

    def __init__(self, action: str, out: _Reporter) -> None:
        self.action, self.out = action, out
        self.allow_broken = ""  # non-empty: why the ALLOW rule is skipped by istiod

    def key(self, field: str, kind: str, http_only: bool, values: Sequence[Any], not_values: Sequence[Any],
            namespace: str, bundle: TrustDomainBundle | None) -> list[_Check]:
        checks: list[_Check] = []
        for raw, negate in ((values, False), (not_values, True)):
            if not raw:
                continue
            vals = [str(v) for v in raw]
            if kind == "principal" and bundle is not None:
                vals = _alias_principals(vals, bundle)
            if kind == "trustDomain" and bundle is not None:
                vals = list(dict.fromkeys(m for v in vals for m in (bundle.members if v in bundle.members else (v,))))
            tests: list[Test] = []
            fname = field if not negate else _not_field(field)
            for value in vals:
                try:
                    tests.append(_value_test(kind, value, namespace))
                except _InvalidValue as exc:
                    if self.action == "ALLOW":
                        self.allow_broken = f"`{value}` in {fname} is invalid ({exc})"
                        self.out.report(AUTHZ_RULE_IGNORED, fname, f"invalid value `{value}`: {exc}",
                                        "istiod drops the whole rule of an ALLOW policy, so it matches nothing")
                    else:
                        self.out.report(AUTHZ_VALUE_IGNORED, fname, f"invalid value `{value}`: {exc}",
                                        f"istiod ignores this value of a {self.action} policy")
            if not tests:
                continue
            test = _any_of(tests)
            checks.append(_Check(fname, http_only, _negate(test) if negate else test))
        return checks


def _not_field(field: str) -> str:
    """``…source.principals`` -> ``…source.notPrincipals``; ``…when[0].values`` -> ``…when[0].notValues``."""
    head, _, last = field.rpartition(".")
    return f"{head}.not{last[:1].upper()}{last[1:]}"


def _compile_rule(
    index: int, rule: Mapping[str, Any], action: str, namespace: str, bundle: TrustDomainBundle | None,
    out: _Reporter,
) -> CompiledRule:
    base = f"spec.rules[{index}]"
    collect = _Collect(action, out)
    conditions: list[_Check] = []
    for i, raw_cond in enumerate(_seq(rule.get("when"))):
        cond = _map(raw_cond)
        key = str(cond.get("key") or "")
        kind, http_only = _condition_kind(key)
        if kind is None:
            out.report(AUTHZ_RULE_IGNORED, f"{base}.when[{i}].key", f"unknown attribute `{key}`",
                       "istiod skips this rule for every action, so it matches nothing")
            return CompiledRule(index, None, None, f"unknown attribute `{key}` in {base}.when[{i}]")
        conditions += collect.key(f"{base}.when[{i}].values", kind, http_only, _seq(cond.get("values")),
                                  _seq(cond.get("notValues")), namespace, bundle)
    sources: list[list[_Check]] = []
    for i, entry in enumerate(_seq(rule.get("from"))):
        source = _map(_map(entry).get("source"))
        clause: list[_Check] = []
        for field, (kind, http_only) in _SOURCE_KEYS.items():
            clause += collect.key(f"{base}.from[{i}].source.{field}", kind, http_only, _seq(source.get(field)),
                                  _seq(source.get(_not_key(field))), namespace, bundle)
        sources.append(clause)
    operations: list[list[_Check]] = []
    for i, entry in enumerate(_seq(rule.get("to"))):
        operation = _map(_map(entry).get("operation"))
        clause = []
        for field, (kind, http_only) in _OPERATION_KEYS.items():
            clause += collect.key(f"{base}.to[{i}].operation.{field}", kind, http_only, _seq(operation.get(field)),
                                  _seq(operation.get(_not_key(field))), namespace, bundle)
        operations.append(clause)
    if not sources:
        sources.append([])
    if not operations:
        operations.append([])

    def form(drop_http: bool) -> _Form:
        def keep(checks: Iterable[_Check]) -> Clause:
            return tuple(c for c in checks if not (drop_http and c.http_only))
        return _Form(tuple(keep(s) for s in sources), tuple(keep(o) for o in operations), keep(conditions))

    uses_http = any(c.http_only for c in (*conditions, *(c for s in sources for c in s),
                                          *(c for o in operations for c in o)))
    if action == "ALLOW":
        if collect.allow_broken:
            return CompiledRule(index, None, None, collect.allow_broken)
        tcp = None if uses_http else form(False)
        why = "the rule uses HTTP-only fields, so istiod drops it on TCP ports" if uses_http else ""
        return CompiledRule(index, form(False), tcp, why)
    # DENY, AUDIT and CUSTOM rules widen on TCP: the HTTP-only fields are dropped.
    return CompiledRule(index, form(False), form(True) if uses_http else form(False))


def _not_key(field: str) -> str:
    return "not" + field[:1].upper() + field[1:]


def _condition_kind(key: str) -> tuple[str | None, bool]:
    if key in _CONDITION_KEYS:
        return _CONDITION_KEYS[key]
    if key.startswith("request.headers"):
        return "header:" + key[len("request.headers"):], True
    if key.startswith("request.auth.claims"):
        return "claims:" + key[len("request.auth.claims"):], True
    if key.startswith("experimental.envoy.filters."):
        return "metadata:" + key[len("experimental."):], False
    return None, False


# --- values -------------------------------------------------------------------------------------


def _value_test(kind: str, value: str, namespace: str) -> Test:
    """The predicate for one policy value of one key kind (istiod's generator, in Istio's words)."""
    if kind == "principal":
        return _principal_test(value)
    if kind == "namespace":
        rx = re.compile(".*/ns/" + re.escape(value).replace(r"\*", ".*") + "/.*")
        return lambda v: v.spiffe is not None and rx.fullmatch(v.spiffe) is not None
    if kind == "serviceAccount":
        ns, sep, sa = value.partition("/")
        if not sep:
            ns, sa = namespace, value
        # istiod splices the names into the regex unescaped; so do we.
        rx = _regex(f"spiffe://.+/ns/{ns}/(.+/|)sa/{sa}(/.+)?")
        return lambda v: v.spiffe is not None and rx.fullmatch(v.spiffe) is not None
    if kind == "trustDomain":
        if "*" in value:
            rx = re.compile("spiffe://" + re.escape(value).replace(r"\*", "[^/]*") + "/.*")
            return lambda v: v.spiffe is not None and rx.fullmatch(v.spiffe) is not None
        prefix = f"spiffe://{value}/"
        return lambda v: v.spiffe is not None and v.spiffe.startswith(prefix)
    if kind == "requestPrincipal":
        return _request_principal_test(value)
    if kind in ("directIp", "remoteIp", "destIp"):
        net = _network(value)
        if kind == "directIp":
            return lambda v: v.direct_ip is not None and v.direct_ip in net
        if kind == "remoteIp":
            return lambda v: v.client_ip is not None and v.client_ip in net
        return lambda v: v.dest_ip is not None and v.dest_ip in net
    if kind == "port":
        port = _port(value)
        return lambda v: v.port == port
    if kind == "host":
        match = _string_test(value, ignore_case=True, star_means_present=True)
        return lambda v: v.host is not None and match(v.host)
    if kind == "method":
        match = _string_test(value, star_means_present=True)
        return lambda v: match(v.request.method)
    if kind == "path":
        if "{*}" in value or "{**}" in value:
            rx = _path_template(value)
            return lambda v: rx.fullmatch(v.path) is not None
        match = _string_test(value)
        return lambda v: match(v.path)
    if kind == "sni":
        match = _string_test(value)
        return lambda v: match(v.sni)
    if kind.startswith("header:"):
        name = _bracketed(kind[len("header:"):])[0]
        match = _string_test(value, star_means_present=True)
        return lambda v: (h := _header(v, name)) is not None and match(h)
    if kind.startswith("claim:") or kind.startswith("claims:"):
        path = (kind[len("claim:"):],) if kind.startswith("claim:") else tuple(_bracketed(kind[len("claims:"):]))
        match = _string_test(value)
        return lambda v: _any_claim(v.request.claim(path), match)
    if kind.startswith("metadata:"):
        return _metadata_test(kind[len("metadata:"):], value)
    raise AssertionError(f"unhandled key kind {kind}")  # pragma: no cover


def _string_test(value: str, *, ignore_case: bool = False, star_means_present: bool = False) -> Callable[[str], bool]:
    """Istio's glob: ``*`` alone, ``*suffix``, ``prefix*``, or exact (checked in that order)."""
    if ignore_case:
        value = _ascii_lower(value)
    if value == "*":
        # Envoy: a header matcher checks presence; a string matcher compiles "*" to ".+".
        if star_means_present:
            return lambda s: True
        return lambda s: s != ""
    fold: Callable[[str], str] = _ascii_lower if ignore_case else (lambda s: s)
    if value.startswith("*"):
        suffix = value[1:]
        return lambda s: fold(s).endswith(suffix)
    if value.endswith("*"):
        prefix = value[:-1]
        return lambda s: fold(s).startswith(prefix)
    return lambda s: fold(s) == value


def _principal_test(value: str) -> Test:
    # istiod matches "spiffe://" + value; "*" compiles to ".+", which every peer identity passes.
    if value == "*":
        return lambda v: v.principal is not None
    match = _string_test(value)
    return lambda v: v.principal is not None and match(v.principal)


def _request_principal_test(value: str) -> Test:
    """``iss/sub`` split at the last ``/`` (the issuer may be a URL), each side its own matcher."""
    iss, sep, sub = value.rpartition("/")
    if not sep:
        iss, sub = value, ""
    match_iss: Callable[[str], bool]
    match_sub: Callable[[str], bool]
    if value == "*":
        match_iss, match_sub = _non_empty, _non_empty
    elif value.startswith("*"):
        if sep:
            match_iss = _non_empty if iss == "*" else _ends_with(iss[1:])
            match_sub = _equals(sub)
        else:
            match_iss, match_sub = _non_empty, _ends_with(value[1:])
    elif value.endswith("*"):
        if sep:
            match_iss = _equals(iss)
            match_sub = _non_empty if sub == "*" else _starts_with(sub[:-1])
        else:
            match_iss, match_sub = _starts_with(value[:-1]), _non_empty
    else:
        match_iss, match_sub = _equals(iss), _equals(sub)

    def test(v: _View) -> bool:
        got_iss, got_sub = v.request.claim(("iss",)), v.request.claim(("sub",))
        return isinstance(got_iss, str) and isinstance(got_sub, str) and match_iss(got_iss) and match_sub(got_sub)

    return test


def _non_empty(text: str) -> bool:
    return text != ""  # istiod's ".+"


def _equals(expected: str) -> Callable[[str], bool]:
    return lambda text: text == expected


def _starts_with(prefix: str) -> Callable[[str], bool]:
    return lambda text: text.startswith(prefix)


def _ends_with(suffix: str) -> Callable[[str], bool]:
    return lambda text: text.endswith(suffix)


def _metadata_test(key: str, value: str) -> Test:
    # "envoy.filters.a.b[c]" -> filter "envoy.filters.a.b", key "c" (istiod's own split).
    body = key[:-1] if key.endswith("]") else key
    filter_name, sep, entry = body.partition("[")
    if not sep:
        raise _InvalidValue(f"`experimental.{key}` is not of the form experimental.envoy.filters.<name>[<key>]")
    if value.startswith("[") and value.endswith("]"):
        match = _string_test(value.strip("[]"))
        return lambda v: isinstance(got := v.request.metadata_value(filter_name, entry), tuple) and any(
            match(x) for x in got)
    match = _string_test(value)
    return lambda v: isinstance(got := v.request.metadata_value(filter_name, entry), str) and match(got)


def _any_claim(claim: str | tuple[str, ...] | None, match: Callable[[str], bool]) -> bool:
    if claim is None:
        return False
    if isinstance(claim, str):
        return match(claim)
    return any(match(c) for c in claim)


_PSEUDO_HEADERS: dict[str, Callable[[_View], str | None]] = {
    ":authority": lambda v: v.host,
    ":method": lambda v: v.request.method,
    ":path": lambda v: v.full_path,
    # Envoy sets :scheme from the downstream connection; mesh traffic with a peer certificate is TLS.
    ":scheme": lambda v: "https" if v.principal is not None else "http",
}


def _header(view: _View, name: str) -> str | None:
    lowered = name.lower()
    pseudo = _PSEUDO_HEADERS.get(lowered)
    if pseudo is not None:
        return pseudo(view)
    return view.request.header(lowered)


def _bracketed(text: str) -> list[str]:
    """``[a]`` -> ["a"]; ``[a][b]`` -> ["a", "b"]; anything else is invalid."""
    if not re.fullmatch(r"(\[[^\[\]]+\])+", text):
        raise _InvalidValue(f"`{text}` is not of the form [name] or [name][name]")
    return re.findall(r"\[([^\[\]]+)\]", text)


def _network(value: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError as exc:
        raise _InvalidValue(f"not an IP address or CIDR range: {exc}") from exc


def _port(value: str) -> int:
    if not value.isdigit() or not 0 <= int(value) <= 65535:
        raise _InvalidValue("not a port number in [0, 65535]")
    return int(value)


def _regex(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise _InvalidValue(f"does not form a valid pattern: {exc}") from exc


def _ip(text: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if text is None:
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _any_of(tests: Sequence[Test]) -> Test:
    if len(tests) == 1:
        return tests[0]
    frozen = tuple(tests)
    return lambda v: any(t(v) for t in frozen)


def _negate(test: Test) -> Test:
    return lambda v: not test(v)


_ASCII_UPPER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _ascii_lower(text: str) -> str:
    # Envoy's ignore_case folds ASCII only.
    return text.translate(_ASCII_UPPER)


# --- trust domains ------------------------------------------------------------------------------


def _alias_principals(principals: Iterable[str], bundle: TrustDomainBundle) -> list[str]:
    """Istio's Bundle.ReplaceTrustDomainAliases, in meshrules' words.

    A principal ``<td>/ns/<ns>/sa/<sa>`` whose trust domain is ``cluster.local`` or matches a
    member of the bundle is replaced by one principal per member (the principal itself where its
    ``*``-prefixed trust domain already covers the member). Anything else is kept as written.
    """
    out: list[str] = []
    for principal in principals:
        parts = principal.split("/")
        if len(parts) != 5 or parts[0] == "*":
            out.append(principal)
            continue
        domain = parts[0]
        if domain != _LOCAL_TRUST_DOMAIN and not any(_td_match(domain, m) for m in bundle.members):
            out.append(principal)
            continue
        expanded: list[str] = []
        for member in bundle.members:
            candidate = principal if _suffix_glob(member, domain) else "/".join((member, *parts[1:]))
            if candidate not in expanded:
                expanded.append(candidate)
        out += expanded
    return out


def _td_match(a: str, b: str) -> bool:
    return a == b or b == "*" or _prefix_glob(a, b) or _prefix_glob(b, a) or _suffix_glob(a, b) or _suffix_glob(b, a)


def _prefix_glob(text: str, pattern: str) -> bool:
    return pattern.endswith("*") and text.startswith(pattern[:-1])


def _suffix_glob(text: str, pattern: str) -> bool:
    return pattern.startswith("*") and text.endswith(pattern[1:])


# ================================================================================================
# Paths
# ================================================================================================

_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")
# Envoy URI template character classes (RFC 3986 pchar minus "*"): `*` is one segment, `**` any.
_PCHAR = r"[a-zA-Z0-9\-._~%!$&'()+,;:@=]"


def normalize_path(path: str, mode: PathNormalization = "BASE") -> str:
    """Normalise a request path (query kept) as Istio's mesh ``pathNormalization`` option does.

    ``BASE`` (Istio's default): percent-decode unreserved characters, turn ``\\`` into ``/`` and
    resolve ``.`` and ``..`` segments (RFC 3986). ``MERGE_SLASHES`` also merges ``//``;
    ``DECODE_AND_MERGE_SLASHES`` first decodes ``%2F`` and ``%5C``. Paths not starting with ``/``
    are left alone (Envoy rejects them before authorization).
    """
    if mode == "NONE" or not path.startswith("/"):
        return path
    cut = min((i for i in (path.find("?"), path.find("#")) if i >= 0), default=len(path))
    raw, rest = path[:cut], path[cut:]
    if mode == "DECODE_AND_MERGE_SLASHES":
        raw = re.sub(r"%(2[Ff]|5[Cc])", lambda m: "/" if m.group(1) in ("2F", "2f") else "\\", raw)
    raw = raw.replace("\\", "/")
    raw = _PERCENT.sub(lambda m: chr(int(m.group(1), 16)) if chr(int(m.group(1), 16)) in _UNRESERVED else m.group(0),
                       raw)
    raw = _remove_dot_segments(raw)
    if mode in ("MERGE_SLASHES", "DECODE_AND_MERGE_SLASHES"):
        raw = re.sub("/{2,}", "/", raw)
    return raw + rest


def _remove_dot_segments(path: str) -> str:
    # RFC 3986 §5.2.4 over segments; the leading "/" is guaranteed by the caller.
    out: list[str] = []
    segments = path[1:].split("/")
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        if segment == ".":
            if last:
                out.append("")
        elif segment == "..":
            if out:
                out.pop()
            if last:
                out.append("")
        else:
            out.append(segment)
    return "/" + "/".join(out)


def _strip_query(path: str) -> str:
    cut = min((i for i in (path.find("?"), path.find("#")) if i >= 0), default=len(path))
    return path[:cut]


def _path_template(value: str) -> re.Pattern[str]:
    """An Istio ``{*}``/``{**}`` path as Envoy's URI template matcher compiles it."""
    template = value.replace("{**}", "**").replace("{*}", "*")
    if not template.startswith("/"):
        raise _InvalidValue("a path template must start with `/`")
    literal = re.compile(_PCHAR[:-1] + "]+")
    parts: list[str] = []
    seen_text_glob = False
    rest = template[1:]
    suffix = ""
    while rest:
        if rest.startswith("**"):
            if seen_text_glob:
                raise _InvalidValue("a second `{**}` is not supported")
            parts.append(_PCHAR[:-1] + "/]*")
            rest = rest[2:]
            seen_text_glob = True
        elif rest.startswith("*"):
            if seen_text_glob:
                raise _InvalidValue("`{*}` after `{**}` is not supported")
            parts.append(_PCHAR + "+")
            rest = rest[1:]
        else:
            segment = rest.split("/", 1)[0]
            if not literal.fullmatch(segment):
                raise _InvalidValue(f"invalid literal `{segment}` in a path template")
            parts.append(re.escape(segment))
            rest = rest[len(segment):]
        if rest == "/":
            parts.append("")
            break
        if rest.startswith("/"):
            rest = rest[1:]
        elif rest:
            suffix = rest
            if not literal.fullmatch(suffix):
                raise _InvalidValue(f"invalid suffix `{suffix}` in a path template")
            break
    return re.compile("/" + "/".join(parts) + re.escape(suffix))
