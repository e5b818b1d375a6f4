"""Istio's documented authorization rules, one test each, plus the properties the simulator promises.

Each test quotes the sentence it protects and names its page:

* REF  = https://istio.io/latest/docs/reference/config/security/authorization-policy/
  (generated from istio/api ``security/v1beta1/authorization_policy.proto``)
* CONCEPTS = https://istio.io/latest/docs/concepts/security/#authorization-policies
* NORM = https://istio.io/latest/docs/reference/config/security/normalization/
* MESH = https://istio.io/latest/docs/reference/config/istio.mesh.v1alpha1/#MeshConfig
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshrules.sim.istio import (
    ALLOWED,
    AUTHZ_TARGETREF_NOT_MODELLED,
    CUSTOM_AUTHZ_NOT_MODELLED,
    DENIED_DEFAULT,
    DENIED_EXPLICIT,
    AuthzDecision,
    ExtAuthzProvider,
    TrustDomainBundle,
    compile_policies,
    ext_authz_providers,
    normalize_path,
)
from meshrules.sim.request import Request

NS = "foo"
LABELS = {"app": "httpbin", "version": "v1"}
SLEEP = "cluster.local/ns/default/sa/sleep"


def policy(name: str, spec: dict[str, Any], namespace: str = NS, **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
            "metadata": {"name": name, "namespace": namespace, **meta}, "spec": spec}


def http(**kw: Any) -> Request:
    kw.setdefault("destination_namespace", NS)
    kw.setdefault("destination_labels", LABELS)
    kw.setdefault("source_principal", SLEEP)
    return Request.http(**kw)


def tcp(**kw: Any) -> Request:
    kw.setdefault("destination_namespace", NS)
    kw.setdefault("destination_labels", LABELS)
    kw.setdefault("source_principal", SLEEP)
    return Request.tcp(**kw)


def decide(policies: list[dict[str, Any]], request: Request, **options: Any) -> AuthzDecision:
    return compile_policies(policies, **options).evaluate(request)


ALLOW_GET = policy("allow-get", {"rules": [{"to": [{"operation": {"methods": ["GET"]}}]}]})
DENY_ADMIN = policy("deny-admin", {"action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/admin*"]}}]}]})
CUSTOM_ADMIN = policy("ext-authz", {"action": "CUSTOM", "provider": {"name": "my-authz"},
                                    "rules": [{"to": [{"operation": {"paths": ["/admin*"]}}]}]})


# ================================================================================================
# Evaluation order (REF, CONCEPTS)
# ================================================================================================


def test_custom_policy_that_matches_is_evaluated_first() -> None:
    """REF/CONCEPTS: "If there are any CUSTOM policies that match the request, evaluate and deny the
    request if the evaluation result is deny."

    We cannot call the ext_authz server: a match is reported as assumption CUSTOM_AUTHZ_NOT_MODELLED
    and the rest is decided as if the server allowed. A non-matching CUSTOM policy adds nothing.
    """
    matched = decide([CUSTOM_ADMIN], http(path="/admin/users"))
    assert matched.allowed and CUSTOM_AUTHZ_NOT_MODELLED in matched.assumptions
    missed = decide([CUSTOM_ADMIN], http(path="/public"))
    assert missed.allowed and CUSTOM_AUTHZ_NOT_MODELLED not in missed.assumptions
    # With the mesh's providers known, a CUSTOM policy istiod cannot serve denies what it matches,
    # before any ALLOW policy is looked at (istiod's "deny-due-to-bad-CUSTOM-action" rules).
    broken = decide([CUSTOM_ADMIN, ALLOW_GET], http(path="/admin/users"), ext_authz={})
    assert (broken.allowed, broken.code, broken.action, broken.policy) == (False, DENIED_EXPLICIT, "CUSTOM",
                                                                          "foo/ext-authz")


def test_custom_extension_cannot_bypass_allow_and_deny() -> None:
    """REF (Action CUSTOM): "A request is allowed if and only if all the actions return allow, in other
    words, the extension cannot bypass the authorization decision made by ALLOW and DENY action."
    """
    d = decide([CUSTOM_ADMIN, ALLOW_GET], http(method="POST", path="/admin/x"))
    assert not d.allowed and d.code == DENIED_DEFAULT and CUSTOM_AUTHZ_NOT_MODELLED in d.assumptions


def test_matching_deny_policy_denies_the_request() -> None:
    """REF/CONCEPTS: "If there are any DENY policies that match the request, deny the request." """
    d = decide([ALLOW_GET, DENY_ADMIN], http(method="GET", path="/admin"))
    assert (d.allowed, d.code, d.action, d.policy, d.rule) == (False, DENIED_EXPLICIT, "DENY", "foo/deny-admin", 0)


def test_no_allow_policies_allows_the_request() -> None:
    """REF/CONCEPTS: "If there are no ALLOW policies for the workload, allow the request." """
    d = decide([DENY_ADMIN], http(path="/public"))
    assert (d.allowed, d.code, d.policy) == (True, ALLOWED, None)
    assert decide([], http()).allowed


def test_matching_allow_policy_allows_the_request() -> None:
    """REF/CONCEPTS: "If any of the ALLOW policies match the request, allow the request." """
    other = policy("allow-post", {"rules": [{"to": [{"operation": {"methods": ["POST"]}}]}]})
    d = decide([other, ALLOW_GET], http(method="GET"))
    assert (d.allowed, d.code, d.action, d.policy) == (True, ALLOWED, "ALLOW", "foo/allow-get")


def test_otherwise_deny_the_request() -> None:
    """REF/CONCEPTS: "Deny the request." (the last rule: ALLOW policies exist and none matched)"""
    d = decide([ALLOW_GET], http(method="DELETE"))
    assert (d.allowed, d.code, d.action, d.policy) == (False, DENIED_DEFAULT, "", None)
    assert [(m.policy, m.rule, m.field) for m in d.misses] == [
        ("foo/allow-get", 0, "spec.rules[0].to[0].operation.methods")]


def test_audit_policies_never_decide() -> None:
    """REF: "AUDIT policies do not affect whether requests are allowed or denied to the workload." """
    audit = policy("audit-all", {"action": "AUDIT", "rules": [{}]})
    assert decide([audit], http()).allowed
    d = decide([audit, ALLOW_GET], http(method="PUT"))
    assert not d.allowed and d.audited == ("foo/audit-all",)


def test_dry_run_policies_are_not_enforced() -> None:
    """REF: "to dry-run the policy without actually enforcing it." (annotation ``istio.io/dry-run``)"""
    dry = policy("dry-deny", {"action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/headers"]}}]}]},
                 annotations={"istio.io/dry-run": "true"})
    d = decide([dry], http(path="/headers"))
    assert d.allowed and d.dry_run == ("foo/dry-deny (DENY)",) and d.applied == ()


# ================================================================================================
# Scope (REF)
# ================================================================================================


def test_allow_nothing_policy_denies_every_request() -> None:
    """REF: "the following authorization policy applies to all workloads in namespace `foo`. It allows
    nothing and effectively denies all requests to workloads in namespace `foo`." (``spec: {}``)"""
    d = decide([policy("allow-nothing", {})], http())
    assert (d.allowed, d.code) == (False, DENIED_DEFAULT)
    assert not decide([policy("allow-nothing", {})], tcp(destination_port=5432)).allowed


