"""Which TrafficPolicies a request gets its configuration from, read from the intent (spec §3.2).

The route a proxy takes already carries the merged configuration; this module answers the
question an explanation asks: *which policies* made it. A policy contributes to a request when the
rule set applied it at the destination (a `TrafficApplication`), its `sourceSelector` selects the
caller, one of its `httpRequestMatchers` matches the request (none: every request), and for at
least one of its fields no other contributing policy wins (`TrafficPrecedence`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import re2  # type: ignore[import-untyped]

from meshrules.model.discovery import Workload
from meshrules.model.intent import TrafficApplication, TrafficPrecedence
from meshrules.model.policy import HttpRequestMatcher, Policy, StringMatch, TrafficPolicy

__all__ = ["contributing_policies", "matcher_matches", "policy_applies"]


def _string(match: StringMatch, value: str) -> bool:
    if match.exact is not None:
        return value == match.exact
    if match.prefix is not None:
        return value.startswith(match.prefix)
    try:
        return re2.fullmatch(match.value, value) is not None
    except Exception:  # an invalid regex matches nothing (the policy is INVALID on its status)
        return False


def matcher_matches(m: HttpRequestMatcher, method: str, path: str, headers: Mapping[str, str]) -> bool:
    """Whether one `httpRequestMatchers` entry matches the request (all its fields must)."""
    bare, _, query = path.partition("?")
    if m.uri is not None and not _string(m.uri, bare):
        return False
    if m.method is not None and m.method != method:
        return False
    for h in m.headers:
        got = headers.get(h.name.lower())
        # An empty value asks only that the header is present.
        if h.regex:
            ok = got is not None and re2.fullmatch(h.value, got) is not None
        else:
            ok = got is not None and (got == h.value or not h.value)
        if ok == h.invert_match:
            return False
    params = dict(p.partition("=")[::2] for p in query.split("&") if p)
    for q in m.query_parameters:
        got = params.get(q.name)
        if got is None or not ((re2.fullmatch(q.value, got) is not None) if q.regex else got == q.value):
            return False
    return True


def policy_applies(policy: TrafficPolicy, caller: Workload, method: str, path: str,
                   headers: Mapping[str, str]) -> bool:
    """Whether ``policy``'s sources select ``caller`` and one of its matchers matches the request."""
    spec = policy.spec
    if spec.source_selector and not any(
        (not s.clusters or caller.cluster in s.clusters)
        and (not s.namespaces or caller.namespace in s.namespaces)
        and all(caller.pod_labels.get(k) == v for k, v in s.labels.items())
        for s in spec.source_selector
    ):
        return False
    return not spec.http_request_matchers or any(
        matcher_matches(m, method, path, headers) for m in spec.http_request_matchers
    )


def contributing_policies(
    applications: Iterable[TrafficApplication],
    precedence: Iterable[TrafficPrecedence],
    policies: Mapping[str, Policy],
    caller: Workload,
    method: str,
    path: str,
    headers: Mapping[str, str],
) -> list[TrafficApplication]:
    """The ``applications`` whose policy gives this request at least one field (none beaten by another)."""
    applied = [
        a for a in applications
        if isinstance(p := policies.get(a.policy), TrafficPolicy) and policy_applies(p, caller, method, path, headers)
    ]
    live = {(a.destination, a.policy) for a in applied}
    beaten: set[tuple[str, str, str]] = {
        (pr.destination, pr.loser, pr.field) for pr in precedence if (pr.destination, pr.winner) in live
    }
    return [a for a in applied if any((a.destination, a.policy, f) not in beaten for f in a.fields)]
