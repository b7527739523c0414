"""POST /runs as a job over HTTP, on a real lake with real Great Expectations: 202 +
Location, polled to the run; a failing job's problem; duplicates; the deprecated
synchronous form giving the same run."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from iotpipe.gate_client import Layer
from iotpipe.lake import Lake
from iotpipe.windows import Window, window_params
from tests import jobs

from . import lakedata
from .conftest import AUTH

pytestmark = pytest.mark.integration

HOUR = Window.parse("2026-11-20T10")
BODY = {"layer": "silver", **window_params(HOUR)}
SAME = ("verdict", "pass_rate", "failed_expectations", "row_count", "evaluated_expectations")


def test_a_run_is_a_job_whose_result_is_the_run(client: TestClient, lake: Lake) -> None:
    lakedata.write(lake, Layer.SILVER, lakedata.readings(HOUR))

    accepted = jobs.start(client, "/runs", BODY, AUTH)
    assert accepted.json()["result"] is None
    job = jobs.wait(client, accepted.headers["Location"])

    assert job["status"] == "succeeded", job["problem"]
    assert job["problem"] is None
    assert job["started_at"] is not None
    assert job["finished_at"] >= job["started_at"]
    run = job["result"]
    assert (run["verdict"], run["row_count"]) == ("pass", lakedata.SENSORS * 120)
    assert client.get(f"/runs/{run['run_id']}").json() == run  # the run, persisted
    gate = client.get("/gates/silver", params=window_params(HOUR)).json()
    assert gate["run_id"] == run["run_id"]
    assert client.get(accepted.headers["Location"]).json() == job  # kept for polling

    # The deprecated synchronous form (no Prefer): the same run, answered at the end.
    old = client.post("/runs", json=BODY, headers=AUTH)
    assert old.status_code == 201, old.text
    assert {k: old.json()[k] for k in SAME} == {k: run[k] for k in SAME}
    assert old.json()["run_id"] != run["run_id"]


def test_a_run_that_cannot_read_the_lake_fails_with_a_readable_problem(
    client: TestClient, lake: Lake
) -> None:
    lakedata.write(lake, Layer.SILVER, lakedata.readings(HOUR))
    for part in Path(lake.silver).rglob("*.parquet"):
        part.write_bytes(b"not parquet at all")  # the lake holds broken files

    job = jobs.run(client, "/runs", BODY, AUTH)

    assert job["status"] == "failed"
    assert job["result"] is None
    problem = job["problem"]
    assert (problem["status"], problem["title"]) == (503, "Service Unavailable")
    assert problem["detail"].startswith("cannot read or write the lake: ")
    assert problem["instance"] == job["location"]
    assert client.get("/runs").json()["items"] == []  # nothing recorded
    old = client.post("/runs", json=BODY, headers=AUTH)  # the synchronous form: the 503
    assert old.status_code == 503
    assert old.headers["content-type"] == "application/problem+json"
    assert old.json()["detail"] == problem["detail"]


def test_an_identical_request_while_its_run_is_unfinished_gets_the_same_job(
    client: TestClient, lake: Lake
) -> None:
    lakedata.write(lake, Layer.SILVER, lakedata.readings(HOUR))
    lakedata.write(lake, Layer.GOLD, lakedata.windows(HOUR))
    gold = {"layer": "gold", **window_params(HOUR)}

    first = jobs.start(client, "/runs", gold, AUTH)  # runs go one at a time: this one first
    silver = jobs.start(client, "/runs", BODY, AUTH)
    again = jobs.start(client, "/runs", BODY, AUTH)
    assert silver.json()["status"] == "queued"  # behind the Gold run
    assert again.headers["Location"] == silver.headers["Location"]
    assert first.headers["Location"] != silver.headers["Location"]

    done = [jobs.wait(client, r.headers["Location"]) for r in (first, silver)]
    assert [j["status"] for j in done] == ["succeeded", "succeeded"]
    assert done[1]["started_at"] >= done[0]["finished_at"]  # one at a time
    assert len(client.get("/runs").json()["items"]) == 2  # two runs, not three
    later = jobs.run(client, "/runs", BODY, AUTH)  # finished: a new request is a new run
    assert later["id"] != done[1]["id"]
    assert later["result"]["run_id"] != done[1]["result"]["run_id"]


def test_an_unknown_job_is_a_404_problem(client: TestClient) -> None:
    missing = client.get("/jobs/no-such-job")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert "a restart forgets them" in missing.json()["detail"]
