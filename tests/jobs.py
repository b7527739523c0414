"""Long work in tests, as a client does it (docs/api-style.md, "Long work"): POST with
``Prefer: respond-async``, expect ``202`` and a ``Location``, poll it until the job ends.

Works with any ``httpx.Client``: a ``TestClient`` (inside ``with``, so the app's loop keeps
running the job between requests) or one with a ``base_url``."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import httpx

from iotpipe.jobs import final_answer

ASYNC = {"Prefer": "respond-async"}


def start(
    client: httpx.Client, path: str, body: Mapping[str, Any], headers: Mapping[str, str]
) -> httpx.Response:
    """The POST; asserts its ``202``, ``Location`` (the job's URL) and job body."""
    response = client.post(
        path,
        json=dict(body),
        headers={**headers, **ASYNC},
    )
    assert response.status_code == 202, response.text
    job = response.json()
    assert response.headers["Location"] == job["location"] == f"/jobs/{job['id']}"
    assert response.headers["Preference-Applied"] == "respond-async"
    assert job["status"] in {"queued", "running", "succeeded", "failed"}
    return response


def wait(client: httpx.Client, location: str, timeout_s: float = 300) -> dict[str, Any]:
    """Poll ``location`` until the job has finished; its last view."""
    deadline = time.monotonic() + timeout_s
    while True:
        polled = client.get(
            location,
        )
        assert polled.status_code == 200, polled.text
        job: dict[str, Any] = polled.json()
        if job["status"] in {"succeeded", "failed"}:
            return job
        assert time.monotonic() < deadline, f"job {location} still {job['status']}"
        time.sleep(0.1)


def run(
    client: httpx.Client,
    path: str,
    body: Mapping[str, Any],
    headers: Mapping[str, str],
    timeout_s: float = 300,
) -> dict[str, Any]:
    """POST as a job and wait for it: the finished job (``result`` or ``problem``)."""
    return wait(client, start(client, path, body, headers).headers["Location"], timeout_s)


def final(
    client: httpx.Client,
    path: str,
    body: Mapping[str, Any],
    headers: Mapping[str, str],
    timeout_s: float = 300,
) -> httpx.Response:
    """POST as a job and wait for it; its end as the synchronous form answered: ``201``
    with the result, or the problem with its status (a 409, a 503, ...)."""
    return final_answer(run(client, path, body, headers, timeout_s))
