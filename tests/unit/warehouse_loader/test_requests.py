"""What the loader refuses before touching anything: bad requests, no token, bad settings."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from warehouse_loader.app import build_app
from warehouse_loader.loads import LoadRequest
from warehouse_loader.settings import LoaderSettings

TOKEN = "loader-unit-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DAY = {"window_start": "2026-11-26T00:00:00Z", "window_end": "2026-11-27T00:00:00Z"}


@pytest.fixture(scope="module")
def client() -> TestClient:
    # No lifespan (not used as a context manager): nothing here may reach a database.
    settings = LoaderSettings(
        api_token=TOKEN, warehouse_dsn="postgresql://nobody@127.0.0.1:9/none", max_window_days=2
    )
    return TestClient(build_app(settings), raise_server_exceptions=False)


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-token-000000"}])
def test_loads_need_the_token(client: TestClient, headers: dict[str, str]) -> None:
    response = client.post("/loads", json=DAY, headers=headers)
    assert response.status_code == 401
    assert "bearer token" in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({**DAY, "window_end": DAY["window_start"]}, "window_end must be after window_start"),
        ({**DAY, "window_start": "2026-11-26T00:01:00Z"}, "not on a 5-minute boundary"),
        ({**DAY, "window_start": "2026-11-26T00:00:00"}, "timezone"),
        ({"window_start": DAY["window_start"]}, "window_end: Field required"),
        ({**DAY, "override_gate": True}, "override_gate needs an override_reason"),
        ({**DAY, "override_gate": True, "override_reason": "because"}, "at least 10 characters"),
        (
            {**DAY, "override_reason": "gate is down, approved by ops"},
            "only used with override_gate",
        ),
        (
            {"window_start": "2026-11-20T00:00:00Z", "window_end": "2026-11-26T00:00:00Z"},
            "spans more than 2 days (LOADER_MAX_WINDOW_DAYS)",
        ),
    ],
)
def test_invalid_requests_get_a_readable_422(
    client: TestClient, body: dict[str, object], message: str
) -> None:
    response = client.post("/loads", json=body, headers=AUTH)
    assert response.status_code == 422
    assert message in response.json()["detail"]


def test_history_queries_are_validated(client: TestClient) -> None:
    assert client.get("/loads", params={"limit": 0}).status_code == 422
    response = client.get("/loads", params={"status": "exploded"})
    assert response.status_code == 422
    assert "status" in response.json()["detail"]


def test_an_unreachable_warehouse_is_a_503_not_a_500(client: TestClient) -> None:
    for response in (
        client.get("/loads"),
        client.get("/loads/some-id"),
        client.post(
            "/loads", json={**DAY, "override_gate": True, "override_reason": "x" * 10}, headers=AUTH
        ),
    ):
        assert response.status_code == 503
        assert response.json()["detail"].startswith(
            "the warehouse is not available: OperationalError"
        )
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["warehouse"].startswith("OperationalError")


def test_openapi_documents_the_routes_and_their_refusals(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/loads", "/loads/{load_id}", "/healthz", "/readyz", "/metrics"} <= set(paths)
    assert {"201", "401", "409", "422", "503"} <= set(paths["/loads"]["post"]["responses"])


def test_offset_windows_are_normalised_to_utc() -> None:
    request = LoadRequest(
        window_start="2026-11-26T01:00:00+01:00", window_end="2026-11-26T02:00:00+01:00"
    )
    assert str(request.window) == "2026-11-26T00:00:00Z--2026-11-26T01:00:00Z"


def test_settings_read_the_local_stacks_dsn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOADER_API_TOKEN", TOKEN)
    monkeypatch.setenv("WAREHOUSE_DSN", "postgresql://iotpipe@127.0.0.1:5432/iotpipe")
    settings = LoaderSettings()
    assert settings.warehouse_dsn.get_secret_value().endswith(":5432/iotpipe")
    assert "iotpipe@" not in repr(settings)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"lake": {"root": "lake"}}, "COPYs from S3"),
        ({"redshift_iam_role": None}, "needs LOADER_REDSHIFT_IAM_ROLE"),
        ({"redshift_iam_role": "arn:aws:iam::12:role/x"}, "redshift_iam_role"),
    ],
)
def test_redshift_settings_need_an_s3_lake_and_a_role(
    overrides: dict[str, Any], message: str
) -> None:
    base: dict[str, Any] = {
        "api_token": TOKEN,
        "dialect": "redshift",
        "warehouse_dsn": "redshift://loader:pw@host:5439/iotpipe",
        "redshift_iam_role": "arn:aws:iam::123456789012:role/copy",
        "lake": {"root": "s3a://bucket/lake"},
    }
    LoaderSettings(**base)  # valid as it is
    with pytest.raises(ValidationError, match=message):
        LoaderSettings(**{**base, **overrides})
