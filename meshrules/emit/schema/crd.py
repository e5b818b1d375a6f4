"""CustomResourceDefinitions: loading them, and picking the schema for an object.

Place: the top of ``meshrules.emit.schema``. A :class:`CrdRegistry` maps (group, version, kind)
to the version's ``openAPIV3Schema``; it compiles a schema (``openapi.py``) and its CEL rules
(``cel.py``) the first time an object of that kind is validated, and reuses them after.

The CRDs meshrules targets ship inside the package (``crds/``, provenance in ``crds/SOURCES.md``),
in bundles, so that a clone or an installed wheel validates with no network:

==========================  =================================================================
``istio-crds``              Istio's CRDs (``crd-all.gen.yaml``)
``istio-gateway-api``       Gateway API v1.6.0, experimental channel, as Istio vendors it
``linkerd-crds``            Linkerd's policy, workload and ServiceProfile CRDs
``linkerd-gateway-api``     Gateway API v1.1.1 routes, as Linkerd vendors them
``linkerd-smi``             SMI TrafficSplit, as linkerd-smi vendors it
==========================  =================================================================

Both Gateway API bundles define ``gateway.networking.k8s.io/v1 HTTPRoute``, differently, so they
are never in one registry. :meth:`CrdRegistry.bundled` takes a profile: ``istio`` (what an Istio
cluster has: its CRDs and its Gateway API), ``linkerd`` (Linkerd's CRDs, its Gateway API and SMI),
``all`` (``istio`` plus Linkerd's own CRDs and SMI: what :func:`validate` uses), or one bundle.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from meshrules.emit.schema.openapi import Category, Node, SchemaViolation, compile_schema, validate_object

__all__ = ["BUNDLES", "PROFILES", "CrdRegistry", "CrdVersion", "validate"]

BUNDLES: Mapping[str, tuple[str, ...]] = {
    "istio-crds": ("istio/crd-all.gen.yaml",),
    "istio-gateway-api": ("gateway-api/gateway-api-crd.yaml",),
    "linkerd-crds": (
        "linkerd/policy/authorization-policy.yaml",
        "linkerd/policy/egress-network.yaml",
        "linkerd/policy/http-local-ratelimit-policy.yaml",
        "linkerd/policy/httproute.yaml",
        "linkerd/policy/meshtls-authentication.yaml",
        "linkerd/policy/network-authentication.yaml",
        "linkerd/policy/server-authorization.yaml",
        "linkerd/policy/server.yaml",
        "linkerd/workload/external-workload.yaml",
        "linkerd/serviceprofile.yaml",
    ),
    "linkerd-gateway-api": (
        "linkerd/gateway-api/gateway.networking.k8s.io_grpcroutes.yaml",
        "linkerd/gateway-api/gateway.networking.k8s.io_httproutes.yaml",
        "linkerd/gateway-api/gateway.networking.k8s.io_tcproutes.yaml",
        "linkerd/gateway-api/gateway.networking.k8s.io_tlsroutes.yaml",
    ),
    "linkerd-smi": ("linkerd/smi/trafficsplits.split.smi-spec.io.yaml",),
}

PROFILES: Mapping[str, tuple[str, ...]] = {
    "all": ("istio-crds", "istio-gateway-api", "linkerd-crds", "linkerd-smi"),
    "istio": ("istio-crds", "istio-gateway-api"),
    "linkerd": ("linkerd-crds", "linkerd-gateway-api", "linkerd-smi"),
    **{name: (name,) for name in BUNDLES},
}

# The C loader parses the 3.5 MB of bundled CRDs in a fraction of a second; the pure one in ~20 s.
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True, slots=True)
class CrdVersion:
    """One served version of one CRD: what validating an object of it needs."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    served: bool
    storage: bool
    deprecated: bool
    status_subresource: bool
    schema: Mapping[str, Any] = field(repr=False)
    source: str = ""

    @property
    def api_version(self) -> str:
        """``group/version``, as objects spell it."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> tuple[str, str, str]:
        """(group, version, kind): what an object of this version is looked up by."""
        return (self.group, self.version, self.kind)


def _versions_of(doc: Mapping[str, Any], source: str) -> Iterator[CrdVersion]:
    spec = doc.get("spec") or {}
    names = spec.get("names") or {}
    shared_schema = (spec.get("validation") or {}).get("openAPIV3Schema")  # apiextensions v1beta1
    for v in spec.get("versions") or ():
        schema = ((v.get("schema") or {}).get("openAPIV3Schema")) or shared_schema or {}
        yield CrdVersion(
            group=str(spec.get("group", "")),
            version=str(v.get("name", "")),
            kind=str(names.get("kind", "")),
            plural=str(names.get("plural", "")),
            namespaced=spec.get("scope", "Namespaced") == "Namespaced",
            served=bool(v.get("served", True)),
            storage=bool(v.get("storage", False)),
            deprecated=bool(v.get("deprecated", False)),
            status_subresource="status" in (v.get("subresources") or {}),
            schema=schema,
            source=source,
        )


class CrdRegistry:
    """The CRDs a cluster has: picks the schema for an object and validates the object with it.

    Build one from CRD documents, files, or the bundles shipped with meshrules
    (:meth:`bundled`). A registry is read-only once built; compiled schemas are cached in it, so
    keep one registry (``bundled`` already does) rather than building one per object.
    """

    def __init__(self, versions: Iterable[CrdVersion] = ()) -> None:
        self._versions: dict[tuple[str, str, str], CrdVersion] = {}
        for v in versions:
            other = self._versions.get(v.key)
            if other is not None:
                raise ValueError(
                    f"`{v.api_version}` `{v.kind}` is defined twice: in {other.source or '?'} and in {v.source or '?'}"
                )
            self._versions[v.key] = v
        self._compiled: dict[tuple[str, str, str], Node] = {}
        self._lock = threading.Lock()

    # -- building -----------------------------------------------------------------------------

    @classmethod
    def from_documents(cls, docs: Iterable[Any], source: str = "") -> CrdRegistry:
        """A registry of every CustomResourceDefinition among ``docs`` (other kinds are skipped)."""
        return cls(_crd_versions(docs, source))

    @classmethod
    def from_yaml(cls, text: str, source: str = "") -> CrdRegistry:
        """A registry of the CRDs in a (multi-document) YAML text."""
        return cls.from_documents(yaml.load_all(text, Loader=_Loader), source)

    @classmethod
    def from_files(cls, paths: Iterable[str | Path]) -> CrdRegistry:
        """A registry of the CRDs in the given YAML files."""
        versions: list[CrdVersion] = []
        for p in paths:
            path = Path(p)
            versions += _crd_versions(yaml.load_all(path.read_text(encoding="utf-8"), Loader=_Loader), str(path))
        return cls(versions)

    @classmethod
    def bundled(cls, profile: str = "all") -> CrdRegistry:
        """The registry of a profile of the CRDs shipped with meshrules (see the module docstring).

        Cached: every call with the same profile returns the same registry, so schemas compile once.
        """
        if profile not in PROFILES:
            raise ValueError(f"unknown CRD profile `{profile}` (known: {', '.join(sorted(PROFILES))})")
        return _bundled(profile)

    # -- looking up ---------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._versions)

    def __iter__(self) -> Iterator[CrdVersion]:
        return iter(sorted(self._versions.values(), key=lambda v: v.key))

    def lookup(self, api_version: str, kind: str) -> CrdVersion | None:
        """The CRD version serving ``api_version`` and ``kind``, or ``None``."""
        group, _, version = api_version.rpartition("/")
        return self._versions.get((group, version, kind))

    def schema(self, api_version: str, kind: str) -> Mapping[str, Any] | None:
        """The ``openAPIV3Schema`` for ``api_version`` and ``kind``, or ``None``."""
        v = self.lookup(api_version, kind)
        return v.schema if v is not None else None

    def kinds(self) -> list[tuple[str, str]]:
        """Every (apiVersion, kind) this registry serves, sorted."""
        return sorted((v.api_version, v.kind) for v in self._versions.values() if v.served)

    def compiled(self, crd: CrdVersion) -> Node:
        """The compiled schema of ``crd`` (compiled on first use, then cached)."""
        node = self._compiled.get(crd.key)
        if node is None:
            with self._lock:
                node = self._compiled.get(crd.key)
                if node is None:
                    node = self._compiled[crd.key] = compile_schema(crd.schema)
        return node

    # -- validating ---------------------------------------------------------------------------

    def validate(self, obj: Mapping[str, Any]) -> list[SchemaViolation]:
        """Every violation of ``obj`` (a dict as YAML gives it) against its CRD, sorted by path.

        An empty list means the API server would accept the object as it is and keep every field.
        An object whose apiVersion and kind no CRD here serves gets one
        :attr:`~Category.UNKNOWN_KIND` violation.
        """
        if not isinstance(obj, Mapping):
            return [SchemaViolation("", "object is not a mapping", Category.UNKNOWN_KIND)]
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if not isinstance(api_version, str) or not isinstance(kind, str) or not api_version or not kind:
            return [SchemaViolation("", "object has no `apiVersion` and `kind`", Category.UNKNOWN_KIND)]
        crd = self.lookup(api_version, kind)
        if crd is None or not crd.served:
            return [SchemaViolation("", self._unknown(api_version, kind), Category.UNKNOWN_KIND)]
        return validate_object(
            self.compiled(crd),
            obj,
            namespaced=crd.namespaced,
            status_subresource=crd.status_subresource,
        )

    def _unknown(self, api_version: str, kind: str) -> str:
        group = api_version.rpartition("/")[0]
        served = sorted(v.version for v in self._versions.values() if v.group == group and v.kind == kind and v.served)
        if served:
            return f"no CRD serves `{api_version}` `{kind}` (served versions: {', '.join(served)})"
        return f"no CRD serves `{api_version}` `{kind}`"


def _crd_versions(docs: Iterable[Any], source: str) -> list[CrdVersion]:
    out: list[CrdVersion] = []
    for doc in docs:
        if isinstance(doc, Mapping) and doc.get("kind") == "CustomResourceDefinition":
            out += _versions_of(doc, source)
    return out


@cache
def _bundle_versions(bundle: str) -> tuple[CrdVersion, ...]:
    root = resources.files(__package__).joinpath("crds")
    out: list[CrdVersion] = []
    for rel in BUNDLES[bundle]:
        text = root.joinpath(rel).read_text(encoding="utf-8")
        out += _crd_versions(yaml.load_all(text, Loader=_Loader), rel)
    return tuple(out)


@cache
def _bundled(profile: str) -> CrdRegistry:
    return CrdRegistry(v for bundle in PROFILES[profile] for v in _bundle_versions(bundle))


def validate(obj: Mapping[str, Any], registry: CrdRegistry | None = None) -> list[SchemaViolation]:
    """Validate ``obj`` against its CRD, by default among all the CRDs shipped with meshrules.

    Returns every violation, sorted by path; an empty list means the API server would accept
    the object unchanged. See :meth:`CrdRegistry.validate`.
    """
    return (registry or CrdRegistry.bundled()).validate(obj)
