"""The nearest miss of a denial: the policy that came closest and the smallest edit that allows it.

For a request denied at a destination, in this order:

* an Istio DENY rule matched (DENIED_EXPLICIT): that rule; the edit removes it;
* AccessPolicies select the destination: the one whose rule excludes the request on the fewest
  fields (sources, methods, paths, ports; ties go to the earliest accepted); the edit adds the
  caller's service account / the method / the path / the Service port to exactly those fields;
* a user's own ALLOW AuthorizationPolicy applies: its rule that came closest and the field that
  excluded the request (the evaluator's `RuleMiss`); the edit adds the request's value there;
* nothing selects the destination (enforcement denies): a new AccessPolicy for exactly this
  caller's service account, destination, method and port.

A request stopped before authorization is not fixed by a policy edit:

* TRUST_DOMAIN_REJECTED (an Istio destination mesh does not accept the caller's trust domain):
  the mesh-config change `check` gives in MR0606 — add the caller's trust domain to
  `trustDomainAliases` under key `mesh` of the destination mesh's ConfigMap — followed by the
  policy edit for what the backend would deny next, if anything;
* MTLS_MISMATCH (no common root, or plaintext against STRICT): no nearest miss; the reason says
  what does not match.

The miss is computed here, purely; whether the edit really flips the answer needs the rule set
and the emitters, so `meshrules.pipeline.query` applies the edits, re-runs the whole pipeline and
the query, and fills in `NearestMiss.verified`.
"""

from __future__ import annotations

import re
from typing import Any

from meshrules.engine.facts_from_graph import mesh_config_map
from meshrules.model.common import MANAGEMENT_NAMESPACE
from meshrules.model.discovery import MeshType
from meshrules.model.source import KubeObject
from meshrules.sim.access import check_rule, closest
from meshrules.sim.call import Call, Denial, Leg
from meshrules.sim.istio.mtls import trust_domain_accepted
from meshrules.sim.verdict import DENIED_EXPLICIT, Edit, NearestMiss

__all__ = ["nearest_miss", "trust_domain_miss"]

# Where Istio keeps the aliases: a YAML document under this key of the mesh's ConfigMap (the
# edit's field walks into it; `meshrules.pipeline.query.apply_edits` parses and re-writes it).
_MESH_KEY = "mesh"
_ALIASES_FIELD = f"data.{_MESH_KEY}.trustDomainAliases"

# Kubernetes names are at most 63 characters in a label; a generated policy name stays within it.
_MAX_NAME = 63
_UNSAFE = re.compile(r"[^a-z0-9-]+")


def nearest_miss(call: Call, denial: Denial) -> NearestMiss | None:
    """The nearest miss for ``denial`` (None when no edit of a policy could allow the request)."""
    dest = denial.destination
    backend = f"{dest.cluster}/{dest.namespace}/{dest.service}"
    if denial.code == DENIED_EXPLICIT and denial.policy is not None:
        return _remove_deny(call, denial, backend)
    fleet = call.fleet
    rules = fleet.access.get(dest.name, ())
    checks = [check_rule(r, call.caller, call.mesh, call.method, call.path, denial.service_port) for r in rules]
    if any(c.allows for c in checks):
        return None  # the rule set allows it: what denies is not an AccessPolicy (e.g. plaintext)
    best = closest(checks)
    if best is not None:
        edits = tuple(_access_edit(call, best.rule.policy, m.field, denial) for m in best.misses)
        first = best.misses[0]
        policy = best.rule.policy
        where = fleet.scenario.location_of(policy, first.field)
        return NearestMiss(policy, str(where) if where else "", first.field, first.detail, edits, backend)
    user = _user_rule(call, denial, backend)
    if user is not None:
        return user
    return _create(call, denial, backend)


def _remove_deny(call: Call, denial: Denial, backend: str) -> NearestMiss:
    dest = denial.destination
    key = denial.policy or ""
    obj = call.fleet.mesh_object(dest.cluster, "AuthorizationPolicy", key)
    field = f"spec.rules[{denial.rule}]"
    edit = Edit(f"{dest.cluster}/AuthorizationPolicy {key}", "remove", field, None)
    return NearestMiss(
        f"AuthorizationPolicy {key}",
        obj.location if obj else "",
        field,
        f"DENY rule {denial.rule} of `{key}` matches the request",
        (edit,),
        backend,
    )


def _source_ref(call: Call) -> dict[str, str]:
    c = call.caller
    return {"name": c.service_account, "namespace": c.namespace, "cluster": c.cluster}


def _access_edit(call: Call, policy: str, field: str, denial: Denial) -> Edit:
    value: Any
    if field == "spec.sourceSelector":
        value = {"serviceAccounts": [_source_ref(call)]}
    elif field == "spec.allowedMethods":
        value = call.method
    elif field == "spec.allowedPaths":
        value = call.path.partition("?")[0]
    else:
        value = denial.service_port
    return Edit(policy, "add", field, value)


