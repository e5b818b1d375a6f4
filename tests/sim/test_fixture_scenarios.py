"""Small scenarios unlike the bundled one (`tests/fixtures/scenarios/`), answers checked by hand against the API.

- `istio-revision`: one cluster, Istio revision `1-22` injected by `istio.io/rev`, no VirtualMesh.
- `two-trust-domains-aliases`: two Istio clusters with their own trust domains, aliasing each other.
- `istio-traffic-merge`: one Istio cluster, overlapping TrafficPolicies (path/method/header/query
  matchers, source namespaces), inverted and presence header tests, a conflict written with other
  header-name case, a zero-weight backend, mirror/fault/headers and DestinationRule fields.
"""

from __future__ import annotations

import shutil
from functools import cache
from pathlib import Path

from meshrules.kube.scenario import load_scenario
from meshrules.pipeline import analyse
from meshrules.pipeline.query import Simulation, simulate, why
from meshrules.sim.why import Query

SCENARIOS = Path(__file__).resolve().parents[1] / "fixtures" / "scenarios"


@cache
def _sim(name: str) -> Simulation:
    return simulate(analyse(load_scenario(SCENARIOS / name)))


def _ask(
    name: str, source: str, target: str, port: int | None = None, method: str = "GET", path: str = "/", **headers: str
) -> dict[str, object]:
    query = Query(
        source, target, port, method, path, tuple(sorted((k.replace("_", "-"), v) for k, v in headers.items()))
    )
    return why(_sim(name), query).to_json()


def _backends(got: dict[str, object]) -> list[tuple[str, object, int, str]]:
    return [(b["destination"], b["subset"], b["weight"], b["code"]) for b in got["backends"]]  # type: ignore[attr-defined,index]


def test_revision_mesh_and_its_workloads_are_discovered() -> None:
    fleet = _sim("istio-revision").fleet
    (mesh,) = fleet.meshes.values()
    assert (mesh.name, mesh.revision, mesh.trust_domain) == ("istiod-1-22-istio-system-east", "1-22", "east.example")
    # `batch` opts out, `old` runs in a namespace without injection: neither is a workload.
    assert sorted(w.controller.name for w in fleet.workloads.values()) == ["api-v1", "api-v2", "web"]
    # `external-db` has no selector: not a destination.
    assert sorted(d.service for d in fleet.destinations.values()) == ["api", "web"]


def test_header_match_from_web_goes_to_v2_with_its_retries_and_the_namespace_timeout() -> None:
    got = _ask("istio-revision", "east/shop/web", "api", 8080, path="/v1/x", x_beta="1")
    assert (got["allowed"], got["code"]) == (True, "ALLOWED")
    assert _backends(got) == [("east/shop/api", {"version": "v2"}, 100, "ALLOWED")]
    # api-timeout-b (namespace shop) is more specific than api-canary (all sources); api-timeout-a
    # conflicts with b and is the later accepted: INVALID, contributes nothing.
    assert got["timeout"] == "8s"
    assert got["retries"] == {"attempts": 5, "perTryTimeout": "1s"}
    assert got["mtls"] is True


def test_without_the_header_the_canary_split_applies_and_istio_default_retries() -> None:
    got = _ask("istio-revision", "east/shop/web", "api", 8080, path="/v1/x")
    assert _backends(got) == [
        ("east/shop/api", {"version": "v1"}, 90, "ALLOWED"),
        ("east/shop/api", {"version": "v2"}, 10, "ALLOWED"),
    ]
    assert got["timeout"] == "8s" and got["retries"] == {"attempts": 2, "perTryTimeout": None}


def test_an_access_policy_denies_what_it_does_not_allow_without_a_virtual_mesh() -> None:
    for path, method, field in (("/v2/x", "GET", "spec.allowedPaths"), ("/v1/x", "POST", "spec.allowedMethods")):
        got = _ask("istio-revision", "east/shop/web", "api", 8080, method=method, path=path)
        assert (got["allowed"], got["code"]) == (False, "DENIED_DEFAULT")
        assert got["nearestMiss"]["field"] == field and got["nearestMiss"]["verified"] is True  # type: ignore[index]
    # the port the policy does not list
    got = _ask("istio-revision", "east/shop/web", "api", 9090, path="/v1/x", x_beta="1")
    assert (got["allowed"], got["code"]) == (False, "DENIED_DEFAULT")
    # web has no AccessPolicy: open
    assert _ask("istio-revision", "east/shop/api-v1", "web")["code"] == "ALLOWED"


