"""The chart ships the same rules file and dashboards (symlinks, rendered with .Files.Get)."""

from __future__ import annotations

import json

import yaml

from tests.charts.manifests import CHART, find, render, validate
from tests.observability.conftest import OBSERVABILITY, RULES
from tests.observability.dashboards import committed

FILES = CHART / "files" / "observability"
ON = {"monitoring__rules__enabled": True, "monitoring__dashboards__enabled": True}


def test_the_charts_files_are_links_to_the_single_sources() -> None:
    links = [FILES / "iotpipe.rules.yaml", FILES / "spark" / "jmx-exporter.yaml"]
    links += [FILES / "dashboards" / name for name in committed()]
    for link in links:
        assert link.is_symlink(), f"{link} must be a symlink (one source of truth)"
        assert link.resolve().is_relative_to(OBSERVABILITY.resolve())
        assert link.resolve().exists()
    assert sorted(p.name for p in (FILES / "dashboards").iterdir()) == sorted(committed())


def test_prometheusrule_is_the_rules_file() -> None:
    (rule,) = find(render(**ON), "PrometheusRule")
    validate(rule)
    assert rule["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]


def test_extra_rule_groups_from_values_come_after_the_files() -> None:
    extra = {"name": "site", "rules": [{"alert": "Site", "expr": "vector(1)"}]}
    (rule,) = find(render(**ON, monitoring__rules__groups=[extra]), "PrometheusRule")
    assert rule["spec"]["groups"][-1] == extra
    assert len(rule["spec"]["groups"]) == len(yaml.safe_load(RULES.read_text())["groups"]) + 1


def test_each_dashboard_is_a_configmap_for_the_grafana_sidecar() -> None:
    maps = {
        next(iter(cm["data"])): cm
        for cm in find(render(**ON), "ConfigMap")
        if cm["metadata"]["labels"].get("grafana_dashboard") == "1"
    }
    assert set(maps) == set(committed())
    for name, board in committed().items():
        validate(maps[name])
        assert json.loads(maps[name]["data"][name]) == board


def test_nothing_is_rendered_when_switched_off() -> None:
    docs = render(monitoring__rules__enabled=False, monitoring__dashboards__enabled=False)
    assert not find(docs, "PrometheusRule")
    assert not [
        cm for cm in find(docs, "ConfigMap") if "grafana_dashboard" in cm["metadata"]["labels"]
    ]


def _runbook_urls(groups: list[dict]) -> dict[str, str]:
    return {
        rule["alert"]: rule["annotations"]["runbook_url"]
        for group in groups
        for rule in group["rules"]
        if "alert" in rule
    }


def test_runbook_links_follow_the_base_url_value() -> None:
    """Every shipped alert links to <monitoring.rules.runbookBaseUrl>#<its anchor>; the default
    is the base the rules file itself uses (promtool tests the file as it is), so the default
    PrometheusRule is the file unchanged (test_prometheusrule_is_the_rules_file)."""
    shipped = _runbook_urls(yaml.safe_load(RULES.read_text())["groups"])
    assert shipped
    bases = {url.split("#")[0] for url in shipped.values()}
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert bases == {values["monitoring"]["rules"]["runbookBaseUrl"]}
    wiki = "https://wiki.example.com/ops/iotpipe-runbook"
    own: dict[str, object] = {"alert": "Site", "expr": "vector(1)"}
    own["annotations"] = {"runbook_url": "https://elsewhere.example.com/x#site"}
    extra = {"name": "site", "rules": [own]}
    (rule,) = find(
        render(**ON, monitoring__rules__runbookBaseUrl=wiki, monitoring__rules__groups=[extra]),
        "PrometheusRule",
    )
    moved = _runbook_urls(rule["spec"]["groups"])
    assert moved.pop("Site") == "https://elsewhere.example.com/x#site"  # the user's own stay
    assert moved == {alert: f"{wiki}#{url.split('#', 1)[1]}" for alert, url in shipped.items()}


def test_chart_names_its_maintainers() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    (maintainer,) = chart["maintainers"]
    assert maintainer["name"] == "iotpipe maintainers"
    assert maintainer["url"].startswith(chart["home"])
    assert "email" not in maintainer  # no made-up addresses
