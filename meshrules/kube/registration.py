"""`meshrules cluster register | deregister | list` (spec §8), written against the `Cluster` interface.

Registering cluster NAME creates, on the remote cluster, the namespace `meshrules-system` (unless
it exists), a ServiceAccount, a least-privilege ClusterRole and its binding (`rbac`), a Role for
Link credentials in `linkerd-multicluster` when that namespace exists, the CSR-exchange Role and
its binding in each mesh namespace that exists (`exchange_namespaces`: the same two objects
`deploy/agent` renders, from `exchange_objects`), and a long-lived token Secret; then, on the
management cluster, a kubeconfig built from that token (CA inlined) as Secret NAME of type
`meshrules.io/kubeconfig`, and the KubernetesCluster NAME. Every object carries
`meshrules.io/owner` and `meshrules.io/cluster: NAME`; all of it goes through the apply planner,
so registering twice writes nothing and an existing object meshrules does not own stops
registration instead of being taken over.

Deregistering removes exactly those objects, every output meshrules owns on the remote cluster,
the fields it patched into user objects, and the discovery objects of the cluster.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from meshrules.discovery.istio import ISTIOD
from meshrules.discovery.linkerd import CONTROL_PLANE_LABEL
from meshrules.emit.naming import OWNER_LABEL
from meshrules.errors import ClusterError, Location, UsageError
from meshrules.kube import resources as R
from meshrules.kube.apply import Action, ApplyResult, ObjectKey, execute, live_index, plan_apply, read_live
from meshrules.kube.cluster import NOT_OWNED, Cluster, Object
from meshrules.kube.fields import selector
from meshrules.kube.kubeconfig import (
    KUBECONFIG_KEY,
    KUBECONFIG_SECRET_TYPE,
    build_kubeconfig,
    kubeconfig_from_secret,
    secret_data,
)
from meshrules.kube.live import served_resources
from meshrules.kube.rbac import (
    LINK_NAMESPACE,
    MESH_NAMESPACES,
    link_secret_rules,
    remote_cluster_rules,
    remote_exchange_rules,
)
from meshrules.kube.resources import ApiResource, resource_of
from meshrules.model.common import MANAGEMENT_NAMESPACE, is_dns1123_label
from meshrules.model.discovery import CLUSTER_LABEL

REMOTE_NAMESPACE = MANAGEMENT_NAMESPACE
SERVICE_ACCOUNT = "meshrules-remote"
TOKEN_SECRET = "meshrules-remote-token"
# The management side's Role for the CSR exchange in each mesh namespace (`exchange_objects`).
EXCHANGE_ROLE = "meshrules-remote-csr-exchange"
TOKEN_NOT_ISSUED = "MR0808"
NOT_REGISTERED = "MR0809"
BAD_NAME = "MR0811"
NO_MESH_NAMESPACE = "MR0813"
# Istio's charts and istioctl label every istiod Deployment (any revision) `app: istiod`: one
# filtered list finds the control planes outside `istio-system` without reading every Deployment.
ISTIOD_SELECTOR = f"app={ISTIOD}"
# A token controller fills a new token Secret within a second or two; 30 s covers a busy cluster.
TOKEN_WAIT_SECONDS = 30.0
# Removal order on deregistration: outputs first, the identity that wrote them last.
_REMOVAL_ORDER = (
    *R.EMITTED,
    R.ROLE_BINDING,
    R.ROLE,
    R.CLUSTER_ROLE_BINDING,
    R.CLUSTER_ROLE,
    R.SECRET,
    R.SERVICE_ACCOUNT,
    R.NAMESPACE,
)


@dataclass(frozen=True)
class Registration:
    """What registering wrote (object keys per side) and whether anything changed."""

    name: str
    remote: tuple[ObjectKey, ...]
    management: tuple[ObjectKey, ...]
    writes: int


@dataclass
class Deregistration:
    """What deregistering removed, and what it could not (with the reason)."""

    name: str
    removed: list[str] = field(default_factory=list)
    failed: list[tuple[str, ClusterError]] = field(default_factory=list)
    left: list[str] = field(default_factory=list)  # what was deliberately not removed


@dataclass(frozen=True)
class RegisteredCluster:
    """One row of `cluster list`."""

    name: str
    secret_name: str | None
    has_secret: bool
    cluster_domain: str | None
    region: str | None
    status: Mapping[str, Any]


def labels(name: str, owner: str) -> dict[str, str]:
    """The labels of every object registration writes for cluster ``name``."""
    return {OWNER_LABEL: owner, CLUSTER_LABEL: name}


def remote_objects(
    name: str,
    *,
    owner: str = MANAGEMENT_NAMESPACE,
    link_namespace: bool = False,
    mesh_namespaces: Sequence[str] = (),
) -> list[Object]:
    """The objects registration wants on the remote cluster (the namespace is added by `register` when absent).

    ``mesh_namespaces`` get the CSR-exchange Role and binding (`exchange_objects`); they must exist.
    """
    lab = labels(name, owner)
    role = f"meshrules-remote-{owner}"
    subject = [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": REMOTE_NAMESPACE}]
    objects: list[Object] = [
        _obj(R.SERVICE_ACCOUNT, SERVICE_ACCOUNT, REMOTE_NAMESPACE, lab),
        {**_obj(R.CLUSTER_ROLE, role, "", lab), "rules": remote_cluster_rules()},
        {
            **_obj(R.CLUSTER_ROLE_BINDING, role, "", lab),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": subject,
        },
        {
            **_obj(
                R.SECRET, TOKEN_SECRET, REMOTE_NAMESPACE, lab, {"kubernetes.io/service-account.name": SERVICE_ACCOUNT}
            ),
            "type": "kubernetes.io/service-account-token",
        },
    ]
    if link_namespace:
        objects += [
            {**_obj(R.ROLE, role, LINK_NAMESPACE, lab), "rules": link_secret_rules()},
            {
                **_obj(R.ROLE_BINDING, role, LINK_NAMESPACE, lab),
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
                "subjects": subject,
            },
        ]
    for namespace in mesh_namespaces:
        objects += exchange_objects(namespace, lab)
    return objects


def exchange_objects(
    mesh_namespace: str, labels_: Mapping[str, str], account_namespace: str = REMOTE_NAMESPACE
) -> list[Object]:
    """Role `meshrules-remote-csr-exchange` in ``mesh_namespace`` and its RoleBinding to `meshrules-remote`.

    The management side's end of the CSR exchange (`rbac.remote_exchange_rules`). `deploy/agent`
    renders these same objects (its labels aside) so that either can create them first: it labels
    them `meshrules.io/owner`, so registering after `kubectl apply -k deploy/agent` adopts them
    instead of refusing them as a user's.
    """
    return [
        {**_obj(R.ROLE, EXCHANGE_ROLE, mesh_namespace, labels_), "rules": remote_exchange_rules()},
        {
            **_obj(R.ROLE_BINDING, EXCHANGE_ROLE, mesh_namespace, labels_),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": EXCHANGE_ROLE},
            "subjects": [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": account_namespace}],
        },
    ]


def exchange_namespaces(remote: Cluster, requested: Sequence[str] = ()) -> tuple[str, ...]:
    """The mesh namespaces of ``remote`` the management side needs its CSR-exchange Role in, sorted.

    The management side writes a mesh's exchange in the mesh's control-plane namespace (as
    discovery finds it), so: `istio-system` and `linkerd` when they exist, the namespaces of
    istiod Deployments (label `app: istiod`) and of Linkerd control planes (namespace label
    `linkerd.io/is-control-plane: "true"`) — two filtered lists — and every ``requested`` one,
    which must exist (a typo would otherwise leave a mesh without its Role, silently).
    """
    missing = [ns for ns in requested if not is_dns1123_label(ns) or remote.get(R.NAMESPACE, ns) is None]
    if missing:
        names = ", ".join(f"`{ns}`" for ns in missing)
        one = len(missing) == 1
        raise UsageError(
            f"mesh namespace {names} does not exist" if one else f"mesh namespaces {names} do not exist",
            code=NO_MESH_NAMESPACE,
            location=Location(cluster=remote.name, kind="Namespace" if one else "", name=missing[0] if one else ""),
            hint="install the mesh first, or leave `--mesh-namespace` out; registering again later adds the Role",
        )
    found = set(requested)
    found |= {ns for ns in MESH_NAMESPACES if remote.get(R.NAMESPACE, ns) is not None}
    for deployment in remote.list(R.DEPLOYMENT, "", ISTIOD_SELECTOR).items:
        meta = deployment["metadata"]
        # The name rule discovery uses (`istiod` or `istiod-<revision>`), not just the label.
        if meta["name"] == ISTIOD or str(meta["name"]).startswith(f"{ISTIOD}-"):
            found.add(str(meta["namespace"]))
    found |= {str(ns["metadata"]["name"]) for ns in remote.list(R.NAMESPACE, "", f"{CONTROL_PLANE_LABEL}=true").items}
    return tuple(sorted(found))


def management_objects(
    name: str,
    kubeconfig: str,
    *,
    owner: str = MANAGEMENT_NAMESPACE,
    cluster_domain: str | None = None,
    region: str | None = None,
) -> list[Object]:
    """The kubeconfig Secret and the KubernetesCluster on the management cluster."""
    lab = labels(name, owner)
    spec: dict[str, Any] = {"secretName": name}
    if cluster_domain:
        spec["clusterDomain"] = cluster_domain
    if region:
        spec["region"] = region
    return [
        {
            **_obj(R.SECRET, name, owner, lab),
            "type": KUBECONFIG_SECRET_TYPE,
            "data": {KUBECONFIG_KEY: _b64(kubeconfig)},
        },
        {**_obj(R.KUBERNETES_CLUSTER, name, owner, lab), "spec": spec},
    ]


def register(
    name: str,
    remote: Cluster,
    management: Cluster,
    *,
    server: str,
    ca_pem: str | None = None,
    owner: str = MANAGEMENT_NAMESPACE,
    cluster_domain: str | None = None,
    region: str | None = None,
    token_wait: float = TOKEN_WAIT_SECONDS,
    mesh_namespaces: Sequence[str] = (),
) -> Registration:
    """Register ``remote`` as cluster ``name`` in ``management``; idempotent.

    ``server`` is the URL the management plane reaches the remote API server at; ``ca_pem`` the CA
    to trust when the token Secret carries none; ``mesh_namespaces`` mesh namespaces beyond those
    `exchange_namespaces` finds (each must exist).
    """
    check_name(name)
    writes = 0
    has_link_ns = remote.get(R.NAMESPACE, LINK_NAMESPACE) is not None
    meshes = exchange_namespaces(remote, mesh_namespaces)
    wanted = remote_objects(name, owner=owner, link_namespace=has_link_ns, mesh_namespaces=meshes)
    if remote.get(R.NAMESPACE, REMOTE_NAMESPACE) is None:
        wanted.insert(0, _obj(R.NAMESPACE, REMOTE_NAMESPACE, "", labels(name, owner)))
    writes += _ensure(remote, wanted, owner)
    token, token_ca = _wait_for_token(remote, token_wait)
    kubeconfig = build_kubeconfig(name, server, token, token_ca or ca_pem, REMOTE_NAMESPACE)
    mgmt_wanted = management_objects(name, kubeconfig, owner=owner, cluster_domain=cluster_domain, region=region)
    if management.get(R.NAMESPACE, owner) is None:
        # The management namespace is meshrules' own; it is created, never owned by one cluster.
        mgmt_wanted.insert(0, _obj(R.NAMESPACE, owner, "", {OWNER_LABEL: owner}))
    writes += _ensure(management, mgmt_wanted, owner)
    return Registration(
        name=name,
        remote=tuple(ObjectKey.of(o) for o in wanted),
        management=tuple(ObjectKey.of(o) for o in mgmt_wanted),
        writes=writes,
    )


def deregister(
    name: str,
    management: Cluster,
    remote: Cluster | None,
    *,
    owner: str = MANAGEMENT_NAMESPACE,
    remove_access: bool = True,
) -> Deregistration:
    """Remove cluster ``name``: its outputs and registration objects on ``remote`` (when given), then its
    kubeconfig Secret, KubernetesCluster and discovery objects on ``management``.

    Only objects labelled `meshrules.io/owner: <owner>` are deleted; registration objects also
    need `meshrules.io/cluster: <name>`, so deregistering a cluster that is also the management
    cluster leaves the other clusters' Secrets alone. With ``remove_access`` False (``remote`` is
    reached through the registered service account itself, which may not delete RBAC and would
    revoke its own token) the service account, RBAC and namespace are left and listed in `left`.
    """
    check_name(name)
    result = Deregistration(name=name)
    if management.get(R.KUBERNETES_CLUSTER, name, owner) is None and management.get(R.SECRET, name, owner) is None:
        raise UsageError(
            f"cluster `{name}` is not registered",
            code=NOT_REGISTERED,
            location=Location(kind="KubernetesCluster", namespace=owner, name=name),
            hint="`meshrules cluster list` shows the registered clusters",
        )
    if remote is not None:
        # Outputs and patches first, through the planner: the same ownership rules as apply.
        try:
            plan = plan_apply(remote.name, [], read_live(remote), owner=owner)
            _record(result, remote.name, execute(plan, remote))
        except ClusterError as err:
            result.failed.append((f"{remote.name}: outputs", err))
        access = [r for r in _REMOVAL_ORDER if r not in R.EMITTED]
        if remove_access:
            _delete_labelled(remote, access, selector(labels(name, owner)), result)
        else:
            result.left.extend(
                f"{remote.name}: {r.kind} objects labelled {selector(labels(name, owner))}" for r in access
            )
    _delete_labelled(management, R.DISCOVERED, selector(labels(name, owner)), result, namespace=owner)
    _delete_labelled(management, [R.SECRET], selector(labels(name, owner)), result, namespace=owner)
    return result


def list_clusters(management: Cluster, *, owner: str = MANAGEMENT_NAMESPACE) -> list[RegisteredCluster]:
    """The registered clusters: KubernetesCluster objects in the management namespace, with their Secrets."""
    rows = []
    secrets = {
        str(s["metadata"]["name"])
        for s in management.list(R.SECRET, owner, selector({OWNER_LABEL: owner})).items
        if s.get("type") == KUBECONFIG_SECRET_TYPE
    }
    for obj in management.list(R.KUBERNETES_CLUSTER, owner).items:
        spec = obj.get("spec") or {}
        secret = spec.get("secretName")
        rows.append(
            RegisteredCluster(
                name=str(obj["metadata"]["name"]),
                secret_name=secret,
                has_secret=secret in secrets,
                cluster_domain=spec.get("clusterDomain"),
                region=spec.get("region"),
                status=obj.get("status") or {},
            )
        )
    return sorted(rows, key=lambda r: r.name)


def registered_kubeconfig(management: Cluster, name: str, *, owner: str = MANAGEMENT_NAMESPACE) -> str:
    """The kubeconfig text stored for cluster ``name`` (never printed by meshrules)."""
    cluster = management.get(R.KUBERNETES_CLUSTER, name, owner)
    secret_name = str(((cluster or {}).get("spec") or {}).get("secretName") or name)
    secret = management.get(R.SECRET, secret_name, owner)
    if secret is None:
        raise UsageError(
            f"cluster `{name}` has no kubeconfig Secret `{secret_name}`",
            code=NOT_REGISTERED,
            location=Location(kind="Secret", namespace=owner, name=secret_name),
            hint=f"register it: `meshrules cluster register {name} --remote-context …`",
        )
    return kubeconfig_from_secret(secret, name)


def check_name(name: str) -> None:
    """A cluster name is a DNS-1123 label (it names directories, Secrets and discovery objects)."""
    if not is_dns1123_label(name):
        raise UsageError(
            f"cluster name `{name}` is not a DNS-1123 label",
            code=BAD_NAME,
            hint="use lower-case letters, digits and `-`, at most 63 characters",
        )


# --- internals -------------------------------------------------------------------------------------


def _obj(
    res: ApiResource,
    name: str,
    namespace: str,
    labels_: Mapping[str, str],
    annotations: Mapping[str, str] | None = None,
) -> Object:
    meta: Object = {"name": name, "labels": dict(labels_)}
    if res.namespaced:
        meta["namespace"] = namespace
    if annotations:
        meta["annotations"] = dict(annotations)
    return {"apiVersion": res.api_version, "kind": res.kind, "metadata": meta}


def _ensure(cluster: Cluster, wanted: Sequence[Object], owner: str) -> int:
    """Create or update ``wanted`` through the apply planner (no pruning); refuse objects not owned."""
    live: list[Mapping[str, Any]] = []
    for obj in wanted:
        res = resource_of(obj)
        assert res is not None
        meta = obj["metadata"]
        current = cluster.get(res, meta["name"], meta.get("namespace", ""))
        if current is not None:
            live.append(current)
    plan = plan_apply(cluster.name, wanted, live_index(live), owner=owner, prune=False)
    if plan.reported:
        refused = ", ".join(f"`{c.key}`" for c in plan.reported)
        raise ClusterError(
            f"{refused} exist(s) and meshrules does not own them",
            code=NOT_OWNED,
            location=Location(cluster=cluster.name),
            hint=f"meshrules never takes over objects; delete or rename them, or label them `{OWNER_LABEL}: {owner}`",
        )
    result = execute(plan, cluster)
    if result.failed:
        raise result.failed[0][1]
    return len(result.done)


def _wait_for_token(remote: Cluster, wait: float) -> tuple[str, str | None]:
    """The token (and CA) the token controller puts into the token Secret."""
    deadline = time.monotonic() + wait
    delay = 0.05
    while True:
        secret = remote.get(R.SECRET, TOKEN_SECRET, REMOTE_NAMESPACE)
        token = secret_data(secret, "token") if secret else None
        if token:
            return token, secret_data(secret, "ca.crt") if secret else None
        if time.monotonic() >= deadline:
            raise ClusterError(
                "the service-account token was not issued in time",
                code=TOKEN_NOT_ISSUED,
                location=Location(cluster=remote.name, kind="Secret", namespace=REMOTE_NAMESPACE, name=TOKEN_SECRET),
                hint="is kube-controller-manager's token controller running? registration can be run again",
            )
        time.sleep(delay)
        delay = min(delay * 2, 1.0)


def _delete_labelled(
    cluster: Cluster,
    kinds: Sequence[ApiResource],
    label_selector: str,
    result: Deregistration,
    namespace: str = "",
) -> None:
    try:
        served = served_resources(cluster, kinds)
    except ClusterError as err:
        result.failed.append((f"{cluster.name}: {', '.join(r.kind for r in kinds)}", err))
        return
    for res in served:
        try:
            found = cluster.list(res, namespace, label_selector).items
        except ClusterError as err:
            result.failed.append((f"{cluster.name}: {res.kind} objects", err))
            continue
        for obj in found:
            meta = obj["metadata"]
            ref = f"{cluster.name}: {ObjectKey.of(obj)}"
            try:
                cluster.delete(
                    res, meta["name"], meta.get("namespace", ""), resource_version=str(meta.get("resourceVersion", ""))
                )
            except ClusterError as err:
                result.failed.append((ref, err))
                continue
            result.removed.append(ref)


def _record(result: Deregistration, cluster: str, done: ApplyResult) -> None:
    for change in done.done:
        suffix = " (the fields meshrules patched)" if change.action is Action.RELEASE else ""
        result.removed.append(f"{cluster}: {change.key}{suffix}")
    for change, err in done.failed:
        result.failed.append((f"{cluster}: {change.key}", err))


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()