def test_allow_all_policy_allows_every_request() -> None:
    """REF: "The following authorization policy allows all requests to workloads in namespace `foo`."
    (``rules: [{}]``)"""
    everything = policy("allow-all", {"rules": [{}]})
    assert decide([everything], http(source_principal=None, method="DELETE")).allowed
    assert decide([everything], tcp(source_principal=None)).allowed


def test_rules_not_set_never_match() -> None:
    """REF (rules): "If not set, the match will never occur. This is equivalent to setting a default of
    deny for the target workloads if the action is ALLOW." — so a DENY without rules denies nothing."""
    assert not decide([policy("p", {"action": "ALLOW"})], http()).allowed
    assert decide([policy("p", {"action": "DENY"})], http()).allowed


def test_root_namespace_policy_applies_to_all_namespaces() -> None:
    """REF: "If set to root namespace, the policy applies to all namespaces in a mesh." and "The
    following authorization policy applies to workloads containing label `version: v1` in all
    namespaces in the mesh. (Assuming the root namespace is configured to `istio-system`)." """
    root = policy("allow-nothing", {"selector": {"matchLabels": {"version": "v1"}}}, namespace="istio-system")
    assert not decide([root], http(destination_namespace="bar", destination_labels={"version": "v1"})).allowed
    assert decide([root], http(destination_namespace="bar", destination_labels={"version": "v2"})).allowed
    # Another root namespace configured: istio-system is then an ordinary namespace.
    assert decide([root], http(destination_namespace="bar", destination_labels={"version": "v1"}),
                  root_namespace="istio-config").allowed


