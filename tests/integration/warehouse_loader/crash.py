"""Kill a real warehouse-loader process inside its load transaction, between DELETE and INSERT.

Shared by the loader's own crash test and the end-to-end scenario, which check different
things around the kill (the fact rows against a sample, the books of a whole pipeline run).
The loader runs as a separate process so that SIGKILL really ends it mid-transaction;
its test hook ``LOADER_TEST_PAUSE_AFTER_DELETE_S`` holds the transaction open after the
DELETE, and PostgreSQL's ``pg_stat_activity`` says when it has got there.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg

from iotpipe.jobs import JobError, submit
from iotpipe.local import process

PAUSE_S = 600
"""How long the loader holds its transaction open after the DELETE: far longer than any test."""
PAUSED_AFTER_DELETE = """
    SELECT COUNT(*) FROM pg_stat_activity
    WHERE datname = current_database() AND application_name = 'warehouse-loader'
      AND state = 'idle in transaction' AND query LIKE 'DELETE FROM fact_sensor_readings%%'
"""
LOADER_SESSIONS = """
    SELECT COUNT(*) FROM pg_stat_activity
    WHERE datname = current_database() AND application_name = 'warehouse-loader'
"""


def count(dsn: str, sql: str) -> int:
    """The single number ``sql`` answers, asked on a connection of its own."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(sql).fetchone()
    assert row is not None
    return int(row[0])


def wait_for(condition: str, check: Callable[[], bool], timeout: float = 60.0) -> None:
    """Poll ``check`` until true; fail naming ``condition`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting until {condition}")


@dataclass(frozen=True)
class LoaderConfig:
    """What a loader process is pointed at: its API token, warehouse, quality gate and lake."""

    token: str
    dsn: str
    gate_url: str
    lake_root: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def spawn(self, log: Path, port: int, **env: str) -> int:
        """Start ``python -m warehouse_loader`` on ``port``, logging plain text to ``log``;
        ``env`` adds or overrides settings. Returns the pid (stop it with ``process.stop``)."""
        return process.spawn(
            [sys.executable, "-m", "warehouse_loader"],
            log,
            env={
                "LOADER_API_TOKEN": self.token,
                "LOADER_WAREHOUSE_DSN": self.dsn,
                "LOADER_QUALITY_GATE_URL": self.gate_url,
                "LAKE_ROOT": self.lake_root,
                "LOADER_HOST": "127.0.0.1",
                "LOADER_PORT": str(port),
                "LOADER_LOG_JSON": "false",
                **env,
            },
        )


@contextmanager
def loader_paused_after_delete(
    loader: LoaderConfig,
    body: dict[str, str],
    log: Path,
    *,
    start_timeout: float,
    pause_timeout: float,
    post_timeout: float,
    join_timeout: float,
) -> Iterator[list[httpx.Response | httpx.TransportError | JobError]]:
    """Start a loader that pauses after its DELETE, POST ``body`` to it from a thread, and
    enter once it holds its transaction open there; on exit SIGKILL it and wait for the POST.

    The block runs while the DELETE is done but not committed, so the caller can check what
    others see at that moment. The yielded list is filled on exit with what the POST got:
    a response, or the error of a loader killed before its job finished (``JobError``: its
    polls failed; ``httpx.TransportError``: the POST got no answer).
    The loader is killed on exit however the block ends.
    """
    port = process.free_port()
    pid = loader.spawn(log, port, LOADER_TEST_PAUSE_AFTER_DELETE_S=str(PAUSE_S))
    outcome: list[httpx.Response | httpx.TransportError | JobError] = []

    def post() -> None:  # as the orchestrator loads: a job, followed to its end
        url = f"http://127.0.0.1:{port}/loads"
        try:
            work = submit(url, json=body, headers=loader.auth, timeout_s=post_timeout)
            outcome.append(asyncio.run(work))
        except (httpx.TransportError, JobError) as exc:
            outcome.append(exc)

    poster = threading.Thread(target=post)
    try:
        process.wait_until(
            lambda: process.port_open(port),
            pid=pid,
            timeout=start_timeout,
            what="the loader",
            log=log,
        )
        poster.start()
        wait_for(
            "the loader has deleted and holds its transaction open",
            lambda: count(loader.dsn, PAUSED_AFTER_DELETE) == 1,
            timeout=pause_timeout,
        )
        yield outcome
    finally:
        process.stop(pid, sig=signal.SIGKILL)
        if poster.is_alive():
            poster.join(timeout=join_timeout)
