"""Examples for every standard built-in, in each binding mode, through the rule language."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from meshrules.engine import (
    BuiltinRegistry,
    Facts,
    FrozenMap,
    Model,
    define,
    evaluate,
    program_from_text,
    standard_builtins,
)

DECLARATIONS = """
relation value(name: str, v: any)
relation policy(p: Policy)
"""


@dataclass(frozen=True)
class Timeout:
    request_timeout: str


def model(values: dict[str, Any] | None = None, objects: dict[str, Any] | None = None) -> Model:
    facts = Facts()
    for name, v in (values or {}).items():
        facts.add("value", (name, v))
    for entity, obj in (objects or {}).items():
        facts.add("policy", (entity,))
        facts.add_object(entity, obj)
    return evaluate(program_from_text({"b.rules": DECLARATIONS}), facts)


def ask(query: str, m: Model | None = None) -> list[tuple[Any, ...]]:
    return list((m or model()).query(query).rows)


def holds(query: str, m: Model | None = None) -> bool:
    return bool((m or model()).query(query))


def test_concat_in_every_mode() -> None:
    assert ask('concat("reviews.", "global", C)') == [("reviews.global",)]
    assert ask('concat(A, ".global", "reviews.global")') == [("reviews",)]
    assert ask('concat("reviews", B, "reviews.global")') == [(".global",)]
    assert holds('concat("a", "b", "ab")')
    assert not holds('concat("a", "b", "ba")')
    assert ask('concat(A, ".global", "reviews.local")') == []


def test_string_tests() -> None:
    assert holds('startswith("productpage", "product")')
    assert not holds('startswith("productpage", "page")')
    assert holds('endswith("reviews.bookinfo.svc.cluster.local", ".cluster.local")')
    assert holds('contains("spiffe://cluster.local/ns/bookinfo", "/ns/")')
    assert not holds('not contains("abc", "b")')


def test_lower_split_and_string() -> None:
    assert ask('lower("ISTIO_MUTUAL", L)') == [("istio_mutual",)]
    assert ask('split("a.b.a", ".", P)') == [("a",), ("b",)]
    assert holds('split("a.b", ".", "b")')
    assert ask("string(9080, S)") == [("9080",)]
    assert ask("string(true, S)") == [("true",)]


def test_add_in_every_mode() -> None:
    assert ask("add(2, 3, C)") == [(5,)]
    assert ask("add(2, B, 5)") == [(3,)]
    assert ask("add(A, 3, 5)") == [(2,)]
    assert holds("add(2, 3, 5)")


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("*", "/anything", True),
        ("/api/*", "/api/v1", True),
        ("/api/*", "/other", False),
        ("*/status", "/svc/status", True),
        ("*/status", "/svc/health", False),
        ("/exact", "/exact", True),
        ("/exact", "/exact/", False),
    ],
)
def test_path_matches_has_istio_semantics(pattern: str, path: str, expected: bool) -> None:
    assert holds(f'path_matches("{pattern}", "{path}")') is expected


@pytest.mark.parametrize(
    ("inner", "outer", "expected"),
    [
        ("/api/v1", "/api/*", True),
        ("/api/v1/*", "/api/*", True),
        ("/api/*", "/api/v1/*", False),
        ("/api/*", "*", True),
        ("*", "/api/*", False),
        ("*.json", "*json", True),
        ("/a.json", "*.json", True),
        ("/a/*", "*.json", False),
    ],
)
def test_path_within_is_pattern_subsumption(inner: str, outer: str, expected: bool) -> None:
    assert holds(f'path_within("{inner}", "{outer}")') is expected


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("/api/*", "/api/v1/*", True),
        ("/api/*", "/web/*", False),
        ("/api/*", "*.json", True),
        ("/x", "/y", False),
        ("/x", "*", True),
        ("*.png", "*.jpg", False),
    ],
)
def test_paths_overlap(a: str, b: str, expected: bool) -> None:
    assert holds(f'paths_overlap("{a}", "{b}")') is expected


def test_host_matches() -> None:
    assert holds('host_matches("*.global", "reviews.bookinfo.svc.cluster-2.global")')
    assert not holds('host_matches("*.global", "global")')
    assert holds('host_matches("Reviews.Bookinfo", "reviews.bookinfo")')
    assert holds('host_matches("*", "anything")')


def test_regex_matches_the_whole_string() -> None:
    assert holds(r'regex_matches("https://.*\\.example\\.org", "https://a.example.org")')
    assert not holds('regex_matches("b", "abc")')
    assert not holds('regex_matches("(", "(")')  # an invalid expression matches nothing


def test_labels_match_plain_maps_and_label_selectors() -> None:
    m = model(
        {
            "labels": {"app": "reviews", "version": "v2"},
            "app": {"app": "reviews"},
            "other": {"app": "ratings"},
            "empty": {},
            "expr": {
                "matchLabels": {"app": "reviews"},
                "matchExpressions": [{"key": "version", "operator": "In", "values": ["v1", "v2"]}],
            },
            "notin": {"matchExpressions": [{"key": "version", "operator": "NotIn", "values": ["v2"]}]},
            "exists": {"matchExpressions": [{"key": "version", "operator": "Exists"}]},
        }
    )
    matching = ask('value("labels", L), value(S, Sel), labels_match(Sel, L)', m)
    assert sorted(r[1] for r in matching) == ["app", "empty", "exists", "expr", "labels"]


def test_labels_within() -> None:
    m = model({"narrow": {"app": "reviews", "version": "v2"}, "wide": {"app": "reviews"}})
    assert holds('value("narrow", N), value("wide", W), labels_within(N, W)', m)
    assert not holds('value("narrow", N), value("wide", W), labels_within(W, N)', m)


def test_selector_matches_meshrules_selectors() -> None:
    m = model(
        {
            "labels": {"app": "productpage", "version": "v1"},
            "all": {},
            "shop": {"namespaces": ["bookinfo"], "labels": {"app": "productpage"}},
            "c2": {"clusters": ["cluster-2"]},
            "empty-lists": {"clusters": [], "namespaces": []},
            "wrong-label": {"labels": {"app": "reviews"}},
        }
    )
    selected = ask('value("labels", L), value(S, Sel), selector_matches(Sel, "cluster-1", "bookinfo", L)', m)
    assert sorted(r[1] for r in selected) == ["all", "empty-lists", "labels", "shop"]


def test_selector_within_compares_specificity() -> None:
    m = model(
        {
            "all": {},
            "shop": {"namespaces": ["bookinfo"]},
            "shop-pp": {"namespaces": ["bookinfo"], "labels": {"app": "productpage"}},
            "two": {"namespaces": ["bookinfo", "shop"]},
        }
    )
    within = ask("value(I, Inner), value(O, Outer), I != O, selector_within(Inner, Outer)", m)
    assert sorted((r[0], r[2]) for r in within) == [
        ("shop", "all"),
        ("shop", "two"),
        ("shop-pp", "all"),
        ("shop-pp", "shop"),
        ("shop-pp", "two"),
        ("two", "all"),
    ]


def test_ref_matches_with_omitted_fields() -> None:
    m = model(
        {
            "ref": {"name": "reviews", "namespace": "bookinfo"},
            "exact": {"name": "reviews", "namespace": "bookinfo", "cluster": "cluster-2"},
        }
    )
    assert holds('value("ref", R), ref_matches(R, "cluster-1", "bookinfo", "reviews")', m)
    assert not holds('value("exact", R), ref_matches(R, "cluster-1", "bookinfo", "reviews")', m)
    assert not holds('value("ref", R), ref_matches(R, "cluster-1", "bookinfo", "ratings")', m)


def test_get_reads_one_entry_or_enumerates() -> None:
    m = model({"labels": {"app": "reviews", "version": "v2"}})
    assert ask('value("labels", L), get(L, "app", V)', m) == [
        (FrozenMap({"app": "reviews", "version": "v2"}), "reviews")
    ]
    assert ask('value("labels", L), get(L, K, V), K != "app"', m)[0][1:] == ("version", "v2")
    assert not holds('value("labels", L), get(L, "missing", _)', m)


def test_member_subset_size_and_set_operations() -> None:
    m = model({"a": ["x", "y"], "b": ["y", "z"]})
    assert ask('value("a", A), member(X, A)', m) == [(("x", "y"), "x"), (("x", "y"), "y")]
    assert holds('value("a", A), member("x", A)', m)
    assert ask('value("a", A), size(A, N)', m)[0][1] == 2
    assert ask('value("a", A), value("b", B), union(A, B, C)', m)[0][2] == frozenset({"x", "y", "z"})
    assert ask('value("a", A), value("b", B), intersection(A, B, C)', m)[0][2] == frozenset({"y"})
    assert ask('value("a", A), value("b", B), difference(A, B, C)', m)[0][2] == frozenset({"x"})
    assert not holds('value("a", A), value("b", B), subset(A, B)', m)
    assert holds('value("a", A), intersection(A, A, C), subset(C, A)', m)


def test_field_reads_records_objects_and_entity_ids() -> None:
    spec = {"policy": {"requestTimeout": "10s", "retries": {"attempts": 3}}, "ports": [{"port": 9080}]}
    m = model({"spec": spec}, objects={"tp-1": {"spec": spec}, "tp-2": Timeout("2s")})
    assert ask('value("spec", S), field(S, "policy.requestTimeout", T)', m)[0][1] == "10s"
    assert ask('value("spec", S), field(S, "ports.0.port", P)', m)[0][1] == 9080
    assert ask('field("tp-1", "spec.policy.retries.attempts", A)', m) == [(3,)]
    assert ask('field("tp-2", "requestTimeout", T)', m) == [("2s",)]
    assert ask('field("tp-1", "spec.missing", T)', m) == []
    assert holds('policy(P), field(P, "spec.policy.requestTimeout", "10s")', m)


def test_duration_ms() -> None:
    assert ask('duration_ms("250ms", M)') == [(250,)]
    assert ask('duration_ms("1.5s", M)') == [(1500,)]
    assert ask('duration_ms("1h30m", M)') == [(5400000,)]
    assert ask('duration_ms("500us", M)') == [(0,)]
    assert ask('duration_ms("ten seconds", M)') == []
    assert holds('duration_ms("1m", 60000)')


def test_negated_builtin_that_computes_an_argument() -> None:
    m = model({"labels": {"app": "reviews"}})
    assert holds('value("labels", L), not get(L, "version", _)', m)
    assert not holds('value("labels", L), not get(L, "app", "reviews")', m)


def test_registering_a_builtin_makes_it_usable_in_rules() -> None:
    registry: BuiltinRegistry = standard_builtins()
    registry.register(
        define(
            "port_name", "Port: int, Name: str", "the conventional name of a port", {"bf": lambda p: ((f"port-{p}",),)}
        )
    )
    program = program_from_text(
        {"p.rules": 'relation named(n: str)\nrule r "d": named(N) :- port_name(9080, N).\n'}, builtins=registry
    )
    assert evaluate(program, Facts(), builtins=registry).rows("named") == [("port-9080",)]
    with pytest.raises(ValueError, match="already registered"):
        registry.register(define("concat", "A: str", "again", {"b": lambda a: True}))


def test_every_standard_builtin_is_documented() -> None:
    from pathlib import Path

    docs = (Path(__file__).resolve().parents[2] / "docs" / "rules.md").read_text(encoding="utf-8")
    assert [b.name for b in standard_builtins() if f"`{b.name}(" not in docs] == []
