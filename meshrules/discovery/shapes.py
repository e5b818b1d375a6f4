"""Tolerant reading of Kubernetes objects: every wrong shape is a finding, never an exception.

Kubernetes, Istio and Linkerd objects come from files people edit and from live clusters, so a
`containers` that is a mapping or a label value that is a number must not stop discovery. The
`Reader` walks dotted paths from an object's body, returns empty values for what is missing or
malformed, and records a finding for what is malformed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from meshrules.discovery.findings import Findings
from meshrules.model.source import KubeObject

_EMPTY: Mapping[str, Any] = {}


class Reader:
    """Reads fields of one object; paths are dotted from the object's root (`spec.template.spec`).

    Dotted paths suit field names only: keys that may hold dots (labels, annotations, ConfigMap
    data) are read by taking their parent mapping and looking the key up in it.
    """

    __slots__ = ("findings", "obj")

    def __init__(self, obj: KubeObject, findings: Findings) -> None:
        self.obj = obj
        self.findings = findings

    def value(self, path: str, base: Mapping[str, Any] | None = None, base_path: str = "") -> Any:
        """The raw value at ``path`` (relative to ``base``/``base_path`` when given), or None.

        An intermediate that is present but not a mapping is reported once, at its own path.
        """
        cur: Any = self.obj.body if base is None else base
        walked = base_path
        for part in path.split("."):
            if not isinstance(cur, Mapping):
                self.findings.bad_shape(self.obj, walked, "an object")
                return None
            cur = cur.get(part)
            walked = f"{walked}.{part}" if walked else part
            if cur is None:
                return None
        return cur

    def mapping(self, path: str, base: Mapping[str, Any] | None = None, base_path: str = "") -> Mapping[str, Any]:
        """The mapping at ``path``; empty when missing or not a mapping (reported)."""
        value = self.value(path, base, base_path)
        if value is None:
            return _EMPTY
        if not isinstance(value, Mapping):
            self.findings.bad_shape(self.obj, _join(base_path, path), "an object")
            return _EMPTY
        return value

    def sequence(self, path: str, base: Mapping[str, Any] | None = None, base_path: str = "") -> Sequence[Any]:
        """The list at ``path``; empty when missing or not a list (reported)."""
        value = self.value(path, base, base_path)
        if value is None:
            return ()
        if not isinstance(value, list | tuple):
            self.findings.bad_shape(self.obj, _join(base_path, path), "a list")
            return ()
        return value

    def objects(self, path: str, base: Mapping[str, Any] | None = None, base_path: str = "") -> list[Mapping[str, Any]]:
        """The mapping items of the list at ``path``; items that are not objects are reported and skipped."""
        full = _join(base_path, path)
        items: list[Mapping[str, Any]] = []
        for i, item in enumerate(self.sequence(path, base, base_path)):
            if isinstance(item, Mapping):
                items.append(item)
            else:
                self.findings.bad_shape(self.obj, f"{full}[{i}]", "an object")
        return items

    def strings(self, path: str, base: Mapping[str, Any] | None = None, base_path: str = "") -> dict[str, str]:
        """A string-to-string map (labels, annotations, selectors); other values are reported and skipped."""
        raw = self.mapping(path, base, base_path)
        out: dict[str, str] = {}
        for key, val in raw.items():
            if isinstance(key, str) and isinstance(val, str):
                out[key] = val
            else:
                self.findings.bad_shape(self.obj, f"{_join(base_path, path)}.{key}", "a string (quote it)")
        return out

    def text(self, path: str, base: Mapping[str, Any] | None = None, base_path: str = "") -> str | None:
        """The string at ``path``; None when missing or not a string (reported)."""
        value = self.value(path, base, base_path)
        if value is None:
            return None
        if not isinstance(value, str):
            self.findings.bad_shape(self.obj, _join(base_path, path), "a string")
            return None
        return value

    def integer(self, path: str, base: Mapping[str, Any] | None = None, base_path: str = "") -> int | None:
        """The integer at ``path``; None when missing or not an integer (reported)."""
        value = self.value(path, base, base_path)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.findings.bad_shape(self.obj, _join(base_path, path), "an integer")
            return None
        return value


def _join(base: str, path: str) -> str:
    return f"{base}.{path}" if base else path


def selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """Whether a non-empty equality selector matches ``labels`` (an empty one selects nothing here)."""
    if not selector:
        return False
    return all(labels.get(k) == v for k, v in selector.items())


def image_tag(image: str) -> str | None:
    """The tag of a container image reference (`registry:5000/istio/pilot:1.22.1` → `1.22.1`)."""
    ref = image.split("@", 1)[0]
    name, _, tag = ref.rpartition(":")
    # A colon before the last `/` is a registry port, not a tag.
    if not name or "/" in tag:
        return None
    return tag or None
