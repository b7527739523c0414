"""The chart ships the same rules file and dashboards (symlinks, rendered with .Files.Get)."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.charts.manifests import CHART, HelmError, find, render, validate
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


REDSHIFT = {
    "warehouse__redshift__host": "wg.123456789012.eu-west-1.redshift-serverless.amazonaws.com"
}


def _datasource_maps(docs: list[dict]) -> list[dict]:
    return [
        cm
        for cm in find(docs, "ConfigMap")
        if cm["metadata"]["labels"].get("grafana_datasource") == "1"
    ]


def test_the_warehouse_datasource_is_off_by_default() -> None:
    assert not _datasource_maps(render(**ON, **REDSHIFT))


def test_the_warehouse_datasource_takes_its_password_from_a_secret_through_grafanas_env() -> None:
    on = {"monitoring__warehouseDatasource__enabled": True}
    (cm,) = _datasource_maps(render(**ON, **REDSHIFT, **on))
    validate(cm)
    (text,) = cm["data"].values()
    (source,) = yaml.safe_load(text)["datasources"]
    assert source["type"] == "grafana-postgresql-datasource"
    assert source["url"] == f"{REDSHIFT['warehouse__redshift__host']}:5439"
    assert source["jsonData"]["database"] == "iotpipe"
    assert source["jsonData"]["sslmode"] == "require"
    # Grafana expands $NAME in provisioning files from its environment; the value is not here.
    assert source["secureJsonData"] == {"password": "$IOTPIPE_WAREHOUSE_PASSWORD"}
    assert "iotpipe-grafana-warehouse" in cm["metadata"]["annotations"]["iotpipe.io/password-from"]
    # Every dashboard's warehouse variable picks a data source of this type.
    for board in committed().values():
        kinds = {v["query"] for v in board["templating"]["list"] if v["name"] == "warehouse"}
        assert kinds <= {source["type"]}

    own = render(
        **ON,
        **on,
        monitoring__warehouseDatasource__url="postgres.iotpipe:5432",
        monitoring__warehouseDatasource__database="warehouse",
        monitoring__warehouseDatasource__sslmode="disable",
        monitoring__warehouseDatasource__namespace="monitoring",
        monitoring__warehouseDatasource__passwordEnv="WAREHOUSE_RO_PASSWORD",
    )
    (cm,) = _datasource_maps(own)
    assert cm["metadata"]["namespace"] == "monitoring"
    (source,) = yaml.safe_load(next(iter(cm["data"].values())))["datasources"]
    assert (source["url"], source["jsonData"]["database"]) == ("postgres.iotpipe:5432", "warehouse")
    assert source["secureJsonData"] == {"password": "$WAREHOUSE_RO_PASSWORD"}


def test_the_warehouse_datasource_has_no_value_for_a_password() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    keys = set(values["monitoring"]["warehouseDatasource"])
    assert not {k for k in keys if "password" in k.lower()} - {"passwordSecret", "passwordEnv"}
    assert set(values["monitoring"]["warehouseDatasource"]["passwordSecret"]) == {"name", "key"}
    on = {"monitoring__warehouseDatasource__enabled": True}
    with pytest.raises(HelmError, match="password"):  # the schema has no place for one
        render(**ON, **REDSHIFT, **on, monitoring__warehouseDatasource__password="hunter2")
    with pytest.raises(HelmError, match="url"):  # nowhere to connect to
        render(**ON, **on)