def _user_rule(call: Call, denial: Denial, backend: str) -> NearestMiss | None:
    """The closest rule of a user's ALLOW AuthorizationPolicy, with an edit for its failing field."""
    dest = denial.destination
    for miss in denial.misses:
        value = _rule_value(call, denial, miss.field)
        if value is None:
            continue
        key = miss.policy
        obj = call.fleet.mesh_object(dest.cluster, "AuthorizationPolicy", key)
        if obj is None or obj.emitted:
            continue
        field = f"spec.{miss.field}"
        edit = Edit(f"{dest.cluster}/AuthorizationPolicy {key}", "add", field, value)
        return NearestMiss(f"AuthorizationPolicy {key}", obj.location, field, miss.detail, (edit,), backend)
    return None


def _rule_value(call: Call, denial: Denial, field: str) -> str | None:
    last = field.rsplit(".", 1)[-1]
    return {
        "principals": denial.identity_seen,
        "namespaces": call.caller.namespace,
        "methods": call.method,
        "paths": call.path.partition("?")[0],
        "ports": str(denial.target_port) if denial.target_port is not None else None,
        "hosts": call.host,
    }.get(last)


def _create(call: Call, denial: Denial, backend: str) -> NearestMiss:
    dest = denial.destination
    name = _UNSAFE.sub("-", f"allow-{call.caller.service_account}-to-{dest.service}".lower()).strip("-")[:_MAX_NAME]
    spec: dict[str, Any] = {
        "sourceSelector": [{"serviceAccounts": [_source_ref(call)]}],
        "destinationSelector": [
            {"services": [{"name": dest.service, "namespace": dest.namespace, "cluster": dest.cluster}]}
        ],
        "allowedMethods": [call.method],
    }
    if denial.service_port is not None:
        spec["allowedPorts"] = [denial.service_port]
    namespace = dest.namespace or MANAGEMENT_NAMESPACE
    body = {
        "apiVersion": "networking.meshrules.io/v1alpha1",
        "kind": "AccessPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }
    ref = f"AccessPolicy {namespace}/{name}"
    member = call.fleet.membership.get(dest.mesh or "")
    why = (
        f"no AccessPolicy selects {dest.name} and {member.virtual_mesh} enforces access"
        if member is not None and member.enforced and member.virtual_mesh
        else f"no AccessPolicy selects {dest.name}"
    )
    return NearestMiss(ref, "", "spec.destinationSelector", why, (Edit(ref, "create", "", body),), backend)


def trust_domain_miss(call: Call, leg: Leg) -> NearestMiss | None:
    """For TRUST_DOMAIN_REJECTED at ``leg``: the mesh-config change that makes the destination
    accept the caller's trust domain (MR0606's hint), then the policy edit for the next obstacle.

    None when the rejecting mesh is not Istio (Linkerd accepts one trust domain: reinstalling is
    no edit) or the caller's trust domain is in fact accepted.
    """
    fleet = call.fleet
    dest = fleet.destination_by_ref.get(leg.backend.destination)
    dest_mesh = fleet.meshes.get(dest.mesh or "") if dest is not None else None
    if dest is None or dest_mesh is None or call.mesh is None or dest_mesh.type != MeshType.ISTIO:
        return None
    caller_domain = call.mesh.trust_domain
    decision = trust_domain_accepted(
        caller_domain, dest_mesh.accepted_trust_domains, destination_trust_domain=dest_mesh.trust_domain
    )
    if decision.accepted:
        return None
    configmap = _mesh_configmap(call, dest_mesh.cluster, dest_mesh.namespace, mesh_config_map(dest_mesh))
    key = f"{dest_mesh.namespace}/{configmap.name if configmap is not None else mesh_config_map(dest_mesh)}"
    edits = [Edit(f"{dest_mesh.cluster}/ConfigMap {key}", "add", _ALIASES_FIELD, caller_domain)]
    detail = (
        f"`{dest_mesh.name}` does not accept trust domain `{caller_domain}` of the caller's mesh "
        f"`{call.mesh.name}`; meshrules does not edit the mesh installation"
    )
    if leg.denial is not None:
        # Past the trust domain the backend would still deny: the policy edit for that too, so
        # that the verified re-run shows the request allowed.
        after = nearest_miss(call, leg.denial)
        if after is not None:
            edits += after.edits
            detail += f"; then {after.policy}: {after.detail}"
    location = str(configmap.field_location(f"data.{_MESH_KEY}")) if configmap is not None else ""
    return NearestMiss(f"ConfigMap {key}", location, _ALIASES_FIELD, detail, tuple(edits), leg.backend.destination)


def _mesh_configmap(call: Call, cluster: str, namespace: str, name: str) -> KubeObject | None:
    """The ConfigMap discovery read the mesh config from (`istio-<rev>`, else `istio`)."""
    found: dict[str, KubeObject] = {}
    for snapshot in call.fleet.scenario.clusters:
        if snapshot.name == cluster:
            for obj in snapshot.objects:
                if obj.kind == "ConfigMap" and obj.namespace == namespace and obj.name in (name, "istio"):
                    found[obj.name] = obj
    return found.get(name) or found.get("istio")