def test_revision_scenario_statuses_and_findings() -> None:
    sim = _sim("istio-revision")
    decision = sim.decision
    assert [(f.code, f.object) for f in decision.findings] == [("MR0610", "TrafficPolicy shop/selects-nothing")]
    errors = sorted((e.policy, e.destination, e.code) for e in sim.translation.status_entries)
    assert errors == [("TrafficPolicy shop/api-timeout-a", "api-shop-east", "MR0613")]


def test_aliased_trust_domains_federate_and_keep_principals_of_both_domains() -> None:
    got = _ask("two-trust-domains-aliases", "alpha/store/front", "cart")
    assert (got["allowed"], got["code"]) == (True, "ALLOWED")
    assert _backends(got) == [
        ("alpha/store/cart", None, 70, "ALLOWED"),
        ("beta/store/cart", {"version": "v2"}, 30, "ALLOWED"),
    ]
    assert got["retries"] == {"attempts": 4, "perTryTimeout": "300ms"}
    assert [h["kind"] for h in got["hops"]] == ["sidecar", "destination", "eastwest-gateway", "destination"]  # type: ignore[index]
    # cart-to-pay names the account in any cluster: POST only
    assert _ask("two-trust-domains-aliases", "alpha/store/cart-v1", "beta/store/pay", method="POST")["allowed"] is True
    assert _ask("two-trust-domains-aliases", "alpha/store/cart-v1", "beta/store/pay")["code"] == "DENIED_DEFAULT"


def test_aliases_let_the_other_clusters_callers_through_a_cluster_scoped_source_and_check_warns() -> None:
    # alpha-to-cart allows `clusters: [alpha], namespaces: [store]`; beta aliases alpha's trust
    # domain, so Istio at beta's cart also admits beta's `store` callers (ReplaceTrustDomainAliases).
    got = _ask("two-trust-domains-aliases", "beta/store/pay", "cart")
    assert (got["allowed"], got["code"]) == (True, "ALLOWED")
    decision = _sim("two-trust-domains-aliases").decision
    assert sorted(f.code for f in decision.findings) == ["MR0622", "MR0622"]


def test_ca_certificate_trust_domains_are_accepted_for_mtls_but_are_no_authorization_aliases(tmp_path: Path) -> None:
    # The same fleet, each mesh accepting the other's trust domain by `caCertificates[].trustDomains`
    # instead of `trustDomainAliases`: mTLS accepts the callers, but Istio rewrites no principal,
    # so alpha-to-cart (`clusters: [alpha]`) no longer admits beta's callers and check has no MR0622.
    root = tmp_path / "ca-domains"
    shutil.copytree(SCENARIOS / "two-trust-domains-aliases", root)
    for cluster, other in (("alpha", "beta"), ("beta", "alpha")):
        path = root / "clusters" / cluster / "istio.yaml"
        text = path.read_text()
        alias = f"    trustDomainAliases: [{other}.example]\n"
        assert alias in text
        path.write_text(text.replace(alias, f"    caCertificates: [{{pem: x, trustDomains: [{other}.example]}}]\n"))
    sim = simulate(analyse(load_scenario(root)))
    mesh = sim.fleet.meshes["istiod-istio-system-beta"]
    assert (mesh.accepted_trust_domains, mesh.trust_domain_aliases) == (("alpha.example", "beta.example"), ())

    def ask(source: str, target: str, method: str = "GET") -> dict[str, object]:
        return why(sim, Query(source, target, None, method, "/", ())).to_json()

    got = ask("beta/store/pay", "cart")
    assert (got["allowed"], got["code"]) == (False, "DENIED_DEFAULT")
    assert all(b["code"] != "TRUST_DOMAIN_REJECTED" for b in got["backends"])  # type: ignore[attr-defined,index]
    # alpha's callers still reach beta's cart: the trust domain is accepted for mTLS
    assert ask("alpha/store/front", "beta/store/cart")["code"] == "ALLOWED"
    assert ask("alpha/store/cart-v1", "beta/store/pay", method="POST")["allowed"] is True
    assert [f.code for f in sim.decision.findings] == []


MERGE = "istio-traffic-merge"
API = "west/shop/api"
CANARY = [(API, {"version": "v1"}, 70, "ALLOWED"), (API, {"version": "v2"}, 30, "ALLOWED")]


