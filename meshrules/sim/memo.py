"""Memo keys: what a route depends on about its caller, and authorization about the caller's identity.

`matrix`, `describe` and `diff` ask the same question for thousands of callers. Most of an answer
does not depend on which caller asks, so the fleet memoises the two expensive stages under keys
that keep exactly what they read:

* **routing** reads, about the caller, its cluster, namespace and the pod labels some
  VirtualService `sourceLabels` for the dialed host (or any DestinationRule `workloadSelector`)
  mentions — `RouteKeys.labels_for` gives those keys;
* **Istio authorization** reads the caller only through its principal, and the principal only
  through the principal patterns, namespaces, service accounts and trust domains the cluster's
  AuthorizationPolicies mention. `PrincipalClasses.key` maps a principal to its trust domain,
  namespace and the set of raw principal patterns it matches; two principals with equal keys get
  equal decisions. Where that reasoning would need more (trust-domain aliases, `serviceAccounts`
  or `trustDomains` matchers, a pattern with more than one `*`), the key is the principal itself.

A key is sound only if it keeps everything its stage reads; `tests/sim/test_memo.py` checks the
memoised answers against fresh ones.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from meshrules.sim.istio.routing import DestinationRuleChoice, IstioRouting, resolve_short_name

__all__ = ["LinkerdIdentityClasses", "PrincipalClasses", "RouteKeys", "memoise_destination_rules"]

_NS = re.compile(r"/ns/([^/]+)/")
# Authorization fields (and `when` keys) that read the peer principal.
_PRINCIPAL_FIELDS = ("principals", "notPrincipals")
_NAMESPACE_FIELDS = ("namespaces", "notNamespaces")
_OPAQUE_FIELDS = ("serviceAccounts", "notServiceAccounts", "trustDomains", "notTrustDomains")


class RouteKeys:
    """Per dialed host, the caller pod-label keys its VirtualServices (and DestinationRules) read."""

    def __init__(self, objects: Iterable[Mapping[str, Any]], cluster_domain: str) -> None:
        self._by_host: dict[str, set[str]] = defaultdict(set)
        self._everywhere: set[str] = set()
        # The only caller labels a DestinationRule choice reads: its `workloadSelector` keys.
        self.destination_rule_keys: set[str] = set()
        self._all: frozenset[str] | None = None
        for obj in objects:
            kind = obj.get("kind")
            spec = _map(obj.get("spec"))
            ns = str(_map(obj.get("metadata")).get("namespace") or "default")
            if kind == "DestinationRule":
                selector = _map(_map(spec.get("workloadSelector")).get("matchLabels"))
                self.destination_rule_keys.update(str(k) for k in selector)
                self._everywhere.update(str(k) for k in selector)
            elif kind == "VirtualService":
                keys = _source_label_keys(spec)
                if not keys:
                    continue
                hosts = [str(h) for h in spec.get("hosts") or ()]
                # A delegate's routes answer for hosts it does not list: count its keys everywhere.
                if not hosts or any(h.startswith("*") for h in hosts):
                    self._everywhere |= keys
                for h in hosts:
                    self._by_host[resolve_short_name(h, ns, cluster_domain)] |= keys

    def labels_for(self, host: str, labels: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
        """The caller labels routing to ``host`` can read (sorted pairs)."""
        keys = self._by_host.get(host)
        keys = self._everywhere | keys if keys else self._everywhere
        return tuple(sorted((k, v) for k, v in labels.items() if k in keys))

    def all_keys(self) -> frozenset[str]:
        """Every caller label key routing to any host can read."""
        if self._all is None:
            self._all = frozenset(self._everywhere.union(*self._by_host.values()))
        return self._all


def memoise_destination_rules(routing: IstioRouting, keys: Iterable[str]) -> IstioRouting:
    """Let ``routing`` cache its DestinationRule choices per caller *as DestinationRules see it*.

    A DestinationRule choice reads the caller's labels only through `workloadSelector`s, so passing
    just those labels gives the same choice and lets callers that differ elsewhere (e.g. in labels a
    VirtualService `sourceLabels` reads) share the routing's own cache.
    """
    wanted = frozenset(keys)
    choose = routing.destination_rule

    def destination_rule(client_namespace: str, client_labels: Mapping[str, str] | Sequence[tuple[str, str]],
                         host: str, service_namespace: str | None = None) -> DestinationRuleChoice | None:
        pairs = client_labels.items() if isinstance(client_labels, Mapping) else client_labels
        seen = tuple(sorted((k, v) for k, v in pairs if k in wanted))
        return choose(client_namespace, seen, host, service_namespace)

    routing.destination_rule = destination_rule  # type: ignore[method-assign]
    return routing


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _source_label_keys(spec: Mapping[str, Any]) -> set[str]:
    keys: set[str] = set()
    for kind in ("http", "tcp", "tls"):
        for route in spec.get(kind) or ():
            if not isinstance(route, Mapping):
                continue
            for m in route.get("match") or ():
                if isinstance(m, Mapping) and isinstance(m.get("sourceLabels"), Mapping):
                    keys.update(str(k) for k in m["sourceLabels"])
    return keys


class PrincipalClasses:
    """Partition of peer principals by what one cluster's AuthorizationPolicies can tell apart."""

    def __init__(self, objects: Iterable[Mapping[str, Any]], *, aliases: bool) -> None:
        self.patterns: list[str] = []
        self.exact = aliases  # trust-domain aliases rewrite patterns: no partition then
        for obj in objects:
            if obj.get("kind") != "AuthorizationPolicy":
                continue
            for rule in _map(obj.get("spec")).get("rules") or ():
                if isinstance(rule, Mapping):
                    self._rule(rule)
        self.patterns = sorted(set(self.patterns))
        self._cache: dict[str | None, object] = {}

    def _rule(self, rule: Mapping[str, Any]) -> None:
        for entry in rule.get("from") or ():
            source = entry.get("source") if isinstance(entry, Mapping) else None
            if not isinstance(source, Mapping):
                continue
            for field in _PRINCIPAL_FIELDS:
                self._add(source.get(field))
            if any(source.get(f) for f in _OPAQUE_FIELDS):
                self.exact = True
        for cond in rule.get("when") or ():
            if isinstance(cond, Mapping) and cond.get("key") == "source.principal":
                self._add(cond.get("values"))
                self._add(cond.get("notValues"))

    def _add(self, values: Any) -> None:
        for v in values if isinstance(values, list) else ():
            text = str(v)
            if text.count("*") > 1 or (text.count("*") == 1 and text != "*" and not (
                    text.startswith("*") or text.endswith("*"))):
                self.exact = True  # a glob the simple partition cannot mirror
            self.patterns.append(text)

    def key(self, principal: str | None) -> object:
        """What the cluster's policies can see of ``principal`` (None: plaintext)."""
        if principal is None or self.exact:
            return principal
        found = self._cache.get(principal)
        if found is None:
            td = principal.split("/", 1)[0]
            m = _NS.search(principal + "/")
            ns = m.group(1) if m else ""
            matched = frozenset(p for p in self.patterns if _glob(p, principal))
            found = (td, ns, matched)
            self._cache[principal] = found
        return found


