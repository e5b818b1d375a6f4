"""`meshrules translate <scenario> [--out DIR]`: every mesh's resources and every policy's status."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import typer

from meshrules.cli.app import app, handles_errors
from meshrules.cli.output import dump_json, dump_yaml, write
from meshrules.cli.run import run_pipeline
from meshrules.errors import InputError, UsageError
from meshrules.pipeline.status import status_objects

# Marks a directory as written by `translate --out`; it lists the files written, so a later run
# replaces exactly those and never deletes anything a user put there.
MARKER = ".meshrules-output"


@app.command("translate")
@handles_errors
def translate_command(
    scenario: Path = typer.Argument(..., help="Scenario directory."),
    out: Path | None = typer.Option(None, "--out", help="Write DIR/<cluster>/*.yaml and DIR/_status/*.yaml."),
    rules: Path | None = typer.Option(None, "--rules", help="Rule directory replacing the default rules."),
    output: str = typer.Option("yaml", "-o", "--output", help="yaml or json (without --out)."),
) -> None:
    """Translate policies into native Istio and Linkerd resources, with each policy's status."""
    if output not in ("yaml", "json"):
        raise UsageError(f"`-o {output}` is not supported here", code="MR0006", hint="use `-o yaml` or `-o json`")
    result = run_pipeline(scenario, rules)
    tr = result.translation
    statuses = status_objects(result.analysis.scenario.policies, tr.statuses)
    if out is not None:
        write_tree(out, tr.objects, tr.patches, statuses)
        typer.echo(f"wrote {tr.object_count()} objects for {len(tr.objects)} clusters to {out}", err=True)
    elif output == "json":
        write(
            dump_json(
                {
                    "clusters": {c: list(objs) for c, objs in tr.objects.items()},
                    "patches": {c: list(objs) for c, objs in tr.patches.items()},
                    "statuses": statuses,
                }
            )
        )
    else:
        for cluster, objs in tr.objects.items():
            write(f"# cluster: {cluster}\n")
            write(dump_yaml(objs))
            write("---\n")
        for cluster, patches in tr.patches.items():
            write(f"# cluster: {cluster} (server-side-apply patches of user objects)\n")
            write(dump_yaml(patches))
            write("---\n")
        write("# policy statuses\n")
        write(dump_yaml(statuses))
    if result.input_errors:
        raise typer.Exit(2)


def _file_name(obj: Mapping[str, Any]) -> str:
    api_version = str(obj.get("apiVersion", "v1"))
    group = api_version.split("/")[0] if "/" in api_version else "core"
    return f"{str(obj.get('kind', 'object')).lower()}.{group}.yaml"


def _group(objs: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    files: dict[str, list[Mapping[str, Any]]] = {}
    for obj in objs:
        files.setdefault(_file_name(obj), []).append(obj)
    return files


def write_tree(
    out: Path,
    objects: Mapping[str, Sequence[Mapping[str, Any]]],
    patches: Mapping[str, Sequence[Mapping[str, Any]]],
    statuses: Sequence[Mapping[str, Any]],
) -> None:
    """Write the outputs under ``out`` (spec §9), replacing only files an earlier run wrote there.

    Raises ``UsageError`` (MR0007) for a directory meshrules did not write and ``InputError``
    (MR0008) when ``out`` is a file or cannot be written.
    """
    try:
        _write_tree(out, objects, patches, statuses)
    except OSError as exc:
        # Wrapped at the boundary: a file path, a read-only disk or missing permissions are the
        # user's to fix, not a meshrules bug.
        reason = (exc.strerror or type(exc).__name__).lower()
        raise InputError(
            f"cannot write `--out {out}`: {reason}" + (f" (`{exc.filename}`)" if exc.filename else ""),
            code="MR0008",
            hint="give a new or empty directory you can write to",
        ) from exc


def _write_tree(
    out: Path,
    objects: Mapping[str, Sequence[Mapping[str, Any]]],
    patches: Mapping[str, Sequence[Mapping[str, Any]]],
    statuses: Sequence[Mapping[str, Any]],
) -> None:
    if out.exists() and not out.is_dir():
        raise InputError(
            f"`--out {out}` is a file, not a directory",
            code="MR0008",
            hint="give a new or empty directory; `translate` writes DIR/<cluster>/*.yaml and DIR/_status/",
        )
    marker = out / MARKER
    if out.exists() and any(out.iterdir()) and not marker.is_file():
        raise UsageError(
            f"`{out}` is not empty and was not written by meshrules",
            code="MR0007",
            hint="choose an empty or new directory; meshrules never overwrites files it did not write",
        )
    for path in _previous_files(out, marker):
        path.unlink()
    # Each file is written as soon as it is rendered: the whole tree's text is never held at once.
    files: list[str] = []
    groups = [
        *((f"{cluster}/", objs) for cluster, objs in objects.items()),
        *((f"{cluster}/_patches/", objs) for cluster, objs in patches.items()),
        ("_status/", statuses),
    ]
    for prefix, objs in groups:
        for name, group in _group(objs).items():
            rel = f"{prefix}{name}"
            path = out / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(dump_yaml(group), encoding="utf-8")
            files.append(rel)
    out.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(sorted(set(files)), indent=1) + "\n")


def _previous_files(out: Path, marker: Path) -> list[Path]:
    """The files the marker says an earlier run wrote, only those inside ``out``.

    INVARIANT: meshrules deletes only what it wrote; a hand-edited or corrupt marker (not JSON, an
    absolute path, `..`) must never make it delete a file outside ``out``.
    """
    if not marker.is_file():
        return []
    try:
        listed = json.loads(marker.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        listed = []
    root = out.resolve()
    found = []
    for rel in listed if isinstance(listed, list) else []:
        if not isinstance(rel, str):
            continue
        path = out / rel
        if path.resolve().is_relative_to(root) and not path.is_symlink() and path.is_file():
            found.append(path)
    return found