def test_selector_restricts_the_policy_to_workloads_in_its_namespace() -> None:
    """REF (selector): "The selector will match with workloads in the same namespace as the authorization
    policy." and "workload `selector` can be used to further restrict where a policy applies." """
    bar = policy("allow-nothing", {"selector": {"matchLabels": {"app": "httpbin"}}}, namespace="bar")
    assert not decide([bar], http(destination_namespace="bar", destination_labels={"app": "httpbin"})).allowed
    assert decide([bar], http(destination_namespace="bar", destination_labels={"app": "other"})).allowed
    assert decide([bar], http(destination_namespace=NS, destination_labels={"app": "httpbin"})).allowed


def test_target_ref_attaches_to_a_gateway_in_the_same_namespace() -> None:
    """REF (targetRef): "The targeted resource must be a `Gateway` in the group
    `gateway.networking.k8s.io`. The gateway must be in the same namespace as the authorization policy."

    Sidecars ignore targetRef policies; a policy targeting a Service (a waypoint) is not modelled and
    says so.
    """
    gw = {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "ingress"}
    deny = policy("gw-deny", {"targetRefs": [gw], "action": "DENY", "rules": [{}]})
    gateway = {"gateway.networking.k8s.io/gateway-name": "ingress"}
    assert not decide([deny], http(destination_labels=gateway)).allowed
    assert decide([deny], http(destination_labels=gateway, destination_namespace="bar")).allowed
    assert decide([deny], http()).allowed  # a sidecar
    waypoint = policy("svc", {"targetRefs": [{"group": "", "kind": "Service", "name": "httpbin"}], "rules": [{}]})
    d = decide([waypoint], http())
    assert d.allowed and AUTHZ_TARGETREF_NOT_MODELLED in d.assumptions


# ================================================================================================
# Rule and value semantics (REF)
# ================================================================================================


def test_rule_needs_one_source_one_operation_and_all_conditions() -> None:
    """REF (Rule): "A match occurs when at least one source, one operation and all conditions matches
    the request." """
    rule = {"from": [{"source": {"principals": [SLEEP]}}, {"source": {"namespaces": ["test"]}}],
            "to": [{"operation": {"methods": ["GET"], "paths": ["/info*"]}},
                   {"operation": {"methods": ["POST"], "paths": ["/data"]}}],
            "when": [{"key": "request.auth.claims[iss]", "values": ["https://accounts.google.com"]}]}
    p = [policy("httpbin", {"action": "ALLOW", "rules": [rule]})]
    jwt = {"iss": "https://accounts.google.com", "sub": "u"}
    assert decide(p, http(method="GET", path="/info/1", claims=jwt)).allowed
    assert decide(p, http(source_principal="td/ns/test/sa/x", method="POST", path="/data", claims=jwt)).allowed
    assert not decide(p, http(method="POST", path="/info", claims=jwt)).allowed  # no operation
    assert not decide(p, http(source_principal="td/ns/dev/sa/x", method="GET", path="/info", claims=jwt)).allowed
    assert not decide(p, http(method="GET", path="/info")).allowed  # the condition fails


