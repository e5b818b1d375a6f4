"""Istio mTLS between two sidecars, one test per documented rule (``meshrules.sim.istio.mtls``).

Client side: DestinationRule ``tls`` (Bookinfo ``destination-rule-all-mtls.yaml`` and
``destination-rule-all.yaml``) and auto mTLS; server side: PeerAuthentication. Each docstring quotes
the rule and its page.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from meshrules.sim.istio.mtls import (
    ALLOWED,
    MTLS_MISMATCH,
    TRUST_DOMAIN_REJECTED,
    ClientTls,
    client_tls,
    compile_peer_authentications,
    connection,
    trust_domain_accepted,
)
from meshrules.sim.istio.routing import compile_routing

UPSTREAM = Path(__file__).resolve().parents[2] / "fixtures" / "upstream"
BOOKINFO = UPSTREAM / "sim" / "istio" / "bookinfo"
NS = "bookinfo"
REVIEWS = "reviews.bookinfo.svc.cluster.local"
REVIEWS_POD = {"app": "reviews", "version": "v1"}


def docs(path: Path, namespace: str = NS) -> list[dict[str, Any]]:
    out = []
    for d in yaml.safe_load_all(path.read_text()):
        if d:
            d.setdefault("metadata", {}).setdefault("namespace", namespace)
            out.append(d)
    return out


def dr_choice(*objects: dict[str, Any], sample: str | None = None, client_ns: str = NS) -> Any:
    objs = docs(UPSTREAM / "samples" / "bookinfo.yaml") + (docs(BOOKINFO / sample) if sample else []) + list(objects)
    return compile_routing(objs).destination_rule(client_ns, {}, REVIEWS)


def pa(name: str, ns: str, mode: str | None = None, selector: dict[str, str] | None = None,
       ports: dict[int, str] | None = None, ts: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if mode is not None:
        spec["mtls"] = {"mode": mode}
    if selector:
        spec["selector"] = {"matchLabels": selector}
    if ports:
        spec["portLevelMtls"] = {p: {"mode": m} for p, m in ports.items()}
    meta: dict[str, Any] = {"name": name, "namespace": ns}
    if ts:
        meta["creationTimestamp"] = ts
    return {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication", "metadata": meta, "spec": spec}


def dr(name: str, ns: str, host: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
            "metadata": {"name": name, "namespace": ns}, "spec": {"host": host, **spec}}


def server(*policies: dict[str, Any], labels: dict[str, str] | None = None, port: int | None = 9080,
           namespace: str = NS) -> Any:
    return compile_peer_authentications(policies).server_mode(namespace, labels or REVIEWS_POD, port)


AUTO = ClientTls("AUTO", "no DestinationRule applies: auto mTLS")


# ================================================================================================
# client side
# ================================================================================================


def test_auto_mtls_sends_istio_mtls_to_workloads_with_sidecars() -> None:
    """"If TLS settings are not explicitly configured in a DestinationRule, the sidecar will automatically
    determine if Istio mutual TLS should be sent. This means that without any configuration, all
    inter-mesh traffic will be mTLS encrypted." — Understanding TLS Configuration, auto mTLS
    (https://istio.io/latest/docs/ops/configuration/traffic-management/tls-configuration/)."""
    client = client_tls(None, 9080)
    assert client.mode == "AUTO"
    d = connection(client, server())
    assert (d.code, d.mtls) == (ALLOWED, True)


def test_auto_mtls_sends_plaintext_to_workloads_without_sidecars() -> None:
    """"Istio tracks the server workloads migrated to Istio proxies, and configures client proxies to send
    mutual TLS traffic to those workloads automatically, and to send plain text traffic to workloads
    without sidecars." — Authentication Policy task, auto mutual TLS
    (https://istio.io/latest/docs/tasks/security/authentication/authn-policy/#auto-mutual-tls)."""
    d = connection(AUTO, None, server_meshed=False)
    assert (d.code, d.mtls) == (ALLOWED, False)


def test_a_destination_rule_without_tls_leaves_auto_mtls_in_charge() -> None:
    """Auto mTLS applies when "TLS settings are not explicitly configured in a DestinationRule" (TLS
    Configuration page): Bookinfo destination-rule-all.yaml defines only subsets."""
    client = client_tls(dr_choice(sample="destination-rule-all.yaml"), 9080, "v1")
    assert client.mode == "AUTO" and "sets no TLS" in client.source


def test_destination_rule_tls_mode_is_what_the_client_sends() -> None:
    """"DestinationRule is used to configure what type of TLS traffic the sidecar will send." ... "A mode
    setting of DISABLE will send plaintext, while SIMPLE, MUTUAL, and ISTIO_MUTUAL will originate a TLS
    connection." — Understanding TLS Configuration; Bookinfo destination-rule-all-mtls.yaml."""
    client = client_tls(dr_choice(sample="destination-rule-all-mtls.yaml"), 9080, "v2")
    assert (client.mode, client.rule) == ("ISTIO_MUTUAL", "bookinfo/reviews")
    d = connection(client, server(pa("default", "istio-system", "STRICT")))
    assert (d.code, d.mtls) == (ALLOWED, True) and "DestinationRule bookinfo/reviews" in d.objects


def test_port_level_settings_override_the_rule_and_omit_nothing() -> None:
    """"Note that port level settings will override the destination-level settings. Traffic settings
    specified at the destination-level will not be inherited when overridden by port-level settings" —
    DestinationRule reference, ``TrafficPolicy.portLevelSettings``; the authentication task disables TLS
    for a service but sets ISTIO_MUTUAL on port 1234."""
    rule = dr("reviews", NS, "reviews", trafficPolicy={
        "tls": {"mode": "DISABLE"},
        "portLevelSettings": [{"port": {"number": 1234}, "tls": {"mode": "ISTIO_MUTUAL"}},
                              {"port": {"number": 7000}, "loadBalancer": {"simple": "RANDOM"}}]})
    choice = dr_choice(rule)
    assert client_tls(choice, 9080).mode == "DISABLE"
    assert client_tls(choice, 1234).mode == "ISTIO_MUTUAL"
    assert client_tls(choice, 7000).mode == "AUTO"  # the port-level entry replaces tls with the default


def test_subset_traffic_policy_overrides_the_rule() -> None:
    """"Subsets inherit the traffic policies specified at the DestinationRule level. Settings specified at
    the subset level will override the corresponding settings specified at the DestinationRule level." —
    DestinationRule reference, ``Subset.trafficPolicy``."""
    rule = dr("reviews", NS, "reviews", trafficPolicy={"tls": {"mode": "ISTIO_MUTUAL"}}, subsets=[
        {"name": "v1", "labels": {"version": "v1"}},
        {"name": "legacy", "labels": {"version": "legacy"}, "trafficPolicy": {"tls": {"mode": "DISABLE"}}}])
    choice = dr_choice(rule)
    assert client_tls(choice, 9080, "v1").mode == "ISTIO_MUTUAL"
    legacy = client_tls(choice, 9080, "legacy")
    assert legacy.mode == "DISABLE" and "subsets[legacy]" in legacy.source


# ================================================================================================
# server side
# ================================================================================================


def test_servers_are_permissive_by_default() -> None:
    """"By default, the sidecar will be configured to accept both mTLS and non-mTLS traffic, known as
    PERMISSIVE mode." — Understanding TLS Configuration."""
    s = server()
    assert (s.mode, s.scope, s.policy) == ("PERMISSIVE", "default", None)
    assert connection(ClientTls("DISABLE", "DestinationRule x"), s).code == ALLOWED


def test_strict_refuses_plaintext_from_a_client_without_sidecar() -> None:
    """"STRICT, where traffic must be mTLS" (TLS Configuration); "The non-Istio service, e.g sleep.legacy
    doesn't have a sidecar, so it cannot initiate the required TLS connection to Istio services. As a
    result, requests from sleep.legacy to httpbin.foo or httpbin.bar will fail" — Authentication Policy
    task."""
    strict = server(pa("default", NS, "STRICT"))
    d = connection(client_tls(None, 9080, client_meshed=False), strict)
    assert d.code == MTLS_MISMATCH and "PeerAuthentication bookinfo/default" in d.objects


def test_destination_rule_disable_against_strict_is_a_mismatch() -> None:
    """A DestinationRule "mode setting of DISABLE will send plaintext" and a STRICT server only accepts
    mTLS — Understanding TLS Configuration."""
    client = client_tls(dr_choice(dr("reviews", NS, "reviews", trafficPolicy={"tls": {"mode": "DISABLE"}})), 9080)
    d = connection(client, server(pa("default", "istio-system", "STRICT")))
    assert d.code == MTLS_MISMATCH
    assert set(d.objects) == {"DestinationRule bookinfo/reviews", "PeerAuthentication istio-system/default"}


def test_istio_mutual_to_a_workload_without_sidecar_fails() -> None:
    """"You will see requests fail as Istio configures clients as instructed in our destination rule to use
    mutual TLS, but httpbin.legacy does not have a sidecar so it's unable to handle it." — Authentication
    Policy task, request from Istio services to non-Istio services."""
    client = client_tls(dr_choice(sample="destination-rule-all-mtls.yaml"), 9080)
    assert connection(client, None, server_meshed=False).code == MTLS_MISMATCH


def test_istio_mutual_to_a_disable_server_fails() -> None:
    """A server in "DISABLE, where traffic must be plaintext" (TLS Configuration) cannot take Istio mTLS."""
    client = client_tls(dr_choice(sample="destination-rule-all-mtls.yaml"), 9080)
    d = connection(client, server(pa("reviews", NS, "DISABLE", selector={"app": "reviews"})))
    assert d.code == MTLS_MISMATCH and d.mtls


def test_narrowest_peer_authentication_applies() -> None:
    """"Istio applies the narrowest matching policy for each workload using the following order: 1.
    workload-specific 2. namespace-wide 3. mesh-wide" — Security concepts, authentication policies
    (https://istio.io/latest/docs/concepts/security/#authentication-policies)."""
    policies = [pa("default", "istio-system", "STRICT"), pa("default", NS, "PERMISSIVE"),
                pa("reviews", NS, "DISABLE", selector={"app": "reviews"})]
    assert server(*policies).mode == "DISABLE"
    assert server(*policies, labels={"app": "ratings"}).mode == "PERMISSIVE"
    assert server(*policies, labels={"app": "x"}, namespace="other").mode == "STRICT"


def test_unset_mode_inherits_and_mesh_unset_is_permissive() -> None:
    """"When the mode is unset, the mode of the parent scope is inherited. Mesh-wide peer authentication
    policies with an unset mode use the PERMISSIVE mode by default." — Security concepts, peer
    authentication; "UNSET: Inherit from parent, if has one. Otherwise treated as PERMISSIVE." —
    PeerAuthentication reference."""
    assert server(pa("default", NS, "STRICT"), pa("reviews", NS, "UNSET", selector={"app": "reviews"})).mode == "STRICT"
    assert server(pa("default", NS, None)).mode == "PERMISSIVE"
    assert server(pa("default", "istio-system", "UNSET")).mode == "PERMISSIVE"


def test_newer_mesh_or_namespace_wide_policies_are_ignored_and_oldest_workload_policy_wins() -> None:
    """"When you configure multiple mesh- or namespace-wide peer authentication policies for the same mesh
    or namespace, Istio ignores the newer policies. When more than one workload-specific peer
    authentication policy matches, Istio picks the oldest one." — Security concepts."""
    s = server(pa("b", NS, "DISABLE", ts="2024-02-01T00:00:00Z"), pa("a", NS, "STRICT", ts="2024-01-01T00:00:00Z"))
    assert (s.mode, s.policy) == ("STRICT", "bookinfo/a") and any("bookinfo/b" in i for i in s.ignored)
    w = server(pa("new", NS, "PERMISSIVE", selector={"app": "reviews"}, ts="2024-03-01T00:00:00Z"),
               pa("old", NS, "STRICT", selector={"version": "v1"}, ts="2024-01-01T00:00:00Z"))
    assert (w.mode, w.policy) == ("STRICT", "bookinfo/old")


def test_port_level_mtls_uses_the_workload_port_and_needs_a_selector() -> None:
    """"Port specific mutual TLS settings. These only apply when a workload selector is specified. The port
    refers to the port of the workload, not the port of the Kubernetes service." — PeerAuthentication
    reference, ``portLevelMtls``."""
    policies = [pa("default", NS, "STRICT"), pa("reviews", NS, "UNSET", selector={"app": "reviews"},
                                                ports={8080: "DISABLE"})]
    assert server(*policies, port=8080).mode == "DISABLE"
    assert server(*policies, port=9080).mode == "STRICT"
    no_selector = server(pa("default", NS, "STRICT", ports={8080: "DISABLE"}), port=8080)
    assert no_selector.mode == "STRICT" and any("applies only with a selector" in i for i in no_selector.ignored)


def test_auto_mtls_honours_a_workload_disable() -> None:
    """Auto mTLS checks workload PeerAuthentications since Istio 1.12 ("auto mtls: add support for workload
    selectors on PeerAuthentication", istio/istio#32788): a DISABLE workload gets plaintext."""
    d = connection(AUTO, server(pa("reviews", NS, "DISABLE", selector={"app": "reviews"})))
    assert (d.code, d.mtls) == (ALLOWED, False)


def test_namespace_disable_with_a_strict_workload_breaks_auto_mtls() -> None:
    """istiod infers a service's mode from namespace and mesh policies only, so with a mesh- or
    namespace-wide DISABLE the client sends plaintext even to a STRICT workload, and the connection is
    reset ("Workload-level mTLS is not initiated when mTLS is disabled at the mesh-level",
    istio/istio#56084)."""
    s = server(pa("default", "istio-system", "DISABLE"), pa("reviews", NS, "STRICT", selector={"app": "reviews"}))
    d = connection(AUTO, s)
    assert d.code == MTLS_MISMATCH and "PeerAuthentication istio-system/default" in d.objects


def test_simple_tls_is_not_istio_mtls() -> None:
    """"SIMPLE, MUTUAL, and ISTIO_MUTUAL will originate a TLS connection" but only ISTIO_MUTUAL presents
    Istio's certificates ("Difference between MUTUAL and ISTIO_MUTUAL", Istio FAQ); a STRICT server
    requires Istio mTLS. Bookinfo egress-rule-google-apis.yaml originates SIMPLE TLS on port 443."""
    objs = docs(BOOKINFO / "egress-rule-google-apis.yaml")
    choice = compile_routing(objs).destination_rule(NS, {}, "www.googleapis.com")
    client = client_tls(choice, 443)
    assert client.mode == "SIMPLE" and client_tls(choice, 80).mode == "AUTO"
    external = connection(client, None, server_meshed=False)
    assert external.code == ALLOWED and not external.mtls and external.tls
    assert connection(client, server(pa("default", NS, "STRICT"))).code == MTLS_MISMATCH


# ================================================================================================
# trust domains
# ================================================================================================


def test_trust_domain_aliases_are_accepted_others_rejected() -> None:
    """"trustDomain: td1, trustDomainAliases: ["td2", "td3"] Any service with the identity
    td1/ns/foo/sa/a-service-account, td2/ns/foo/sa/a-service-account, or td3/ns/foo/sa/a-service-account
    will be treated the same in the Istio mesh." — MeshConfig reference, ``trustDomainAliases``; API §3.1:
    otherwise "the simulator answers TRUST_DOMAIN_REJECTED"."""
    accepted = ["td1", "td2", "td3"]
    assert trust_domain_accepted("td2", accepted).accepted
    rejected = trust_domain_accepted("td9", accepted)
    assert (rejected.accepted, rejected.code) == (False, TRUST_DOMAIN_REJECTED)
    assert trust_domain_accepted("cluster.local", [], destination_trust_domain="cluster.local").accepted


def test_star_accepts_every_trust_domain() -> None:
    """API §2: ``acceptedTrustDomains`` is ``["*"]`` "when istiod runs with
    PILOT_SKIP_VALIDATE_TRUST_DOMAIN=true" (istiod then skips the trust-domain check)."""
    assert trust_domain_accepted("anything.example", ["*"]).code == ALLOWED
