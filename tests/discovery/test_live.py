"""Discovery reads only `KubeObject.body`: plain dicts as the kubernetes client returns them give
the same answer as the YAML snapshot."""

from __future__ import annotations

from discovery_builders import ISTIO_CP, LINKERD_CP, LINKERD_MC, SAMPLES, Discover, Kube, dump, ns


def test_plain_dicts_discover_like_files(kube: Kube, live: Kube, run: Discover) -> None:
    files = [
        *kube(ISTIO_CP),
        *kube(LINKERD_CP),
        *kube(LINKERD_MC),
        *kube(dump(ns("bookinfo", {"istio-injection": "enabled"}))),
        *kube(SAMPLES / "bookinfo.yaml", namespace="bookinfo"),
        *kube(SAMPLES / "emojivoto-no-bot.yml"),
    ]
    # What `ApiClient().sanitize_for_serialization(obj)` gives: the same camelCase mappings, no
    # file, no line numbers; namespaces set by the API server.
    dicts = []
    for obj in files:
        body = dict(obj.body)
        if obj.namespace:
            body["metadata"] = {**body["metadata"], "namespace": obj.namespace}
        dicts.append(body)
    from_files = run(c1=files)
    from_live = run(c1=live(dicts))
    assert from_live.meshes == from_files.meshes
    assert from_live.workloads == from_files.workloads
    assert from_live.destinations == from_files.destinations
    assert [d.code for d in from_live.diagnostics] == [d.code for d in from_files.diagnostics] == ["MR0110"]
    (diag,) = from_live.diagnostics
    assert str(diag.location) == "c1: Service linkerd-multicluster/linkerd-gateway"