def _merge(source: str, path: str, method: str = "GET", **headers: str) -> dict[str, object]:
    # port 9090: the policies select the Service, so both of its ports get the same routes
    return _ask(MERGE, source, "api.shop", 9090, method=method, path=path, **headers)


def test_merge_scenario_emits_validating_objects_and_reports_the_case_insensitive_conflict() -> None:
    from meshrules.emit.schema import validate

    sim = _sim(MERGE)
    objects = sim.translation.objects["west"]
    assert all(validate(o) == [] for o in objects)
    (dr,) = (o for o in objects if o["kind"] == "DestinationRule")
    assert dr["spec"]["trafficPolicy"] == {
        "tls": {"mode": "ISTIO_MUTUAL"},
        "outlierDetection": {
            "consecutive5xxErrors": 3,
            "interval": "5s",
            "baseEjectionTime": "15s",
            "maxEjectionPercent": 40,
        },
    }
    (vs,) = (o for o in objects if o["kind"] == "VirtualService")
    matches = [m for route in vs["spec"]["http"] for m in route.get("match", [])]
    # "no x-canary header" is an inverted empty StringMatch (Envoy present match, inverted)
    assert {"uri": {"prefix": "/canary"}, "withoutHeaders": {"x-canary": {}}} in matches
    # `X-Beta` and `x-beta`, matchers in another order: the same request space, so a conflict
    errors = sorted((e.policy, e.destination, e.code, e.field) for e in sim.translation.status_entries)
    assert errors == [("TrafficPolicy shop/beta-b", "api-shop-west", "MR0613", "spec.policy.requestTimeout")]


def test_a_value_header_test_is_more_specific_than_a_presence_test() -> None:
    got = _merge("west/shop/web", "/user/1", X_User="jason")
    # `jason` (x-user: jason) is inside `any-user` (x-user present): it wins the timeout; its
    # zero-weight backend never gets a request and is not listed
    assert (got["timeout"], _backends(got)) == ("2s", [(API, {"version": "v2"}, 100, "ALLOWED")])
    got = _merge("west/shop/web", "/user/1", x_user="bob")
    assert (got["timeout"], _backends(got)) == ("6s", CANARY)
    # from `ops`, `ops-mirror` (earlier, overlapping) wins the timeout; jason still routes to v2
    got = _merge("west/ops/tool", "/user/1", x_user="jason")
    assert (got["timeout"], _backends(got)) == ("3s", [(API, {"version": "v2"}, 100, "ALLOWED")])


def test_inverted_header_tests_follow_envoy_for_absent_headers() -> None:
    # `x-env` must be present and not `prod` (Istio withoutHeaders, istio/istio#50988)
    assert _merge("west/shop/web", "/env/1")["timeout"] == "10s"
    assert _merge("west/shop/web", "/env/1", x_env="prod")["timeout"] == "10s"
    assert _merge("west/shop/web", "/env/1", x_env="dev")["timeout"] == "1s"
    # no `x-canary` header at all
    assert _merge("west/shop/web", "/canary")["retries"] == {"attempts": 7, "perTryTimeout": None}
    assert _merge("west/shop/web", "/canary", x_canary="1")["retries"] == {"attempts": 2, "perTryTimeout": None}


def test_per_field_providers_combine_on_one_request() -> None:
    got = _merge("west/ops/tool", "/admin/x", method="POST")
    assert _backends(got) == CANARY  # base
    assert got["timeout"] == "3s"  # ops-mirror (namespace ops) inside base (all sources)
    assert got["retries"] == {"attempts": 4, "perTryTimeout": "1s"}  # admin-path
    assert got["fault"] == {"abort": {"httpStatus": 503, "percentage": 20.0}, "delay": None}
    assert got["mirror"] == {"destination": "west/shop/shadow", "percentage": 25.0, "port": 8080}
    assert got["headers"] == {
        "request": {"add": {"x-admin": "1"}, "remove": []},
        "response": {"add": {}, "remove": ["server"]},
    }
    assert got["mtls"] is True
    # a GET misses admin-path: Istio's default retries, no fault, no header changes
    got = _merge("west/shop/web", "/admin/x")
    assert (got["timeout"], got["retries"], got["fault"], got["mirror"]) == (
        "10s",
        {"attempts": 2, "perTryTimeout": None},
        None,
        None,
    )
    # beta-a's timeout from shop; beta-b contributes nothing (not even its retries)
    got = _merge("west/shop/web", "/preview")
    assert (got["timeout"], got["retries"]) == ("4s", {"attempts": 2, "perTryTimeout": None})
