"""Objects as read from a scenario file or a live cluster, before any interpretation.

This is the bottom of the stack: discovery reads `KubeObject`s, whatever their origin, so the
same code serves snapshots and live clusters (spec §1.2).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from meshrules.errors import Location


@dataclass(frozen=True, slots=True)
class KubeObject:
    """One Kubernetes, Istio or Linkerd object of a cluster, read tolerantly.

    ``body`` is the object as a plain mapping with the API's camelCase keys (as YAML gives it, or
    as the kubernetes client's ``sanitize_for_serialization`` returns it). Treat it as read-only.
    ``lines`` maps a dotted field path (``spec.template.metadata.labels``) to its line in the file,
    where the object came from a file; it is empty for live objects.
    """

    cluster: str
    api_version: str
    kind: str
    namespace: str
    name: str
    body: Mapping[str, Any]
    location: Location
    lines: Mapping[str, int] | None = None

    @property
    def group(self) -> str:
        """The API group (``""`` for the core group)."""
        return self.api_version.rpartition("/")[0]

    @property
    def metadata(self) -> Mapping[str, Any]:
        """The object's metadata mapping (empty when absent)."""
        meta = self.body.get("metadata")
        return meta if isinstance(meta, Mapping) else {}

    @property
    def labels(self) -> Mapping[str, str]:
        """The object's labels (empty when absent)."""
        labels = self.metadata.get("labels")
        return labels if isinstance(labels, Mapping) else {}

    @property
    def annotations(self) -> Mapping[str, str]:
        """The object's annotations (empty when absent)."""
        ann = self.metadata.get("annotations")
        return ann if isinstance(ann, Mapping) else {}

    @property
    def spec(self) -> Mapping[str, Any]:
        """The object's spec mapping (empty when absent)."""
        spec = self.body.get("spec")
        return spec if isinstance(spec, Mapping) else {}

    def ref(self) -> str:
        """``Kind namespace/name`` as users read it in messages."""
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"

    def field_location(self, path: str) -> Location:
        """The location of a field of this object, falling back to the object's own location."""
        if self.lines and path in self.lines:
            return Location(file=self.location.file, line=self.lines[path])
        return self.location
