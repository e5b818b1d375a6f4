"""`meshrules why`, `describe`, `diff` and `matrix` through the real command line, JSON checked against
the published schemas (`docs/schemas/*.schema.json`)."""

from __future__ import annotations

import csv
import io
import json
import shutil
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from typer.testing import CliRunner

from meshrules.cli import app
from meshrules.cli import describe as _describe  # noqa: F401  (registers the command)
from meshrules.cli import diff as _diff  # noqa: F401
from meshrules.cli import matrix as _matrix  # noqa: F401
from meshrules.cli import why as _why  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "docs" / "schemas"
BOOKINFO = ROOT / "simulator" / "scenarios" / "bookinfo-multicluster"
runner = CliRunner()


@cache
def _registry() -> Registry:
    resources = []
    for path in sorted(SCHEMAS.glob("*.schema.json")):
        schema = json.loads(path.read_text())
        resources.append((schema["$id"], Resource.from_contents(schema)))
    return Registry().with_resources(resources)


def validate(name: str, document: Any) -> None:
    """Raise when ``document`` does not follow ``docs/schemas/<name>.schema.json``."""
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    Draft202012Validator(schema, registry=_registry()).validate(document)


def run(*args: str) -> Any:
    return runner.invoke(app, [str(a) for a in args])


def test_why_json_follows_the_schema_for_allowed_and_denied_answers() -> None:
    allowed = run(
        "why",
        BOOKINFO,
        "--from",
        "cluster-1/bookinfo/productpage-v1",
        "--to",
        "reviews",
        "--path",
        "/reviews/0",
        "--header",
        "end-user=jason",
        "-o",
        "json",
    )
    assert allowed.exit_code == 0, allowed.output
    body = json.loads(allowed.stdout)
    validate("why", body)
    assert body["code"] == "ALLOWED" and body["timeout"] == "2s"
    denied = run(
        "why",
        BOOKINFO,
        "--from",
        "cluster-2/bookinfo/reviews-v2",
        "--to",
        "ratings",
        "--method",
        "POST",
        "--path",
        "/ratings/1",
        "-o",
        "json",
    )
    assert denied.exit_code == 0, denied.output  # a denial is an answer, not an error
    body = json.loads(denied.stdout)
    validate("why", body)
    assert body["nearestMiss"]["verified"] is True
    fix = "add `POST` to `spec.allowedMethods` of AccessPolicy bookinfo/reviews-reads-ratings"
    assert body["nearestMiss"]["fix"] == fix


def test_why_json_is_byte_identical_across_runs() -> None:
    args = (
        "why",
        BOOKINFO,
        "--from",
        "cluster-1/bookinfo/productpage-v1",
        "--to",
        "cluster-2/bookinfo/ratings",
        "-o",
        "json",
    )
    assert run(*args).stdout == run(*args).stdout


def test_why_table_shows_verdict_backends_config_hops_explanation_and_nearest_miss() -> None:
    out = run("why", BOOKINFO, "--from", "cluster-1/bookinfo/productpage-v1", "--to", "cluster-2/bookinfo/ratings")
    assert out.exit_code == 0, out.output
    text = out.stdout
    assert text.startswith(
        "DENIED (DENIED_DEFAULT): cluster-1/bookinfo/productpage-v1 -> ratings.bookinfo.svc.cluster-2.global:9080 GET /"
    )
    for section in ("Backends", "Config", "Hops", "Explanation", "Nearest miss", "verified: yes"):
        assert section in text, section
    assert "eastwest-gateway cluster-2/203.0.113.2:15443" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--to", "no-such-service"), "unknown host `no-such-service`"),
        (("--to", "cluster-1/bookinfo/nothing"), "no destination `cluster-1/bookinfo/nothing`"),
        (("--to", "emoji-svc", "--from", "cluster-3/emojivoto/web"), "has 2 ports, give one with `--port`"),
        (("--to", "reviews", "--header", "novalue"), "is not `name=value`"),
        # Regression: these were sent as requests and answered NO_ROUTE (exit 0).
        (("--to", "reviews", "--port", "0"), "`--port 0` is not a port (give a port in [1, 65535])"),
        (("--to", "reviews", "--port", "70000"), "`--port 70000` is not a port"),
        (("--to", "reviews", "--method", "G T"), "`--method G T` is not an HTTP method"),
        (("--to", "reviews", "--path", "reviews"), "`--path reviews` does not start with `/`"),
    ],
)
def test_why_usage_and_input_errors_exit_2_with_one_line(args: tuple[str, ...], message: str) -> None:
    source = () if "--from" in args else ("--from", "cluster-1/bookinfo/productpage-v1")
    out = run("why", BOOKINFO, *source, *args)
    assert out.exit_code == 2
    assert message in out.output
    assert "Traceback" not in out.output


def test_matrix_csv_json_and_table() -> None:
    csv_out = run("matrix", BOOKINFO, "-o", "csv")
    assert csv_out.exit_code == 0, csv_out.output
    rows = list(csv.DictReader(io.StringIO(csv_out.stdout)))
    assert rows[0].keys() == {"source", "destination", "port", "code"}
    assert {
        "source": "cluster-3/emojivoto/web",
        "destination": "cluster-3/emojivoto/emoji-svc",
        "port": "8080",
        "code": "ALLOWED",
    } in rows
    json_out = run("matrix", BOOKINFO, "-o", "json")
    validate("matrix", json.loads(json_out.stdout))
    assert run("matrix", BOOKINFO).exit_code == 0
    assert run("matrix", BOOKINFO, "-o", "xml").exit_code == 2


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("workload", "cluster-1/bookinfo/productpage-v1"),
        ("destination", "cluster-2/bookinfo/reviews"),
        ("policy", "AccessPolicy bookinfo/reviews-reads-ratings"),
    ],
)
def test_describe_json_follows_the_schema(kind: str, name: str) -> None:
    out = run("describe", BOOKINFO, kind, name, "-o", "json")
    assert out.exit_code == 0, out.output
    validate("describe", json.loads(out.stdout))
    table = run("describe", BOOKINFO, kind, name)
    assert table.exit_code == 0 and table.stdout.startswith(f"{kind} ")
    # People read `app=reviews, version=v2`, never Python's `{'app': 'reviews'}`.
    assert "{'" not in table.stdout and "['" not in table.stdout


def test_diff_json_follows_the_schema(tmp_path: Path) -> None:
    other = tmp_path / "policies"
    shutil.copytree(BOOKINFO / "policies", other)
    docs = list(yaml.safe_load_all((other / "access.yaml").read_text()))
    docs = [d for d in docs if d["metadata"]["name"] != "vote-bot-calls-web"]
    (other / "access.yaml").write_text(yaml.safe_dump_all(docs))
    out = run("diff", BOOKINFO, "--with", other, "-o", "json")
    assert out.exit_code == 0, out.output
    body = json.loads(out.stdout)
    validate("diff", body)
    changed = {(c["source"], c["destination"]): c for c in body["changed"]}
    web = changed[("cluster-3/emojivoto/vote-bot", "cluster-3/emojivoto/web-svc")]
    assert (web["before"]["code"], web["after"]["code"]) == ("ALLOWED", "DENIED_ENFORCED")
    assert web["witness"] == {
        "from": "cluster-3/emojivoto/vote-bot",
        "to": "cluster-3/emojivoto/web-svc",
        "port": 80,
        "method": "GET",
        "path": "/",
        "headers": {},
    }
    assert run("diff", BOOKINFO, "--with", other).exit_code == 0
