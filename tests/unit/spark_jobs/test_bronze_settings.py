"""bronze_stream's configuration: env, command line and the Spark Kafka options."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr
from pydantic_settings import CliApp
from spark_jobs.bronze_stream import BronzeSettings, kafka_options

from iotpipe.settings import KafkaSettings


def test_defaults_match_the_reference_design(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("BRONZE_TRIGGER_SECONDS", "BRONZE_WATERMARK_MINUTES", "BRONZE_METRICS_PORT"):
        monkeypatch.delenv(name, raising=False)
    settings = BronzeSettings()
    assert settings.trigger_seconds == 30.0
    assert settings.watermark_minutes == 10.0
    assert settings.starting_offsets == "earliest"
    assert not settings.available_now


def test_environment_and_command_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRONZE_MAX_OFFSETS_PER_TRIGGER", "1000")
    monkeypatch.setenv("BRONZE_METRICS_PORT", "9200")
    settings = CliApp.run(
        BronzeSettings, cli_args=["--trigger_seconds", "2", "--available_now", "true"]
    )
    assert settings.max_offsets_per_trigger == 1000
    assert settings.metrics_port == 9200
    assert settings.trigger_seconds == 2.0
    assert settings.available_now


def test_invalid_options_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRONZE_TRIGGER_SECONDS", "0")
    with pytest.raises(ValueError, match="trigger_seconds"):
        BronzeSettings()


def test_plaintext_kafka_options() -> None:
    options = kafka_options(KafkaSettings(bootstrap_servers="k:9092"))
    assert options["kafka.bootstrap.servers"] == "k:9092"
    assert options["kafka.security.protocol"] == "PLAINTEXT"
    assert not any(key.startswith(("kafka.sasl", "kafka.ssl")) for key in options)


def test_scram_over_tls_options_quote_the_secret(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    settings = KafkaSettings(
        bootstrap_servers="k:9093",
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="bronze",
        sasl_password=SecretStr('p"w\\d'),
        ssl_cafile=ca,
    )
    options = kafka_options(settings)
    assert options["kafka.sasl.mechanism"] == "SCRAM-SHA-512"
    assert options["kafka.sasl.jaas.config"] == (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        'username="bronze" password="p\\"w\\\\d";'
    )
    assert options["kafka.ssl.truststore.type"] == "PEM"
    assert options["kafka.ssl.truststore.location"] == str(ca)