_LINKERD_ID = re.compile(r"^([^.]+)\.([^.]+)\.serviceaccount\.identity\.(.+)$")


class LinkerdIdentityClasses:
    """Partition of client identities by what one cluster's Linkerd policies can tell apart.

    Linkerd matches identities exactly, by ``*.suffix`` or ``*``; references to ServiceAccounts and
    Namespaces become exact and suffix identities of the cluster's own trust domain. So an identity
    ``<sa>.<ns>.serviceaccount.identity.<suffix>`` is seen as its suffix, the referenced
    (service account, namespace) or namespace it is, and the written patterns it matches.
    """

    def __init__(self, objects: Iterable[Mapping[str, Any]]) -> None:
        patterns: set[str] = set()
        self.accounts: set[tuple[str, str]] = set()
        self.namespaces: set[str] = set()
        for obj in objects:
            kind = obj.get("kind")
            ns = str(_map(obj.get("metadata")).get("namespace") or "default")
            spec = _map(obj.get("spec"))
            if kind == "MeshTLSAuthentication":
                patterns.update(str(i) for i in spec.get("identities") or ())
                for ref in spec.get("identityRefs") or ():
                    self._ref(_map(ref), ns)
            elif kind == "ServerAuthorization":
                mtls = _map(_map(spec.get("client")).get("meshTLS"))
                patterns.update(str(i) for i in mtls.get("identities") or ())
                for sa in mtls.get("serviceAccounts") or ():
                    ref = _map(sa)
                    self.accounts.add((str(ref.get("name") or ""), str(ref.get("namespace") or ns)))
        self.patterns = sorted(patterns)
        self._cache: dict[str, object] = {}

    def _ref(self, ref: Mapping[str, Any], ns: str) -> None:
        name, ref_ns = str(ref.get("name") or ""), str(ref.get("namespace") or ns)
        if ref.get("kind") == "Namespace":
            self.namespaces.add(name)
        elif name and name != "*":
            self.accounts.add((name, ref_ns))
        else:
            self.namespaces.add(ref_ns)

    def key(self, identity: str | None) -> object:
        """What the cluster's policies can see of ``identity`` (None: no mTLS; "": no identity)."""
        if not identity:
            return identity
        found = self._cache.get(identity)
        if found is None:
            m = _LINKERD_ID.match(identity)
            if m is None:
                found = identity
            else:
                sa, ns, suffix = m.groups()
                found = (suffix, (sa, ns) if (sa, ns) in self.accounts else None,
                         ns if ns in self.namespaces else None,
                         frozenset(p for p in self.patterns if _linkerd_glob(p, identity)))
            self._cache[identity] = found
        return found


def _linkerd_glob(pattern: str, identity: str) -> bool:
    if pattern == "*":
        return True
    if pattern.startswith("*."):
        return identity.endswith(pattern[1:])
    return pattern == identity


def _glob(pattern: str, value: str) -> bool:
    """Istio's string match: ``*`` (present), ``*suffix``, ``prefix*``, exact."""
    if pattern == "*":
        return True
    if pattern.startswith("*"):
        return value.endswith(pattern[1:])
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    return value == pattern
