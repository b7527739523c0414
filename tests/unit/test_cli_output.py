"""``--output json``: one JSON document on stdout that a script can parse."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from iotpipe.cli import app


def test_local_status_as_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IOTPIPE_STATE_DIR", str(tmp_path / "state"))  # a stack never started
    result = CliRunner().invoke(app, ["local", "status", "--output", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert {row["component"] for row in rows} >= {"kafka", "postgres"}
    assert {row["state"] for row in rows} == {"stopped"}
    assert set(rows[0]) == {"component", "state", "address", "pid"}


def test_an_unknown_output_format_is_refused() -> None:
    result = CliRunner().invoke(app, ["local", "status", "--output", "yaml"])
    assert result.exit_code == 2
    assert "yaml" in result.output


def test_local_env_as_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IOTPIPE_STATE_DIR", str(tmp_path / "state"))
    as_json = CliRunner().invoke(app, ["local", "env", "--output", "json"])
    assert as_json.exit_code == 0, as_json.output
    variables = json.loads(as_json.stdout)
    assert variables["IOTPIPE_STATE_DIR"] == str(tmp_path / "state")
    exports = CliRunner().invoke(app, ["local", "env"]).stdout.splitlines()
    assert exports == [f"export {key}={value}" for key, value in variables.items()]
