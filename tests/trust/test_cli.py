"""`meshrules trust` commands through Typer's runner: files, exit codes, and no key material anywhere.

Every command runs with logging captured at DEBUG. After each test, everything its commands
printed, logged or raised is searched for every private key the test made or meshrules wrote
under its temporary directory (`no_key_material`, autouse).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner, Result

from meshrules.cli.trust import _State, trust_app
from meshrules.resources import bundled_scenario
from meshrules.trust import CertificateAuthority, ca_objects, create_intermediate_request, sign_intermediate

from .conftest import ISTIO_1, LINKERD_3
from .pki import cert, certs, openssl_verify

runner = CliRunner()
BOOKINFO = bundled_scenario("bookinfo-multicluster")
SEEN: list[str] = []  # every text this test's commands produced
KEYS: list[bytes] = []  # keys this test made outside its temporary directory


@pytest.fixture(autouse=True)
def no_key_material(tmp_path: Path, root_ca: CertificateAuthority) -> Iterator[None]:
    SEEN.clear()
    KEYS.clear()
    KEYS.append(root_ca.secret_data()["tls.key"])
    yield
    everything = "\n".join(SEEN)
    assert "PRIVATE KEY" not in everything
    lines = set(_keys_on_disk(tmp_path)) | {line for key in KEYS for line in _key_lines(key.decode())}
    assert lines
    leaked = sorted(line for line in lines if line in everything)
    assert not leaked, f"key material in command output: {len(leaked)} lines"


def run(args: list[str], caplog: pytest.LogCaptureFixture) -> Result:
    with caplog.at_level(logging.DEBUG):
        result = runner.invoke(trust_app, args)
    SEEN.extend([result.stdout, result.stderr, caplog.text])
    if result.exception is not None:
        SEEN.extend([str(result.exception), repr(result.exception)])
    return result


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def ca_dir(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> Path:
    out = tmp_path / "ca"
    result = run(["init", "--out", str(out), "--org", "bookinfo", "--intermediate-ttl-days", "90"], caplog)
    assert result.exit_code == 0, result.output
    return out


def test_init_writes_the_ca_with_the_key_0600(ca_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert mode(ca_dir / "tls.key") == 0o600
    assert mode(ca_dir / "tls.crt") == 0o644 and mode(ca_dir / "ca.crt") == 0o644
    assert mode(ca_dir) == 0o700
    settings = json.loads((ca_dir / "ca.json").read_text())
    assert settings == {"intermediateTtlDays": 90, "keyAlgorithm": "ECDSA_P256", "orgName": "bookinfo", "ttlDays": 3650}
    root = cert((ca_dir / "ca.crt").read_text())
    assert "O=bookinfo" in root.subject.rfc4514_string()
    again = run(["init", "--out", str(ca_dir)], caplog)
    assert again.exit_code == 2 and "already holds a CA" in again.stderr and "Traceback" not in again.output


def test_init_imports_a_secret_manifest_or_directory(
    ca_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = {n: base64.b64encode((ca_dir / n).read_bytes()).decode() for n in ("tls.crt", "tls.key", "ca.crt")}
    manifest = tmp_path / "secret.yaml"
    manifest.write_text(
        yaml.safe_dump({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls", "data": data})
    )
    manifest.chmod(0o600)
    for source in (manifest, ca_dir):
        out = tmp_path / f"imported-{source.name}"
        result = run(["init", "--out", str(out), "--from-secret", str(source)], caplog)
        assert result.exit_code == 0, result.output
        assert (out / "ca.crt").read_bytes() == (ca_dir / "ca.crt").read_bytes()
        assert mode(out / "tls.key") == 0o600


def test_sign_prints_a_chain_that_openssl_verifies(
    ca_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    csr = tmp_path / "istio.csr"
    request = create_intermediate_request(ISTIO_1)
    KEYS.append(request.key_pem)
    csr.write_text(request.csr_pem)
    result = run(["sign", str(csr), "--ca", str(ca_dir)], caplog)
    assert result.exit_code == 0, result.output
    chain = certs(result.stdout)
    assert len(chain) == 2 and chain[1] == cert((ca_dir / "ca.crt").read_text())
    assert "signed intermediate for `spiffe://cluster.local/ns/istio-system/sa/istiod`" in result.stderr
    done = openssl_verify(
        tmp_path / "v",
        result.stdout.split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n",
        (ca_dir / "ca.crt").read_text(),
    )
    assert done.returncode == 0, done.stderr


def test_sign_writes_out_and_applies_the_linkerd_profile(
    ca_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    csr = tmp_path / "linkerd.csr"
    csr.write_text(create_intermediate_request(LINKERD_3).csr_pem)
    out = tmp_path / "chain.pem"
    result = run(["sign", str(csr), "--ca", str(ca_dir), "--mesh-type", "linkerd", "--out", str(out)], caplog)
    assert result.exit_code == 0, result.output
    assert result.stdout == "" and len(certs(out.read_text())) == 2


def test_sign_refuses_with_one_line_and_exit_2(ca_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    csr = tmp_path / "linkerd.csr"
    csr.write_text(create_intermediate_request(LINKERD_3).csr_pem)
    wrong_mesh = run(["sign", str(csr), "--ca", str(ca_dir)], caplog)  # an Istio mesh is expected
    assert wrong_mesh.exit_code == 2
    assert wrong_mesh.stderr.startswith("error: subjectAltName: certificate request asks for `DNS:")
    assert wrong_mesh.stderr.count("\n") == 1 and wrong_mesh.stdout == ""
    too_long = run(["sign", str(csr), "--ca", str(ca_dir), "--mesh-type", "linkerd", "--ttl-days", "91"], caplog)
    assert too_long.exit_code == 2 and "at most 90 days" in too_long.stderr
    no_ca = run(["sign", str(csr), "--ca", str(tmp_path / "nowhere")], caplog)
    assert no_ca.exit_code == 2 and "trust init" in no_ca.stderr


def test_status_of_the_bundled_scenario_shows_planned_chains(caplog: pytest.LogCaptureFixture) -> None:
    table = run(["status", str(BOOKINFO)], caplog)
    assert table.exit_code == 0, table.output
    assert "bookinfo" in table.stdout and "planned" in table.stdout
    result = run(["status", str(BOOKINFO), "-o", "json"], caplog)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    vm = next(v for v in report["virtualMeshes"] if v["name"] == "bookinfo")
    assert vm["mode"] == "shared"
    assert {m["name"] for m in vm["members"]} == {"istiod-istio-system-cluster-1", "istiod-istio-system-cluster-2"}
    assert all(m["source"] == "planned" for m in vm["members"])
    emojivoto = next(v for v in report["virtualMeshes"] if v["name"] == "emojivoto")
    assert emojivoto["mode"] == "unmanaged"


def test_status_findings_name_their_mesh(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # Several meshes can publish the same damaged root: each warning line says which mesh it is about.
    scenario = tmp_path / "scenario"
    shutil.copytree(BOOKINFO, scenario)
    path = scenario / "clusters" / "cluster-3" / "linkerd.yaml"
    text = path.read_text()
    line = "\n    MIIBwTCCAWagAwIBAgIQeDZp5lDaIygQ5UfMKZrFATAKBggqhkjOPQQDAjApMScw\n"  # linkerd-identity-trust-roots
    assert text.count(line) == 1
    path.write_text(text.replace(line, "\n    MIIB\n"))
    result = run(["status", str(scenario)], caplog)
    assert result.exit_code == 0, result.output
    assert "warning: MR0736: Mesh linkerd-destination-linkerd-cluster-3: `published trust roots`" in result.stdout


@pytest.fixture
def scenario_with_secrets(tmp_path: Path, root_ca: CertificateAuthority) -> tuple[Path, list[bytes]]:
    """The bundled scenario with a `cacerts` Secret and the published root in cluster-1."""
    scenario = tmp_path / "scenario"
    shutil.copytree(BOOKINFO, scenario)
    request = create_intermediate_request(ISTIO_1)
    chain = sign_intermediate(root_ca, request.csr_pem, ISTIO_1)
    (secret,) = ca_objects(ISTIO_1, chain, request.key_pem, [root_ca.root_pem])
    root_cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "istio-ca-root-cert", "namespace": "istio-system"},
        "data": {"root-cert.pem": root_ca.root_pem},
    }
    KEYS.append(request.key_pem)
    docs = [secret.manifest(), root_cm]
    (scenario / "clusters" / "cluster-1" / "cacerts.yaml").write_text(yaml.safe_dump_all(docs))
    return scenario, [request.key_pem]


def test_status_reads_ca_secrets_and_never_prints_them(
    scenario_with_secrets: tuple[Path, list[bytes]], root_ca: CertificateAuthority, caplog: pytest.LogCaptureFixture
) -> None:
    scenario, keys = scenario_with_secrets
    for output in ("json", "table", "yaml"):
        result = run(["status", str(scenario), "-o", output], caplog)
        assert result.exit_code == 0, result.output
        for key in keys:
            assert all(line not in result.output for line in key.decode().splitlines()[1:-1])
    report = json.loads(run(["status", str(scenario), "-o", "json"], caplog).stdout)
    member = next(m for v in report["virtualMeshes"] for m in v["members"] if m["cluster"] == "cluster-1")
    assert member["source"] == "secret" and member["rootFingerprint"] == root_ca.root_fingerprint


def test_rotate_offline_runs_resumes_and_rolls_back(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    state = tmp_path / "state"
    assert run(["init", "--out", str(state / "ca")], caplog).exit_code == 0
    first_root = cert((state / "ca" / "ca.crt").read_text())
    meshes = ["--mesh", "istio:cluster-1/istio-system", "--mesh", "istio:cluster-2/istio-system"]
    # enroll only
    result = run(["rotate", str(state), *meshes, "--steps", "0", "-o", "json"], caplog)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rotation"] is None
    assert mode(state / "clusters.json") == 0o600
    # a few steps, then a rollback, then to the end: back on the first root
    result = run(["rotate", str(state), "--steps", "3", "-o", "json"], caplog)
    assert json.loads(result.stdout)["rotation"]["phase"] != "DONE"
    assert (state / "ca-next" / "tls.key").exists() and mode(state / "ca-next" / "tls.key") == 0o600
    assert run(["rotate", str(state), "--rollback", "--steps", "1"], caplog).exit_code == 0
    result = run(["rotate", str(state), "-o", "json"], caplog)
    out = json.loads(result.stdout)
    assert out["rotation"]["phase"] == "DONE" and out["rotation"]["rolledBack"] is True
    assert not (state / "ca-next").exists()
    assert cert((state / "ca" / "ca.crt").read_text()) == first_root
    # a full rotation: the new root replaces the old one in ca/
    result = run(["rotate", str(state), "-o", "json"], caplog)
    out = json.loads(result.stdout)
    assert out["rotation"]["phase"] == "DONE" and not out["rotation"]["rolledBack"]
    new_root = cert((state / "ca" / "ca.crt").read_text())
    assert new_root != first_root
    assert all(m["bundle"] == [out["rotation"]["toRoot"]] for m in out["meshes"])
    assert mode(state / "ca" / "tls.key") == 0o600 and not (state / "ca-old").exists()


@pytest.mark.parametrize("renamed", [False, True], ids=["before-promotion", "inside-promotion"])
def test_rotate_finishes_a_promotion_a_crash_interrupted(
    renamed: bool, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state"
    assert run(["init", "--out", str(state / "ca")], caplog).exit_code == 0

    def crash(self: _State, status: object, current: object) -> None:
        if renamed:
            os.replace(self.ca, self.old)
        raise RuntimeError("power cut")

    monkeypatch.setattr(_State, "promote", crash)
    crashed = run(["rotate", str(state), "--mesh", "linkerd:c3/linkerd"], caplog)
    assert crashed.exit_code != 0
    monkeypatch.undo()
    target = json.loads((state / "rotation.json").read_text())["toRoot"]
    result = run(["rotate", str(state), "--steps", "0", "-o", "json"], caplog)
    assert result.exit_code == 0, result.output
    assert (
        CertificateAuthority.from_secret(
            {n: (state / "ca" / n).read_bytes() for n in ("tls.crt", "tls.key")}
        ).root_fingerprint
        == target
    )
    assert not (state / "ca-next").exists() and not (state / "ca-old").exists()


def test_rotate_usage_errors(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    state = tmp_path / "state"
    no_ca = run(["rotate", str(state)], caplog)
    assert no_ca.exit_code == 2 and "trust init" in no_ca.stderr
    assert run(["init", "--out", str(state / "ca")], caplog).exit_code == 0
    no_mesh = run(["rotate", str(state)], caplog)
    assert no_mesh.exit_code == 2 and "--mesh" in no_mesh.stderr
    bad = run(["rotate", str(state), "--mesh", "consul:c1/x"], caplog)
    assert bad.exit_code == 2 and "TYPE:CLUSTER/NAMESPACE" in bad.stderr
    assert run(["rotate", str(state), "--mesh", "linkerd:c3/linkerd", "--steps", "0"], caplog).exit_code == 0
    rollback = run(["rotate", str(state), "--rollback"], caplog)
    assert rollback.exit_code == 2 and "no rotation is in progress" in rollback.stderr


def _key_lines(text: str) -> Iterator[str]:
    """The base64 lines of every PEM private key in ``text``."""
    for block in text.split("PRIVATE KEY-----")[1::2]:
        body = block.split("-----END", 1)[0]
        yield from (line for line in body.split() if len(line) >= 16)


def _keys_on_disk(root: Path) -> Iterator[str]:
    """Key lines of every file under ``root`` (key files, and the fake clusters' Secrets)."""
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        yield from _key_lines(text)
        if path.name == "clusters.json":
            for cluster in json.loads(text):
                for secret in cluster["secrets"]:
                    for value in secret["data"].values():
                        yield from _key_lines(base64.b64decode(value).decode(errors="replace"))


def test_init_out_naming_a_file_is_an_input_error(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # Regression: FileExistsError surfaced as MR9999 ("a bug in meshrules") with exit 3.
    target = tmp_path / "ca"
    target.write_text("mine\n")
    result = run(["init", "--out", str(target)], caplog)
    assert result.exit_code == 2
    assert f"cannot write `{target}`" in result.stderr and "MR9999" not in result.stderr
    assert target.read_text() == "mine\n"
