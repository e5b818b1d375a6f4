"""`meshrules trust`: create a root CA, sign mesh CSRs, show trust status, rehearse a rotation.

The edge for trust: files are read and written here (keys 0600, through `_write_file`), and every
certificate decision is `meshrules.trust`'s. Nothing here prints or logs key material: commands
print fingerprints, subjects, dates and certificate PEM only.

`rotate` works offline on a state directory (see docs/trust.md):

    STATE/ca/            the current root CA (from `meshrules trust init --out STATE/ca`)
    STATE/ca-next/       the new root while a rotation runs
    STATE/meshes.json    the member meshes
    STATE/clusters.json  the in-memory clusters' objects (holds intermediate keys: 0600)
    STATE/rotation.json  the rotation status, saved after every step
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import typer
import yaml

from meshrules.cli.app import handles_errors
from meshrules.cli.output import OutputFormat, dump_json, dump_yaml, print_table, write
from meshrules.cli.scenario import load
from meshrules.errors import InputError, UsageError
from meshrules.model.discovery import MeshType
from meshrules.model.policy import VirtualMesh
from meshrules.pipeline import Analysis
from meshrules.trust import (
    CertificateAuthority,
    FakeCluster,
    IssuerScheme,
    KeyType,
    MeshIdentity,
    RootSettings,
    RotationScope,
    RotationStatus,
    SigningPolicy,
    TrustReport,
    VirtualMeshTrustInput,
    enroll_mesh,
    issuer_root,
    mesh_trust_input,
    read_bundle,
    rollback_rotation,
    run_rotation,
    sign_intermediate,
    start_rotation,
    trust_status,
    written_chain,
)
from meshrules.trust.ca import CA_CRT, TLS_CRT, TLS_KEY
from meshrules.trust.status import ChainSource, MeshTrust

trust_app = typer.Typer(
    help="Shared trust: root CA, mesh intermediates through CSRs, status and rotation.",
    no_args_is_help=True,
)

CA_SETTINGS = "ca.json"
PRIVATE_MODE = 0o600
PUBLIC_MODE = 0o644
DEFAULT_INTERMEDIATE_TTL_DAYS = 365


# --- files ------------------------------------------------------------------------------------------


def _cannot_write(path: Path, exc: OSError) -> InputError:
    reason = (exc.strerror or type(exc).__name__).lower()
    return InputError(
        f"cannot write `{path}`: {reason}"
        + (f" (`{exc.filename}`)" if exc.filename and str(exc.filename) != str(path) else ""),
        code="MR0702",
        hint="give a new or empty directory you can write to (not a file)",
    )


def _write_file(path: Path, data: bytes, mode: int) -> None:
    """Write atomically with ``mode`` from the first byte (a key is never briefly world-readable)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    except OSError as exc:  # `--out` names a file, or a directory we may not write
        raise _cannot_write(path.parent, exc) from exc
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_bytes(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(
            f"cannot read {what} `{path}`: {(exc.strerror or type(exc).__name__).lower()}",
            code="MR0702",
            hint="check the path and its permissions",
        ) from exc


def save_ca(directory: Path, ca: CertificateAuthority, settings: Mapping[str, Any]) -> None:
    """Write a CA directory: `tls.crt`, `ca.crt` (0644), `tls.key` (0600), `ca.json`."""
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise _cannot_write(directory, exc) from exc
    data = ca.secret_data()
    _write_file(directory / TLS_KEY, data[TLS_KEY], PRIVATE_MODE)
    _write_file(directory / TLS_CRT, data[TLS_CRT], PUBLIC_MODE)
    _write_file(directory / CA_CRT, data[CA_CRT], PUBLIC_MODE)
    _write_file(
        directory / CA_SETTINGS, (json.dumps(dict(settings), indent=2, sort_keys=True) + "\n").encode(), PUBLIC_MODE
    )


def load_ca(directory: Path) -> tuple[CertificateAuthority, dict[str, Any]]:
    """Read a CA directory written by `trust init` (or holding `tls.crt`/`tls.key`[/`ca.crt`])."""
    if not (directory / TLS_KEY).is_file():
        raise UsageError(
            f"`{directory}` holds no CA",
            code="MR0702",
            hint="create one with `meshrules trust init --out DIR`",
        )
    data = {
        TLS_CRT: _read_bytes(directory / TLS_CRT, "CA certificate"),
        TLS_KEY: _read_bytes(directory / TLS_KEY, "CA key"),
    }
    if (directory / CA_CRT).is_file():
        data[CA_CRT] = _read_bytes(directory / CA_CRT, "root certificate")
    settings: dict[str, Any] = {}
    if (directory / CA_SETTINGS).is_file():
        try:
            settings = json.loads(_read_bytes(directory / CA_SETTINGS, "CA settings"))
        except json.JSONDecodeError as exc:
            raise InputError(f"`{directory / CA_SETTINGS}` is not JSON", code="MR0702", hint=str(exc)) from exc
    return CertificateAuthority.from_secret(data), settings


def _secret_file_data(path: Path) -> dict[str, bytes | str]:
    """The data of a Secret manifest (YAML/JSON, `data` base64 or `stringData`), or of a directory of files."""
    if path.is_dir():
        return {name: (path / name).read_bytes() for name in (TLS_CRT, TLS_KEY, CA_CRT) if (path / name).is_file()}
    try:
        body = yaml.safe_load(_read_bytes(path, "secret"))
    except yaml.YAMLError:
        # The YAML error would quote the file, which holds a key: say only where it is.
        raise InputError(
            f"`{path}` is not a YAML Secret", code="MR0702", hint="give a Secret manifest or a directory"
        ) from None
    if not isinstance(body, Mapping):
        raise InputError(f"`{path}` is not a YAML Secret", code="MR0702", hint="give a Secret manifest or a directory")
    out: dict[str, bytes | str] = {}
    data = body.get("data")
    if isinstance(data, Mapping):
        for key, value in data.items():
            try:
                out[str(key)] = base64.b64decode(str(value), validate=True)
            except ValueError:
                raise InputError(
                    f"`data.{key}` of `{path}` is not base64", code="MR0702", hint="use `stringData` for plain PEM"
                ) from None
    string_data = body.get("stringData")
    if isinstance(string_data, Mapping):
        out.update({str(k): str(v) for k, v in string_data.items()})
    return out


# --- init ---------------------------------------------------------------------------------------------


@trust_app.command("init")
@handles_errors
def init(
    out: Path = typer.Option(..., "--out", help="Directory to write the CA into (created; must not hold a CA)."),
    key_algorithm: KeyType = typer.Option(KeyType.ECDSA_P256, "--key-algorithm", help="ECDSA_P256 or RSA_4096."),
    ttl_days: int = typer.Option(3650, "--ttl-days", min=1, help="Root validity in days."),
    org: str = typer.Option("meshrules", "--org", help="Organization name in the root's subject."),
    intermediate_ttl_days: int = typer.Option(
        DEFAULT_INTERMEDIATE_TTL_DAYS, "--intermediate-ttl-days", min=1, help="Longest TTL `sign` will issue."
    ),
    from_secret: Path | None = typer.Option(
        None, "--from-secret", help="Import a CA instead: a Secret manifest or directory with tls.crt/tls.key[/ca.crt]."
    ),
) -> None:
    """Create a root CA (or import one) into DIR: tls.crt, ca.crt, tls.key (0600), ca.json."""
    if (out / TLS_KEY).exists():
        raise UsageError(
            f"`{out}` already holds a CA",
            code="MR0702",
            hint="choose another directory; meshrules never overwrites a CA key",
        )
    settings: dict[str, Any] = {"intermediateTtlDays": intermediate_ttl_days}
    if from_secret is not None:
        ca = CertificateAuthority.from_secret(_secret_file_data(from_secret))
    else:
        ca = CertificateAuthority.generate(RootSettings(key_algorithm, ttl_days, org))
        settings |= {"keyAlgorithm": key_algorithm.value, "ttlDays": ttl_days, "orgName": org}
    save_ca(out, ca, settings)
    kind = "root CA" if ca.is_root else "intermediate CA"
    write(
        f"{kind} written to {out}\n"
        f"  subject:     {ca.certificate.subject.rfc4514_string()}\n"
        f"  root sha256: {ca.root_fingerprint}\n"
        f"  expires:     {ca.not_after:%Y-%m-%d}\n"
        f"  key:         {out / TLS_KEY} (mode 0600; keep it on the management side)\n"
    )


# --- sign ----------------------------------------------------------------------------------------------


def _mesh_for(
    mesh_type: MeshType, trust_domain: str, namespace: str | None, service_account: str, scheme: IssuerScheme
) -> MeshIdentity:
    ns = namespace or ("istio-system" if mesh_type is MeshType.ISTIO else "linkerd")
    name = f"istiod-{ns}" if mesh_type is MeshType.ISTIO else f"linkerd-destination-{ns}"
    return MeshIdentity(name, mesh_type, "", ns, trust_domain, service_account, scheme)


@trust_app.command("sign")
@handles_errors
def sign(
    csr: Path = typer.Argument(..., help="PEM CSR from the agent (or `openssl req`, see docs/trust.md)."),
    ca_dir: Path = typer.Option(..., "--ca", help="CA directory written by `trust init`."),
    mesh_type: MeshType = typer.Option(MeshType.ISTIO, "--mesh-type", help="istio or linkerd."),
    trust_domain: str = typer.Option("cluster.local", "--trust-domain", help="The mesh's trust domain."),
    namespace: str | None = typer.Option(
        None, "--namespace", help="Control-plane namespace (default istio-system / linkerd)."
    ),
    service_account: str = typer.Option("istiod", "--service-account", help="istiod's service account (Istio)."),
    ttl_days: int | None = typer.Option(None, "--ttl-days", help="Requested TTL (default: the CA's maximum)."),
    out: Path | None = typer.Option(None, "--out", help="Write the chain here instead of stdout."),
) -> None:
    """Sign a mesh intermediate CSR; print the chain (intermediate, then up to the root)."""
    ca, settings = load_ca(ca_dir)
    max_days = int(settings.get("intermediateTtlDays", DEFAULT_INTERMEDIATE_TTL_DAYS))
    mesh = _mesh_for(mesh_type, trust_domain, namespace, service_account, IssuerScheme.LINKERD_TLS)
    chain = sign_intermediate(
        ca,
        _read_bytes(csr, "CSR"),
        mesh,
        policy=SigningPolicy.from_days(max_days),
        ttl=timedelta(days=ttl_days) if ttl_days is not None else None,
    )
    print(f"signed intermediate for `{mesh.identity}`, expires {chain.not_after:%Y-%m-%d}", file=sys.stderr)
    if out is not None:
        _write_file(out, chain.full_chain_pem.encode(), PUBLIC_MODE)
    else:
        write(chain.full_chain_pem)


# --- status --------------------------------------------------------------------------------------------


def scenario_trust_status(analysis: Analysis) -> TrustReport:
    """Trust status of a loaded scenario: its VirtualMeshes, discovered meshes, published roots and CA Secrets."""
    objects = [obj for cluster in analysis.scenario.clusters for obj in cluster.objects]
    meshes = [mesh_trust_input(m, objects) for m in analysis.discovery.meshes]
    vms = [VirtualMeshTrustInput.of(p) for p in analysis.scenario.policies if isinstance(p, VirtualMesh)]
    return trust_status(vms, meshes)


def print_trust_report(report: TrustReport) -> None:
    """The human view of a trust report: one row per member mesh, then the findings."""
    rows: list[Sequence[Any]] = []
    for vm in report.virtual_meshes:
        shared = "-" if vm.shared_root is None else ("yes" if vm.shared_root else "no")
        if vm.shared_root is None and vm.members and all(m.source is ChainSource.PLANNED for m in vm.members):
            shared = "planned"
        for m in vm.members:
            rows.append((vm.name, vm.mode.value, shared, *_mesh_row(m)))
        if not vm.members:
            rows.append((vm.name, vm.mode.value, shared, "(no members found)", "", "", "", ""))
    for m in report.other_meshes:
        rows.append(("-", "-", "-", *_mesh_row(m)))
    print_table(
        "Trust",
        ["VIRTUAL MESH", "TRUST", "SHARED ROOT", "MESH", "CHAIN", "ROOT SHA256", "EXPIRES", "ISSUER IDENTITY"],
        rows,
    )
    for finding in report.all_findings():
        hint = f" ({finding.hint})" if finding.hint else ""
        # Several meshes can report the same problem: say which one each line is about.
        where = f"Mesh {finding.mesh}: " if finding.mesh else ""
        write(f"{finding.severity.value}: {finding.code}: {where}{finding.message}{hint}\n")


def _mesh_row(m: MeshTrust) -> tuple[str, ...]:
    root = _short(m.root_fingerprint) if m.root_fingerprint else ("planned" if m.source is ChainSource.PLANNED else "-")
    expires = f"{m.expires:%Y-%m-%d}" if m.expires else "-"
    issuer = next((c for c in m.chain if c.role == "issuer"), None)
    identity = ", ".join(issuer.sans) if issuer is not None and issuer.sans else "-"
    return (m.name, m.source.value, root, expires, identity)


@trust_app.command("status")
@handles_errors
def status(
    scenario: Path = typer.Argument(..., help="Scenario directory (clusters/, policies/)."),
    output: OutputFormat = typer.Option(OutputFormat.table, "-o", "--output", help="table, yaml or json."),
) -> None:
    """Trust per VirtualMesh and mesh: chain (present or planned), expiry, root, shared root, warnings."""
    analysis, errors = load(scenario)
    report = scenario_trust_status(analysis)
    if output == OutputFormat.table:
        print_trust_report(report)
    elif output == OutputFormat.yaml:
        write(dump_yaml([report.to_wire()]))
    else:
        write(dump_json(report.to_wire()))
    if errors:
        raise typer.Exit(2)


# --- rotate --------------------------------------------------------------------------------------------


def _parse_mesh(spec: str) -> MeshIdentity:
    """`TYPE:CLUSTER/NAMESPACE[@TRUST_DOMAIN]` → a mesh named as discovery names it."""
    try:
        kind, rest = spec.split(":", 1)
        place, _, domain = rest.partition("@")
        cluster, namespace = place.split("/", 1)
        mesh_type = MeshType(kind)
    except ValueError:
        raise UsageError(
            f"mesh `{spec}` is not TYPE:CLUSTER/NAMESPACE[@TRUST_DOMAIN]",
            code="MR0702",
            hint="e.g. `istio:cluster-1/istio-system` or `linkerd:cluster-3/linkerd@cluster.local`",
        ) from None
    prefix = "istiod" if mesh_type is MeshType.ISTIO else "linkerd-destination"
    return MeshIdentity(f"{prefix}-{namespace}-{cluster}", mesh_type, cluster, namespace, domain or "cluster.local")


class _State:
    """The offline rotation's state directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.ca = root / "ca"
        self.next = root / "ca-next"
        self.old = root / "ca-old"
        self.meshes_file = root / "meshes.json"
        self.clusters_file = root / "clusters.json"
        self.rotation_file = root / "rotation.json"

    def recover_layout(self) -> None:
        """Finish a promotion a crash interrupted (`ca` → `ca-old`, `ca-next` → `ca`, drop `ca-old`)."""
        if not self.ca.exists() and self.next.exists():
            os.replace(self.next, self.ca)
        if self.ca.exists() and self.old.exists():
            shutil.rmtree(self.old)

    def meshes(self) -> list[MeshIdentity] | None:
        """The member meshes, or None before the first run named them."""
        if not self.meshes_file.is_file():
            return None
        return [MeshIdentity.from_wire(m) for m in json.loads(self.meshes_file.read_text())]

    def save_meshes(self, meshes: Sequence[MeshIdentity]) -> None:
        """Record the member meshes."""
        _write_file(self.meshes_file, dump_json([m.to_wire() for m in meshes]).encode(), PUBLIC_MODE)

    def clusters(self, meshes: Sequence[MeshIdentity]) -> dict[str, FakeCluster]:
        """The saved in-memory clusters, plus an empty one for each mesh's cluster not seen yet."""
        saved: dict[str, FakeCluster] = {}
        if self.clusters_file.is_file():
            for data in json.loads(self.clusters_file.read_text()):
                saved[data["name"]] = FakeCluster.from_json(data)
        for mesh in meshes:
            saved.setdefault(mesh.cluster, FakeCluster(mesh.cluster))
        return saved

    def save_clusters(self, clusters: Mapping[str, FakeCluster]) -> None:
        """Save the clusters (0600: their Secrets hold intermediate keys)."""
        data = [c.to_json() for _, c in sorted(clusters.items())]
        _write_file(self.clusters_file, dump_json(data).encode(), PRIVATE_MODE)

    def rotation(self) -> RotationStatus | None:
        """The saved rotation status, or None before the first rotation."""
        if not self.rotation_file.is_file():
            return None
        return RotationStatus.model_validate(json.loads(self.rotation_file.read_text()))

    def save_rotation(self, status: RotationStatus) -> None:
        """Save the rotation status (after every step)."""
        _write_file(self.rotation_file, dump_json(status.to_wire()).encode(), PUBLIC_MODE)

    def promote(self, status: RotationStatus, current: CertificateAuthority) -> None:
        """After a finished rotation, make its target root the current one; drop the other key."""
        if status.to_root != current.root_fingerprint:
            os.replace(self.ca, self.old)
            os.replace(self.next, self.ca)
        elif self.next.exists():
            shutil.rmtree(self.next)
        self.recover_layout()


def _root_settings(ca: CertificateAuthority, settings: Mapping[str, Any]) -> RootSettings:
    """Settings for the next root: those `init` recorded, else the current root's own."""
    days = int(settings.get("ttlDays") or max(1, (ca.root.not_valid_after_utc - ca.root.not_valid_before_utc).days))
    key = settings.get("keyAlgorithm")
    key_type = (
        KeyType(key)
        if key
        else (ca.key_type if ca.key_type in (KeyType.ECDSA_P256, KeyType.RSA_4096) else KeyType.ECDSA_P256)
    )
    orgs = [a.value for a in ca.root.subject if a.oid.dotted_string == "2.5.4.10"]
    return RootSettings(key_type, days, str(settings.get("orgName") or (orgs[0] if orgs else "meshrules")))


@trust_app.command("rotate")
@handles_errors
def rotate(
    state_dir: Path = typer.Argument(..., help="State directory; its `ca/` comes from `trust init --out STATE/ca`."),
    mesh_specs: list[str] = typer.Option(
        [], "--mesh", help="Member mesh TYPE:CLUSTER/NAMESPACE[@TRUST_DOMAIN] (first run only); repeat."
    ),
    steps: int | None = typer.Option(None, "--steps", min=0, help="Stop after this many steps (0: only enroll)."),
    rollback: bool = typer.Option(False, "--rollback", help="Reverse the rotation in progress."),
    output: OutputFormat = typer.Option(OutputFormat.table, "-o", "--output", help="table or json."),
) -> None:
    """Rotate the root of the meshes in STATE (offline, on in-memory clusters); resumes a rotation in progress."""
    state = _State(state_dir)
    state.recover_layout()
    status = state.rotation()
    ca, settings = load_ca(state.ca)
    if status is not None and status.done and state.next.exists():
        # A crash came between finishing the last rotation and promoting its root: promote first.
        state.promote(status, ca)
        ca, settings = load_ca(state.ca)
    meshes = _members(state, mesh_specs)
    clusters = state.clusters(meshes)
    policy = SigningPolicy.from_days(int(settings.get("intermediateTtlDays", DEFAULT_INTERMEDIATE_TTL_DAYS)))
    in_progress = status is not None and not status.done
    if not in_progress:
        _enroll(meshes, clusters, ca, policy)
        state.save_clusters(clusters)
    authorities = {ca.root_fingerprint: ca}
    if state.next.exists():
        nxt, _ = load_ca(state.next)
        authorities[nxt.root_fingerprint] = nxt
    scope = RotationScope(meshes, clusters, authorities, policy)
    if rollback:
        if status is None or not in_progress:
            raise UsageError(
                "no rotation is in progress", code="MR0702", hint="`--rollback` reverses a running rotation"
            )
        status = rollback_rotation(status)
        state.save_rotation(status)
    elif not in_progress and steps != 0:
        if not state.next.exists():  # else a crash came after the new root was saved: reuse it
            nxt = CertificateAuthority.generate(_root_settings(ca, settings))
            save_ca(state.next, nxt, settings)
            authorities[nxt.root_fingerprint] = nxt
        status = start_rotation(scope, next(fp for fp in authorities if fp != ca.root_fingerprint))
        state.save_rotation(status)
    if status is not None and steps != 0 and not status.done:

        def persist(s: RotationStatus) -> None:
            # The clusters first: they stand for the real world, which a step has already changed.
            # Saved in this order a crash leaves the status behind the world, never ahead of it,
            # and the idempotent step redoes itself; the other way round a mesh's step could be
            # marked done without its writes and the rotation would wait for it forever.
            state.save_clusters(clusters)
            state.save_rotation(s)

        status = run_rotation(status, scope, max_steps=steps, on_step=persist)
        state.save_clusters(clusters)
    if status is not None and status.done and state.next.exists():
        state.promote(status, ca)
    _print_rotation(status, meshes, clusters, output)


def _enroll(
    meshes: Sequence[MeshIdentity], clusters: Mapping[str, FakeCluster], ca: CertificateAuthority, policy: SigningPolicy
) -> None:
    """Give every mesh without an intermediate one from the current root (its first CSR round trip)."""
    for mesh in meshes:
        cluster = clusters[mesh.cluster]
        if issuer_root(cluster, mesh, read_bundle(cluster, mesh)) is None:
            enroll_mesh(cluster, mesh, ca, policy=policy)
            print(f"enrolled mesh `{mesh.name}` under root {_short(ca.root_fingerprint)}", file=sys.stderr)


def _members(state: _State, specs: Sequence[str]) -> list[MeshIdentity]:
    saved = state.meshes()
    given = [_parse_mesh(s) for s in specs]
    if saved is None:
        if not given:
            raise UsageError(
                "the state directory has no member meshes",
                code="MR0702",
                hint="name them on the first run, e.g. `--mesh istio:cluster-1/istio-system` (repeat for each)",
            )
        state.save_meshes(given)
        return given
    if given and {m.name for m in given} != {m.name for m in saved}:
        raise UsageError(
            "`--mesh` differs from the meshes of the state directory",
            code="MR0702",
            hint=f"its members are {', '.join(m.name for m in saved)}; use a new state directory for others",
        )
    return saved


def _print_rotation(
    status: RotationStatus | None,
    meshes: Sequence[MeshIdentity],
    clusters: Mapping[str, FakeCluster],
    output: OutputFormat,
) -> None:
    served = {m.name: written_chain(clusters[m.cluster], m) for m in meshes}
    if output != OutputFormat.table:
        members = [
            {
                "name": m.name,
                "cluster": m.cluster,
                "type": m.mesh_type.value,
                "bundle": sorted(served[m.name].bundle),
                "issuerRoot": served[m.name].issuer_root,
            }
            for m in meshes
        ]
        write(dump_json({"rotation": status.to_wire() if status else None, "meshes": members}))
        return
    if status is None:
        write("no rotation yet\n")
    else:
        direction = " (rolled back)" if status.rolled_back else ""
        write(
            f"rotation {status.phase.value}{direction}: {_short(status.from_root)} → {_short(status.to_root)}\n"
            + (f"waiting on: {', '.join(status.waiting_on)}\n" if status.waiting_on else "")
        )
    print_table(
        "Meshes",
        ["MESH", "CLUSTER", "TYPE", "TRUST BUNDLE", "ISSUER ROOT"],
        [
            (
                m.name,
                m.cluster,
                m.mesh_type.value,
                ", ".join(_short(fp) for fp in sorted(served[m.name].bundle)) or "-",
                _short(served[m.name].issuer_root),
            )
            for m in meshes
        ],
    )


def _short(fp: str | None) -> str:
    """A fingerprint cut to 16 hex digits for tables (JSON output keeps it whole)."""
    return fp[:16] + "…" if fp else "-"