def test_an_empty_rule_is_always_matched() -> None:
    """REF (Rule): "An empty rule is always matched." """
    deny_all = policy("deny-all", {"action": "DENY", "rules": [{}]})
    assert decide([deny_all], http(source_principal=None, host=None)).code == DENIED_EXPLICIT


@pytest.mark.parametrize(
    ("sentence", "pattern", "hit", "miss"),
    [
        ('Exact match: "abc" will match on value "abc".', "abc", "abc", "abcd"),
        ('Prefix match: "abc*" will match on value "abc" and "abcd".', "abc*", "abcd", "xabc"),
        ('Suffix match: "*abc" will match on value "abc" and "xabc".', "*abc", "xabc", "abcd"),
        ('Presence match: "*" will match when value is not empty.', "*", "anything", None),
    ],
)
def test_string_fields_support_exact_prefix_suffix_and_presence(sentence: str, pattern: str, hit: str,
                                                                miss: str | None) -> None:
    """REF (Rule): "Any string field in the rule supports Exact, Prefix, Suffix and Presence match" —
    each parameter quotes its own line; checked on a header, the SNI and a JWT claim."""
    for key, attr in (("request.headers[x-team]", "headers"), ("connection.sni", "sni"),
                      ("request.auth.claims[group]", "claims")):
        p = [policy("p", {"rules": [{"when": [{"key": key, "values": [pattern]}]}]})]

        def req(value: str | None, attr: str = attr) -> Request:
            if attr == "headers":
                return http(headers={} if value is None else {"x-team": value})
            if attr == "sni":
                return http(sni=value)
            return http(claims={} if value is None else {"group": value})

        assert decide(p, req(hit)).allowed, (sentence, key)
        assert not decide(p, req(miss)).allowed, (sentence, key)
    # "when value is not empty": an empty SNI or claim does not satisfy "*".
    star = [policy("p", {"rules": [{"when": [{"key": "connection.sni", "values": ["*"]}]}]})]
    assert not decide(star, http(sni="")).allowed


def test_source_fields_are_anded() -> None:
    """REF (Source): "the following source matches if the principal is "admin" or "dev" and the
    namespace is "prod" or "test" and the ip is not "203.0.113.4"." (principals spelled as SPIFFE ids)"""
    src = {"principals": ["cluster.local/ns/prod/sa/admin", "cluster.local/ns/test/sa/dev"],
           "namespaces": ["prod", "test"], "notIpBlocks": ["203.0.113.4"]}
    p = [policy("p", {"rules": [{"from": [{"source": src}]}]})]
    assert decide(p, http(source_principal="cluster.local/ns/prod/sa/admin", source_ip="10.0.0.1")).allowed
    assert not decide(p, http(source_principal="cluster.local/ns/prod/sa/admin", source_ip="203.0.113.4")).allowed
    assert not decide(p, http(source_principal="cluster.local/ns/dev/sa/admin", source_ip="10.0.0.1")).allowed


def test_operation_fields_are_anded() -> None:
    """REF (Operation): "the following operation matches if the host has suffix ".example.com" and the
    method is "GET" or "HEAD" and the path doesn't have prefix "/admin"." """
    op = {"hosts": ["*.example.com"], "methods": ["GET", "HEAD"], "notPaths": ["/admin*"]}
    p = [policy("p", {"rules": [{"to": [{"operation": op}]}]})]
    assert decide(p, http(host="www.example.com", method="HEAD", path="/index")).allowed
    assert not decide(p, http(host="www.example.com", method="HEAD", path="/admin/x")).allowed
    assert not decide(p, http(host="www.example.org", method="GET", path="/index")).allowed
    assert not decide(p, http(host="www.example.com", method="POST", path="/index")).allowed


def test_hosts_match_case_insensitively() -> None:
    """REF (Operation.hosts): "The match is case-insensitive." """
    p = [policy("p", {"rules": [{"to": [{"operation": {"hosts": ["Example.COM"]}}]}]})]
    assert decide(p, http(host="example.com")).allowed
    assert decide(p, http(host="EXAMPLE.com")).allowed
    assert not decide(p, http(host="example.com:8080")).allowed


