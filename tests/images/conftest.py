"""The images, built the way `make images` builds them (scripts/images.sh: cached layers make a
second build quick), and run with Docker as the chart runs them: their own non-root user, a
read-only root filesystem with /tmp writable, nothing pulled."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.cluster.kube import REPO


@pytest.fixture(scope="session")
def images() -> None:
    if os.geteuid() != 0:
        pytest.fail("the image tests need root (dockerd)", pytrace=False)
    done = subprocess.run(
        ["scripts/images.sh"], cwd=REPO, capture_output=True, text=True, timeout=3600, check=False
    )
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-40:])
        pytest.fail(f"scripts/images.sh failed:\n{tail}", pytrace=False)
