"""A service started without its required settings says which variables to set, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

SERVICES = [
    ("warehouse_loader", ["LOADER_API_TOKEN", "LOADER_WAREHOUSE_DSN"]),
    ("dlq_inspector", ["DLQ_API_TOKEN"]),
    ("sensor_simulator", ["SIMULATOR_API_TOKEN"]),
    ("quality_gate", ["QUALITY_API_TOKEN"]),
]


@pytest.mark.parametrize(("module", "variables"), SERVICES)
def test_missing_settings_get_a_message_naming_the_variables(
    module: str, variables: list[str]
) -> None:
    prefixes = ("LOADER_", "DLQ_", "SIMULATOR_", "QUALITY_", "KAFKA_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    result = subprocess.run(
        [sys.executable, "-m", module], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "set these environment variables" in result.stderr
    for variable in variables:
        assert f"\n  {variable}: " in result.stderr, result.stderr


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
