"""A scenario (spec §1.1) as data, and the pure step from parsed documents to typed objects.

Reading the directory is I/O and lives in `meshrules.kube.scenario`; everything here is a function
of its inputs, so snapshots, live clusters and tests all go through the same checks.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from meshrules.errors import Diagnostic, Location
from meshrules.model.common import MANAGEMENT_NAMESPACE
from meshrules.model.documents import Document
from meshrules.model.policy import NETWORKING_API_VERSION, POLICY_KINDS, Policy
from meshrules.model.source import KubeObject
from meshrules.model.testing import TESTING_API_VERSION, ReachabilityTest

INVALID_FIELD = "MR0010"
UNKNOWN_FIELD = "MR0011"
MISSING_FIELD = "MR0012"
MISSING_NAME = "MR0013"
DUPLICATE_OBJECT = "MR0014"
UNKNOWN_MESHRULES_KIND = "MR0015"
INVALID_CLUSTER_NAME = "MR0016"
MISPLACED_OBJECT = "MR0017"
WRONG_API_VERSION = "MR0018"

# Kinds that have no namespace; any other object without one lives in `default`, as kubectl would.
CLUSTER_SCOPED_KINDS = frozenset(
    {
        "Namespace",
        "Node",
        "PersistentVolume",
        "StorageClass",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "PriorityClass",
        "APIService",
        "IngressClass",
        "GatewayClass",
        "RuntimeClass",
        "CSIDriver",
        "KubernetesCluster",
    }
)


@dataclass(frozen=True, slots=True)
class RuleSource:
    """A rule file a scenario brings (`policies/*.rules`)."""

    path: str
    text: str


@dataclass(frozen=True, slots=True)
class ClusterSnapshot:
    """Everything one cluster directory holds."""

    name: str
    objects: tuple[KubeObject, ...]
    config: Document | None = None


@dataclass(frozen=True)
class Scenario:
    """A loaded scenario: clusters, policies, tests, rule files, and every problem found."""

    root: str
    clusters: tuple[ClusterSnapshot, ...] = ()
    policies: tuple[Policy, ...] = ()
    tests: tuple[ReachabilityTest, ...] = ()
    rule_files: tuple[RuleSource, ...] = ()
    # `Kind namespace/name` of each policy and test → where it was written.
    sources: Mapping[str, Document] = field(default_factory=dict)
    diagnostics: tuple[Diagnostic, ...] = ()
    skipped: Mapping[str, int] = field(default_factory=dict)

    def location_of(self, ref: str, path: str = "") -> Location | None:
        """Where the object ``ref`` (or one of its fields) was written."""
        doc = self.sources.get(ref)
        if doc is None:
            return None
        return Location(file=doc.location.file, line=doc.line_of(path)) if path else doc.location

    @property
    def ok(self) -> bool:
        """Whether loading found no errors."""
        return not any(d.severity == "error" for d in self.diagnostics)


def object_ref(kind: str, namespace: str, name: str) -> str:
    """How messages and indexes name an object: `Kind namespace/name` (`Kind name` when cluster-scoped)."""
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


def cluster_objects(cluster: str, docs: Iterable[Document]) -> tuple[list[KubeObject], list[Diagnostic]]:
    """Turn a cluster's documents into `KubeObject`s, refusing nameless objects and duplicates."""
    objects: list[KubeObject] = []
    diags: list[Diagnostic] = []
    seen: dict[tuple[str, str, str, str], Location] = {}
    for doc in docs:
        kind, api_version = doc.kind, doc.api_version
        meta = doc.body.get("metadata")
        name = meta.get("name") if isinstance(meta, dict) else None
        if not kind or not api_version or not isinstance(name, str) or not name:
            missing = "kind" if not kind else "apiVersion" if not api_version else "metadata.name"
            # `apiVersion: 5` or `name: [x]` is written, but `Document` reads it as absent: say which.
            written = isinstance(meta, dict) and "name" in meta if missing == "metadata.name" else missing in doc.body
            diags.append(
                Diagnostic(
                    code=MISSING_NAME,
                    field=missing,
                    message=f"`{missing}` is empty or not a string" if written else f"object has no `{missing}`",
                    location=Location(file=doc.location.file, line=doc.line_of(missing)),
                    hint="every Kubernetes object needs `apiVersion`, `kind` and `metadata.name`",
                )
            )
            continue
        ns = meta.get("namespace") if isinstance(meta, dict) else None
        namespace = "" if kind in CLUSTER_SCOPED_KINDS else (ns if isinstance(ns, str) and ns else "default")
        key = (api_version.split("/")[0] if "/" in api_version else "", kind, namespace, name)
        if key in seen:
            diags.append(_duplicate(object_ref(kind, namespace, name), doc.location, seen[key]))
            continue
        seen[key] = doc.location
        objects.append(
            KubeObject(
                cluster=cluster,
                api_version=api_version,
                kind=kind,
                namespace=namespace,
                name=name,
                body=doc.body,
                location=doc.location,
                lines=doc.lines,
            )
        )
    return objects, diags


