"""Whole-output properties: every object validates against the real Linkerd CRDs (incl. CEL),
names are valid and carry ownership metadata, and output is byte-identical under any input order."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from meshrules.emit.input import EmitInput
from meshrules.emit.linkerd import emit_linkerd
from meshrules.emit.output import EmitResult
from meshrules.emit.schema import validate
from meshrules.model.intent import IdentityPattern, Intent

from .builders import (
    access_policy,
    allow,
    applies,
    destination,
    emit_input,
    linkerd_mesh,
    member,
    mirror_edge,
    port,
    sa,
    traffic_policy,
    user_object,
    workload,
)

C, R = "cluster-3", "cluster-1"
MESH, REMOTE = linkerd_mesh(C), linkerd_mesh(R)
GATEWAY_ID = "linkerd-gateway.linkerd-multicluster.serviceaccount.identity.linkerd.cluster.local"
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def rich_input() -> EmitInput:
    """A bit of everything: enforcement, restricted and unrestricted access, routes, federation."""
    web, api, grpc = (
        workload("web", C),
        workload("api", C, ports=((8080, "http"), (9090, "admin"))),
        workload("emoji", C, ports=((8080, "grpc"),)),
    )
    web_svc = destination("web", C, workloads=[web])
    api_svc = destination("api", C, workloads=[api], ports=[port(80), port(9090, "admin", "admin")])
    emoji = destination("emoji-svc", C, workloads=[grpc], ports=[port(8080, "grpc", 8080)])
    remote_api = destination("api", R, workloads=[workload("api", R, mesh=REMOTE)], mesh=REMOTE)
    readers = access_policy("readers")
    writers = access_policy("writers", namespace="ops")
    lister = access_policy("lister")
    anyone = access_policy("anyone")
    canary = traffic_policy(
        "canary",
        {
            "policy": {
                "requestTimeout": "2s",
                "trafficShift": {
                    "destinations": [
                        {"service": {"name": "api", "cluster": C}, "weight": 90},
                        {"service": {"name": "api", "cluster": R}, "weight": 10},
                    ]
                },
            }
        },
        created="01:00",
    )
    jason = traffic_policy(
        "jason",
        {
            "httpRequestMatchers": [{"uri": {"prefix": "/v2"}, "headers": [{"name": "end-user", "value": "jason"}]}],
            "policy": {"retries": {"attempts": 3, "perTryTimeout": "250ms"}},
        },
        created="02:00",
    )
    chaos = traffic_policy("chaos", {"policy": {"faultInjection": {"abort": {"httpStatus": 503}}}}, created="03:00")
    breaker = traffic_policy("breaker", {"policy": {"outlierDetection": {"consecutiveErrors": 3}}}, created="04:00")
    intent = Intent(
        memberships=(member(MESH, enforced=True), member(REMOTE, enforced=True)),
        federation=(mirror_edge(api_svc, REMOTE), mirror_edge(remote_api, MESH)),
        access=(
            allow(readers, api_svc, sa("web"), ports=(80,), methods=("GET",), paths=("/v1/*", "/v2/*")),
            allow(
                readers,
                api_svc,
                sa("web", cluster=R),
                ports=(80,),
                methods=("GET",),
                paths=("/v1/*", "/v2/*"),
                gateway_identities=(GATEWAY_ID,),
            ),
            allow(writers, api_svc, IdentityPattern(namespace="ops"), ports=(80,)),
            allow(lister, emoji, sa("web"), paths=("/emojivoto.v1.EmojiService/ListAll",)),
            allow(anyone, web_svc),
        ),
        traffic=(applies(canary, api_svc), applies(jason, api_svc), applies(chaos, web_svc), applies(breaker, api_svc)),
    )
    profile = user_object(
        R,
        {
            "apiVersion": "linkerd.io/v1alpha2",
            "kind": "ServiceProfile",
            "metadata": {"name": "web.shop.svc.cluster.local", "namespace": "shop"},
            "spec": {},
        },
    )
    return emit_input(
        meshes=[MESH, REMOTE],
        workloads=[web, api, grpc],
        destinations=[web_svc, api_svc, emoji, remote_api],
        policies=[readers, writers, lister, anyone, canary, jason, chaos, breaker],
        intent=intent,
        existing={R: (profile,)},
    )


def dump(result: EmitResult) -> str:
    """The result as one deterministic text (what `translate` writes, plus statuses and findings)."""
    parts = [
        yaml.safe_dump({c: list(objs) for c, objs in result.objects.items()}, sort_keys=True),
        yaml.safe_dump({c: list(ps) for c, ps in result.patches.items()}, sort_keys=True),
        "\n".join(repr(s) for s in result.statuses),
        "\n".join(repr(f) for f in result.findings),
    ]
    return "\n---\n".join(parts)


def test_every_object_validates_against_the_linkerd_crds() -> None:
    result = emit_linkerd(rich_input())
    kinds = set()
    for cluster, objs in result.objects.items():
        for obj in objs:
            kinds.add(obj["kind"])
            assert validate(obj) == [], (cluster, obj["kind"], obj["metadata"]["name"])
    assert kinds == {"Server", "AuthorizationPolicy", "MeshTLSAuthentication", "NetworkAuthentication", "HTTPRoute"}


def test_every_object_is_owned_and_well_named() -> None:
    result = emit_linkerd(rich_input())
    for objs in result.objects.values():
        for obj in objs:
            meta = obj["metadata"]
            assert _NAME.match(meta["name"]) and len(meta["name"]) <= 63
            assert meta["labels"]["meshrules.io/owner"] == "meshrules-system"
            parents = json.loads(meta["annotations"]["meshrules.io/parents"])
            assert parents and all(v == sorted(v) for v in parents.values())
    for patches in result.patches.values():
        for patch in patches:  # a patch owns fields of a user object: it never claims the object
            assert "meshrules.io/owner" not in patch["metadata"].get("labels", {})


def test_objects_are_sorted() -> None:
    result = emit_linkerd(rich_input())
    for objs in result.objects.values():
        keys = [(o["apiVersion"], o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]) for o in objs]
        assert keys == sorted(keys)


def _shuffled(inp: EmitInput, data: st.DataObject) -> EmitInput:
    def perm(items: Any) -> tuple[Any, ...]:
        return tuple(data.draw(st.permutations(list(items))))

    intent = inp.intent
    intent = replace(
        intent,
        memberships=perm(intent.memberships),
        federation=perm(intent.federation),
        access=perm(intent.access),
        traffic=perm(intent.traffic),
    )
    return EmitInput(
        clusters=perm(inp.clusters),
        meshes=perm(inp.meshes),
        workloads=perm(inp.workloads),
        destinations=perm(inp.destinations),
        policies=perm(inp.policies),
        intent=intent,
        existing={k: perm(v) for k, v in reversed(list(inp.existing.items()))},
    )


@settings(max_examples=25)
@given(st.data())
def test_output_is_identical_under_any_input_order(data: st.DataObject) -> None:
    inp = rich_input()
    assert dump(emit_linkerd(_shuffled(inp, data))) == dump(emit_linkerd(inp))


SCENARIO = Path(__file__).resolve().parents[3] / "simulator" / "scenarios" / "bookinfo-multicluster"


@pytest.mark.skipif(not SCENARIO.exists(), reason="bundled scenario not present")
def test_bundled_scenario_emojivoto() -> None:
    """cluster-3 of the bundled scenario: emojivoto on Linkerd, ENFORCED, with the scenario's policies.

    The intent states what the scenario's rule set decides for cluster-3 (policies/access.yaml,
    traffic.yaml, virtual-meshes.yaml).
    """
    from meshrules.kube.scenario import load_scenario
    from meshrules.model.intent import AccessRule, Derivation, MeshMembership, TrafficApplication
    from meshrules.pipeline import analyse

    scenario = load_scenario(SCENARIO)
    found = analyse(scenario).discovery
    why = Derivation("test", "test", ())
    mesh = "linkerd-destination-linkerd-cluster-3"
    web = IdentityPattern(namespace="emojivoto", service_account="web", cluster=C)
    bot = IdentityPattern(namespace="emojivoto", service_account="default", cluster=C)
    intent = Intent(
        memberships=(MeshMembership(mesh, "VirtualMesh meshrules-system/emojivoto", True, False),),
        access=(
            AccessRule("AccessPolicy emojivoto/web-calls-emoji-and-voting", "emoji-svc-emojivoto-cluster-3", (web,)),
            AccessRule("AccessPolicy emojivoto/web-calls-emoji-and-voting", "voting-svc-emojivoto-cluster-3", (web,)),
            AccessRule("AccessPolicy emojivoto/vote-bot-calls-web", "web-svc-emojivoto-cluster-3", (bot,), ports=(80,)),
        ),
        traffic=(
            TrafficApplication(
                "TrafficPolicy emojivoto/voting-timeout",
                "voting-svc-emojivoto-cluster-3",
                ("requestTimeout", "retries"),
                why,
            ),
            TrafficApplication(
                "TrafficPolicy emojivoto/emoji-chaos", "emoji-svc-emojivoto-cluster-3", ("faultInjection",), why
            ),
        ),
    )
    inp = EmitInput(
        clusters=found.clusters,
        meshes=found.meshes,
        workloads=found.workloads,
        destinations=found.destinations,
        policies=tuple(scenario.policies),
        intent=intent,
    )
    result = emit_linkerd(inp)
    assert set(result.objects) == {C}
    for obj in result.objects[C]:
        assert validate(obj) == []
    names = {(o["kind"], o["metadata"]["name"]) for o in result.objects[C]}
    assert {n for k, n in names if k == "Server"} == {
        "emoji-svc-grpc",
        "emoji-svc-prom",
        "voting-svc-grpc",
        "voting-svc-prom",
        "web-svc-http",
    }
    assert ("HTTPRoute", "voting-svc-8080") in names
    assert [(s.policy, s.code, s.message) for s in result.statuses] == [
        (
            "TrafficPolicy emojivoto/emoji-chaos",
            "MR0401",
            "fault injection is not supported by Linkerd (mesh `linkerd-destination-linkerd-cluster-3`)",
        ),
    ]
