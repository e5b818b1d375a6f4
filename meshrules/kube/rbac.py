"""Least-privilege RBAC rules, derived from the kinds meshrules reads and writes (`resources`).

Three identities:
- the *remote* service account `cluster register` creates in each registered cluster, which the
  management plane uses to read inputs and write outputs there;
- the *controller* in the management cluster (policies, discovery objects, kubeconfig Secrets,
  its leader-election Lease);
- the *agent* in each registered cluster (the mesh's CA Secret and trust roots, spec §8), and the
  CSR exchange both it and the management side write (`remote_exchange_rules`, `controller_trust_rules`).
Every verb is there for one reason, written beside it. The rules are data: `deploy/` and
registration render them, and tests check the two agree.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from meshrules.kube import resources as R
from meshrules.kube.resources import ApiResource

READ = ("get", "list", "watch")
Rule = dict[str, Any]

LINK_NAMESPACE = "linkerd-multicluster"
# The namespaces the meshes' control planes run in by default (spec §4 Trust): `deploy/agent` gives
# the agent a Role in each, and `cluster register` the management side its CSR-exchange Role.
MESH_NAMESPACES = ("istio-system", "linkerd")


def _rules(resources: Iterable[ApiResource], verbs: Iterable[str]) -> list[Rule]:
    """One rule per API group for ``resources`` with ``verbs`` (sorted, so output is stable)."""
    by_group: dict[str, set[str]] = {}
    for res in resources:
        by_group.setdefault(res.group, set()).add(res.plural)
    return [
        {"apiGroups": [group], "resources": sorted(plurals), "verbs": sorted(set(verbs))}
        for group, plurals in sorted(by_group.items())
    ]


def remote_cluster_rules() -> list[Rule]:
    """The ClusterRole of the management plane's service account in a registered cluster."""
    emitted = {(r.group, r.kind) for r in R.EMITTED}
    read_only = [r for r in R.CLUSTER_INPUTS if (r.group, r.kind) not in emitted and r.kind != "Service"]
    return [
        # Read what discovery and the simulator read (spec §1.1, §2) — never Secrets.
        *_rules(read_only, READ),
        # Services: read for discovery; `patch` only, to server-side apply the Linkerd export
        # label on a user's Service (spec §4). No create, update or delete.
        *_rules([R.SERVICE], (*READ, "patch")),
        # The kinds meshrules emits: read (to compare before writing and find what it owns),
        # create (new outputs: POST fails on an existing name, so a user's object is never
        # written), patch (server-side apply), update (drop fields an earlier create gave
        # meshrules), delete (prune outputs no longer produced).
        *_rules(R.EMITTED, (*READ, "create", "patch", "update", "delete")),
    ]


def link_secret_rules() -> list[Rule]:
    """A Role in `linkerd-multicluster`: the credentials Secrets the Links meshrules writes point to."""
    # Namespaced on purpose: meshrules never reads Secrets anywhere else in a registered cluster.
    return _rules([R.SECRET], (*READ, "create", "patch", "update", "delete"))


def controller_cluster_rules() -> list[Rule]:
    """The controller's ClusterRole in the management cluster (policies live in any namespace)."""
    status = [ApiResource(r.group, r.version, r.kind, f"{r.plural}/status") for r in R.POLICIES]
    return [
        # Watch every policy; it never changes a policy's spec.
        *_rules(R.POLICIES, READ),
        # Write each policy's status (`observedGeneration`, state, errors) through the status subresource.
        *_rules(status, ("get", "patch")),
    ]


def controller_namespace_rules() -> list[Rule]:
    """The controller's Role in the management namespace."""
    cluster_status = ApiResource(
        R.KUBERNETES_CLUSTER.group, R.KUBERNETES_CLUSTER.version, "KubernetesCluster", "kubernetesclusters/status"
    )
    return [
        # Discovery objects it writes and prunes (spec §2).
        *_rules(R.DISCOVERED, (*READ, "create", "patch", "update", "delete")),
        # A registered cluster's health and back-off (KubernetesCluster status).
        *_rules([cluster_status], ("get", "patch")),
        # The kubeconfig Secrets `cluster register` stores: read only.
        *_rules([R.SECRET], READ),
        # Leader election: only the holder of the Lease writes.
        *_rules([R.LEASE], ("get", "create", "update")),
    ]


def controller_trust_rules() -> list[Rule]:
    """The controller's Role in the management namespace for shared trust (docs/trust.md, "Live").

    Kept apart from `controller_namespace_rules` so the kubeconfig Secrets stay read-only there.
    """
    return [
        # `meshrules-root-<vmesh>`: a generated root CA is created once, replaced by a new one when
        # the VirtualMesh asks for a rotation (`update`, the previous one kept first in
        # `meshrules-root-<vmesh>-previous`, which is `delete`d once the rotation is done). Reads
        # come with the read rule of `controller_namespace_rules`; the code writes only Secrets
        # carrying meshrules' owner label, never a kubeconfig Secret.
        *_rules([R.SECRET], ("create", "update", "delete")),
    ]


def remote_exchange_rules() -> list[Rule]:
    """A Role in each mesh namespace of a registered cluster for the management side's service account.

    The CSR exchange ConfigMaps (`meshrules-csr-<mesh>`, `meshrules.kube.exchange`); reading them
    is already granted by the ClusterRole (discovery reads ConfigMaps). Namespaced so the management
    side can write no other ConfigMap anywhere else, and never Secrets: the pending key is not its.
    """
    return [
        # create: open the request of a mesh that has none; update: renew a request and write the
        # answer (PUT with the resourceVersion read, so an agent write in between is never lost).
        *_rules([R.CONFIG_MAP], ("create", "update")),
    ]


def agent_namespace_rules() -> list[Rule]:
    """The agent's Role in a mesh's namespace (`istio-system`, `linkerd`): its CA objects (spec §4 Trust)."""
    return [
        # `cacerts` / `linkerd-identity-issuer` and the pending intermediate key live in Secrets.
        *_rules([R.SECRET], ("get", "create", "patch", "update", "delete")),
        # Linkerd's trust roots are a ConfigMap (`linkerd-identity-trust-roots`), written by get,
        # create and patch (server-side apply); the CSR exchanges are ConfigMaps too: list finds
        # the requests in the namespace, update writes the CSR and progress (PUT with the
        # resourceVersion read, so a management write in between is never lost).
        *_rules([R.CONFIG_MAP], ("get", "list", "create", "patch", "update")),
    ]