def _duplicate(ref: str, here: Location, first: Location) -> Diagnostic:
    return Diagnostic(
        code=DUPLICATE_OBJECT,
        message=f"duplicate object `{ref}`, first defined at {first}",
        location=here,
        hint="each object may be defined once; remove or rename one of them",
        object=ref,
        related=(str(first),),
    )


@dataclass
class PolicyDocuments:
    """The typed result of reading policy and test documents."""

    policies: list[Policy] = field(default_factory=list)
    tests: list[ReachabilityTest] = field(default_factory=list)
    sources: dict[str, Document] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)


def read_policy_documents(docs: Sequence[Document], into: PolicyDocuments | None = None) -> PolicyDocuments:
    """Parse networking and testing documents strictly; each problem is a diagnostic, never a raise."""
    out = into if into is not None else PolicyDocuments()
    for doc in docs:
        kind = doc.kind
        model: type[BaseModel] | None
        if kind == "ReachabilityTest" and doc.api_version.startswith("testing.meshrules.io/"):
            model = ReachabilityTest
        elif kind in POLICY_KINDS and doc.api_version.startswith("networking.meshrules.io/"):
            model = POLICY_KINDS[kind]
        elif kind in _API_VERSIONS:
            # A meshrules kind without its apiVersion (left out, or another API's, such as Gloo
            # Mesh's `networking.mesh.gloo.solo.io`): an error, never a silently skipped object.
            out.diagnostics.append(_wrong_api_version(doc))
            continue
        elif doc.is_meshrules:
            out.diagnostics.append(
                Diagnostic(
                    code=UNKNOWN_MESHRULES_KIND,
                    field="kind",
                    message=f"unknown kind `{kind}` in `{doc.api_version}`",
                    location=Location(file=doc.location.file, line=doc.line_of("kind")),
                    hint="policies are VirtualMesh, TrafficPolicy or AccessPolicy "
                    "(networking.meshrules.io/v1alpha1); tests are ReachabilityTest (testing.meshrules.io/v1alpha1)",
                )
            )
            continue
        else:
            out.skipped[f"{doc.api_version} {kind}".strip()] += 1
            continue
        try:
            obj = model.model_validate(doc.body)
        except ValidationError as exc:
            out.diagnostics.extend(validation_diagnostics(exc, doc, model))
            continue
        namespace = obj.metadata.namespace or MANAGEMENT_NAMESPACE
        ref = object_ref(kind, namespace, obj.metadata.name)
        if ref in out.sources:
            out.diagnostics.append(_duplicate(ref, doc.location, out.sources[ref].location))
            continue
        out.sources[ref] = doc
        if isinstance(obj, ReachabilityTest):
            out.tests.append(obj)
        else:
            out.policies.append(obj)
    return out