def test_peer_identity_fields_require_mtls() -> None:
    """REF (Source.principals / namespaces): "This field requires mTLS enabled" — a plaintext request
    has no peer identity, so it matches no principal or namespace, and every notPrincipals."""
    by_ns = [policy("p", {"rules": [{"from": [{"source": {"namespaces": ["*"]}}]}]})]
    assert decide(by_ns, http()).allowed
    assert not decide(by_ns, http(source_principal=None, source_namespace="default")).allowed
    not_sleep = [policy("p", {"rules": [{"from": [{"source": {"notPrincipals": [SLEEP]}}]}]})]
    assert decide(not_sleep, http(source_principal=None)).allowed


def test_request_principal_is_issuer_slash_subject() -> None:
    """REF (Source.requestPrincipals): "The request identity is in the format of "<ISS>/<SUB>", for
    example, "example.com/sub-1"." (the issuer may itself contain "/", as in a URL)"""
    p = [policy("p", {"rules": [{"from": [{"source": {"requestPrincipals": ["https://issuer.example/ns/sub-1"]}}]}]})]
    assert decide(p, http(request_principal="https://issuer.example/ns/sub-1")).allowed
    assert decide(p, http(claims={"iss": "https://issuer.example/ns", "sub": "sub-1"})).allowed
    assert not decide(p, http(claims={"iss": "https://issuer.example", "sub": "ns/sub-1"})).allowed
    assert not decide(p, http()).allowed  # no credential
    anyone = [policy("p", {"rules": [{"from": [{"source": {"requestPrincipals": ["*"]}}]}]})]
    assert decide(anyone, http(request_principal="example.com/sub-1")).allowed
    assert not decide(anyone, http()).allowed


def test_ip_blocks_accept_addresses_and_cidrs() -> None:
    """REF (Source.ipBlocks): "Single IP (e.g. "203.0.113.4") and CIDR (e.g. "203.0.113.0/24") are
    supported. This is the same as the `source.ip` attribute." """
    p = [policy("p", {"rules": [{"from": [{"source": {"ipBlocks": ["203.0.113.4", "198.51.100.0/24"]}}]}]})]
    assert decide(p, http(source_ip="203.0.113.4")).allowed
    assert decide(p, http(source_ip="198.51.100.77")).allowed
    assert not decide(p, http(source_ip="203.0.113.5")).allowed
    cond = [policy("p", {"rules": [{"when": [{"key": "source.ip", "values": ["198.51.100.0/24"]}]}]})]
    assert decide(cond, http(source_ip="198.51.100.1")).allowed


def test_remote_ip_blocks_use_the_original_client_address() -> None:
    """REF (Source.remoteIpBlocks): "A list of IP blocks, populated from X-Forwarded-For header or
    proxy protocol." — not the peer address."""
    p = [policy("p", {"rules": [{"from": [{"source": {"remoteIpBlocks": ["203.0.113.0/24"]}}]}]})]
    assert decide(p, http(source_ip="10.0.0.9", remote_ip="203.0.113.7")).allowed
    assert not decide(p, http(source_ip="203.0.113.7", remote_ip="10.0.0.9")).allowed
    assert decide(p, http(source_ip="203.0.113.7")).allowed  # no XFF: the peer is the client


def test_deny_rule_on_tcp_treats_http_attributes_as_matches() -> None:
    """REF: "When this rule is applied to TCP traffic, the `method` field (as will all HTTP based
    attributes) cannot be processed. For a `DENY` rule, missing attributes are treated as matches.
    This means all TCP traffic on port `8080` would be denied in the example above. If we were to
    remove the `ports` match, all TCP traffic would be denied." """
    post_8080 = {"to": [{"operation": {"methods": ["POST"], "ports": ["8080"]}}]}
    scoped = [policy("p", {"action": "DENY", "rules": [post_8080]})]
    assert not decide(scoped, tcp(destination_port=8080)).allowed
    assert decide(scoped, tcp(destination_port=9090)).allowed
    assert decide(scoped, http(method="GET", destination_port=8080)).allowed  # HTTP still checks the method
    unscoped = [policy("p", {"action": "DENY", "rules": [{"to": [{"operation": {"methods": ["POST"]}}]}]})]
    assert not decide(unscoped, tcp(destination_port=9090)).allowed


