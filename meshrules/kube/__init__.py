"""meshrules.kube: all I/O with files and Kubernetes clusters; the only package that imports `kubernetes`.

Below `cli`, above the pure pipeline. Import the module you need — this package imports nothing on
purpose, so offline commands never load the kubernetes client:

    scenario       reading a scenario directory (spec §1.1)
    resources      the kinds meshrules reads and writes, and their API paths
    cluster        the `Cluster` interface and its errors; `client.KubeCluster` (the official
                   client) and `fake.FakeCluster` (in memory, over `memory.MemoryApiServer`)
    live           live objects → `KubeObject`s, `ClusterInput`s, a `Scenario`
    snapshot       `meshrules snapshot`: a live cluster as a scenario cluster directory
    apply          `plan_apply` (pure safety rules) and `execute`
    registration   `meshrules cluster register | deregister | list`; `rbac`, `kubeconfig`
    oneshot        `meshrules apply`: discover live, translate, apply once
    controller     the reconciler: `informer` caches, `leader` election, `worker`s, `metrics`
    translation    the injected `Translate` callable and its `Translation` result
    trust          the trust agent's `TrustCluster` on a live cluster
    deploy         the manifests in `deploy/`
"""
