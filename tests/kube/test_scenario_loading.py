"""Scenario loading: every broken input gives its exact message and line, and the rest still loads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from meshrules.kube.scenario import load_scenario

GOOD_POLICY = """\
apiVersion: networking.meshrules.io/v1alpha1
kind: TrafficPolicy
metadata:
  name: good
  namespace: shop
spec:
  policy:
    requestTimeout: 2s
"""

GOOD_DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: web:1}]}
"""

# (case id, file name under the scenario, content, expected rendered diagnostics)
BROKEN: list[tuple[str, str, str, list[str]]] = [
    (
        "bad-yaml",
        "policies/bad.yaml",
        "apiVersion: v1\nkind: [unclosed\n",
        [
            "MR0001 policies/bad.yaml:3:1: invalid YAML: did not find expected ',' or ']' "
            "(the other documents of the file were loaded; fix this one and run again)"
        ],
    ),
    (
        "wrong-type",
        "policies/bad.yaml",
        "apiVersion: networking.meshrules.io/v1alpha1\nkind: TrafficPolicy\nmetadata: {name: t}\n"
        "spec:\n  policy:\n    retries:\n      attempts: many\n",
        [
            "MR0010 policies/bad.yaml:7: spec.policy.retries.attempts: input should be a valid integer, "
            "unable to parse string as an integer (got `many`)"
        ],
    ),
    (
        "unknown-field",
        "policies/bad.yaml",
        "apiVersion: networking.meshrules.io/v1alpha1\nkind: AccessPolicy\nmetadata: {name: a}\n"
        "spec:\n  allowedPaths: [/x]\n  allowedVerbs: [GET]\n",
        [
            "MR0011 policies/bad.yaml:6: spec.allowedVerbs: unknown field `allowedVerbs` (allowed here: "
            "allowedMethods, allowedPaths, allowedPorts, destinationSelector, sourceSelector)"
        ],
    ),
    (
        "missing-name-policy",
        "policies/bad.yaml",
        "apiVersion: networking.meshrules.io/v1alpha1\nkind: AccessPolicy\nmetadata: {namespace: x}\n",
        ["MR0012 policies/bad.yaml:3: metadata.name: required field `name` is missing (add `name`)"],
    ),
    (
        "missing-name-object",
        "clusters/c1/bad.yaml",
        "apiVersion: v1\nkind: Service\nmetadata:\n  namespace: shop\n",
        [
            "MR0013 clusters/c1/bad.yaml:3: metadata.name: object has no `metadata.name` "
            "(every Kubernetes object needs `apiVersion`, `kind` and `metadata.name`)"
        ],
    ),
    (
        "duplicate-policy",
        "policies/zz-dup.yaml",
        GOOD_POLICY,
        [
            "MR0014 policies/zz-dup.yaml:1: duplicate object `TrafficPolicy shop/good`, first defined at "
            "policies/good.yaml:1 (each object may be defined once; remove or rename one of them)"
        ],
    ),
    (
        "duplicate-object",
        "clusters/c1/zz-dup.yaml",
        GOOD_DEPLOYMENT,
        [
            "MR0014 clusters/c1/zz-dup.yaml:1: duplicate object `Deployment shop/web`, first defined at "
            "clusters/c1/web.yaml:1 (each object may be defined once; remove or rename one of them)"
        ],
    ),
    (
        "misspelt-kind",
        "policies/bad.yaml",
        "apiVersion: networking.meshrules.io/v1alpha1\nkind: TraficPolicy\nmetadata: {name: t}\n",
        [
            "MR0015 policies/bad.yaml:2: kind: unknown kind `TraficPolicy` in `networking.meshrules.io/v1alpha1` "
            "(policies are VirtualMesh, TrafficPolicy or AccessPolicy (networking.meshrules.io/v1alpha1); "
            "tests are ReachabilityTest (testing.meshrules.io/v1alpha1))"
        ],
    ),
    (
        "not-an-object",
        "policies/bad.yaml",
        "- just\n- a list\n",
        [
            "MR0002 policies/bad.yaml:1: document is not an object (each YAML document must be a mapping "
            "with `apiVersion`, `kind` and `metadata`)"
        ],
    ),
    (
        "exactly-one",
        "policies/bad.yaml",
        "apiVersion: networking.meshrules.io/v1alpha1\nkind: TrafficPolicy\nmetadata: {name: t}\nspec:\n"
        "  httpRequestMatchers:\n  - uri: {prefix: /a, exact: /b}\n",
        [
            "MR0010 policies/bad.yaml:6: spec.httpRequestMatchers[0].uri: set exactly one of `exact`, "
            "`prefix` or `regex`"
        ],
    ),
    (
        "api-version-not-a-string",
        "clusters/c1/bad.yaml",
        "apiVersion: 5\nkind: Service\nmetadata: {name: s}\n",
        [
            # Regression: "object has no `apiVersion`" for an object that plainly has one.
            "MR0013 clusters/c1/bad.yaml:1: apiVersion: `apiVersion` is empty or not a string "
            "(every Kubernetes object needs `apiVersion`, `kind` and `metadata.name`)"
        ],
    ),
    (
        "duplicate-key",
        "policies/bad.yaml",
        "apiVersion: networking.meshrules.io/v1alpha1\nkind: TrafficPolicy\nmetadata:\n  name: t\n"
        "  name: u\nspec: {}\n",
        [
            "MR0019 policies/bad.yaml:5: metadata.name: key `name` is written twice (first at line 4) "
            "(YAML would keep only the last value, so the object was not loaded; remove one of them)"
        ],
    ),
    (
        "tab-indent",
        "clusters/c1/bad.yaml",
        "apiVersion: v1\nkind: Service\nmetadata:\n\tname: x\n",
        [
            "MR0001 clusters/c1/bad.yaml:4:1: invalid YAML: found character that cannot start any token "
            "(YAML indents with spaces, not tabs; the other documents of the file were loaded; fix this one "
            "and run again)"
        ],
    ),
    (
        "bad-name",
        "policies/bad.yaml",
        "apiVersion: networking.meshrules.io/v1alpha1\nkind: AccessPolicy\nmetadata:\n  name: réviews\n",
        [
            # Regression: the name was shown twice, in the message and again as "(got `réviews`)".
            "MR0010 policies/bad.yaml:4: metadata.name: `réviews` is not a valid name "
            "(lower-case letters, digits, `-` and `.`, at most 253 characters)"
        ],
    ),
    (
        "bad-duration",
        "policies/bad.yaml",
        "apiVersion: networking.meshrules.io/v1alpha1\nkind: TrafficPolicy\nmetadata: {name: t}\nspec:\n"
        "  policy: {requestTimeout: soon}\n",
        [
            "MR0010 policies/bad.yaml:5: spec.policy.requestTimeout: `soon` is not a duration "
            "(write it like `250ms`, `10s` or `1m`)"
        ],
    ),
]


