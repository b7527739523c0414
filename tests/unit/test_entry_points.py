"""A service or command-line tool started without its required settings (or with an invalid
one) says which variables to set and exits 2, no traceback."""

from __future__ import annotations

import pytest

from tests.cli import run_module

SERVICES = [
    ("warehouse_loader", ["LOADER_API_TOKEN", "LOADER_WAREHOUSE_DSN"]),
    ("dlq_inspector", ["DLQ_API_TOKEN"]),
    ("sensor_simulator", ["SIMULATOR_API_TOKEN"]),
    ("quality_gate", ["QUALITY_API_TOKEN"]),
]


PREFIXES = (
    "LOADER_",
    "WAREHOUSE_DSN",
    "DLQ_",
    "SIMULATOR_",
    "QUALITY_",
    "KAFKA_",
    "ORCHESTRATOR_",
    "MEDALLION_",
)

COMMANDS = [
    (["warehouse_loader", "load", "2026-11-26"], {}, ["LOADER_API_TOKEN", "LOADER_WAREHOUSE_DSN"]),
    (["quality_gate", "run", "silver", "2026-11-26T10"], {}, ["QUALITY_API_TOKEN"]),
    (
        ["orchestrator", "check-freshness"],
        {},
        ["ORCHESTRATOR_QUALITY_GATE_TOKEN", "ORCHESTRATOR_LOADER_TOKEN"],
    ),
    (
        ["sensor_simulator.cli", "run", "--max-events", "1"],
        {"KAFKA_SECURITY_PROTOCOL": "CARRIER_PIGEON"},
        ["KAFKA_SECURITY_PROTOCOL"],
    ),
    (
        ["spark_jobs.silver_to_gold", "--window", "2026-11-26"],
        {"MEDALLION_ZSCORE_THRESHOLD": "-1"},
        ["MEDALLION_ZSCORE_THRESHOLD"],
    ),
    (
        ["spark_jobs.bronze_stream"],
        {"KAFKA_SECURITY_PROTOCOL": "CARRIER_PIGEON"},
        ["KAFKA_SECURITY_PROTOCOL"],
    ),
]


def run_without_settings(args: list[str], extra: dict[str, str]) -> str:
    """``python -m ARGS`` without the pipeline's variables (plus ``extra``): its stderr."""
    result = run_module(args, drop=PREFIXES, env=extra, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "set these environment variables" in result.stderr
    return result.stderr


@pytest.mark.parametrize(("module", "variables"), SERVICES)
def test_missing_settings_get_a_message_naming_the_variables(
    module: str, variables: list[str]
) -> None:
    stderr = run_without_settings([module], {})
    for variable in variables:
        assert f"\n  {variable}: " in stderr, stderr


@pytest.mark.parametrize(
    ("args", "extra", "variables"), COMMANDS, ids=[" ".join(c[0][:2]) for c in COMMANDS]
)
def test_command_line_tools_name_the_variables_too(
    args: list[str], extra: dict[str, str], variables: list[str]
) -> None:
    stderr = run_without_settings(args, extra)
    for variable in variables:
        assert f"\n  {variable}: " in stderr, stderr


def test_a_nested_setting_is_named_by_its_own_prefix(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from dlq_inspector.settings import DlqSettings

    from iotpipe.settings import from_environment

    monkeypatch.setenv("DLQ_API_TOKEN", "x" * 20)
    monkeypatch.setenv("CONTRACT_MAX_AHEAD_SECONDS", "-1")
    with pytest.raises(SystemExit) as stopped:
        from_environment(DlqSettings)
    assert stopped.value.code == 2
    assert "CONTRACT_MAX_AHEAD_SECONDS: Input should be greater than 0" in capsys.readouterr().err
