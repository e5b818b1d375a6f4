"""Caller identities in Linkerd's format, for `MeshTLSAuthentication.spec.identities`.

A Linkerd workload identity is `<sa>.<ns>.serviceaccount.identity.<control-plane-ns>.<trustDomain>`
(spec §2). `MeshTLSAuthentication` matches an identity exactly, by suffix (`*.` followed by the
trailing labels, e.g. `*.emojivoto.serviceaccount.identity.linkerd.cluster.local` for a whole
namespace), or any meshed client (`*`) — Linkerd's authorization-policy reference, "MeshTLSAuthentication
Spec" (the policy controller parses `*.`-prefixed strings as suffix matches). There is no wildcard in
the middle of an identity, so a service account named in every namespace is spelled out per namespace
from the discovered workloads that run as it.

A source limited to D's own cluster but to no namespace is spelled per namespace of that cluster's
discovered workloads rather than as a trust-domain suffix, which would also admit the cluster's
`linkerd-gateway` and with it every remote caller (a namespace created later is covered at the next
translation).

Only the string form (`identities`) is used, never `identityRefs`: the CRD accepts one form per object
(`oneOf`), and only strings can name a caller of another trust domain (remote-discovery members).

Which callers can present their own identity to a destination D:
- callers in D's cluster (D's mesh);
- in `remote-discovery` mode, callers in the other Linkerd members of D's VirtualMesh (pod-to-pod,
  identity preserved);
- in gateway mode, callers in other clusters reach D through D's cluster's `linkerd-gateway` and D
  sees the gateway's identity: the rule set puts those in `AccessRule.gateway_identities`, and a
  source pattern limited to another cluster yields no identity here (emitting it would authorize the
  same service account of D's own cluster instead).
"""

from __future__ import annotations

from collections.abc import Iterable

from meshrules.emit.linkerd.scope import LinkerdScope
from meshrules.model.discovery import Destination, Mesh
from meshrules.model.intent import AccessRule, IdentityPattern

ANY_MESHED = "*"


def identity(service_account: str, namespace: str, mesh: Mesh) -> str:
    """The Linkerd identity of a service account in a mesh."""
    return f"{service_account}.{namespace}.serviceaccount.identity.{mesh.namespace}.{mesh.trust_domain}"


def rule_identities(scope: LinkerdScope, rule: AccessRule, destination: Destination) -> tuple[str, ...]:
    """The identities `rule` authorizes at `destination`, gateway identities included, sorted.

    `("*",)` when any meshed client is allowed; `()` when no caller can present a matching identity.
    """
    found: set[str] = set(rule.gateway_identities)
    if not rule.sources:
        # spec §3.3: an empty source selector means any authenticated identity.
        return (ANY_MESHED,)
    for pattern in rule.sources:
        found.update(_pattern_identities(scope, pattern, destination))
    return (ANY_MESHED,) if ANY_MESHED in found else tuple(sorted(found))


def _pattern_identities(scope: LinkerdScope, pattern: IdentityPattern, destination: Destination) -> Iterable[str]:
    if pattern == IdentityPattern():
        return (ANY_MESHED,)
    meshes = _caller_meshes(scope, pattern, destination)
    if not meshes:
        return ()
    if pattern.service_account is not None and pattern.namespace is not None:
        return {identity(pattern.service_account, pattern.namespace, m) for m in meshes}
    if pattern.service_account is not None:
        # No middle wildcard in Linkerd identities: name the namespaces where callers run as it.
        names = {m.name for m in meshes}
        return {
            w.identity for w in scope.inp.workloads if w.mesh in names and w.service_account == pattern.service_account
        }
    if pattern.namespace is not None:
        return {_namespace_suffix(pattern.namespace, m) for m in meshes}
    if pattern.cluster is not None:
        # "Any caller in cluster C": the trust-domain suffix would also match C's linkerd-gateway, which
        # speaks for callers of *other* clusters. Name the namespaces of C's workloads instead (the
        # gateway's namespace holds no Workload).
        return {_namespace_suffix(w.namespace, m) for m in meshes for w in scope.inp.workloads if w.mesh == m.name}
    return {f"*.serviceaccount.identity.{m.namespace}.{m.trust_domain}" for m in meshes}


def _namespace_suffix(namespace: str, mesh: Mesh) -> str:
    return f"*.{namespace}.serviceaccount.identity.{mesh.namespace}.{mesh.trust_domain}"


def _caller_meshes(scope: LinkerdScope, pattern: IdentityPattern, destination: Destination) -> tuple[Mesh, ...]:
    """The meshes whose callers present their own identity at `destination` and fit `pattern`.

    The trust domain of the result is the pattern's when it names one (a mesh may accept aliases).
    """
    own = scope.mesh_of(destination)
    meshes = scope.fellow_members(own.name) if scope.remote_discovery(own.name) else (own,)
    if pattern.cluster is not None:
        meshes = tuple(m for m in meshes if m.cluster == pattern.cluster)
    if pattern.trust_domain is not None:
        matching = tuple(m for m in meshes if m.trust_domain == pattern.trust_domain)
        meshes = matching or tuple(m.model_copy(update={"trust_domain": pattern.trust_domain}) for m in meshes)
    return meshes
