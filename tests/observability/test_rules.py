"""The alert rules: promtool accepts them, every alert has unit tests that show it firing
and staying quiet, and every alert carries what an on-call engineer needs."""

from __future__ import annotations

import re
import subprocess
from typing import Any

import pytest
import yaml

from tests.observability.conftest import REPO, RULE_TESTS, RULES, tool
from tests.observability.promql import selectors
from tests.observability.pushed import parse_series, pushed_names

RUNBOOK = REPO / "docs" / "runbook.md"


def alerts() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("promtool"), *args], capture_output=True, text=True, check=False, cwd=REPO
    )


def test_promtool_check_rules_passes() -> None:
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    rules = sum(len(group["rules"]) for group in yaml.safe_load(RULES.read_text())["groups"])
    assert f"SUCCESS: {rules} rules found" in result.stdout


def test_promtool_unit_tests_pass() -> None:
    files = sorted(RULE_TESTS.glob("*.yaml"))
    assert files
    result = promtool("test", "rules", *map(str, files))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_firing_and_a_quiet_unit_test() -> None:
    fires: set[str] = set()
    quiet: set[str] = set()
    for path in RULE_TESTS.glob("*.yaml"):
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (fires if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in alerts()}
    assert names - fires == set(), "alerts never shown firing"
    assert names - quiet == set(), "alerts never shown staying quiet"


PUSHED_PREFIXES = ("orchestrator_", "silver_", "gold_")
"""Metric names of the batch jobs, which reach Prometheus through the Pushgateway."""


def test_promtool_tests_feed_exactly_the_series_the_jobs_push() -> None:
    """Each pushed series a promtool test feeds has the name and labels (job, grouping
    key, the metric's own labels) the code's push gives it: a test cannot pass on a series
    no job produces."""
    names = pushed_names()
    problems, fed = [], 0
    for path in RULE_TESTS.glob("*.yaml"):
        for case in yaml.safe_load(path.read_text())["tests"]:
            for item in case.get("input_series", []):
                series = parse_series(item["series"])
                if not series[0].startswith(PUSHED_PREFIXES):
                    continue
                fed += 1
                if series not in names.get(series[0], set()):
                    pushed = sorted(str(dict(labels)) for _, labels in names.get(series[0], set()))
                    problems.append(f"{case['name']}: {item['series']}; pushed: {pushed}")
    assert fed >= 20
    assert not problems, "\n".join(problems)


def test_rules_read_only_pushed_metrics_under_the_jobs_prefixes() -> None:
    names = pushed_names()
    groups = yaml.safe_load(RULES.read_text())["groups"]
    read = {
        re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", selector).group(0)  # type: ignore[union-attr]
        for group in groups
        for rule in group["rules"]
        for selector in selectors(rule["expr"])
        if selector.startswith(PUSHED_PREFIXES)
    }
    assert read
    assert read <= set(names), f"no job pushes {sorted(read - set(names))}"


@pytest.mark.parametrize("rule", alerts(), ids=lambda rule: rule["alert"])
def test_alert_has_severity_summary_description_and_runbook(rule: dict[str, Any]) -> None:
    assert rule["labels"]["severity"] in {"critical", "warning"}
    annotations = rule["annotations"]
    assert annotations["summary"].strip()
    assert annotations["description"].strip()
    anchor = rule["alert"].lower()
    assert annotations["runbook_url"].endswith(f"/docs/runbook.md#{anchor}")
    headings = re.findall(r"^## (\S+)\s*$", RUNBOOK.read_text(), flags=re.MULTILINE)
    assert rule["alert"] in headings, f"docs/runbook.md has no '## {rule['alert']}' entry"
