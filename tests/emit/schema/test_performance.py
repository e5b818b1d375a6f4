"""Validating thousands of objects compiles each schema and each CEL rule once.

`meshrules check` and the emitter property tests validate every object they produce, so the
validator must not redo per object what it can do per CRD. No timing is asserted (machines
differ); the figure is printed with `pytest -s` and in the issue's benchmark note.
"""

from __future__ import annotations

import copy
import time
from typing import Any

from meshrules.emit.schema import CrdRegistry, cel
from tests.emit.schema.test_meshes import AUTHORIZATION_POLICY, GATEWAY_ROUTE, MESH_TLS, POLICY_ROUTE, SERVER
from tests.emit.schema.test_vectors import DATASET, VALID

OBJECTS = 3000


def corpus(n: int) -> list[dict[str, Any]]:
    """`n` distinct valid objects: Istio's vectors and dataset, and Linkerd and Gateway API objects."""
    seeds = [p.values[0] for p in VALID + DATASET] + [
        SERVER,
        AUTHORIZATION_POLICY,
        MESH_TLS,
        POLICY_ROUTE,
        GATEWAY_ROUTE,
    ]
    out = []
    for i in range(n):
        obj = copy.deepcopy(seeds[i % len(seeds)])
        obj["metadata"] = {**obj["metadata"], "name": f"{obj['metadata']['name'].lower()}-{i}"}
        out.append(obj)
    return out


def test_thousands_of_objects_compile_each_rule_once() -> None:
    objs = corpus(OBJECTS)
    reg = CrdRegistry.bundled("all")
    linkerd = CrdRegistry.bundled("linkerd")

    def run() -> int:
        bad = 0
        for obj in objs:
            target = linkerd if obj["apiVersion"].startswith("policy.linkerd.io") else reg
            bad += bool(target.validate(obj))
        return bad

    assert run() == 0  # warm: compiles what these kinds need
    compiled = cel._compile_cached.cache_info().currsize
    schemas = len(reg._compiled) + len(linkerd._compiled)
    start = time.perf_counter()
    assert run() == 0
    elapsed = time.perf_counter() - start
    assert cel._compile_cached.cache_info().currsize == compiled  # no rule compiled again
    assert len(reg._compiled) + len(linkerd._compiled) == schemas  # no schema compiled again
    print(f"\nvalidated {OBJECTS} objects in {elapsed:.2f} s ({OBJECTS / elapsed:.0f} objects/s)")
