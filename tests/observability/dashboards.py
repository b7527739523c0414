"""The committed dashboards and the queries in them (for the dashboard tests)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from iotpipe.jars import project_root

DASHBOARDS = project_root() / "observability" / "dashboards"


def committed() -> dict[str, dict[str, Any]]:
    """File name -> dashboard, for every ``observability/dashboards/*.json``."""
    return {path.name: json.loads(path.read_text()) for path in sorted(DASHBOARDS.glob("*.json"))}


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])  # collapsed rows


def _targets(kind: str) -> Iterator[tuple[str, str, str]]:
    for dashboard in committed().values():
        for panel in panels(dashboard):
            for target in panel.get("targets", []):
                source = target.get("datasource") or panel.get("datasource") or {}
                if kind in str(source.get("type", "")):
                    yield (
                        dashboard["title"],
                        panel.get("title", ""),
                        target.get("expr" if kind == "prometheus" else "rawSql", ""),
                    )


def prometheus_queries() -> Iterator[tuple[str, str, str]]:
    """(dashboard, panel, PromQL) for every Prometheus target and annotation."""
    yield from _targets("prometheus")
    for dashboard in committed().values():
        for annotation in dashboard.get("annotations", {}).get("list", []):
            if "expr" in annotation:
                yield dashboard["title"], f"annotation {annotation['name']}", annotation["expr"]


def sql_queries() -> Iterator[tuple[str, str, str]]:
    """(dashboard, panel, SQL) for every warehouse (PostgreSQL) target, macros filled in."""
    for title, panel, sql in _targets("postgres"):
        yield title, panel, sql.replace("$__timeFilter(window_start)", "TRUE")


def path(name: str) -> Path:
    return DASHBOARDS / name
