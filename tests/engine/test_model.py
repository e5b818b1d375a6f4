"""Querying a model and explaining its facts down to the user objects behind them."""

from __future__ import annotations

import pytest

from meshrules.engine import Facts, Model, evaluate, program_from_text
from meshrules.errors import QueryError

FEDERATION = """\
relation mesh_member(vm: VirtualMesh, mesh: Mesh)
relation destination(d: Destination, mesh: Mesh, namespace: str)
relation federation_namespace(vm: VirtualMesh, namespace: str)
relation opted_out(d: Destination)
relation federated(destination: Destination, mesh: Mesh) "a destination visible in a mesh other than its own"

rule federate-selected-destinations "a destination is visible in every other member mesh its VirtualMesh selects":
  federated(D, M) :-
    destination(D, Home, NS),
    mesh_member(VM, Home),
    federation_namespace(VM, NS),
    mesh_member(VM, M),
    M != Home,
    not opted_out(D).
"""


def federation() -> Model:
    facts = Facts()
    for mesh in ("mesh-1", "mesh-2", "mesh-3"):
        facts.add("mesh_member", ("global", mesh), source="policies/virtualmesh.yaml:9")
    facts.add("federation_namespace", ("global", "bookinfo"), source="policies/virtualmesh.yaml:20")
    facts.add("destination", ("reviews", "mesh-2", "bookinfo"), source="cluster-2/Service/bookinfo/reviews")
    facts.add("destination", ("ratings", "mesh-2", "bookinfo"), source="cluster-2/Service/bookinfo/ratings")
    facts.add("destination", ("web", "mesh-1", "frontend"), source="cluster-1/Service/frontend/web")
    facts.add("opted_out", ("ratings",), source="cluster-2/Service/bookinfo/ratings")
    return evaluate(program_from_text({"federation.rules": FEDERATION}), facts)


def test_rows_are_sorted() -> None:
    assert federation().rows("federated") == [("reviews", "mesh-1"), ("reviews", "mesh-3")]


def test_query_binds_variables_in_order_of_appearance() -> None:
    answer = federation().query('federated(D, M), M != "mesh-3"')
    assert answer.variables == ("D", "M")
    assert answer.rows == (("reviews", "mesh-1"),)
    assert answer.as_dicts() == [{"D": "reviews", "M": "mesh-1"}]


def test_query_with_constants_only_asks_whether_a_fact_holds() -> None:
    model = federation()
    assert model.query('federated("reviews", "mesh-1")')
    assert not model.query('federated("ratings", "mesh-1")')


def test_query_naming_an_unknown_relation() -> None:
    with pytest.raises(QueryError) as caught:
        federation().query("federatd(D, M)")
    assert caught.value.message == "the query `federatd(D, M)` is invalid: undeclared relation `federatd`"
    assert caught.value.hint == "did you mean `federated`?"


def test_query_that_does_not_parse() -> None:
    with pytest.raises(QueryError) as caught:
        federation().query("federated(D, M")
    assert caught.value.message == "the query `federated(D, M` does not parse: the text ends too early"


def test_explain_renders_the_derivation_down_to_sources() -> None:
    derivation = federation().explain('federated("reviews", "mesh-3")')
    assert derivation.render() == "\n".join(
        [
            'federated("reviews", "mesh-3")',
            "  by rule federate-selected-destinations: a destination is visible in every other member mesh"
            " its VirtualMesh selects (federation.rules:7:1)",
            '  where "mesh-3" != "mesh-2"',
            '  where not opted_out("reviews")',
            '  ├─ destination("reviews", "mesh-2", "bookinfo")  [cluster-2/Service/bookinfo/reviews]',
            '  ├─ mesh_member("global", "mesh-2")  [policies/virtualmesh.yaml:9]',
            '  ├─ federation_namespace("global", "bookinfo")  [policies/virtualmesh.yaml:20]',
            '  └─ mesh_member("global", "mesh-3")  [policies/virtualmesh.yaml:9]',
        ]
    )
    assert derivation.sources() == [
        "cluster-2/Service/bookinfo/reviews",
        "policies/virtualmesh.yaml:20",
        "policies/virtualmesh.yaml:9",
    ]
    assert derivation.rules() == ["federate-selected-destinations"]


def test_explain_as_json() -> None:
    data = federation().explain(("federated", ("reviews", "mesh-1"))).to_json()
    assert data["rule"] == "federate-selected-destinations"
    assert data["location"] == "federation.rules:7:1"
    assert data["premises"][0] == {
        "fact": 'destination("reviews", "mesh-2", "bookinfo")',
        "relation": "destination",
        "values": ["reviews", "mesh-2", "bookinfo"],
        "source": "cluster-2/Service/bookinfo/reviews",
    }


def test_explain_a_base_fact() -> None:
    derivation = federation().explain('opted_out("ratings")')
    assert derivation.is_base
    assert derivation.source == "cluster-2/Service/bookinfo/ratings"


def test_explain_a_fact_that_does_not_hold() -> None:
    with pytest.raises(QueryError) as caught:
        federation().explain('federated("ratings", "mesh-1")')
    assert caught.value.message == '`federated("ratings", "mesh-1")` does not hold'


def test_explain_needs_a_fact() -> None:
    with pytest.raises(QueryError) as caught:
        federation().explain("federated(D, M)")
    assert caught.value.message == "`federated(D, M)` is not a fact"


def test_explain_a_chain_deeper_than_the_python_stack() -> None:
    program = program_from_text(
        {
            "g.rules": "relation start(a: str)\nrelation edge(a: str, b: str)\nrelation reached(a: str)\n"
            'rule origin "the start is reached": reached(A) :- start(A).\n'
            'rule hop "an edge from a reached node reaches": reached(B) :- reached(A), edge(A, B).\n'
        }
    )
    facts = Facts.from_rows({"start": [("n0",)], "edge": [(f"n{i}", f"n{i + 1}") for i in range(2000)]})
    derivation = evaluate(program, facts).explain('reached("n1800")')
    assert sum(1 for node in derivation.walk() if not node.is_base) == 1801
    assert derivation.render().count("by rule hop") == 1800


def test_shared_premises_are_rendered_once() -> None:
    program = program_from_text(
        {
            "s.rules": "relation a(x: str)\nrelation b(x: str)\nrelation c(x: str)\n"
            'rule ab "b from a": b(X) :- a(X).\n'
            'rule cb "c from b twice": c(X) :- b(X), b(Y), X = Y.\n'
        }
    )
    model = evaluate(program, Facts.from_rows({"a": [("v",)]}))
    text = model.explain('c("v")').render()
    assert text.count('b("v")  (derived above)') == 1
