"""Hostile HTTP against a real server process: bodies are refused before they are read.

A mutating request without the token gets 401 and one over its route's limit 413, whether
its ``Content-Length`` says so or it streams without one; the process does not grow and
the multipart spool under TMPDIR holds nothing (issue 21 item 3)."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from iotpipe.local.process import free_port, port_open, spawn, wait_until

pytestmark = pytest.mark.integration

TOKEN = "limits-test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MiB = 1024 * 1024
UPLOAD_LIMIT = 2 * MiB


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def spool_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int, Path]]:
    """``python -m sensor_simulator`` on a free port (no broker needed to answer HTTP)."""
    work = tmp_path_factory.mktemp("simulator")
    spool = work / "tmp"
    spool.mkdir()
    port = free_port()
    log = work / "simulator.log"
    pid = spawn(
        [sys.executable, "-m", "sensor_simulator"],
        log,
        env={
            "SIMULATOR_API_TOKEN": TOKEN,
            "SIMULATOR_PORT": str(port),
            "SIMULATOR_HOST": "127.0.0.1",
            "SIMULATOR_MAX_UPLOAD_BYTES": str(UPLOAD_LIMIT),
            "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",  # nothing there
            "TMPDIR": str(spool),
        },
    )
    try:
        wait_until(lambda: port_open(port), pid=pid, timeout=60, what="the simulator", log=log)
        yield f"http://127.0.0.1:{port}", pid, spool
    finally:
        os.kill(pid, signal.SIGTERM)


def chunks(total: int, size: int = 256 * 1024) -> Iterator[bytes]:
    block = b"x" * size
    for _ in range(total // size):
        yield block


def test_bodies_are_refused_before_they_are_read(server: tuple[str, int, Path]) -> None:
    base, pid, spool = server
    client = httpx.Client(base_url=base, timeout=30)
    before = rss_bytes(pid)
    huge = 200 * MiB
    declared = {"Content-Length": str(huge), "Content-Type": "application/json"}

    started = time.monotonic()
    anonymous = client.post("/runs", content=chunks(huge), headers=declared)
    assert anonymous.status_code == 401, anonymous.text
    assert "bearer token" in anonymous.json()["detail"]
    too_long = client.post("/runs", content=chunks(huge), headers={**declared, **AUTH})
    assert too_long.status_code == 413, too_long.text
    assert "limit of 1048576 bytes" in too_long.json()["detail"]
    streamed = client.post(  # no Content-Length: cut off once the limit has arrived
        "/runs", content=chunks(huge), headers={"Content-Type": "application/json", **AUTH}
    )
    assert streamed.status_code == 413, streamed.text
    upload = client.post(
        "/replays",
        files={"file": ("big.csv", b"sensor_id,x\n" + b"y" * (UPLOAD_LIMIT + 256 * 1024))},
        headers=AUTH,
    )
    assert upload.status_code == 413, upload.text
    anonymous_upload = client.post("/replays", files={"file": ("a.csv", b"a" * 10 * MiB)})
    assert anonymous_upload.status_code == 401
    elapsed = time.monotonic() - started

    assert rss_bytes(pid) - before < 32 * MiB, "the refused bodies were not held in memory"
    assert spool_bytes(spool) == 0, "nothing left spooled"
    assert client.get("/healthz").status_code == 200
    assert elapsed < 60, f"{elapsed:.0f}s: the refused bodies were read"
    # Within the limits, the same routes work as before (a 422 for a bad body, not a 413).
    small = client.post("/runs", json={"rate_per_s": -1}, headers=AUTH)
    assert small.status_code in (422, 503), small.text
