"""Reading the YAML documents control planes keep inside ConfigMaps (Istio `mesh`, Linkerd `values`).

Both are YAML text inside a ConfigMap key, so a typo there is invisible to Kubernetes; discovery
reports it (MR0102, pointing at the ConfigMap key) and falls back to the mesh's defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from meshrules.discovery.findings import BAD_MESH_CONFIG, BAD_TRUST_ROOT, MISSING_MESH_CONFIG, Findings
from meshrules.discovery.identity import pem_fingerprints
from meshrules.discovery.shapes import Reader
from meshrules.model.source import KubeObject

try:  # libyaml ships with every PyYAML wheel; the pure loader is a slow fallback.
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

_EMPTY: Mapping[str, Any] = {}


class EmbeddedConfig:
    """A parsed YAML document from ConfigMap ``key``, with typed getters that report wrong types."""

    __slots__ = ("configmap", "data", "findings", "key")

    def __init__(self, configmap: KubeObject | None, key: str, data: Mapping[str, Any], findings: Findings) -> None:
        self.configmap = configmap
        self.key = key
        self.data = data
        self.findings = findings

    def get(self, path: str) -> Any:
        """The value at dotted ``path``, or None (a non-object on the way is reported)."""
        cur: Any = self.data
        walked = ""
        for part in path.split("."):
            if not isinstance(cur, Mapping):
                self.wrong(walked, "an object")
                return None
            cur = cur.get(part)
            walked = f"{walked}.{part}" if walked else part
            if cur is None:
                return None
        return cur

    def text(self, path: str) -> str | None:
        """The string at ``path``; None when missing or not a string (reported)."""
        value = self.get(path)
        if value is None or isinstance(value, str):
            return value
        self.wrong(path, "a string")
        return None

    def strings(self, path: str) -> list[str]:
        """The list of strings at ``path``; non-string items are reported and skipped."""
        value = self.get(path)
        if value is None:
            return []
        if not isinstance(value, list):
            self.wrong(path, "a list")
            return []
        out = []
        for i, item in enumerate(value):
            if isinstance(item, str):
                out.append(item)
            else:
                self.wrong(f"{path}[{i}]", "a string")
        return out

    def objects(self, path: str) -> list[Mapping[str, Any]]:
        """The mapping items of the list at ``path``; others are reported and skipped."""
        value = self.get(path)
        if value is None:
            return []
        if not isinstance(value, list):
            self.wrong(path, "a list")
            return []
        out = []
        for i, item in enumerate(value):
            if isinstance(item, Mapping):
                out.append(item)
            else:
                self.wrong(f"{path}[{i}]", "an object")
        return out

    def wrong(self, path: str, expected: str) -> None:
        """Report that ``path`` of the embedded document is not ``expected``."""
        if self.configmap is None:  # pragma: no cover - nothing to read without a ConfigMap
            return
        self.findings.add(
            BAD_MESH_CONFIG,
            self.configmap,
            f"data.{self.key}",
            f"`{path}` in `{self.key}` should be {expected}",
            hint="the mesh default is used for it; fix the mesh configuration",
        )


def data_text(configmap: KubeObject, key: str, findings: Findings) -> str | None:
    """ConfigMap `data[key]` as text (keys such as `root-cert.pem` hold dots, so no dotted path)."""
    value = Reader(configmap, findings).mapping("data").get(key)
    if value is None or isinstance(value, str):
        return value
    findings.bad_shape(configmap, f"data.{key}", "a string")
    return None


def read_embedded(
    configmap: KubeObject | None,
    key: str,
    findings: Findings,
    *,
    missing_about: KubeObject,
    expected_name: str,
) -> EmbeddedConfig:
    """Parse YAML key ``key`` of ``configmap``; a missing ConfigMap is reported on ``missing_about``."""
    if configmap is None:
        findings.add(
            MISSING_MESH_CONFIG,
            missing_about,
            "",
            f"ConfigMap `{expected_name}` not found in namespace `{missing_about.namespace}`",
            hint="defaults are used (trust domain `cluster.local`); include the ConfigMap in the snapshot",
        )
        return EmbeddedConfig(None, key, _EMPTY, findings)
    text = data_text(configmap, key, findings)
    if not text:
        return EmbeddedConfig(configmap, key, _EMPTY, findings)
    try:
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or "cannot be parsed"
        findings.add(
            BAD_MESH_CONFIG,
            configmap,
            f"data.{key}",
            f"`{key}` is not valid YAML: {problem}",
            hint="defaults are used; fix the mesh configuration",
        )
        return EmbeddedConfig(configmap, key, _EMPTY, findings)
    if data is None:
        data = _EMPTY
    if not isinstance(data, Mapping):
        findings.add(
            BAD_MESH_CONFIG,
            configmap,
            f"data.{key}",
            f"`{key}` should be a YAML object",
            hint="defaults are used; fix the mesh configuration",
        )
        data = _EMPTY
    return EmbeddedConfig(configmap, key, data, findings)


def read_trust_roots(configmap: KubeObject | None, key: str, findings: Findings) -> tuple[str, ...]:
    """Fingerprints of the PEM roots in ConfigMap ``key``; unreadable certificates are reported (MR0104)."""
    if configmap is None:
        return ()
    text = data_text(configmap, key, findings)
    if not text:
        return ()
    fingerprints, problems = pem_fingerprints(text)
    for problem in problems:
        findings.add(
            BAD_TRUST_ROOT,
            configmap,
            f"data.{key}",
            f"trust root bundle `{key}`: {problem}",
            hint="it is left out of the mesh's `trustRoots`; mTLS with other meshes cannot be judged from it",
        )
    return fingerprints
