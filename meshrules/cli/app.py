"""The `meshrules` command: one Typer app; each subcommand lives in its own module of `cli/`.

This module owns what every command shares: `--debug`, turning `MeshrulesError` into one readable
line and an exit code, and never letting a traceback reach a user who did not ask for one.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

import typer

from meshrules.errors import InternalError, MeshrulesError

P = ParamSpec("P")
R = TypeVar("R")

app = typer.Typer(
    name="meshrules",
    help="One declarative API over multi-cluster Istio and Linkerd service meshes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_state = {"debug": False}


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show Python tracebacks for errors."),
) -> None:
    """One declarative API over multi-cluster Istio and Linkerd service meshes."""
    _state["debug"] = debug


def debug_enabled() -> bool:
    """Whether `--debug` was given."""
    return _state["debug"]


def fail(err: MeshrulesError) -> typer.Exit:
    """Print an error (and each diagnostic it carries) as one line each; return the exit to raise."""
    for diag in err.diagnostics:
        # A rule set that fails to check carries its warnings too (MR0520): say which is which.
        print(f"{diag.severity.value}: {diag}", file=sys.stderr)
    if not err.diagnostics:
        print(f"error: {err}", file=sys.stderr)
    return typer.Exit(err.exit_code)


def handles_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Decorate a command so user errors become one line and an exit code, not a traceback."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except MeshrulesError as err:
            # With --debug the traceback comes first; the exit code stays the error's own (2 for
            # input, 1 for policy), so scripts behave the same with and without it.
            if debug_enabled():
                traceback.print_exc(file=sys.stderr)
            raise fail(err) from None
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except BrokenPipeError:
            # The reader went away (`meshrules translate X | head`): what it wanted was printed. Point
            # stdout at /dev/null so the interpreter's final flush cannot fail again, and stop quietly.
            _silence_stdout()
            raise typer.Exit(0) from None
        except Exception as exc:  # a bug: say so in one line, after the traceback with --debug
            if debug_enabled():
                traceback.print_exc(file=sys.stderr)
            raise fail(
                InternalError(
                    f"meshrules failed: {type(exc).__name__}: {exc}",
                    code="MR9999",
                    hint="this is a bug in meshrules; rerun with --debug and report the traceback",
                )
            ) from None

    return wrapper


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a real file (captured by a test runner)
        pass


def main() -> None:
    """Entry point of the `meshrules` console script."""
    from meshrules.cli import commands  # noqa: F401  (registers every subcommand on `app`)

    app()