def test_allow_rule_with_http_fields_matches_nothing_on_tcp() -> None:
    """REF (Operation.methods/paths/hosts): "Must be used only with HTTP." On a TCP port istiod drops an
    ALLOW rule that uses them ("This will make all rules in the current permission ignored,
    effectively result in a smaller allow policy", pilot/pkg/security/authz/model/model.go)."""
    p = [policy("p", {"rules": [{"from": [{"source": {"namespaces": ["default"]}}],
                                 "to": [{"operation": {"methods": ["GET"]}}]},
                                {"to": [{"operation": {"ports": ["5432"]}}]}]})]
    assert not decide(p, tcp(destination_port=8080)).allowed
    assert decide(p, tcp(destination_port=5432)).allowed
    assert decide(p, http(method="GET", destination_port=8080)).allowed
    miss = decide(p, tcp(destination_port=8080)).misses
    assert miss[0].rule == 0 and "HTTP-only" in miss[0].detail


def test_paths_are_normalized_before_matching() -> None:
    """NORM: "The normalized request will be used for both the evaluation of authorization policies and
    the request that is ultimately sent to the backend server." — dot segments (RFC 3986), backslashes,
    unreserved percent-encodings are normalised by default (BASE); the query is ignored."""
    deny = [policy("p", {"action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/admin", "/admin/*"]}}]}]})]
    for sneaky in ("/public/../admin", "/%61dmin", "/public\\..\\admin", "/admin?x=1", "/./admin/x"):
        assert not decide(deny, http(path=sneaky)).allowed, sneaky
    assert normalize_path("/a/b/../c") == "/a/c"
    assert normalize_path("/a//b/../c") == "/a//c"  # BASE does not merge slashes
    assert normalize_path("/a//b", "MERGE_SLASHES") == "/a/b"
    assert normalize_path("/a%2Fb", "DECODE_AND_MERGE_SLASHES") == "/a/b"
    assert normalize_path("/a%2Fb") == "/a%2Fb"
    # Path normalisation is a mesh setting: with NONE, "/public/../admin" slips past the DENY.
    assert decide(deny, http(path="/public/../admin"), path_normalization="NONE").allowed


def test_path_templates() -> None:
    """REF (Operation.paths, istio/api #3162): "If a path in the list contains the `{*}` or `{**}`
    operator, it will be interpreted as an Envoy Uri Template." — ``{*}`` one segment, ``{**}`` any."""
    p = [policy("p", {"rules": [{"to": [{"operation": {"paths": ["/api/{*}/items", "/static/{**}"]}}]}]})]
    assert decide(p, http(path="/api/v1/items")).allowed
    assert not decide(p, http(path="/api/v1/v2/items")).allowed
    assert decide(p, http(path="/static/a/b/c.css")).allowed


def test_trust_domain_aliases_are_treated_the_same() -> None:
    """MESH (trustDomainAliases): "if we have trustDomain: td1 trustDomainAliases: ["td2", "td3"] Any
    service with the identity "td1/ns/foo/sa/a-service-account", "td2/ns/foo/sa/a-service-account", or
    "td3/ns/foo/sa/a-service-account" will be treated the same in the Istio mesh." """
    p = [policy("p", {"rules": [{"from": [{"source": {"principals": ["td2/ns/foo/sa/a-service-account"]}}]}]})]
    bundle = TrustDomainBundle("td1", ("td2", "td3"))
    for td in ("td1", "td2", "td3"):
        assert decide(p, http(source_principal=f"{td}/ns/foo/sa/a-service-account"), trust_domains=bundle).allowed
    assert not decide(p, http(source_principal="td4/ns/foo/sa/a-service-account"), trust_domains=bundle).allowed
    # Without aliases the principal is matched as written.
    assert not decide(p, http(source_principal="td1/ns/foo/sa/a-service-account")).allowed
    # A "*"-prefixed trust domain that already covers an alias keeps its own pattern for it; the
    # aliases it does not cover are added exactly (istiod's Bundle.ReplaceTrustDomainAliases).
    glob = [policy("p", {"rules": [{"from": [{"source": {"principals": ["*-td/ns/foo/sa/sa1"]}}]}]})]
    mixed = TrustDomainBundle("new-td", ("old-td", "legacy"))
    assert decide(glob, http(source_principal="any-td/ns/foo/sa/sa1"), trust_domains=mixed).allowed
    assert decide(glob, http(source_principal="legacy/ns/foo/sa/sa1"), trust_domains=mixed).allowed
    assert not decide(glob, http(source_principal="other/ns/foo/sa/sa1"), trust_domains=mixed).allowed


