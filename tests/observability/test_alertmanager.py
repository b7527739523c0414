"""The Alertmanager config example: amtool accepts it and routes each alert by severity."""

from __future__ import annotations

import subprocess

import pytest

from tests.observability.conftest import ALERTMANAGER, REPO, tool
from tests.observability.test_rules import alerts

RECEIVERS = {"critical": "iotpipe-pager", "warning": "iotpipe-tickets"}


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("amtool"), *args], capture_output=True, text=True, check=False, cwd=REPO
    )


def test_amtool_accepts_the_config() -> None:
    result = amtool("check-config", str(ALERTMANAGER))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize("rule", alerts(), ids=lambda rule: rule["alert"])
def test_each_alert_routes_to_its_severitys_receiver(rule: dict[str, str | dict[str, str]]) -> None:
    labels = rule["labels"]
    assert isinstance(labels, dict)
    result = amtool(
        "config",
        "routes",
        "test",
        f"--config.file={ALERTMANAGER}",
        f"alertname={rule['alert']}",
        f"severity={labels['severity']}",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.split() == [RECEIVERS[labels["severity"]]]
