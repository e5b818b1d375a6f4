"""The command line in a shell pipeline: a reader that stops early (`| head`) is not an error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BOOKINFO = Path(__file__).resolve().parents[2] / "simulator" / "scenarios" / "bookinfo-multicluster"


def test_a_reader_that_closes_the_pipe_early_gets_no_error_and_exit_0() -> None:
    # `translate` of the bundled scenario prints far more than a pipe buffer holds, so the write
    # after the reader left fails with EPIPE.
    proc = subprocess.Popen(
        [sys.executable, "-m", "meshrules", "translate", str(BOOKINFO)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=120) == 0
    assert first.startswith(b"# cluster: ")
    assert "BrokenPipe" not in err and "Traceback" not in err and "error:" not in err
