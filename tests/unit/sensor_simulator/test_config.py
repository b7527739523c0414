"""Run configurations: what is refused, with a message a person can act on."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from sensor_simulator.config import EngineSettings, RunConfig


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"rate": -5}, "greater than 0"),
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
