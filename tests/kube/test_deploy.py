"""`deploy/` is generated from code: the files equal what `meshrules.kube.deploy` renders, RBAC included."""

from __future__ import annotations

import yaml

from meshrules.kube import rbac
from meshrules.kube import resources as R
from meshrules.kube.deploy import files

from .conftest import REPO


def test_deploy_files_are_up_to_date() -> None:
    for path, text in files().items():
        on_disk = REPO / "deploy" / path
        assert on_disk.exists(), f"missing deploy/{path}: run `python -m meshrules.kube.deploy deploy`"
        assert on_disk.read_text() == text, f"deploy/{path} is stale: run `python -m meshrules.kube.deploy deploy`"


def test_remote_rbac_never_grants_secrets_or_writes_to_inputs() -> None:
    rules = rbac.remote_cluster_rules()
    emitted = {r.plural for r in R.EMITTED}
    for rule in rules:
        assert "secrets" not in rule["resources"]
        writes = set(rule["verbs"]) - {"get", "list", "watch"}
        if writes:
            assert set(rule["resources"]) <= emitted | {"services"}, rule
        if "services" in rule["resources"]:
            assert writes == {"patch"}


def test_the_controller_role_reads_kubeconfig_secrets_only() -> None:
    (secrets,) = [r for r in rbac.controller_namespace_rules() if "secrets" in r["resources"]]
    assert secrets["verbs"] == ["get", "list", "watch"]


def test_every_manifest_is_valid_yaml_with_kinds() -> None:
    for path, text in files().items():
        for doc in yaml.safe_load_all(text):
            assert doc["kind"] and doc["apiVersion"], path
