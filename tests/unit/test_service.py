"""The shared service shape: health, readiness, metrics, auth, JSON errors."""

from __future__ import annotations

import asyncio
import time

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field

from iotpipe.service import Authorized, create_app
from iotpipe.settings import ServiceSettings

TOKEN = "t0ken-for-unit-tests-only"


class Thing(BaseModel):
    rate: float = Field(gt=0)


def make_client(ready: bool = True) -> TestClient:
    async def check() -> None:
        if not ready:
            raise ConnectionError("broker unreachable")

    async def slow() -> None:
        await asyncio.sleep(0)

    settings = ServiceSettings(api_token=TOKEN)
    app = create_app(name="unit", settings=settings, readiness={"kafka": check, "other": slow})
    router = APIRouter()

    @router.post("/things")
    async def create(thing: Thing, _: Authorized) -> Thing:
        return thing

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError("kaput")

    app.include_router(router)
    return TestClient(app, raise_server_exceptions=False)


def test_healthz_and_metrics() -> None:
    client = make_client()
    assert client.get("/healthz").json()["status"] == "ok"
    client.get("/healthz")
    text = client.get("/metrics").text
    assert (
        'http_requests_total{method="GET",route="/healthz",service_name="unit",status="200"}'
        in text
    )


TARGET_LABELS = {"namespace", "service", "pod", "container", "endpoint", "job", "instance"}
"""What a ServiceMonitor's scrape sets on every sample: a metric's own label of one of these
names would arrive as ``exported_<name>``."""


def test_no_metric_label_collides_with_the_scrape_s_target_labels() -> None:
    from prometheus_client.parser import text_string_to_metric_families

    client = make_client()
    client.get("/healthz")
    client.post("/things", json={"name": "x"})  # a 401: the counters get a sample
    families = list(text_string_to_metric_families(client.get("/metrics").text))
    labels = {name for f in families for sample in f.samples for name in sample.labels}
    assert "service_name" in labels
    assert not labels & TARGET_LABELS, labels & TARGET_LABELS


def test_readyz_reports_each_dependency() -> None:
    assert make_client(ready=True).get("/readyz").json() == {
        "status": "ready",
        "checks": {"kafka": "ok", "other": "ok"},
    }
    response = make_client(ready=False).get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["kafka"] == "ConnectionError: broker unreachable"


@pytest.mark.parametrize("header", [None, "Bearer wrong", "Basic abc", f"Bearer {TOKEN}x"])
def test_mutating_routes_need_the_token(header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    response = make_client().post("/things", json={"rate": 1}, headers=headers)
    assert response.status_code == 401
    assert "bearer token" in response.json()["detail"]


def test_valid_token_passes_and_invalid_bodies_get_a_readable_422() -> None:
    client = make_client()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert client.post("/things", json={"rate": 2.5}, headers=auth).json() == {"rate": 2.5}
    response = client.post("/things", json={"rate": -1}, headers=auth)
    assert response.status_code == 422
    assert response.json()["detail"] == "rate: Input should be greater than 0"


def test_unexpected_errors_are_json_500s_without_internals() -> None:
    response = make_client().get("/boom")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {
        "type": "about:blank",
        "title": "Internal Server Error",
        "status": 500,
        "detail": "internal error: RuntimeError",
        "instance": "/boom",
    }


def test_every_error_is_a_problem_document() -> None:
    """401 (before the body is read), 413, 422 and 404 alike: RFC 9457 problem+json,
    with the readable `detail` clients read before."""
    client = make_client()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    anonymous = client.post("/things", json={"rate": 1})
    too_large = client.post(
        "/things",
        content=b"x" * (ServiceSettings(api_token=TOKEN).max_body_bytes + 1),
        headers={**auth, "Content-Type": "application/json"},
    )
    invalid = client.post("/things", json={"rate": -1}, headers=auth)
    missing = client.get("/nowhere")
    for response, code in ((anonymous, 401), (too_large, 413), (invalid, 422), (missing, 404)):
        assert response.status_code == code
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert body["status"] == code
        assert body["type"] == "about:blank"
        assert body["title"]
        assert body["detail"]
    assert invalid.json()["errors"][0]["loc"] == ["body", "rate"]
    assert missing.json()["instance"] == "/nowhere"


def test_openapi_declares_problems_and_tags() -> None:
    document = make_client().app.openapi()  # type: ignore[attr-defined]
    responses = document["paths"]["/things"]["post"]["responses"]
    assert {"401", "413", "422", "500"} <= set(responses)
    for code in ("401", "413", "422", "500"):
        assert responses[code]["content"] == {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        }
    assert "HTTPValidationError" not in document["components"]["schemas"]
    assert {"name": "ops", "description": "Health, readiness and Prometheus metrics."} in (
        document["tags"]
    )


def test_token_must_be_long_enough() -> None:
    with pytest.raises(ValueError, match="at least 16"):
        ServiceSettings(api_token="short")


def test_a_start_that_fails_is_retried_while_the_app_answers_503() -> None:
    """A service whose dependency is not up yet starts anyway: /healthz answers, /readyz and
    the routes say what it waits for, and the start is retried until it succeeds."""
    attempts: list[int] = []
    stopped: list[bool] = []

    async def start() -> None:
        attempts.append(len(attempts) + 1)
        if len(attempts) < 3:
            raise ConnectionError(f"broker unreachable ({len(attempts)})")

    async def stop() -> None:
        stopped.append(True)

    app = create_app(name="unit", settings=ServiceSettings(api_token=TOKEN), start=start, stop=stop)

    @app.get("/things")
    async def things() -> list[str]:
        return ["a"]

    app.state.startup._first_delay_s = 0.05
    with TestClient(app) as client:
        assert attempts == [1]
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["started"] == (
            "NotStarted: retrying after 1 failed attempt(s): ConnectionError: broker unreachable (1)"
        )
        waiting = client.get("/things")
        assert waiting.status_code == 503
        assert waiting.json()["detail"] == (
            "unit is starting, retrying: ConnectionError: broker unreachable (1)"
        )
        for _ in range(100):
            if client.get("/readyz").status_code == 200:
                break
            time.sleep(0.05)
        assert attempts == [1, 2, 3]
        assert client.get("/things").json() == ["a"]
        assert not stopped
    assert stopped == [True]


def test_a_start_that_never_succeeded_is_not_stopped() -> None:
    stopped: list[bool] = []

    async def start() -> None:
        raise ConnectionError("never")

    async def stop() -> None:
        stopped.append(True)

    app = create_app(name="unit", settings=ServiceSettings(api_token=TOKEN), start=start, stop=stop)
    with TestClient(app) as client:
        assert client.get("/readyz").status_code == 503
    assert stopped == []