def test_invalid_values_narrow_allow_and_widen_deny() -> None:
    """istiod (pilot/pkg/security/authz/model/model.go, checkError): an invalid value drops the whole
    rule of an ALLOW policy but only the value of a DENY policy — and meshrules reports both."""
    allow = compile_policies([policy("p", {"rules": [{"from": [{"source": {"ipBlocks": ["not-an-ip"]}}]}]})])
    assert not allow.evaluate(http()).allowed and [d.code for d in allow.diagnostics] == ["MR0901"]
    deny = compile_policies([policy("p", {"action": "DENY",
                                          "rules": [{"from": [{"source": {"ipBlocks": ["not-an-ip"]}}]}]})])
    assert not deny.evaluate(http()).allowed and [d.code for d in deny.diagnostics] == ["MR0902"]
    unknown = compile_policies([policy("p", {"action": "DENY", "rules": [{"when": [{"key": "source.nope",
                                                                                    "values": ["x"]}]}]})])
    assert unknown.evaluate(http()).allowed and "unknown attribute" in unknown.diagnostics[0].message


def test_ext_authz_providers_from_mesh_config() -> None:
    """REF (ExtensionProvider.name): "The list of available providers is defined in the MeshConfig.
    Note, currently at most 1 extension provider is allowed per workload." """
    mesh = {"extensionProviders": [
        {"name": "my-authz", "envoyExtAuthzHttp": {"service": "authz.foo.svc.cluster.local", "port": 8000}},
        {"name": "grpc", "envoyExtAuthzGrpc": {"service": "authz.foo.svc.cluster.local", "port": 9000}},
        {"name": "bad", "envoyExtAuthzGrpc": {"service": "authz", "port": 0, "statusOnError": "999"}},
    ]}
    providers = ext_authz_providers(mesh)
    assert providers["my-authz"] == ExtAuthzProvider("my-authz", "http")
    assert not providers["bad"].usable and "port" in providers["bad"].problem
    ok = decide([CUSTOM_ADMIN], http(path="/admin"), ext_authz=providers)
    assert ok.allowed and CUSTOM_AUTHZ_NOT_MODELLED in ok.assumptions
    # An HTTP provider has nothing to say about TCP: istiod builds no filter there.
    assert CUSTOM_AUTHZ_NOT_MODELLED not in decide([CUSTOM_ADMIN], tcp(), ext_authz=providers).assumptions
    two = policy("second", {"action": "CUSTOM", "provider": {"name": "grpc"}, "rules": [{}]})
    assert decide([CUSTOM_ADMIN, two], http(path="/admin"), ext_authz=providers).code == DENIED_EXPLICIT


# ================================================================================================
# Properties
# ================================================================================================

PRINCIPALS = ["cluster.local/ns/foo/sa/a", "cluster.local/ns/bar/sa/b", "other/ns/foo/sa/c"]
VALUES: dict[str, list[str]] = {
    "principals": [*PRINCIPALS, "cluster.local/ns/foo/*", "*"],
    "namespaces": ["foo", "bar", "b*", "*"],
    "ipBlocks": ["10.0.0.0/8", "192.168.1.1"],
    "methods": ["GET", "POST", "P*"],
    "paths": ["/a", "/a/*", "*/b"],
    "ports": ["80", "8080"],
    "hosts": ["a.example.com", "*.example.com"],
}
FIELD = st.sampled_from(sorted(VALUES))


