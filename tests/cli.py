"""Running a command-line tool as a user does: ``python -m <module> ARGS`` in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence


def run_module(
    args: Sequence[str],
    *,
    drop: tuple[str, ...] = (),
    env: Mapping[str, str] | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """``python -m ARGS`` with this environment, less the variables whose names start with
    one of ``drop``, plus ``env``; stdout and stderr captured as text."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(drop)} | dict(env or {})
    return subprocess.run(
        [sys.executable, "-m", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