def _scenario(tmp_path: Path, extra: dict[str, str]) -> Path:
    files = {"policies/good.yaml": GOOD_POLICY, "clusters/c1/web.yaml": GOOD_DEPLOYMENT, **extra}
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


@pytest.mark.parametrize(("case", "rel", "text", "want"), BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_input_reports_exact_message_and_keeps_valid_files(
    tmp_path: Path, case: str, rel: str, text: str, want: list[str]
) -> None:
    scenario = load_scenario(_scenario(tmp_path, {rel: text}))
    assert [f"{d.code} {d}" for d in scenario.diagnostics] == want
    # The valid files beside the broken one are still loaded.
    assert [p.ref for p in scenario.policies] == ["TrafficPolicy shop/good"]
    assert [o.ref() for o in scenario.clusters[0].objects] == ["Deployment shop/web"]


def test_unreadable_file_is_reported_and_others_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _scenario(tmp_path, {"policies/locked.yaml": GOOD_POLICY.replace("good", "locked")})
    real_read = Path.read_text

    def read_text(self: Path, *args: Any, **kwargs: Any) -> str:
        # Root reads files whatever their mode, so permission errors are simulated.
        if self.name == "locked.yaml":
            raise PermissionError(13, "Permission denied")
        return real_read(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", read_text)
    scenario = load_scenario(root)
    assert [str(d) for d in scenario.diagnostics] == [
        "policies/locked.yaml: cannot read file: permission denied (check its permissions and encoding; "
        "the other files were loaded)"
    ]
    assert [p.ref for p in scenario.policies] == ["TrafficPolicy shop/good"]


def test_non_utf8_file_is_reported_and_others_load(tmp_path: Path) -> None:
    root = _scenario(tmp_path, {})
    (root / "policies/latin1.yaml").write_bytes(b"kind: caf\xe9\n")
    scenario = load_scenario(root)
    assert [str(d) for d in scenario.diagnostics] == [
        "policies/latin1.yaml: cannot read file: not utf-8 text (check its permissions and encoding; "
        "the other files were loaded)"
    ]
    assert len(scenario.policies) == 1


def test_invalid_cluster_directory_name_is_an_error(tmp_path: Path) -> None:
    root = _scenario(tmp_path, {"clusters/Cluster_One/x.yaml": GOOD_DEPLOYMENT})
    scenario = load_scenario(root)
    assert [d.code for d in scenario.diagnostics] == ["MR0016"]
    assert [c.name for c in scenario.clusters] == ["c1"]


def test_kind_list_and_multi_document_files_are_flattened(tmp_path: Path) -> None:
    listing = (
        "apiVersion: v1\nkind: List\nitems:\n"
        "- apiVersion: v1\n  kind: Service\n  metadata: {name: a, namespace: shop}\n"
        "- apiVersion: v1\n  kind: Service\n  metadata: {name: b, namespace: shop}\n"
        "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n"
    )
    scenario = load_scenario(_scenario(tmp_path, {"clusters/c1/list.yaml": listing}))
    objs = {o.ref(): o.location.line for o in scenario.clusters[0].objects}
    assert objs == {"Service shop/a": 4, "Service shop/b": 7, "Namespace shop": 11, "Deployment shop/web": 1}
    assert scenario.diagnostics == ()


def test_unknown_kinds_are_skipped_and_counted(tmp_path: Path) -> None:
    other = "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n"
    scenario = load_scenario(_scenario(tmp_path, {"policies/other.yaml": other + "---\n" + other.replace("w}", "v}")}))
    assert scenario.skipped == {"example.com/v1 Widget": 2}
    assert scenario.diagnostics == ()


def test_objects_without_namespace_land_in_default(tmp_path: Path) -> None:
    svc = (
        "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n---\n"
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: n}\n"
    )
    scenario = load_scenario(_scenario(tmp_path, {"clusters/c1/s.yaml": svc}))
    refs = sorted(o.ref() for o in scenario.clusters[0].objects)
    assert refs == ["Deployment shop/web", "Namespace n", "Service default/s"]


def test_policy_without_namespace_lives_in_management_namespace(tmp_path: Path) -> None:
    pol = "apiVersion: networking.meshrules.io/v1alpha1\nkind: AccessPolicy\nmetadata: {name: a}\n"
    scenario = load_scenario(_scenario(tmp_path, {"policies/a.yaml": pol}))
    assert "AccessPolicy meshrules-system/a" in [p.ref for p in scenario.policies]


def test_missing_scenario_directory_is_an_input_error(tmp_path: Path) -> None:
    from meshrules.errors import InputError

    with pytest.raises(InputError, match="is not a directory"):
        load_scenario(tmp_path / "nope")


def test_file_order_does_not_change_what_loads(tmp_path: Path) -> None:
    a = GOOD_POLICY.replace("name: good", "name: a")
    b = GOOD_POLICY.replace("name: good", "name: b")
    one = load_scenario(_scenario(tmp_path / "1", {"policies/1.yaml": a, "policies/2.yaml": b}))
    two = load_scenario(_scenario(tmp_path / "2", {"policies/1.yaml": b, "policies/2.yaml": a}))
    assert one.policies == two.policies


def test_a_broken_document_does_not_hide_the_documents_after_it(tmp_path: Path) -> None:
    # Regression: parsing stopped at the first syntax error, so every later policy of the file vanished.
    second = GOOD_POLICY.replace("name: good", "name: after")
    stream = GOOD_POLICY.replace("name: good", "name: before") + "---\nkind: [\n---\n" + second
    scenario = load_scenario(_scenario(tmp_path, {"policies/multi.yaml": stream}))
    assert [f"{d.code} {d.location}" for d in scenario.diagnostics] == ["MR0001 policies/multi.yaml:11:1"]
    assert [p.ref for p in scenario.policies] == [
        "TrafficPolicy shop/after",
        "TrafficPolicy shop/before",
        "TrafficPolicy shop/good",
    ]
    after = next(p for p in scenario.policies if p.metadata.name == "after")
    assert scenario.sources[after.ref].location.line == 12


def test_a_key_written_twice_in_a_kubernetes_object_is_tolerated(tmp_path: Path) -> None:
    # Only meshrules kinds are strict (spec §1.1); label keys with dots must not be taken for nesting.
    svc = "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\n  labels: {a.b: x, a: {b: y}}\n"
    scenario = load_scenario(_scenario(tmp_path, {"clusters/c1/s.yaml": svc}))
    assert scenario.diagnostics == ()


def test_an_empty_cluster_directory_is_a_warning_and_still_a_cluster(tmp_path: Path) -> None:
    # Regression: an empty (or `.json`-only) cluster directory loaded silently as a cluster with nothing.
    root = _scenario(tmp_path, {"clusters/c2/pods.json": "{}"})
    scenario = load_scenario(root)
    assert [f"{d.code} {d.severity.value} {d}" for d in scenario.diagnostics] == [
        "MR0009 warning clusters/c2: cluster directory `c2` holds no objects (no `*.yaml` or `*.yml` files) "
        "(capture it with `meshrules snapshot --context CTX --out clusters/c2`, or remove the directory)"
    ]
    assert [c.name for c in scenario.clusters] == ["c1", "c2"]


def test_a_duplicate_cluster_scoped_object_is_named_without_a_namespace(tmp_path: Path) -> None:
    # Regression: it was named `Namespace /shop`.
    ns = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n"
    scenario = load_scenario(_scenario(tmp_path, {"clusters/c1/ns.yaml": ns + "---\n" + ns}))
    assert [str(d) for d in scenario.diagnostics] == [
        "clusters/c1/ns.yaml:5: duplicate object `Namespace shop`, first defined at clusters/c1/ns.yaml:1 "
        "(each object may be defined once; remove or rename one of them)"
    ]
