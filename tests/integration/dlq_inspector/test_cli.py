"""The CLI against the real service over HTTP: list, then replay with a progress bar."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

import orjson
import pytest
import uvicorn
from dlq_inspector.cli import app as cli
from typer.testing import CliRunner

from iotpipe.contract import ErrorType
from iotpipe.local.process import free_port

from .conftest import TOKEN, DlqEnv, letter, wrong_unit_letters

pytestmark = pytest.mark.integration


def _first_column(table: str) -> set[str]:
    rows = (line.split("│") for line in table.splitlines() if line.startswith("│"))
    return {cells[1].strip() for cells in rows} - {""}


async def test_cli_lists_and_replays_through_the_service(dlq: DlqEnv) -> None:
    now = int(time.time() * 1000)
    letters = [d for d in wrong_unit_letters(8, start_ms=now) if b'"temperature"' in d.value]
    broken = letter(b"{nope", ErrorType.MALFORMED_JSON, offset=77, at_ms=now + 100)
    ids = await dlq.write([*letters, broken])
    port = free_port()
    # the fixture already runs the app's lifespan (Kafka clients): serve it as it is
    config = uvicorn.Config(dlq.app, host="127.0.0.1", port=port, log_config=None, lifespan="off")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        for _ in range(200):
            if server.started:
                break
            await asyncio.sleep(0.05)
        url = f"http://127.0.0.1:{port}"
        runner = CliRunner()
        listed = await asyncio.to_thread(
            runner.invoke, cli, ["list", "--url", url, "--error-type", "malformed_json"]
        )
        assert listed.exit_code == 0, listed.output
        # the id column of the table (a bare substring check also matched the clock, 11:0x)
        assert _first_column(listed.output) == {ids[-1]}
        as_json = await asyncio.to_thread(
            runner.invoke,
            cli,
            ["list", "--url", url, "--error-type", "malformed_json", "--output", "json"],
        )
        assert as_json.exit_code == 0, as_json.output
        page = json.loads(as_json.output)
        assert [item["id"] for item in page["items"]] == [ids[-1]]
        assert page["next_cursor"]

        patch = orjson.dumps({"unit": "celsius"}).decode()
        args = ["replay", *ids, "--url", url, "--token", TOKEN, "--patch", patch]
        dry = await asyncio.to_thread(runner.invoke, cli, [*args, "--dry-run", "--output", "json"])
        assert dry.exit_code == 0, dry.output
        job = json.loads(dry.stdout)
        assert {k: n for k, n in job["counts"].items() if n} == {
            "would_replay": len(letters),
            "refused": 1,
        }
        assert [r["id"] for r in job["results"] if r["result"] == "refused"] == [ids[-1]]
        partition, offset = ids[-1].split(":")
        shown = await asyncio.to_thread(
            runner.invoke,
            cli,
            ["show", partition, offset, "--url", url, "--token", TOKEN, "-o", "json"],
        )
        assert shown.exit_code == 0, shown.output
        message = json.loads(shown.stdout)
        assert (message["id"], message["error_type"]) == (ids[-1], "malformed_json")
        stats = await asyncio.to_thread(
            runner.invoke, cli, ["stats", "--url", url, "--output", "json"]
        )
        assert stats.exit_code == 0, stats.output
        counted = json.loads(stats.stdout)
        assert (counted["total"], counted["replayed"]) == (len(ids), 0)
        assert counted["by_error_type"]["malformed_json"]["total"] == 1

        replayed = await asyncio.to_thread(
            runner.invoke,
            cli,
            [
                "replay",
                *ids,
                "--url",
                url,
                "--token",
                TOKEN,
                "--patch",
                orjson.dumps({"unit": "celsius"}).decode(),
            ],
        )
        assert replayed.exit_code == 0, replayed.output
        assert f"{len(ids)}/{len(ids)}" in replayed.output  # the progress bar finished
        assert "refused" in replayed.output
        assert ids[-1] in replayed.output  # the refusal, with its reason
        assert "not JSON" in replayed.output
        assert len(await dlq.events()) == len(letters)
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await serving
