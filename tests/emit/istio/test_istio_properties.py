"""Properties of `emit_istio` over generated worlds: valid, safely named, order-independent.

A world is drawn directly as emitter input (meshes, destinations, policies and an intent), since
the rule set that derives intents is tested on its own; every object the emitter writes must be
accepted by the real Istio CRDs (OpenAPI and CEL), carry a valid name that no user object has,
and the output must be byte-identical whatever order the input lists come in.
"""

from __future__ import annotations

import random
import re
from dataclasses import replace
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from emit.emit_builders import (
    access_policy,
    allow,
    applies,
    beats,
    destination,
    emit_input,
    federate,
    istio_mesh,
    member,
    traffic_policy,
    user_object,
    workload,
)
from meshrules.emit.input import EmitInput
from meshrules.emit.istio import emit_istio
from meshrules.emit.naming import MAX_LABEL, is_owned
from meshrules.emit.schema import validate
from meshrules.model.discovery import ServicePort
from meshrules.model.intent import IdentityPattern, Intent, Specificity

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_CLUSTERS = ("c1", "c2", "c3")
# Long names exercise the cut-and-hash path of names.
_SERVICES = ("reviews", "ratings", "a-very-long-service-name-that-pushes-names-past-the-limit")
_NAMESPACES = ("shop", "namespace-with-a-rather-long-name-too")
_ADDRESSES = ("203.0.113.9", "gw.example.com", None)


@st.composite
def worlds(draw: st.DrawFn) -> EmitInput:
    clusters = draw(st.lists(st.sampled_from(_CLUSTERS), min_size=1, max_size=3, unique=True))
    meshes = [istio_mesh(c, gateway_address=draw(st.sampled_from(_ADDRESSES))) for c in sorted(clusters)]
    workloads, destinations = [], []
    for cluster in sorted(clusters):
        for service in draw(st.lists(st.sampled_from(_SERVICES), min_size=1, max_size=2, unique=True)):
            namespace = draw(st.sampled_from(_NAMESPACES))
            pods = [
                workload(
                    f"{service[:20]}-v{v}",
                    cluster,
                    namespace,
                    labels={"app": service, "version": f"v{v}"},
                    ports=((8080, "http"),),
                )
                for v in (1, 2)
            ]
            workloads += pods
            port = ServicePort(port=80, name=draw(st.sampled_from(["http", "grpc-api", None])), target_port="http")
            destinations.append(
                destination(
                    service, cluster, namespace, workloads=pods, ports=[port], subsets={"version": ["v1", "v2"]}
                )
            )
    policies: list[Any] = []
    for i in range(draw(st.integers(0, 4))):
        settings_: dict[str, Any] = {"requestTimeout": f"{i + 1}s"}
        if draw(st.booleans()):
            target = draw(st.sampled_from(destinations))
            settings_["trafficShift"] = {
                "destinations": [
                    {
                        "service": {"name": target.service, "namespace": target.namespace, "cluster": target.cluster},
                        "subset": {"version": draw(st.sampled_from(["v1", "v2"]))},
                        "weight": 60,
                    },
                    {
                        "service": {"name": target.service, "namespace": target.namespace, "cluster": target.cluster},
                        "weight": 40,
                    },
                ]
            }
        if draw(st.booleans()):
            settings_["mtls"] = {"mode": "ISTIO_MUTUAL"}
        spec: dict[str, Any] = {"policy": settings_}
        if draw(st.booleans()):
            spec["sourceSelector"] = [
                {"namespaces": [draw(st.sampled_from(_NAMESPACES))], "clusters": [draw(st.sampled_from(_CLUSTERS))]}
            ]
        if draw(st.booleans()):
            spec["httpRequestMatchers"] = [
                {
                    "uri": {draw(st.sampled_from(["prefix", "exact", "regex"])): f"/p{i}"},
                    "headers": [{"name": "x-h", "value": str(i)}],
                }
            ]
        policies.append(
            traffic_policy(f"tp-{i}", spec, namespace=draw(st.sampled_from(_NAMESPACES)), created=f"{i:02d}:00")
        )
    apps = [applies(p, d) for p in policies for d in destinations if draw(st.booleans())]
    precedence = [
        beats(d, "requestTimeout", a, b, Specificity.OVERLAP)
        for d in destinations
        for a in policies
        for b in policies
        if a.ref < b.ref and draw(st.booleans())
    ]
    access_policies = [access_policy(f"ap-{i}", {}, created=f"{i:02d}:30") for i in range(draw(st.integers(0, 2)))]
    patterns = st.builds(
        IdentityPattern,
        st.sampled_from([None, "cluster.local"]),
        st.sampled_from([None, *_NAMESPACES]),
        st.sampled_from([None, "reviews-v1", "web"]),
    )
    access = [
        allow(
            ap,
            d,
            draw(st.lists(patterns, max_size=2)),
            methods=tuple(draw(st.sets(st.sampled_from(["GET", "POST"])))),
            ports=tuple(draw(st.sets(st.sampled_from([80, 81])))),
        )
        for ap in access_policies
        for d in destinations
        if draw(st.booleans())
    ]
    edges = [federate(d, m) for d in destinations for m in meshes if m.cluster != d.cluster and draw(st.booleans())]
    memberships = [member(m, enforced=draw(st.booleans())) for m in meshes]
    existing: dict[str, tuple[Any, ...]] = {}
    if destinations and draw(st.booleans()):
        d = draw(st.sampled_from(destinations))
        kind = draw(st.sampled_from(["VirtualService", "DestinationRule"]))
        spec_ = {"hosts": [d.local_fqdn]} if kind == "VirtualService" else {"host": d.local_fqdn}
        body = {
            "apiVersion": "networking.istio.io/v1",
            "kind": kind,
            "metadata": {"name": d.service[:63].rstrip("-"), "namespace": d.namespace},
            "spec": spec_,
        }
        existing[d.cluster] = (user_object(d.cluster, body),)
    intent = Intent(
        memberships=tuple(memberships),
        federation=tuple(edges),
        traffic=tuple(apps),
        precedence=tuple(precedence),
        access=tuple(access),
    )
    return emit_input(
        meshes=meshes,
        workloads=workloads,
        destinations=destinations,
        policies=[*policies, *access_policies],
        intent=intent,
        existing=existing,
    )


