"""The quality gate and the warehouse loader, served on loopback ports for one run.

Both are the real FastAPI apps (the same ``build_app`` their images run), served by
uvicorn in a thread of this process on a free port: the orchestrator's window chain
then talks to them over HTTP with their bearer tokens, as it does in the cluster.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn
from fastapi import FastAPI

from iotpipe.lake import Lake
from iotpipe.local.process import free_port


@contextmanager
def served(app: FastAPI, what: str, timeout: float = 120.0) -> Iterator[str]:
    """Serve ``app`` on a free loopback port until the block ends; yield its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on"
        )
    )
    thread = threading.Thread(target=server.run, name=what, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError(f"{what} exited during start-up (see the log above)")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start in {timeout:.0f}s")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@dataclass(frozen=True)
class Services:
    gate_url: str
    gate_token: str
    loader_url: str
    loader_token: str


@contextmanager
def gate_and_loader(lake: Lake, warehouse_dsn: str) -> Iterator[Services]:
    """The quality gate (on ``lake``) and the loader (``lake`` -> ``warehouse_dsn``, asking
    that gate), each with a fresh random token."""
    from quality_gate.app import build_app as gate_app
    from quality_gate.settings import GateSettings
    from warehouse_loader.app import build_app as loader_app
    from warehouse_loader.settings import LoaderSettings

    gate_token, loader_token = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    lake_settings = {"root": lake.root}
    gate = gate_app(GateSettings(api_token=gate_token, lake=lake_settings, log_json=False))
    with served(gate, "quality-gate") as gate_url:
        loader = loader_app(
            LoaderSettings(
                api_token=loader_token,
                warehouse_dsn=warehouse_dsn,
                quality_gate_url=gate_url,
                lake=lake_settings,
                log_json=False,
            )
        )
        with served(loader, "warehouse-loader") as loader_url:
            yield Services(gate_url, gate_token, loader_url, loader_token)
