"""Selector resolution through the indexes must equal brute-force matching."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from meshrules.graph.index import Indexed, LabelIndex, matches

CLUSTERS = ["c1", "c2", "c3"]
NAMESPACES = ["shop", "pay", "dev"]
KEYS = ["app", "version", "tier"]
VALUES = ["a", "b", "v1", "v2"]

labels = st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES), max_size=3)
items = st.lists(
    st.builds(
        Indexed,
        id=st.text("abcdefgh", min_size=1, max_size=6),
        cluster=st.sampled_from(CLUSTERS),
        namespace=st.sampled_from(NAMESPACES),
        labels=labels,
        name=st.sampled_from(["web", "db", "api"]),
    ),
    max_size=30,
    unique_by=lambda i: i.id,
)
selectors = st.fixed_dictionaries(
    {
        "clusters": st.lists(st.sampled_from([*CLUSTERS, "nowhere"]), max_size=2),
        "namespaces": st.lists(st.sampled_from(NAMESPACES), max_size=2),
        "labels": labels,
        "names": st.lists(st.sampled_from(["web", "db", "zzz"]), max_size=2),
    }
)


@given(items, selectors)
def test_index_selection_equals_brute_force_matching(things: list[Indexed], sel: dict[str, object]) -> None:
    index = LabelIndex(things)
    expected = frozenset(i.id for i in things if matches(i, **sel))  # type: ignore[arg-type]
    assert index.select(**sel) == expected  # type: ignore[arg-type]


def test_empty_selector_selects_everything() -> None:
    things = [Indexed("a", "c1", "shop", {"app": "web"}), Indexed("b", "c2", "pay", {})]
    assert LabelIndex(things).select() == {"a", "b"}


def test_label_values_must_match_exactly() -> None:
    index = LabelIndex([Indexed("a", "c1", "shop", {"app": "web"}), Indexed("b", "c1", "shop", {"app": "webx"})])
    assert index.select(labels={"app": "web"}) == {"a"}
    assert index.select(labels={"app": "web", "version": "v1"}) == frozenset()
