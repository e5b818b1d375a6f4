"""Reading a scenario directory (spec §1.1): the offline twin of reading live clusters.

This is the file I/O edge: it finds files, reads them, and hands their text to the pure parsers in
`meshrules.model`. A bad file never stops the others from loading; every problem comes back as a
diagnostic with file and line.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from meshrules.errors import Diagnostic, InputError, Location, Severity
from meshrules.model.common import is_dns1123_label
from meshrules.model.documents import UNREADABLE_FILE, Document, parse_documents
from meshrules.model.scenario import (
    INVALID_CLUSTER_NAME,
    MISPLACED_OBJECT,
    ClusterSnapshot,
    PolicyDocuments,
    RuleSource,
    Scenario,
    cluster_objects,
    read_policy_documents,
)

YAML_SUFFIXES = (".yaml", ".yml")
CLUSTER_CONFIG_FILE = "cluster.yaml"
EMPTY_CLUSTER = "MR0009"


def load_scenario(path: str | Path, policies_dir: str | Path | None = None) -> Scenario:
    """Load a scenario directory; ``policies_dir`` replaces its `policies/` (as `diff --with` does)."""
    root = Path(path)
    if not root.is_dir():
        raise InputError(
            f"scenario `{root}` is not a directory",
            code="MR0004",
            hint="a scenario holds `clusters/<cluster>/*.yaml` and `policies/*.yaml` (see docs/scenarios.md)",
        )
    diags: list[Diagnostic] = []
    clusters = tuple(_load_clusters(root, diags))
    out = PolicyDocuments()
    rule_files: list[RuleSource] = []
    pol_dir = Path(policies_dir) if policies_dir is not None else root / "policies"
    for file in _files(pol_dir, YAML_SUFFIXES, diags, root):
        read_policy_documents(_read_docs(file, root, diags), into=out)
    for file in _files(pol_dir, (".rules",), diags, root):
        text = _read_text(file, root, diags)
        if text is not None:
            rule_files.append(RuleSource(path=_display(file, root), text=text))
    tests_dir = root / "tests"
    for file in _files(tests_dir, YAML_SUFFIXES, diags, root):
        read_policy_documents(_read_docs(file, root, diags), into=out)
    if not clusters and not out.policies:
        diags.append(
            Diagnostic(
                code="MR0005",
                message=f"scenario `{root}` has no clusters and no policies",
                location=Location(file=str(root)),
                hint="add `clusters/<cluster>/*.yaml` (e.g. from `meshrules snapshot`) and `policies/*.yaml`",
            )
        )
    skipped: Counter[str] = Counter(out.skipped)
    return Scenario(
        root=str(root),
        clusters=clusters,
        policies=tuple(sorted(out.policies, key=lambda p: (p.kind, *p.acceptance_key()))),
        tests=tuple(sorted(out.tests, key=lambda t: t.metadata.name)),
        rule_files=tuple(sorted(rule_files, key=lambda r: r.path)),
        sources=dict(out.sources),
        diagnostics=tuple(sorted(diags + out.diagnostics, key=Diagnostic.sort_key)),
        skipped=dict(sorted(skipped.items())),
    )


def _load_clusters(root: Path, diags: list[Diagnostic]) -> list[ClusterSnapshot]:
    clusters_dir = root / "clusters"
    if not clusters_dir.is_dir():
        return []
    snapshots = []
    for cdir in sorted(p for p in clusters_dir.iterdir() if p.is_dir()):
        name = cdir.name
        if not is_dns1123_label(name):
            diags.append(
                Diagnostic(
                    code=INVALID_CLUSTER_NAME,
                    message=f"cluster directory `{name}` is not a DNS-1123 label",
                    location=Location(file=_display(cdir, root)),
                    hint="rename it with lower-case letters, digits and `-` (at most 63 characters)",
                )
            )
            continue
        docs: list[Document] = []
        config: Document | None = None
        reported = len(diags)
        files = _files(cdir, YAML_SUFFIXES, diags, root)
        for file in files:
            for doc in _read_docs(file, root, diags):
                if doc.kind == "KubernetesCluster" and doc.is_meshrules:
                    config = doc
                elif doc.is_meshrules:
                    diags.append(
                        Diagnostic(
                            code=MISPLACED_OBJECT,
                            message=f"`{doc.kind}` belongs in `policies/`, not in a cluster directory",
                            location=doc.location,
                            hint="move it to `policies/`; cluster directories hold what the cluster runs",
                        )
                    )
                else:
                    docs.append(doc)
        if not docs and config is None and len(diags) == reported:
            # An empty directory is still a cluster (with no mesh); say so, since it is most often a
            # snapshot that was not captured, or files with another suffix (`.json`, `.txt`).
            diags.append(
                Diagnostic(
                    code=EMPTY_CLUSTER,
                    severity=Severity.WARNING,
                    message=f"cluster directory `{name}` holds no objects"
                    + ("" if files else " (no `*.yaml` or `*.yml` files)"),
                    location=Location(file=_display(cdir, root)),
                    hint=f"capture it with `meshrules snapshot --context CTX --out {_display(cdir, root)}`, "
                    "or remove the directory",
                )
            )
        objects, cdiags = cluster_objects(name, docs)
        diags.extend(cdiags)
        snapshots.append(ClusterSnapshot(name=name, objects=tuple(objects), config=config))
    return snapshots


def _files(directory: Path, suffixes: tuple[str, ...], diags: list[Diagnostic], root: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    try:
        return sorted(p for p in directory.iterdir() if p.is_file() and p.suffix in suffixes)
    except OSError as exc:
        diags.append(_unreadable(directory, root, exc))
        return []


def _read_text(file: Path, root: Path, diags: list[Diagnostic]) -> str | None:
    try:
        return file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        diags.append(_unreadable(file, root, exc))
        return None


def _read_docs(file: Path, root: Path, diags: list[Diagnostic]) -> list[Document]:
    text = _read_text(file, root, diags)
    if text is None:
        return []
    docs, parse_diags = parse_documents(text, _display(file, root))
    diags.extend(parse_diags)
    return docs


def _unreadable(file: Path, root: Path, exc: Exception) -> Diagnostic:
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
    if isinstance(exc, UnicodeDecodeError):
        reason = "not UTF-8 text"
    return Diagnostic(
        code=UNREADABLE_FILE,
        message=f"cannot read file: {reason.lower()}",
        location=Location(file=_display(file, root)),
        hint="check its permissions and encoding; the other files were loaded",
    )


def _display(file: Path, root: Path) -> str:
    """Paths in messages are relative to the scenario, as users think of them."""
    try:
        return str(file.relative_to(root))
    except ValueError:
        return str(file)
