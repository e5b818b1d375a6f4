"""`linkerd-three-clusters` (`tests/fixtures/scenarios/`): Linkerd multicluster, answers checked by hand.

Three Linkerd clusters (`west`, `east`, `north`) in one VirtualMesh with shared trust and one trust
domain, gateway mode (the default), access ENFORCED. `north` has no multicluster gateway; `west` has
no `pay` namespace, so east's `billing` has no mirror there. `west-web-reads-api` allows only west's
`web` (GET `/api/*`) to `api` in both clusters.
"""

from __future__ import annotations

import shutil
from functools import cache
from pathlib import Path

import yaml
from typer.testing import CliRunner

from meshrules.cli import app
from meshrules.cli import test as _test_command  # noqa: F401  (registers `test`)
from meshrules.cli.commands import __all__ as _registered  # noqa: F401  (registers the commands)
from meshrules.kube.scenario import load_scenario
from meshrules.pipeline import analyse
from meshrules.pipeline.query import Simulation, describe, simulate, why
from meshrules.sim.why import Query

SCENARIO = Path(__file__).resolve().parents[1] / "fixtures" / "scenarios" / "linkerd-three-clusters"
GATEWAY = "linkerd-gateway.linkerd-multicluster.serviceaccount.identity.linkerd.cluster.local"
WEB = "web.shop.serviceaccount.identity.linkerd.cluster.local"
runner = CliRunner()


@cache
def _sim() -> Simulation:
    return simulate(analyse(load_scenario(SCENARIO)))


def _ask(
    source: str,
    target: str,
    port: int | None = None,
    method: str = "GET",
    path: str = "/",
    sim: Simulation | None = None,
) -> dict[str, object]:
    return why(sim or _sim(), Query(source, target, port, method, path, ())).to_json()


def _backends(got: dict[str, object]) -> list[tuple[str, int, str]]:
    return [(b["destination"], b["weight"], b["code"]) for b in got["backends"]]  # type: ignore[attr-defined,index]


def _variant(tmp_path: Path, edit: str, replacement: str) -> Simulation:
    root = tmp_path / "variant"
    shutil.copytree(SCENARIO, root)
    vm = root / "policies" / "vm.yaml"
    assert edit in vm.read_text()
    vm.write_text(vm.read_text().replace(edit, replacement))
    return simulate(analyse(load_scenario(root)))


def _emitted(sim: Simulation, cluster: str, kind: str, namespace: str, name: str) -> dict[str, object]:
    for obj in sim.translation.objects.get(cluster, ()):
        meta = obj["metadata"]
        if (obj["kind"], meta["namespace"], meta["name"]) == (kind, namespace, name):
            return dict(obj)
    raise AssertionError(f"no {kind} {namespace}/{name} emitted in {cluster}")


def test_remote_caller_named_by_the_policy_arrives_as_the_gateway_with_the_mirror_routes_settings() -> None:
    got = _ask("west/shop/web", "api-east", 8080, path="/api/items")
    assert (got["allowed"], got["code"], got["causes"]) == (True, "ALLOWED", ["GATEWAY_IDENTITY"])
    assert _backends(got) == [("east/shop/api", 100, "ALLOWED")]
    # api-east-resilience, on the HTTPRoute whose parent is the mirror in west
    assert (got["timeout"], got["retries"], got["mtls"]) == ("3s", {"attempts": 2, "perTryTimeout": "1s"}, True)
    hops = [(h["kind"], h["cluster"]) for h in got["hops"]]  # type: ignore[attr-defined,index]
    assert hops == [
        ("sidecar", "west"),
        ("linkerd-gateway", "east"),
        ("destination", "east"),
        ("destination", "east"),
    ]
    route = _emitted(_sim(), "west", "HTTPRoute", "shop", "api-east-8080")
    assert route["spec"]["parentRefs"] == [{"group": "core", "kind": "Service", "name": "api-east", "port": 8080}]  # type: ignore[index]
    annotations = route["metadata"]["annotations"]  # type: ignore[index]
    assert (annotations["retry.linkerd.io/limit"], annotations["retry.linkerd.io/timeout"]) == ("2", "1s")


