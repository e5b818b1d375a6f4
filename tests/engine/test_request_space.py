"""The request-space algebra and the mesh built-ins the default rules use, through the rule language too."""

from __future__ import annotations

from typing import Any

import pytest

from meshrules.engine import Facts, evaluate, program_from_text
from meshrules.engine.mesh_builtins import fill, mesh_builtins, text
from meshrules.engine.request_space import matchers_overlap, matchers_within, sources_overlap, sources_within

ALL: list[Any] = []
SHOP = [{"namespaces": ["shop"]}]
SHOP_FRONT = [{"namespaces": ["shop"], "labels": {"app": "front"}}]
FRONT = [{"labels": {"app": "front"}}]
C1 = [{"clusters": ["c1"]}]


@pytest.mark.parametrize(
    ("inner", "outer", "within"),
    [
        (SHOP, ALL, True),
        (ALL, SHOP, False),
        (SHOP_FRONT, SHOP, True),
        (SHOP, SHOP_FRONT, False),
        (SHOP_FRONT, FRONT, True),
        ([{}], ALL, True),
        (ALL, [{}], True),  # an unrestricted selector selects everything too
        ([{"namespaces": ["shop", "web"]}], SHOP, False),
        (SHOP, [*FRONT, *SHOP], True),  # inside one of several
    ],
)
def test_sources_within(inner: Any, outer: Any, within: bool) -> None:
    assert sources_within(inner, outer) is within


@pytest.mark.parametrize(
    ("a", "b", "overlap"),
    [
        (SHOP, FRONT, True),
        (SHOP, [{"namespaces": ["web"]}], False),
        (C1, [{"clusters": ["c2"]}], False),
        ([{"labels": {"app": "front"}}], [{"labels": {"app": "back"}}], False),
        (ALL, SHOP, True),
    ],
)
def test_sources_overlap(a: Any, b: Any, overlap: bool) -> None:
    assert sources_overlap(a, b) is overlap
    assert sources_overlap(b, a) is overlap


def uri(kind: str, value: str, **rest: Any) -> dict[str, Any]:
    return {"uri": {kind: value}, **rest}


@pytest.mark.parametrize(
    ("inner", "outer", "within"),
    [
        ([uri("exact", "/reviews/1")], [uri("prefix", "/reviews")], True),
        ([uri("prefix", "/reviews/")], [uri("prefix", "/reviews")], True),
        ([uri("prefix", "/reviews")], [uri("exact", "/reviews")], False),
        ([uri("exact", "/reviews/7")], [uri("regex", "/reviews/[0-9]+")], True),
        ([uri("prefix", "/reviews/")], [uri("regex", "/reviews/.*")], False),  # not decided: not claimed
        ([uri("prefix", "/a", method="GET")], [uri("prefix", "/a")], True),
        ([uri("prefix", "/a")], [uri("prefix", "/a", method="GET")], False),
        ([{"headers": [{"name": "end-user", "value": "jason"}]}], ALL, True),
        (
            [{"headers": [{"name": "end-user", "value": "jason"}]}],
            [{"headers": [{"name": "end-user", "value": "j.*", "regex": True}]}],
            True,
        ),
        (ALL, [uri("prefix", "/")], False),
        (ALL, [{}], True),
    ],
)
def test_matchers_within(inner: Any, outer: Any, within: bool) -> None:
    assert matchers_within(inner, outer) is within


