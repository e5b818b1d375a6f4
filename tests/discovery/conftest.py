"""A tiny test-only reader: YAML files (or plain dicts) to `KubeObject`s, offered as fixtures.

The real scenario loader lives in `meshrules.kube.scenario`; these tests stay independent of it so
a loader change cannot hide a discovery regression (and the other way round). The reader records
a line for every field, as a loader that maps node marks does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from discovery_builders import Discover

from meshrules.discovery import ClusterInput, Discovery, discover
from meshrules.errors import Location
from meshrules.model.discovery import KubernetesClusterConfig
from meshrules.model.source import KubeObject

_CLUSTER_SCOPED = frozenset(
    {
        "Namespace",
        "Node",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    }
)


def _lines(node: yaml.Node, path: str, out: dict[str, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            sub = f"{path}.{key.value}" if path else str(key.value)
            out[sub] = key.start_mark.line + 1
            _lines(value, sub, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            sub = f"{path}[{i}]"
            out[sub] = item.start_mark.line + 1
            _lines(item, sub, out)


def _namespace_of(body: Mapping[str, Any], default: str) -> str:
    meta = body.get("metadata") or {}
    return "" if body.get("kind") in _CLUSTER_SCOPED else (meta.get("namespace") or default)


def read_yaml(source: Path | str, cluster: str = "c1", namespace: str = "default") -> list[KubeObject]:
    """Objects of a YAML file or text; namespaced objects without a namespace go to ``namespace``
    (as `kubectl apply -n`)."""
    if isinstance(source, Path):
        text, file = source.read_text(), source.name
    else:
        text, file = source, "test.yaml"
    out = []
    loader = yaml.CSafeLoader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            body = loader.construct_document(node)
            if not isinstance(body, dict):
                continue
            lines: dict[str, int] = {}
            _lines(node, "", lines)
            out.append(
                KubeObject(
                    cluster=cluster,
                    api_version=body.get("apiVersion", ""),
                    kind=body.get("kind", ""),
                    namespace=_namespace_of(body, namespace),
                    name=(body.get("metadata") or {}).get("name", ""),
                    body=body,
                    location=Location(file=file, line=node.start_mark.line + 1),
                    lines=lines,
                )
            )
    finally:
        loader.dispose()
    return out


def read_dicts(bodies: Iterable[Mapping[str, Any]], cluster: str = "c1") -> list[KubeObject]:
    """Objects from plain dicts, as the kubernetes client returns them: no file, no lines."""
    out = []
    for body in bodies:
        kind, name = body["kind"], body["metadata"]["name"]
        namespace = _namespace_of(body, "default")
        out.append(
            KubeObject(
                cluster=cluster,
                api_version=body["apiVersion"],
                kind=kind,
                namespace=namespace,
                name=name,
                body=body,
                location=Location(cluster=cluster, kind=kind, namespace=namespace, name=name),
            )
        )
    return out


def _discover(configs: Mapping[str, KubernetesClusterConfig] | None = None, **clusters: list[KubeObject]) -> Discovery:
    configs = configs or {}
    return discover(
        {name: ClusterInput(name=name, objects=objs, config=configs.get(name)) for name, objs in clusters.items()}
    )


@pytest.fixture
def kube() -> Callable[..., list[KubeObject]]:
    """`kube(path_or_text, cluster="c1", namespace="default")` → KubeObjects."""
    return read_yaml


@pytest.fixture
def live() -> Callable[..., list[KubeObject]]:
    """`live(dicts, cluster="c1")` → KubeObjects without file positions, as from a live cluster."""
    return read_dicts


@pytest.fixture
def run() -> Discover:
    """`run(c1=objects, c2=objects, configs={...})` → Discovery."""
    return _discover