def test_a_source_limited_to_west_does_not_let_east_in_through_wests_gateway() -> None:
    # Regression: `web` runs in west and east under one identity string; the source names west, so
    # west's api must not authorize west's gateway (which speaks for every east caller).
    got = _ask("east/shop/web", "api-west", 8080, path="/api/items")
    assert (got["allowed"], got["code"]) == (False, "DENIED_DEFAULT")
    assert _backends(got) == [("west/shop/api", 80, "DENIED_DEFAULT"), ("east/shop/api", 20, "DENIED_DEFAULT")]
    auth = _emitted(_sim(), "west", "MeshTLSAuthentication", "shop", "api-http-west-web-reads-api")
    assert auth["spec"] == {"identities": [WEB]}
    # ...while east's api, whose west callers come through east's gateway, lists only the gateway.
    auth = _emitted(_sim(), "east", "MeshTLSAuthentication", "shop", "api-http-west-web-reads-api")
    assert auth["spec"] == {"identities": [GATEWAY]}
    # east's own `web` presents the same identity string to east's api, which does not list it.
    assert _ask("east/shop/web", "api", 8080, path="/api/items")["code"] == "DENIED_DEFAULT"


def test_a_local_split_to_the_mirror_has_no_linkerd_default_timeout_or_retries() -> None:
    got = _ask("west/shop/web", "api", 8080, path="/api/items")
    assert (got["allowed"], got["code"]) == (True, "ALLOWED")
    assert _backends(got) == [("west/shop/api", 80, "ALLOWED"), ("east/shop/api", 20, "ALLOWED")]
    assert (got["timeout"], got["retries"]) == (None, {"attempts": 0, "perTryTimeout": None})
    route = _emitted(_sim(), "west", "HTTPRoute", "shop", "api-8080")
    (rule,) = route["spec"]["rules"]  # type: ignore[index]
    assert rule["backendRefs"] == [
        {"name": "api", "port": 8080, "weight": 80},
        {"name": "api-east", "port": 8080, "weight": 20},
    ]


def test_a_missing_namespace_is_not_federated_by_any_name_the_caller_dials() -> None:
    for target in ("east/pay/billing", "billing-east.pay", "billing-east.pay.svc.cluster.local"):
        got = _ask("west/shop/web", target)
        assert (got["allowed"], got["code"]) == (False, "NOT_FEDERATED"), target
        assert "namespace `pay` does not exist in cluster `west`" in str(got["explanation"]), target
    # north has the namespace: its `shop` callers come through east's gateway (GATEWAY_IDENTITY)
    got = _ask("north/shop/catalog", "billing-east.pay")
    assert (got["code"], got["causes"], got["timeout"]) == ("ALLOWED", ["GATEWAY_IDENTITY"], "4s")


def test_a_mirror_name_is_in_the_callers_cluster_domain(tmp_path: Path) -> None:
    root = tmp_path / "domains"
    shutil.copytree(SCENARIO, root)
    cluster = {"apiVersion": "discovery.meshrules.io/v1alpha1", "kind": "KubernetesCluster"}
    cluster |= {"metadata": {"name": "west"}, "spec": {"clusterDomain": "west.local"}}
    (root / "clusters" / "west" / "cluster.yaml").write_text(yaml.safe_dump(cluster))
    sim = simulate(analyse(load_scenario(root)))
    assert _ask("west/shop/web", "api-east.shop.svc.west.local", path="/api/x", sim=sim)["code"] == "ALLOWED"
    got = _ask("west/shop/web", "billing-east.pay.svc.west.local", sim=sim)
    assert got["code"] == "NOT_FEDERATED"


def test_a_cluster_without_a_gateway_is_unreachable_and_check_says_so() -> None:
    got = _ask("west/shop/web", "catalog-north")
    assert (got["allowed"], got["code"]) == (False, "NO_GATEWAY_ADDRESS")
    # north has no gateway at all, not one without an address: the answer and check say which
    text = why(_sim(), Query("west/shop/web", "catalog-north", None, "GET", "/", ())).reason
    assert text.startswith("linkerd-destination-linkerd-north (cluster north) has no linkerd-gateway: ")
    (gap,) = [f for f in _sim().decision.findings if f.code == "MR0609"]
    assert "has no linkerd-gateway (the federation gateway)" in gap.message
    assert "`linkerd multicluster install`" in gap.hint
    findings = sorted((f.code, f.object) for f in _sim().decision.findings)
    assert findings == [
        ("MR0607", "Destination billing-pay-east"),
        ("MR0609", "Mesh linkerd-destination-linkerd-north"),
        # no MR0623 for catalog (nothing reaches north), none for west's api (its sources are in
        # west), and no MR0622: in gateway mode east's `web` never presents its identity in west.
        ("MR0623", "AccessPolicy pay/shop-calls-billing"),
        ("MR0623", "AccessPolicy shop/west-web-reads-api"),
    ]