def _shuffled(inp: EmitInput, seed: int) -> EmitInput:
    rnd = random.Random(seed)

    def mix(items: Any) -> tuple[Any, ...]:
        out = list(items)
        rnd.shuffle(out)
        return tuple(out)

    intent = inp.intent
    return replace(
        inp,
        meshes=mix(inp.meshes),
        workloads=mix(inp.workloads),
        destinations=mix(inp.destinations),
        policies=mix(inp.policies),
        intent=Intent(
            memberships=mix(intent.memberships),
            federation=mix(intent.federation),
            traffic=mix(intent.traffic),
            precedence=mix(intent.precedence),
            access=mix(intent.access),
        ),
    )


def _bytes(inp: EmitInput) -> str:
    result = emit_istio(inp)
    return yaml.safe_dump(
        {
            "objects": {c: list(o) for c, o in result.objects.items()},
            "statuses": [repr(s) for s in result.statuses],
            "findings": [repr(f) for f in result.findings],
        },
        sort_keys=False,
    )


@settings(max_examples=30)
@given(worlds())
def test_every_emitted_object_validates_and_is_safely_named(inp: EmitInput) -> None:
    result = emit_istio(inp)
    taken = {
        (o.cluster, o.kind, o.namespace, o.name) for objs in inp.existing.values() for o in objs if not is_owned(o.body)
    }
    for cluster, objects in result.objects.items():
        names = set()
        for obj in objects:
            assert validate(obj) == [], (obj, validate(obj))
            meta = obj["metadata"]
            assert _DNS_LABEL.match(meta["name"]) and len(meta["name"]) <= MAX_LABEL, meta["name"]
            key = (cluster, obj["kind"], meta.get("namespace", ""), meta["name"])
            assert key not in taken and key not in names
            names.add(key)


@settings(max_examples=30)
@given(worlds(), st.integers(0, 2**16))
def test_output_is_identical_under_any_input_order(inp: EmitInput, seed: int) -> None:
    assert _bytes(inp) == _bytes(_shuffled(inp, seed))
