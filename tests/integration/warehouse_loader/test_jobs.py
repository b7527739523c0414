"""POST /loads as a job, into a real PostgreSQL: 202 + Location, polled to the load record;
a refused load's problem; an identical request while its load runs; the deprecated
synchronous form."""

from __future__ import annotations

import threading

import httpx
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient
from warehouse_loader.app import build_app
from warehouse_loader.settings import LoaderSettings

from iotpipe.gate_client import Verdict
from iotpipe.windows import Window, window_params
from tests import jobs

from .conftest import AUTH, WINDOW, GateServer, facts, gold_rows

pytestmark = pytest.mark.integration

BODY = window_params(WINDOW)


def test_a_load_is_a_job_whose_result_is_the_load_record(
    client: TestClient, settings: LoaderSettings, gold: pa.Table
) -> None:
    accepted = jobs.start(client, "/loads", BODY, AUTH)
    job = jobs.wait(client, accepted.headers["Location"])

    assert job["status"] == "succeeded", job["problem"]
    record = job["result"]
    assert (record["status"], record["rows_deleted"], record["rows_inserted"]) == (
        "succeeded",
        0,
        960,
    )
    assert client.get(f"/loads/{record['id']}").json() == record  # in the load history
    assert facts(settings.warehouse_dsn.get_secret_value()) == gold_rows(gold, WINDOW)

    # The deprecated synchronous form: the same load again, answered at the end.
    old = client.post("/loads", json=BODY, headers=AUTH)
    assert old.status_code == 201, old.text
    assert (old.json()["rows_deleted"], old.json()["rows_inserted"]) == (960, 960)
    assert facts(settings.warehouse_dsn.get_secret_value()) == gold_rows(gold, WINDOW)


def test_a_refused_load_fails_with_the_409_problem_and_its_record(
    client: TestClient, settings: LoaderSettings, gate: GateServer
) -> None:
    gate.set(WINDOW, Verdict.FAIL, ["health_pct_within_0_100"])

    job = jobs.run(client, "/loads", BODY, AUTH)

    assert job["status"] == "failed"
    problem = job["problem"]
    assert (problem["status"], problem["title"]) == (409, "Conflict")
    record = job["result"]
    assert problem["detail"] == f"load {record['id']} refused: {record['detail']}"
    assert f"Gold gate verdict for {WINDOW} is fail" in problem["detail"]
    assert "failed expectations: health_pct_within_0_100" in problem["detail"]
    assert (record["status"], record["gate_verdict"]) == ("refused", "fail")
    assert client.get(f"/loads/{record['id']}").json() == record
    assert facts(settings.warehouse_dsn.get_secret_value()) == []
    old = client.post("/loads", json=BODY, headers=AUTH)  # the synchronous form: the 409
    assert old.status_code == 409
    assert "failed expectations: health_pct_within_0_100" in old.json()["detail"]


def test_an_unreachable_gate_fails_the_job_with_a_503(settings: LoaderSettings) -> None:
    down = settings.model_copy(
        update={"quality_gate_url": "http://127.0.0.1:9", "gate_timeout_s": 0.5}
    )
    with TestClient(build_app(down), raise_server_exceptions=False) as client:
        job = jobs.run(client, "/loads", BODY, AUTH)
    assert job["status"] == "failed"
    assert job["problem"]["status"] == 503
    assert "quality gate at http://127.0.0.1:9 unavailable" in job["problem"]["detail"]


def test_an_identical_request_while_its_load_runs_gets_the_same_job(
    settings: LoaderSettings, gold: pa.Table
) -> None:
    slow = settings.model_copy(update={"test_pause_after_delete_s": 3.0})
    other = window_params(Window(WINDOW.start, WINDOW.start + (WINDOW.end - WINDOW.start) / 2))
    with TestClient(build_app(slow), raise_server_exceptions=False) as client:
        first = jobs.start(client, "/loads", BODY, AUTH)
        waited: list[httpx.Response] = []

        def older_client() -> None:  # the synchronous form, meanwhile
            waited.append(client.post("/loads", json=BODY, headers=AUTH))

        old = threading.Thread(target=older_client)
        old.start()
        again = jobs.start(client, "/loads", BODY, AUTH)
        assert again.headers["Location"] == first.headers["Location"]
        assert again.json()["status"] == "running"
        different = jobs.start(client, "/loads", other, AUTH)
        assert different.headers["Location"] != first.headers["Location"]

        done = jobs.wait(client, first.headers["Location"])
        old.join(timeout=60)
        assert jobs.wait(client, different.headers["Location"])["status"] == "succeeded"
        history = client.get("/loads").json()["items"]

    assert done["status"] == "succeeded", done["problem"]
    [answer] = waited
    assert answer.status_code == 201
    assert answer.json() == done["result"]  # the same load
    assert sorted(r["window_end"] for r in history) == sorted(
        [done["result"]["window_end"], other["window_end"]]
    )  # two loads, not four
    assert facts(settings.warehouse_dsn.get_secret_value()) == gold_rows(gold, WINDOW)
