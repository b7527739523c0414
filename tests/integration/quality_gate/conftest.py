"""A lake in a temporary folder and the gate's app on it (real GX, real Parquet)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from quality_gate.app import build_app
from quality_gate.settings import GateSettings

from iotpipe.lake import Lake
from iotpipe.settings import LakeSettings

TOKEN = "quality-gate-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(str(tmp_path / "lake"))


def settings_for(lake: Lake, **overrides: object) -> GateSettings:
    return GateSettings(api_token=TOKEN, lake=LakeSettings(root=lake.root), **overrides)  # type: ignore[arg-type]


@pytest.fixture
def client(lake: Lake) -> Iterator[TestClient]:
    with TestClient(build_app(settings_for(lake)), raise_server_exceptions=False) as test_client:
        yield test_client
