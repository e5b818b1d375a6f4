"""The CRD registry: the bundled CRDs are the upstream bytes, all compile, and lookups behave.

Protects provenance (a bundled CRD edited by hand would silently change what "valid" means),
the profiles that keep the two Gateway API versions apart, and the public surface of the package.
"""

from __future__ import annotations

import hashlib
import re
from importlib import resources
from pathlib import Path

import pytest
import yaml

import meshrules.emit.schema as schema_pkg
from meshrules.emit.schema import BUNDLES, PROFILES, Category, CrdRegistry, validate

CRDS = Path(str(resources.files("meshrules.emit.schema").joinpath("crds")))

CRD_TEXT = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: things.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {kind: Thing, plural: things}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, properties: {spec: {type: object}}}}
  - name: v0
    served: false
    schema: {openAPIV3Schema: {type: object}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: not-a-crd}
"""


def test_public_surface() -> None:
    assert sorted(schema_pkg.__all__) == sorted(
        ["BUNDLES", "PROFILES", "Category", "CrdRegistry", "CrdVersion", "SchemaViolation", "validate"]
    )


def test_bundled_files_are_the_upstream_bytes() -> None:
    listed = dict(
        re.findall(r"^\| `([^`]+\.yaml)` \|.*\| `([0-9a-f]{64})` \|", (CRDS / "SOURCES.md").read_text(), re.M)
    )
    shipped = {p.relative_to(CRDS).as_posix() for p in CRDS.rglob("*.yaml")}
    assert set(listed) == shipped
    for rel, digest in listed.items():
        assert hashlib.sha256((CRDS / rel).read_bytes()).hexdigest() == digest, rel
    assert {f for files in BUNDLES.values() for f in files} == shipped


class _Yaml12Core(yaml.CSafeLoader):
    """PyYAML with YAML 1.2's core schema: only true/false are booleans, no sexagesimals."""


_Yaml12Core.yaml_implicit_resolvers = {}
for _tag, _pattern, _first in [
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("null", r"^(?:~|null|Null|NULL|)$", "~nN"),
    ("int", r"^[-+]?[0-9]+$", "-+0123456789"),
    ("float", r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$", "-+.0123456789"),
]:
    _Yaml12Core.add_implicit_resolver(f"tag:yaml.org,2002:{_tag}", re.compile(_pattern), [*_first, ""])


def test_bundled_crds_read_the_same_in_yaml_1_1_and_1_2() -> None:
    # The registry parses with PyYAML (YAML 1.1). An enum value like `no` or `on` would be a
    # boolean there and a string to a YAML 1.2 reader; none of the bundled CRDs has one.
    for path in sorted(CRDS.rglob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        assert list(yaml.load_all(text, Loader=yaml.CSafeLoader)) == list(yaml.load_all(text, Loader=_Yaml12Core)), path


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_bundled_schema_and_rule_compiles(profile: str) -> None:
    reg = CrdRegistry.bundled(profile)
    assert len(reg) > 0
    for crd in reg:
        reg.compiled(crd)  # raises CelCompileError for a rule the engine cannot compile


def test_profiles_serve_the_kinds_meshrules_emits() -> None:
    kinds = set(CrdRegistry.bundled().kinds())
    for api_version, kind in [
        ("networking.istio.io/v1", "VirtualService"),
        ("networking.istio.io/v1", "DestinationRule"),
        ("networking.istio.io/v1", "ServiceEntry"),
        ("security.istio.io/v1", "AuthorizationPolicy"),
        ("security.istio.io/v1", "PeerAuthentication"),
        ("gateway.networking.k8s.io/v1", "HTTPRoute"),
        ("policy.linkerd.io/v1beta3", "Server"),
        ("policy.linkerd.io/v1alpha1", "AuthorizationPolicy"),
        ("policy.linkerd.io/v1alpha1", "MeshTLSAuthentication"),
        ("policy.linkerd.io/v1beta3", "HTTPRoute"),
        ("split.smi-spec.io/v1alpha2", "TrafficSplit"),
    ]:
        assert (api_version, kind) in kinds
    # Each mesh's profile has its own Gateway API; `all` has Istio's.
    istio_route = CrdRegistry.bundled("istio").lookup("gateway.networking.k8s.io/v1", "HTTPRoute")
    linkerd_route = CrdRegistry.bundled("linkerd").lookup("gateway.networking.k8s.io/v1", "HTTPRoute")
    all_route = CrdRegistry.bundled("all").lookup("gateway.networking.k8s.io/v1", "HTTPRoute")
    assert istio_route is not None and linkerd_route is not None and all_route is istio_route
    assert istio_route.source.startswith("gateway-api/") and linkerd_route.source.startswith("linkerd/gateway-api/")


def test_bundled_registries_are_shared() -> None:
    assert CrdRegistry.bundled() is CrdRegistry.bundled("all")
    with pytest.raises(ValueError, match="unknown CRD profile `nope`"):
        CrdRegistry.bundled("nope")


def test_registry_from_yaml_and_files(tmp_path: Path) -> None:
    reg = CrdRegistry.from_yaml(CRD_TEXT, source="things.yaml")
    assert reg.kinds() == [("example.com/v1", "Thing")]  # v0 is not served; the ConfigMap is no CRD
    crd = reg.lookup("example.com/v1", "Thing")
    assert crd is not None and crd.namespaced and crd.storage and crd.source == "things.yaml"
    assert reg.schema("example.com/v1", "Thing") == {"type": "object", "properties": {"spec": {"type": "object"}}}
    path = tmp_path / "things.yaml"
    path.write_text(CRD_TEXT)
    assert CrdRegistry.from_files([path]).kinds() == reg.kinds()


def test_a_kind_defined_twice_is_refused() -> None:
    with pytest.raises(ValueError, match=r"`example.com/v[01]` `Thing` is defined twice: in a.yaml and in b.yaml"):
        CrdRegistry([*CrdRegistry.from_yaml(CRD_TEXT, "a.yaml"), *CrdRegistry.from_yaml(CRD_TEXT, "b.yaml")])


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ({"kind": "Thing"}, "object has no `apiVersion` and `kind`"),
        (
            {"apiVersion": "example.com/v2", "kind": "Thing"},
            "no CRD serves `example.com/v2` `Thing` (served versions: v1)",
        ),
        (
            {"apiVersion": "example.com/v0", "kind": "Thing"},
            "no CRD serves `example.com/v0` `Thing` (served versions: v1)",
        ),
        ({"apiVersion": "v1", "kind": "Service"}, "no CRD serves `v1` `Service`"),
    ],
)
def test_unknown_kinds_are_reported(obj: dict[str, str], message: str) -> None:
    reg = CrdRegistry.from_yaml(CRD_TEXT)
    (violation,) = reg.validate(obj)
    assert violation.category is Category.UNKNOWN_KIND
    assert str(violation) == message


def test_validate_defaults_to_every_bundled_crd() -> None:
    se = {"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry", "metadata": {"name": "x"}, "spec": {}}
    assert [str(v) for v in validate(se)] == ["spec.hosts: Required value"]
    assert validate(se, CrdRegistry.from_yaml(CRD_TEXT))[0].category is Category.UNKNOWN_KIND