@st.composite
def rules(draw: st.DrawFn) -> dict[str, Any]:
    rule: dict[str, Any] = {}
    for _ in range(draw(st.integers(0, 2))):
        name = draw(FIELD)
        key = name if draw(st.booleans()) else "not" + name[0].upper() + name[1:]
        values = draw(st.lists(st.sampled_from(VALUES[name]), min_size=1, max_size=2))
        if name in ("methods", "paths", "ports", "hosts"):
            rule.setdefault("to", [{"operation": {}}])[0]["operation"][key] = values
        else:
            rule.setdefault("from", [{"source": {}}])[0]["source"][key] = values
    return rule


@st.composite
def policies(draw: st.DrawFn, action: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"action": action or draw(st.sampled_from(["ALLOW", "DENY", "AUDIT", "CUSTOM"]))}
    if spec["action"] == "CUSTOM":
        spec["provider"] = {"name": "authz"}
    if draw(st.booleans()):
        spec["rules"] = draw(st.lists(rules(), max_size=3))
    if draw(st.booleans()):
        spec["selector"] = {"matchLabels": draw(st.sampled_from([{"app": "httpbin"}, {"app": "other"}]))}
    name = f"p{draw(st.integers(0, 99))}"
    return policy(name, spec, namespace=draw(st.sampled_from([NS, "istio-system", "bar"])))


requests = st.builds(
    lambda proto, principal, ip, method, path, port, host: (
        http(source_principal=principal, source_ip=ip, method=method, path=path, destination_port=port, host=host)
        if proto == "http" else tcp(source_principal=principal, source_ip=ip, destination_port=port)),
    st.sampled_from(["http", "tcp"]), st.sampled_from([None, *PRINCIPALS]),
    st.sampled_from([None, "10.1.2.3", "192.168.1.1"]), st.sampled_from(["GET", "POST", "PUT"]),
    st.sampled_from(["/", "/a", "/a/x", "/x/b"]), st.sampled_from([80, 8080, 9090]),
    st.sampled_from([None, "a.example.com", "b.example.com", "other.org"]),
)


@given(st.lists(policies(), max_size=5), policies(action="DENY"), requests)
def test_adding_deny_never_allows(existing: list[dict[str, Any]], deny: dict[str, Any], request: Request) -> None:
    """Adding a DENY policy never turns a deny into an allow (nor an allow it did not already give)."""
    before = compile_policies(existing).evaluate(request)
    after = compile_policies([*existing, deny]).evaluate(request)
    assert not (after.allowed and not before.allowed)


@given(st.lists(policies(), max_size=5), st.randoms(use_true_random=False), requests)
def test_policy_order_and_duplicates_never_change_a_decision(
    found: list[dict[str, Any]], rnd: Any, request: Request
) -> None:
    """Shuffling the policies or repeating some of them changes neither the answer nor its code."""
    shuffled = list(found) + [p for p in found if rnd.random() < 0.5]
    rnd.shuffle(shuffled)
    a = compile_policies(found).evaluate(request)
    b = compile_policies(shuffled).evaluate(request)
    assert (a.allowed, a.code, set(a.assumptions)) == (b.allowed, b.code, set(b.assumptions))


def test_decision_is_fast() -> None:
    """A ``why`` needs the authorization answer in well under a millisecond once compiled."""
    import time

    many = [policy(f"p{i}", {"rules": [{"from": [{"source": {"principals": [f"cluster.local/ns/n{i}/sa/s"]}}],
                                        "to": [{"operation": {"paths": [f"/p{i}/*"], "methods": ["GET"]}}]}]})
            for i in range(200)]
    compiled = compile_policies(many)
    request = http(source_principal="cluster.local/ns/n199/sa/s", path="/p199/x")
    assert compiled.evaluate(request).policy == "foo/p199"
    start = time.perf_counter()
    for _ in range(200):
        compiled.evaluate(request)
    per_query = (time.perf_counter() - start) / 200
    assert per_query < 0.005, f"{per_query * 1000:.2f} ms per decision"