@pytest.mark.parametrize(
    ("a", "b", "overlap"),
    [
        ([{"method": "GET"}], [{"method": "POST"}], False),
        ([{"method": "get"}], [{"method": "GET"}], True),
        ([uri("exact", "/a")], [uri("exact", "/b")], False),
        ([uri("exact", "/api/1")], [uri("prefix", "/api/")], True),
        ([uri("prefix", "/api/")], [uri("prefix", "/web/")], False),
        ([uri("prefix", "/api/")], [uri("regex", "/web/.*")], True),  # assumed: overlap is the safe answer
        ([uri("exact", "/x")], [uri("regex", "/[0-9]+")], False),
        (
            [{"headers": [{"name": "end-user", "value": "jason"}]}],
            [{"headers": [{"name": "end-user", "value": "alice"}]}],
            False,
        ),
        (
            [{"headers": [{"name": "end-user", "value": "jason"}]}],
            [{"headers": [{"name": "end-user", "value": "jason", "invertMatch": True}]}],
            False,
        ),
        (
            [{"queryParameters": [{"name": "v", "value": "1"}]}],
            [{"queryParameters": [{"name": "v", "value": "2"}]}],
            False,
        ),
        ([{"method": "GET"}, {"method": "POST"}], [{"method": "POST"}], True),
    ],
)
def test_matchers_overlap(a: Any, b: Any, overlap: bool) -> None:
    assert matchers_overlap(a, b) is overlap
    assert matchers_overlap(b, a) is overlap


def test_fill_and_text() -> None:
    assert fill("`{}` and `{}`", "a", 3) == "`a` and `3`"
    assert fill("{}", "a", "b") is None
    assert text(frozenset({"c2", "c1"})) == "c1, c2"
    assert text({"version": "v1"}) == "version=v1"
    assert text(True) == "true"


def test_mesh_builtins_in_rules() -> None:
    rules = """
    relation ref(cluster: str, home: str)
    relation resolved(cluster: str)
    relation said(text: str)
    rule fill-cluster "an omitted cluster is the home cluster":
      resolved(C) :- ref(Given, Home), coalesce(Given, Home, C).
    rule say "a message": said(T) :- resolved(C), format2("cluster `{}` of {}", C, 2, T).
    """
    registry = mesh_builtins()
    facts = Facts.from_rows({"ref": [("", "c1"), ("c2", "c1")]})
    model = evaluate(program_from_text({"m.rules": rules}, builtins=registry), facts, builtins=registry)
    assert model.rows("resolved") == [("c1",), ("c2",)]
    assert model.rows("said") == [("cluster `c1` of 2",), ("cluster `c2` of 2",)]


def hdr(name: str, value: str = "", **flags: bool) -> dict[str, Any]:
    return {"headers": [{"name": name, "value": value, **flags}]}


@pytest.mark.parametrize(
    ("inner", "outer", "within"),
    [
        # HTTP header names are case-insensitive: `X-User` and `x-user` are one header.
        ([hdr("X-User", "jason")], [hdr("x-user", "jason")], True),
        ([hdr("x-user", "jason")], [hdr("X-User", "jason", invertMatch=False)], True),
        # an omitted value tests presence: any value (and any inverted value test) implies it
        ([hdr("x-user", "jason")], [hdr("x-user")], True),
        ([hdr("x-user", "j.*", regex=True)], [hdr("x-user")], True),
        ([hdr("x-user", "jason", invertMatch=True)], [hdr("x-user")], True),
        ([hdr("x-user")], [hdr("x-user", "jason")], False),
        # an inverted presence test means "absent"
        ([hdr("x-user", invertMatch=True)], [hdr("x-user")], False),
    ],
)
def test_header_conditions_within(inner: Any, outer: Any, within: bool) -> None:
    assert matchers_within(inner, outer) is within


@pytest.mark.parametrize(
    ("a", "b", "overlap"),
    [
        ([hdr("x-user", "jason")], [hdr("x-user")], True),  # presence is no value of its own
        ([hdr("X-User", "jason")], [hdr("x-user", "alice")], False),
        ([hdr("x-user", invertMatch=True)], [hdr("x-user")], False),
        ([hdr("x-user", invertMatch=True)], [hdr("x-user", "jason")], False),
        # Istio `withoutHeaders`: "present and not jason" never holds for an absent header
        ([hdr("x-user", invertMatch=True)], [hdr("x-user", "jason", invertMatch=True)], False),
        ([hdr("x-user", "jason", invertMatch=True)], [hdr("x-user")], True),
    ],
)
def test_header_conditions_overlap(a: Any, b: Any, overlap: bool) -> None:
    assert matchers_overlap(a, b) is overlap
    assert matchers_overlap(b, a) is overlap
