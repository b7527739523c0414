"""The committed dashboards and the queries in them (for the dashboard tests)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

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
    """(dashboard, panel, SQL) for every warehouse (PostgreSQL) target and annotation, as
    committed (Grafana's macros and variables still in; :func:`warehouse_queries` fills them)."""
    yield from _targets("postgres")
    for dashboard in committed().values():
        for annotation in dashboard.get("annotations", {}).get("list", []):
            target = annotation.get("target") or {}
            if "rawSql" in target:
                yield dashboard["title"], f"annotation {annotation['name']}", target["rawSql"]


def sql_variables(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(name, SQL) of the dashboard's warehouse query variables, in the dashboard's order
    (the order Grafana resolves them in: a later one may use an earlier one)."""
    return [
        (variable["name"], variable["query"])
        for variable in dashboard.get("templating", {}).get("list", [])
        if variable["type"] == "query"
        and "postgres" in str((variable.get("datasource") or {}).get("type", ""))
    ]


TIME_FILTER = re.compile(r"\$__timeFilter\(([^)]+)\)")


def expand(
    sql: str, values: dict[str, list[str]], start: datetime | None, end: datetime | None
) -> str:
    """The SQL Grafana's PostgreSQL data source sends for ``sql`` (documented macros only):

    - ``$__timeFilter(column)`` becomes ``column BETWEEN '<from>' AND '<to>'`` (ISO-8601 UTC),
      or ``TRUE`` without a time range;
    - ``$name`` / ``${name}`` of a multi-value variable with "All" selected becomes the list
      of its values, each quoted (``'a','b'``), as Grafana formats them for SQL; a variable
      without values becomes ``NULL`` (matches nothing, as in Grafana).
    """

    def time_filter(match: re.Match[str]) -> str:
        if start is None or end is None:
            return "TRUE"
        iso = "%Y-%m-%dT%H:%M:%SZ"
        return f"{match[1]} BETWEEN '{start:{iso}}' AND '{end:{iso}}'"

    sql = TIME_FILTER.sub(time_filter, sql)
    for name, found in sorted(values.items(), key=lambda item: -len(item[0])):
        quoted = ",".join("'" + value.replace("'", "''") + "'" for value in found) or "NULL"
        sql = sql.replace(f"${{{name}}}", quoted).replace(f"${name}", quoted)
    assert "$" not in sql, f"a macro or variable is left in: {sql}"
    return sql


def warehouse_queries(
    connection: psycopg.Connection[Any], start: datetime | None = None, end: datetime | None = None
) -> Iterator[tuple[str, str, str]]:
    """(dashboard, panel, SQL ready to run) for every warehouse query of every dashboard: its
    variables resolved on ``connection`` first (all values selected), then its macros and
    variables filled in by :func:`expand` for the range ``[start, end]``."""
    boards = {board["title"]: board for board in committed().values()}
    values: dict[str, dict[str, list[str]]] = {}
    for title, board in boards.items():
        values[title] = {}
        for name, sql in sql_variables(board):
            rows = connection.execute(expand(sql, values[title], start, end)).fetchall()
            values[title][name] = [str(row[0]) for row in rows]
    for title, panel, sql in sql_queries():
        yield title, panel, expand(sql, values[title], start, end)


def path(name: str) -> Path:
    return DASHBOARDS / name
