"""Malformed Kubernetes objects become findings with a location, never exceptions."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml
from discovery_builders import (
    ISTIO_CP,
    LINKERD_CP,
    SAMPLES,
    Discover,
    Kube,
    codes,
    deployment,
    dump,
    istiod,
    ns,
    service,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshrules.discovery import ClusterInput, discover
from meshrules.errors import Severity


def _meshed(*objects: dict[str, Any]) -> str:
    return dump(*istiod(), ns("shop", {"istio-injection": "enabled"}), *objects)


@pytest.mark.parametrize(
    ("mutate", "field", "expected"),
    [
        (
            lambda d: d["spec"]["template"]["spec"].update(containers={"name": "api"}),
            "spec.template.spec.containers",
            "expected a list",
        ),
        (
            lambda d: d["spec"]["template"]["spec"].update(containers=["api"]),
            "spec.template.spec.containers[0]",
            "expected an object",
        ),
        (
            lambda d: d["spec"]["template"]["metadata"]["labels"].update(version=2),
            "spec.template.metadata.labels.version",
            "expected a string (quote it)",
        ),
        (lambda d: d["spec"].update(template="nginx"), "spec.template", "expected an object"),
        (lambda d: d["spec"].pop("template"), "spec.template", "expected a pod template"),
        (lambda d: d.update(spec=["replicas"]), "spec", "expected an object"),
        (
            lambda d: d["spec"]["template"]["spec"].update(serviceAccountName=["api"]),
            "spec.template.spec.serviceAccountName",
            "expected a string",
        ),
        (
            lambda d: d["spec"]["template"]["spec"]["containers"][0].update(ports=[{"containerPort": "http"}]),
            "spec.template.spec.containers[0].ports[0].containerPort",
            "expected an integer",
        ),
    ],
)
def test_malformed_deployment_fields_are_findings(
    kube: Kube, run: Discover, mutate: Any, field: str, expected: str
) -> None:
    dep = deployment("api", "shop", {"app": "api"})
    mutate(dep)
    found = run(c1=kube(_meshed(dep)))
    bad = [d for d in found.diagnostics if d.code == "MR0101"]
    assert [(d.field, d.message) for d in bad] == [(field, expected)]
    assert bad[0].severity is Severity.WARNING
    assert bad[0].object == "Deployment shop/api"
    assert bad[0].location is not None and bad[0].location.file == "test.yaml" and bad[0].location.line > 1


def test_pod_with_an_unreadable_controller_is_not_a_workload(kube: Kube, run: Discover) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "api-1", "namespace": "shop", "ownerReferences": [{"controller": True, "kind": 7}]},
        "spec": {"containers": [{"name": "api"}]},
    }
    found = run(c1=kube(_meshed(pod)))
    assert found.workloads == ()
    assert [d.field for d in found.diagnostics] == ["metadata.ownerReferences[0].kind"]


def test_finding_points_at_the_line_of_the_field(kube: Kube, run: Discover) -> None:
    text = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: shop}
spec:
  template:
    metadata:
      labels: {app: api}
    spec:
      containers:
        name: api
"""
    found = run(c1=kube(_meshed() + "---\n" + text))
    (diag,) = [d for d in found.diagnostics if d.code == "MR0101"]
    start = (_meshed() + "---\n").count("\n")
    assert diag.location is not None and diag.location.line == start + 9  # the `containers:` line
    assert str(diag).startswith(f"test.yaml:{start + 9}: spec.template.spec.containers: expected a list")


def test_malformed_service_fields_are_findings(kube: Kube, run: Discover) -> None:
    svc = service("api", "shop", {"app": "api"})
    svc["spec"]["ports"] = [{"name": "http", "port": "eighty"}, "nope", {"port": 81, "targetPort": [1]}]
    found = run(c1=kube(_meshed(deployment("api", "shop", {"app": "api"}), svc)))
    bad = sorted(d.field for d in found.diagnostics if d.code == "MR0101")
    assert bad == ["spec.ports[0].port", "spec.ports[1]", "spec.ports[2].targetPort"]
    (dest,) = found.destinations
    assert [(p.port, p.target_port) for p in dest.ports] == [(81, 81)]


def test_malformed_gateway_status_is_a_finding(kube: Kube, run: Discover) -> None:
    from discovery_builders import eastwest_gateway

    dep, svc = eastwest_gateway()
    svc["status"] = {"loadBalancer": {"ingress": "203.0.113.1"}}
    found = run(c1=kube(dump(*istiod(), dep, svc)))
    assert sorted(codes(found)) == ["MR0101", "MR0110"]


def test_live_objects_get_object_coordinates(live: Kube, run: Discover) -> None:
    dep = deployment("api", "shop", {"app": "api"})
    dep["spec"]["template"]["spec"]["containers"] = "api"
    found = run(c1=live([*istiod(), ns("shop", {"istio-injection": "enabled"}), dep]))
    (diag,) = found.diagnostics
    assert str(diag) == (
        "c1: Deployment shop/api: spec.template.spec.containers: expected a list "
        "(this field is ignored; fix the object so Kubernetes would accept it)"
    )


# --- Whatever the shape, discovery answers ---------------------------------------------------------

_JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=5),
    st.lists(st.one_of(st.integers(), st.text(max_size=3)), max_size=2),
    st.dictionaries(
        st.text(max_size=3), st.one_of(st.integers(), st.text(max_size=3), st.lists(st.none())), max_size=2
    ),
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            out.extend(_paths(v, (*prefix, k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.extend(_paths(v, (*prefix, i)))
    return out


# Real objects that discovery reads (control planes, apps, injection settings) to break at random.
_CORPUS = [
    doc
    for text in (
        ISTIO_CP.read_text(),
        LINKERD_CP.read_text(),
        (SAMPLES / "bookinfo.yaml").read_text(),
        (SAMPLES / "emojivoto.yml").read_text(),
        _meshed(deployment("api", "shop", {"app": "api"}), service("api", "shop", {"app": "api"})),
        dump(
            ns("emoji", {"istio.io/rev": "default"}, {"linkerd.io/inject": "enabled"}),
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {"name": "n1", "labels": {"topology.kubernetes.io/region": "r"}},
            },
        ),
    )
    for doc in yaml.load_all(text, Loader=yaml.CSafeLoader)
    if doc and doc.get("kind") in {"Deployment", "Service", "ConfigMap", "Namespace", "Pod", "Node"}
]
# What the loader itself reads to name an object; discovery gets those already checked.
_IDENTITY = {("apiVersion",), ("kind",), ("metadata",), ("metadata", "name"), ("metadata", "namespace")}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_discovery_never_raises_on_malformed_objects(live: Kube, data: st.DataObject) -> None:
    bodies = copy.deepcopy(_CORPUS)
    for _ in range(data.draw(st.integers(1, 4))):
        body = data.draw(st.sampled_from(bodies))
        paths = [p for p in _paths(body) if p not in _IDENTITY] or [("spec",)]
        path = data.draw(st.sampled_from(paths))
        parent = body
        for part in path[:-1]:
            parent = parent[part]
        parent[path[-1]] = data.draw(_JUNK)
    objects = live(bodies)
    found = discover({"c1": ClusterInput(name="c1", objects=objects)})
    for diag in found.diagnostics:
        assert diag.code.startswith("MR01")
        assert str(diag)
