"""The API's refusals and the verdict client, without running a suite."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from quality_gate.app import build_app
from quality_gate.gate import QualityGate, new_run_id
from quality_gate.models import RunDetail
from quality_gate.settings import GateSettings

from iotpipe.gate_client import GateError, Layer, Verdict, gate_verdict, run_gate
from iotpipe.lake import Lake
from iotpipe.settings import LakeSettings
from iotpipe.windows import Window

TOKEN = "unit-test-token-quality"
HOUR = Window.parse("2026-11-20T10")


def stored_run(
    gate: QualityGate, layer: Layer, window: Window, *, ok: bool, at: datetime
) -> RunDetail:
    run_id = new_run_id(layer, at)
    run = RunDetail(
        run_id=run_id,
        layer=layer,
        window=str(window),
        verdict=Verdict.PASS if ok else Verdict.FAIL,
        pass_rate=1.0 if ok else 0.5,
        threshold=0.99,
        evaluated_expectations=2,
        successful_expectations=2 if ok else 1,
        failed_expectations=[] if ok else ["rows_present"],
        row_count=10,
        engine="pandas",
        started_at=at,
        finished_at=at,
        result_location=gate.store.result_location(layer, run_id),
        expectations=[],
        result={"success": ok},
    )
    gate.store.save(run)
    return run


@pytest.fixture
def gate(tmp_path: Path) -> QualityGate:
    settings = GateSettings(api_token=TOKEN, lake=LakeSettings(root=str(tmp_path / "lake")))
    return QualityGate(settings)


@pytest.fixture
def client(gate: QualityGate) -> Iterator[TestClient]:
    with TestClient(build_app(gate.settings, gate), raise_server_exceptions=False) as test_client:
        yield test_client


def test_runs_need_the_token(client: TestClient) -> None:
    body = {"layer": "silver", "window": "2026-11-20T10"}
    assert client.post("/runs", json=body).status_code == 401
    wrong = client.post("/runs", json=body, headers={"Authorization": "Bearer nope-nope-nope-nope"})
    assert wrong.status_code == 401
    assert "bearer token" in wrong.json()["detail"]
    assert client.get("/runs").json() == {"items": [], "next_cursor": None, "has_more": False}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"layer": "platinum", "window": "2026-11-20"}, "layer"),
        ({"layer": "silver", "window": "yesterday"}, "invalid window 'yesterday'"),
        ({"layer": "silver", "window": "2026-11-20T11:00:00Z--2026-11-20T10:00:00Z"}, "not after"),
        ({"layer": "silver"}, "window_start and window_end are required"),
        (
            {
                "layer": "silver",
                "window_start": "2026-11-20T11:00:00Z",
                "window_end": "2026-11-20T10:00:00Z",
            },
            "not after",
        ),
        (
            {"layer": "silver", "window_start": "2026-11-20T10:00:00", "window_end": "2026-11-21"},
            "timezone",
        ),
        (
            {
                "layer": "silver",
                "window_start": "2026-11-20T10:00:00Z",
                "window_end": "9999-12-31T23:00:00-05:00",
            },
            "outside the years 1-9999",
        ),
        (
            {
                "layer": "silver",
                "window": "2026-11-20",
                "window_start": "2026-11-20T10:00:00Z",
                "window_end": "2026-11-20T11:00:00Z",
            },
            "or the deprecated window",
        ),
        # Past year 9999 once in UTC (an OverflowError, a 500, before).
        ({"layer": "silver", "window": "9999-12-31"}, "outside the years 1-9999"),
        (
            {"layer": "silver", "window": "2000-01-01T00:00:00Z--2026-01-01T00:00:00Z"},
            "one run validates at most 31 days, 0:00:00 (QUALITY_MAX_WINDOW)",
        ),
        (
            {"layer": "silver", "window": "2026-01-01T00:00:00Z--9999-12-31T23:00:00-05:00"},
            "outside the years 1-9999",
        ),
    ],
)
def test_bad_run_requests_get_422_with_a_message(
    client: TestClient, body: dict, message: str
) -> None:
    response = client.post("/runs", json=body, headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 422
    assert message in response.json()["detail"]


def test_bad_gate_questions_get_4xx(client: TestClient) -> None:
    assert client.get("/gates/platinum/2026-11-20").status_code == 422
    response = client.get("/gates/gold/2026-13-40")
    assert response.status_code == 422
    assert "invalid window" in response.json()["detail"]
    response = client.get("/gates/gold/2026-01-01T00:00:00Z--9999-12-31T23:00:00-05:00")
    assert response.status_code == 422
    assert "outside the years 1-9999" in response.json()["detail"]
    missing = client.get("/runs/no-such-run")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json() == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "detail": "no run 'no-such-run'",
        "instance": "/runs/no-such-run",
    }
    assert client.get("/runs", params={"layer": "platinum"}).status_code == 422


def test_verdict_comes_from_the_newest_covering_run(gate: QualityGate, client: TestClient) -> None:
    at = datetime(2026, 11, 20, 12, tzinfo=UTC)
    day = Window.parse("2026-11-20")
    passed_day = stored_run(gate, Layer.GOLD, day, ok=True, at=at)
    failed_hour = stored_run(gate, Layer.GOLD, HOUR, ok=False, at=at + timedelta(minutes=1))
    stored_run(gate, Layer.SILVER, HOUR, ok=True, at=at + timedelta(minutes=2))

    answer = client.get(f"/gates/gold/{HOUR}").json()
    assert answer["verdict"] == "fail"
    assert answer["run_id"] == failed_hour.run_id
    assert answer["failed_expectations"] == ["rows_present"]
    other_hour = client.get("/gates/gold/2026-11-20T11").json()
    assert (other_hour["verdict"], other_hour["run_id"]) == ("pass", passed_day.run_id)
    assert client.get("/gates/gold/2026-11-21").json()["verdict"] == "unknown"


async def test_client_reads_verdicts_and_reports_refusals(
    gate: QualityGate, client: TestClient
) -> None:
    run = stored_run(gate, Layer.GOLD, HOUR, ok=True, at=datetime(2026, 11, 20, 12, tzinfo=UTC))
    transport = httpx.ASGITransport(app=client.app)
    async with httpx.AsyncClient(transport=transport) as http:
        answer = await gate_verdict("http://gate", Layer.GOLD, HOUR, client=http)
        assert answer.passed
        assert answer.run_id == run.run_id
        assert answer.checked_at == run.finished_at
        unknown = await gate_verdict("http://gate/", "silver", "2026-11-20T10", client=http)
        assert unknown.verdict is Verdict.UNKNOWN
        assert not unknown.passed
        with pytest.raises(GateError, match="invalid window"):
            await gate_verdict("http://gate", Layer.GOLD, "2026-13-40", client=http)
        with pytest.raises(GateError, match="401 missing or invalid bearer token"):
            await run_gate("http://gate", "not-the-token-at-all", Layer.GOLD, HOUR, client=http)
    assert client.get("/runs").json()["items"] == [run.summary().model_dump(mode="json")]


def test_runs_are_listed_in_pages(gate: QualityGate, client: TestClient) -> None:
    at = datetime(2026, 11, 20, 12, tzinfo=UTC)
    runs = [
        stored_run(gate, Layer.GOLD, HOUR, ok=True, at=at + timedelta(minutes=i)) for i in range(5)
    ]
    newest_first = [r.run_id for r in reversed(runs)]
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/runs", params=params).json()
        seen += [r["run_id"] for r in page["items"]]
        pages += 1
        if not page["has_more"]:
            assert page["next_cursor"] is None
            break
        cursor = page["next_cursor"]
        # a run finishing meanwhile does not shift the next page
        stored_run(gate, Layer.SILVER, HOUR, ok=True, at=at + timedelta(hours=pages))
    assert seen == newest_first
    assert pages == 3
    bad = client.get("/runs", params={"cursor": "not-a-cursor"})
    assert bad.status_code == 400
    assert bad.headers["content-type"] == "application/problem+json"


async def test_client_retries_server_errors_then_gives_up() -> None:
    calls = []

    def failing(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url.copy_with(scheme=None, host=None)).removeprefix("//"))
        return httpx.Response(503, json={"detail": "busy"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(failing)) as http:
        with pytest.raises(GateError, match="unavailable"):
            await gate_verdict("http://gate", Layer.GOLD, HOUR, client=http, attempts=2)
    asked = "/gates/gold?window_start=2026-11-20T10%3A00%3A00Z&window_end=2026-11-20T11%3A00%3A00Z"
    assert calls == [asked] * 2


def test_store_reads_runs_back_and_skips_a_broken_summary(gate: QualityGate) -> None:
    run = stored_run(gate, Layer.BRONZE, HOUR, ok=False, at=datetime(2026, 11, 20, tzinfo=UTC))
    broken = Path(gate.lake.quality) / "runs" / "bronze" / "broken.summary.json"
    broken.write_text("{not json")
    again = QualityGate(gate.settings, Lake(gate.lake.root))
    assert again.store.load() == 1
    assert again.store.detail(run.run_id) == run
    assert again.store.runs(Layer.BRONZE) == [run.summary()]


def test_a_window_before_the_year_1000_is_answered_not_a_500(client: TestClient) -> None:
    # Found by schemathesis: the text form wrote the year unpadded ('52-01-01...'), which the
    # response's own model then refused to parse (a 500).
    response = client.get(
        "/gates/gold",
        params={"window_start": "0052-01-01T00:00:00Z", "window_end": "0052-01-01T01:00:00Z"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["window"] == "0052-01-01T00:00:00Z--0052-01-01T01:00:00Z"
    assert str(Window.parse(response.json()["window"])) == response.json()["window"]
