"""The suites are derived from the contract and the lake schemas."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from quality_gate.layers import LAYERS
from quality_gate.suites import NAME, SuiteOptions, build_suite, freshness_floor, suite_names

from iotpipe.contract import REQUIRED_FIELDS, SENSOR_TYPES, SensorType
from iotpipe.gate_client import Layer
from iotpipe.windows import Window


def test_event_layers_check_every_required_field_and_every_sensor_type() -> None:
    for layer in (Layer.BRONZE, Layer.SILVER):
        names = suite_names(layer)
        assert {f"not_null:{field}" for field in REQUIRED_FIELDS} <= set(names)
        assert {f"value_in_bounds:{kind.value}" for kind in SensorType} <= set(names)
        assert {f"unit_matches:{kind.value}" for kind in SensorType} <= set(names)
        assert "fresh:timestamp" in names
    assert "unique:sensor_id,timestamp" in suite_names(Layer.SILVER)
    assert not any(name.startswith("unique:") for name in suite_names(Layer.BRONZE))


def test_gold_checks_health_counts_and_freshness() -> None:
    names = suite_names(Layer.GOLD)
    for name in ("health_pct_within_0_100", "reading_count_positive", "fresh:window_end"):
        assert name in names
    assert "unique:sensor_id,window_start" in names
    assert len(names) == len(set(names))


def test_bounds_and_mostly_come_from_the_contract_and_settings() -> None:
    now = datetime(2026, 11, 26, tzinfo=UTC)
    window = Window.parse("2026-11-20T10")
    options = SuiteOptions(bounds_mostly=0.95, freshness_max_lag=timedelta(minutes=10), now=now)
    suite = build_suite(LAYERS[Layer.SILVER], window, options)
    by_name = {(e.meta or {})[NAME]: e for e in suite.expectations}
    for kind, spec in SENSOR_TYPES.items():
        bounds = by_name[f"value_in_bounds:{kind.value}"].configuration.kwargs
        assert (bounds["min_value"], bounds["max_value"]) == (spec.min_value, spec.max_value)
        assert bounds["mostly"] == 0.95
    fresh = by_name["fresh:timestamp"].configuration.kwargs
    assert fresh["min_value"] == window.end - timedelta(minutes=10)


def test_freshness_of_an_open_window_is_measured_from_now() -> None:
    now = datetime(2026, 11, 20, 10, 30, tzinfo=UTC)
    options = SuiteOptions(bounds_mostly=0.99, freshness_max_lag=timedelta(minutes=15), now=now)
    assert freshness_floor(Window.parse("2026-11-20T10"), options) == now - timedelta(minutes=15)