def test_statuses_name_the_subset_shift_linkerd_cannot_express() -> None:
    errors = sorted((e.policy, e.destination, e.code) for e in _sim().translation.status_entries)
    assert errors == [("TrafficPolicy shop/api-v2-canary", "api-shop-east", "MR0404")]


def test_remote_discovery_keeps_identities_and_needs_no_gateway(tmp_path: Path) -> None:
    sim = _variant(
        tmp_path,
        "  accessPolicyEnforcement",
        "  federation: {linkerd: {mode: remote-discovery}}\n  accessPolicyEnforcement",
    )
    got = _ask("west/shop/web", "api-east", 8080, path="/api/items", sim=sim)
    assert (got["code"], got["causes"]) == ("ALLOWED", [])
    assert [h["kind"] for h in got["hops"]] == ["sidecar", "destination", "destination"]  # type: ignore[index]
    # the caller's own identity arrives: east's `web` is the same identity string as west's
    assert _ask("east/shop/web", "api-west", 8080, path="/api/items", sim=sim)["code"] == "ALLOWED"
    assert _ask("west/shop/web", "catalog-north", sim=sim)["code"] == "ALLOWED"
    assert sorted(f.code for f in sim.decision.findings) == ["MR0607", "MR0622"]


def test_a_selector_test_reports_its_counterexample_and_junit(tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    result = runner.invoke(app, ["test", str(SCENARIO), "--junit", str(junit), "--coverage"])
    assert result.exit_code == 1, result.output
    assert "FAIL meshrules-system/shop-reaches-billing-wrongly-expected" in result.output
    assert "counterexample: west/shop/api-v1 -> east/pay/billing; 2 of 5 pairs fail" in result.output
    assert "4 passed, 1 failed, 0 errors" in result.output
    assert 'tests="5" failures="1"' in junit.read_text()


def test_describe_destination_lists_the_export_patch_of_its_service() -> None:
    got = describe(_sim(), "destination", "api-shop-east")
    assert "Service shop/api (patch)" in got["emits"]["east"]
    assert got["emits"]["west"] == ["HTTPRoute shop/api-east-8080"]
    assert got["object"]["federatedAs"] == [
        {"mesh": "linkerd-destination-linkerd-north", "host": "api-east.shop.svc.cluster.local"},
        {"mesh": "linkerd-destination-linkerd-west", "host": "api-east.shop.svc.cluster.local"},
    ]
    billing = describe(_sim(), "destination", "billing-pay-east")["object"]["notFederated"]
    assert [(b["mesh"], b["reason"]) for b in billing] == [("linkerd-destination-linkerd-west", "NAMESPACE_MISSING")]


def test_a_backend_allowed_as_the_gateway_is_a_cause_even_when_another_backend_denies(tmp_path: Path) -> None:
    root = tmp_path / "any-cluster"
    shutil.copytree(SCENARIO, root)
    access = root / "policies" / "access.yaml"
    limited = "[{name: web, namespace: shop, cluster: west}]"
    assert limited in access.read_text()
    access.write_text(access.read_text().replace(limited, "[{name: web, namespace: shop}]"))
    sim = simulate(analyse(load_scenario(root)))
    # east's billing dials west's api: 80% to west (through west's gateway, which the policy now
    # authorizes for east's `web`), 20% to east's own api, which billing may not call.
    got = _ask("east/pay/billing", "api-west.shop", path="/api/items", sim=sim)
    assert (got["allowed"], got["code"], got["causes"]) == (False, "DENIED_DEFAULT", ["GATEWAY_IDENTITY"])
    assert _backends(got) == [("west/shop/api", 80, "ALLOWED"), ("east/shop/api", 20, "DENIED_DEFAULT")]
