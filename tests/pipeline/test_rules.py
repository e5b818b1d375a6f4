"""The rules stage: default rules, a scenario's own `policies/*.rules`, `--rules DIR`, and rule errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from meshrules.errors import RuleError
from meshrules.kube.scenario import load_scenario
from meshrules.model.intent import NotFederatedReason
from meshrules.pipeline import analyse
from meshrules.pipeline.rules import decide, load_rules
from meshrules.resources import default_rules_dir
from tests.engine.rules_scenarios import MESH1, MESH2, REVIEWS1, clusters, policies, virtual_mesh

EXPORT_ONLY = """
# Federate only Services labelled export: "true".
rule export-label-only "only destinations labelled export=true are federated":
  federation_excluded(D, M) :-
    federated_candidate(D, M),
    destination_labels(D, Labels),
    not get(Labels, "export", "true").
"""


def _labelled_scenario(root: Path) -> Path:
    """Two Istio clusters federating everything; only cluster-1's `reviews` Service is labelled export=true."""

    def label(text: str) -> str:
        return text.replace(
            "    app: reviews\n    service: reviews\n", "    app: reviews\n    export: 'true'\n    service: reviews\n"
        )

    clusters(root, names=["cluster-1", "cluster-2"], edits={"cluster-1/bookinfo.yaml": label})
    return policies(root, virtual_mesh("global", [MESH1, MESH2]))


def test_a_scenario_rule_file_extends_the_defaults(tmp_path: Path) -> None:
    root = _labelled_scenario(tmp_path)
    (root / "policies" / "export.rules").write_text(EXPORT_ONLY)
    decision = decide(analyse(load_scenario(root)))
    assert [(e.destination, e.mesh) for e in decision.intent.federation] == [(REVIEWS1, MESH2)]
    excluded = {b.destination for b in decision.intent.blocked if b.reason == NotFederatedReason.NOT_SELECTED}
    assert excluded == {"details-bookinfo-cluster-1", "productpage-bookinfo-cluster-1", "ratings-bookinfo-cluster-2",
                        "reviews-bookinfo-cluster-2"}  # fmt: skip
    why = decision.explain('federation_excluded("ratings-bookinfo-cluster-2", "istiod-istio-system-cluster-1")')
    assert why.rule == "export-label-only" and why.location is not None
    assert why.location.file == "policies/export.rules"


def test_rules_dir_replaces_the_defaults(tmp_path: Path) -> None:
    root = _labelled_scenario(tmp_path / "scenario")
    mine = tmp_path / "my-rules"
    shutil.copytree(default_rules_dir(), mine)
    federation = mine / "federation.rules"
    text = federation.read_text()
    default_rule = "  federated(D, M) :- federated_candidate(D, M), not federation_blocked(D, M, _, _)."
    assert default_rule in text
    federation.write_text(
        text.replace(
            default_rule,
            "  federated(D, M) :-\n    federated_candidate(D, M), not federation_blocked(D, M, _, _),\n"
            '    destination_labels(D, Labels), get(Labels, "export", "true").',
        )
    )
    analysis = analyse(load_scenario(root))
    assert len(decide(analysis).intent.federation) == 5  # the defaults federate everything
    decision = decide(analysis, rules_dir=mine)
    assert [(e.destination, e.mesh, e.host) for e in decision.intent.federation] == [
        (REVIEWS1, MESH2, "reviews.bookinfo.svc.cluster-1.global")
    ]


def test_a_smaller_rule_set_reads_as_an_empty_intent_where_it_is_silent(tmp_path: Path) -> None:
    root = _labelled_scenario(tmp_path / "scenario")
    mine = tmp_path / "only-federation"
    mine.mkdir()
    for name in ("facts.rules", "federation.rules"):
        shutil.copy(default_rules_dir() / name, mine / name)
    decision = decide(analyse(load_scenario(root)), rules_dir=mine)
    assert len(decision.intent.federation) == 5
    assert decision.intent.access == () and decision.intent.traffic == () and decision.findings == ()


def test_rule_errors_raise_with_every_diagnostic(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "a.rules").write_text('relation p(x: str)\nrule r "r": p(X) :- q(X).\nrule s "s": p(Y) :- p(Z).\n')
    with pytest.raises(RuleError) as caught:
        load_rules(broken)
    assert sorted(d.code for d in caught.value.diagnostics if d.severity.value == "error") == ["MR0504", "MR0510"]


def test_errors_in_a_scenario_rule_file_name_that_file(tmp_path: Path) -> None:
    root = _labelled_scenario(tmp_path)
    (root / "policies" / "bad.rules").write_text(
        'rule oops "missing dot": federation_excluded(D, M) :- federated(D, M)\n'
    )
    with pytest.raises(RuleError) as caught:
        decide(analyse(load_scenario(root)))
    assert {str(d.location.file) for d in caught.value.diagnostics if d.location} == {"policies/bad.rules"}