# The kinds meshrules reads from `policies/` and `tests/`, and the apiVersion each must carry.
_API_VERSIONS: Mapping[str, str] = {
    **dict.fromkeys(POLICY_KINDS, NETWORKING_API_VERSION),
    "ReachabilityTest": TESTING_API_VERSION,
}


def _wrong_api_version(doc: Document) -> Diagnostic:
    kind, written = doc.kind, doc.api_version
    right = _API_VERSIONS[kind]
    if written:
        message = f"`{kind}` has apiVersion `{written}`, which is not meshrules' API"
    elif "apiVersion" in doc.body:
        message = f"`{kind}` has an apiVersion that is not a string"
    else:
        message = f"`{kind}` has no apiVersion"
    return Diagnostic(
        code=WRONG_API_VERSION,
        field="apiVersion",
        message=message,
        location=Location(
            file=doc.location.file, line=doc.line_of("apiVersion" if "apiVersion" in doc.body else "kind")
        ),
        hint=f"set `apiVersion: {right}`",
        object=f"{kind} {_meta_name(doc)}",
    )


def validation_diagnostics(exc: ValidationError, doc: Document, model: type[BaseModel]) -> list[Diagnostic]:
    """One `file:line: field: message (hint)` diagnostic per pydantic error."""
    diags = []
    for err in exc.errors(include_url=False):
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        path = _path(loc)
        kind = err["type"]
        if kind == "extra_forbidden":
            code, message = UNKNOWN_FIELD, f"unknown field `{loc[-1]}`"
            allowed = _allowed_fields(model, loc[:-1])
            hint = f"allowed here: {', '.join(allowed)}" if allowed else "remove it"
        elif kind == "missing":
            code, message = MISSING_FIELD, f"required field `{loc[-1]}` is missing"
            hint = f"add `{loc[-1]}`"
        else:
            code = INVALID_FIELD
            message = _backticks(_lower_first(err["msg"].removeprefix("Value error, ")))
            hint = _hint_for(err, message)
        diags.append(
            Diagnostic(
                code=code,
                field=path,
                message=message,
                location=Location(file=doc.location.file, line=doc.line_of(path)),
                hint=hint,
                object=f"{doc.kind} {_meta_name(doc)}",
            )
        )
    return diags


def _meta_name(doc: Document) -> str:
    meta = doc.body.get("metadata")
    if isinstance(meta, dict):
        ns = meta.get("namespace") or MANAGEMENT_NAMESPACE
        return f"{ns}/{meta.get('name', '?')}"
    return "?"


def _path(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text[:2] != text[:2].upper() else text


# pydantic quotes allowed values as 'X'; our messages put user-facing values in backticks.
_QUOTED = re.compile(r"'([^'\s]*)'")


def _backticks(text: str) -> str:
    return _QUOTED.sub(r"`\1`", text)


def _hint_for(err: Any, message: str) -> str:
    ctx = err.get("ctx") or {}
    expected = ctx.get("expected")
    # Enum and literal messages already list what is expected ("input should be 'A' or 'B'"):
    # say it once, and show what was written instead.
    if isinstance(expected, str) and expected not in err.get("msg", ""):
        return f"expected {_backticks(expected)}"
    value = err.get("input")
    # Say what was written once: our own validators already quote it in the message.
    if isinstance(value, str | int | float | bool) and f"`{value}`" not in message:
        return f"got `{value}`"
    return ""


def _allowed_fields(model: type[BaseModel], loc: Sequence[int | str]) -> list[str]:
    """Wire names of the fields allowed at ``loc`` inside ``model`` (best effort, for hints)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        fields = getattr(current, "model_fields", None)
        if not fields:
            return []
        target = next((f for n, f in fields.items() if (f.alias or n) == part or n == part), None)
        if target is None:
            return []
        current = _model_in(target.annotation)
        if current is None:
            return []
    fields = getattr(current, "model_fields", {})
    return sorted(f.alias or n for n, f in fields.items())


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None
