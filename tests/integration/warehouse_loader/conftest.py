"""Real PostgreSQL (a fresh database per test in the session server), a lake folder with
Gold, and a small real HTTP server that answers the quality gate's verdict endpoint."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import psycopg
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient
from warehouse_loader.app import build_app
from warehouse_loader.gold import FILE_SCHEMA
from warehouse_loader.sample import sample_gold, write_gold
from warehouse_loader.settings import LoaderSettings
from warehouse_loader.warehouse import FACT_COLUMNS

from iotpipe.gate_client import GateVerdict, Layer, Verdict
from iotpipe.lake import Lake
from iotpipe.local import Postgres
from iotpipe.windows import Window

TOKEN = "loader-integration-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
GOLD_START = datetime(2026, 11, 26, 22, 0, tzinfo=UTC)
"""Gold in the test lake: 48 windows (22:00 to 02:00 across midnight) of 40 sensors."""
SENSORS = 40
WINDOW = Window(GOLD_START + timedelta(hours=1), GOLD_START + timedelta(hours=3))
"""The window the tests load: 24 five-minute windows, two ``window_date`` partitions."""


class GateServer:
    """Answers ``GET /gates/gold?window_start=&window_end=`` like the quality gate; ``pass`` unless told."""

    def __init__(self) -> None:
        self.verdicts: dict[str, GateVerdict] = {}
        self.asked: list[str] = []
        gate = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                parts = url.path.split("/")
                query = parse_qs(url.query)
                window = str(
                    Window(
                        datetime.fromisoformat(query["window_start"][0]),
                        datetime.fromisoformat(query["window_end"][0]),
                    )
                )
                gate.asked.append(window)
                verdict = gate.verdicts.get(window) or GateVerdict(
                    layer=Layer(parts[-1]),
                    window=window,
                    verdict=Verdict.PASS,
                    run_id="run-ok",
                    pass_rate=1.0,
                )
                body = verdict.model_dump_json().encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def set(self, window: Window, verdict: Verdict, failed: list[str] | None = None) -> None:
        self.verdicts[str(window)] = GateVerdict(
            layer=Layer.GOLD,
            window=str(window),
            verdict=verdict,
            run_id=None if verdict is Verdict.UNKNOWN else "run-42",
            pass_rate=None if verdict is Verdict.UNKNOWN else 0.8,
            failed_expectations=failed or [],
        )

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="session")
def gate_server() -> Iterator[GateServer]:
    server = GateServer()
    yield server
    server.close()


@pytest.fixture
def gate(gate_server: GateServer) -> GateServer:
    gate_server.verdicts.clear()
    gate_server.asked.clear()
    return gate_server


@pytest.fixture
def database(postgres: Postgres) -> Iterator[str]:
    """The DSN of a new, empty database (dropped afterwards)."""
    name = f"loader_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres.dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    url = urlsplit(postgres.dsn)
    yield urlunsplit(url._replace(path=f"/{name}"))
    with psycopg.connect(postgres.dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def gold() -> pa.Table:
    return sample_gold(GOLD_START, windows=48, sensors=SENSORS)


@pytest.fixture
def lake(tmp_path, gold: pa.Table) -> Lake:
    lake = Lake(str(tmp_path / "lake"))
    write_gold(lake.gold_windows, gold)
    return lake


@pytest.fixture
def settings(database: str, lake: Lake, gate: GateServer) -> LoaderSettings:
    return LoaderSettings(
        api_token=TOKEN,
        warehouse_dsn=database,
        quality_gate_url=gate.url,
        gate_timeout_s=2,
        lake={"root": lake.root},
        log_json=False,
    )


@pytest.fixture
def client(settings: LoaderSettings) -> Iterator[TestClient]:
    """The loader app, started (migrations applied) against the test database."""
    with TestClient(build_app(settings), raise_server_exceptions=False) as client:
        yield client


def facts(dsn: str) -> list[tuple[Any, ...]]:
    """The fact table, every column, in key order."""
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            f"SELECT {FACT_COLUMNS} FROM fact_sensor_readings ORDER BY sensor_id, window_start"
        ).fetchall()


def gold_rows(table: pa.Table, window: Window) -> list[tuple[Any, ...]]:
    """Gold's rows of ``window`` as the warehouse should hold them (UTC wall-clock)."""
    rows = []
    for row in table.select(FILE_SCHEMA.names).to_pylist():
        if window.start <= row["window_start"] < window.end:
            rows.append(
                tuple(
                    v.replace(tzinfo=None) if isinstance(v, datetime) else v for v in row.values()
                )
            )
    return sorted(rows, key=lambda r: (r[0], r[3]))
