"""Running the `edgekit` command in a fresh process, as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys


def run_cli(*args: str, env: dict | None = None, cwd=None):
    """`edgekit ARGS` in a fresh process: (exit code, stdout, stderr)."""
    result = subprocess.run(
        [sys.executable, "-m", "edgekit", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )
    return result.returncode, result.stdout, result.stderr


def run_cli_here(capsys, *args: str) -> tuple[int, str, str]:
    """`edgekit ARGS` in this process (fast, for commands that import nothing heavy)."""
    from edgekit.cli import main

    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    out, err = capsys.readouterr()
    return code, out, err
