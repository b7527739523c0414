"""Run configurations: what is refused, with a message a person can act on."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from sensor_simulator.config import MIN_RATE, EngineSettings, RunConfig, RunUpdate
from sensor_simulator.generator import Generator


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"rate": -5}, "greater than or equal to 0.001"),
        ({"rate": 5e-324}, "greater than or equal to 0.001"),
        ({"sensor_types": ["temperature", "radiation"]}, "'temperature', 'humidity'"),
        ({"anomaly_rate": 0.6, "malformed_rate": 0.6}, "must be at most 1"),
        ({"rate": 200_000, "sensors": 10}, "more than 1000 readings per sensor per second"),
        ({"dropout_seconds": 90, "dropout_interval_seconds": 60}, "must not exceed"),
        ({"malformed_kinds": ["typo"]}, "broken_json"),
        ({"colour": "red"}, "Extra inputs are not permitted"),
    ],
)
def test_bad_configs_are_refused_with_a_reason(fields, message):
    with pytest.raises(ValidationError) as caught:
        RunConfig.model_validate(fields)
    assert message in str(caught.value)


def test_a_rate_too_small_to_pace_is_refused_and_the_smallest_paces():
    # Found by tests/fuzz: PATCH {"rate": 5e-324} made the pacing NaN and answered 500.
    with pytest.raises(ValidationError, match=r"greater than or equal to 0\.001"):
        RunUpdate(rate=5e-324)
    generator = Generator(RunConfig(rate=MIN_RATE, sensors=1_000_000, seed=1), now_ms=0)
    generator.set_rate(MIN_RATE, 1_000)
    generator.set_rate(MIN_RATE, 2_000)  # the second change read the first one's spacing
    assert generator._round_time(1) > 2_000  # a time, not NaN (which raised)


def test_defaults_are_a_valid_paced_run():
    config = RunConfig()
    assert config.rate == 1000
    assert config.max_events is None
    assert len(config.sensor_types) == 4


def test_engine_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("SIMULATOR_COMPRESSION", "snappy")
    monkeypatch.setenv("SIMULATOR_LINGER_MS", "25")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka:9093")
    settings = EngineSettings()
    assert settings.producer_options() == {
        "compression_type": "snappy",
        "max_batch_size": 256 * 1024,
        "linger_ms": 25,
    }
    assert settings.kafka.bootstrap_servers == "kafka:9093"
