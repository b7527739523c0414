"""The CLI: every command has --help; replay refuses to run without a token."""

from __future__ import annotations

import pytest
from dlq_inspector.cli import app
from typer.testing import CliRunner

runner = CliRunner()


@pytest.mark.parametrize("command", [[], ["serve"], ["list"], ["show"], ["stats"], ["replay"]])
def test_help(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.output


def test_replay_needs_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DLQ_API_TOKEN", raising=False)
    result = runner.invoke(app, ["replay", "0:1"])
    assert result.exit_code == 2
    assert "API token" in result.output


def test_an_unreachable_service_is_reported() -> None:
    result = runner.invoke(app, ["stats", "--url", "http://127.0.0.1:9"])
    assert result.exit_code == 2
    assert "cannot reach" in result.output
