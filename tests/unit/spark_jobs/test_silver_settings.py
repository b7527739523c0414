"""Medallion job settings and time ranges: pure logic, no Spark."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError
from spark_jobs.medallion import MedallionSettings, previous_hour, resolve_window

from iotpipe.contract import SensorType
from iotpipe.windows import Window


def test_defaults_follow_the_design(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MEDALLION_EXPECTED_RATE_HZ", "MEDALLION_ZSCORE_WINDOW"):
        monkeypatch.delenv(name, raising=False)
    settings = MedallionSettings()
    assert (settings.zscore_window, settings.zscore_threshold) == (100, 3.0)
    assert settings.rate_hz(SensorType.TEMPERATURE) == 1.0
    assert settings.history == timedelta(hours=1)  # 100 readings at 1/s fit in an hour
    assert settings.pipeline_version.startswith("spark-jobs ")


def test_rates_per_type_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDALLION_EXPECTED_RATE_HZ", '{"vibration": 10, "pressure": 0.01}')
    monkeypatch.setenv("MEDALLION_PIPELINE_VERSION", "abc123")
    settings = MedallionSettings()
    assert settings.rate_hz(SensorType.VIBRATION) == 10
    assert settings.rate_hz(SensorType.HUMIDITY) == 1.0
    assert settings.pipeline_version == "abc123"
    # 100 readings (+ the anomaly alerts' cooldown of 10) at one per 100 s need 11,000 s
    # of history: 4 hours.
    assert settings.history == timedelta(hours=4)


@pytest.mark.parametrize(
    "env",
    [
        {"MEDALLION_EXPECTED_RATE_HZ": '{"vibration": 0}'},
        {"MEDALLION_EXPECTED_RATE_HZ": '{"sonar": 1}'},
        {"MEDALLION_ZSCORE_MIN_HISTORY": "1"},
        {"MEDALLION_ZSCORE_MIN_HISTORY": "200"},
        {"MEDALLION_PERCENTILE_ACCURACY": "0"},
    ],
)
def test_invalid_settings_are_refused(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        MedallionSettings()


NOW = datetime(2026, 11, 26, 10, 17, 3, tzinfo=UTC)


@pytest.mark.parametrize(
    ("window", "start", "end", "expected"),
    [
        (None, None, None, "2026-11-26T09:00:00Z--2026-11-26T10:00:00Z"),
        ("2026-11-25", None, None, "2026-11-25T00:00:00Z--2026-11-26T00:00:00Z"),
        ("2026-11-25T07", None, None, "2026-11-25T07:00:00Z--2026-11-25T08:00:00Z"),
        (
            None,
            "2026-11-25T07:30:00Z",
            "2026-11-25T09:00:00Z",
            "2026-11-25T07:30:00Z--2026-11-25T09:00:00Z",
        ),
    ],
)
def test_time_range(window: str | None, start: str | None, end: str | None, expected: str) -> None:
    assert str(resolve_window(window, start, end, now=NOW)) == expected


@pytest.mark.parametrize(
    ("window", "start", "end"),
    [
        ("2026-11-25", "2026-11-25T00:00:00Z", None),
        (None, "2026-11-25T00:00:00Z", None),
        ("yesterday", None, None),
        (None, "2026-11-25T09:00:00Z", "2026-11-25T08:00:00Z"),
    ],
)
def test_bad_time_range(window: str | None, start: str | None, end: str | None) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - every message is checked in the CLI test
        resolve_window(window, start, end, now=NOW)


def test_previous_hour_is_complete() -> None:
    assert previous_hour(NOW) == Window(
        NOW.replace(hour=9, minute=0, second=0), NOW.replace(minute=0, second=0)
    )
