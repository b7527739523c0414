"""Monitoring on the cluster: the operator-managed Prometheus scrapes every ServiceMonitor and
PodMonitor of the release, and the Grafana dashboards' queries return data. Runs after
test_pipeline.py (file order), so the stream, the gate, the loader and the DLQ have all worked.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import pytest

from .kube import REPO, Kube, wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(900)]

DASHBOARDS = REPO / "observability" / "dashboards"


def prometheus(kube: Kube) -> str:
    return kube.service_url("prometheus-operated", 9090, namespace="monitoring")


def query(url: str, expr: str) -> list[Any]:
    response = httpx.get(f"{url}/api/v1/query", params={"query": expr}, timeout=30)
    assert response.status_code == 200, f"{expr}: {response.text}"
    result: list[Any] = response.json()["data"]["result"]
    return result


def monitors(kube: Kube) -> list[str]:
    """Scrape pool prefixes of the release's monitors, as the operator names them."""
    names = []
    for kind, prefix in (("servicemonitors", "serviceMonitor"), ("podmonitors", "podMonitor")):
        for item in kube.get(kind)["items"]:
            names.append(f"{prefix}/{kube.namespace}/{item['metadata']['name']}/")
    return names


def test_every_monitor_of_the_release_has_a_healthy_target(kube: Kube) -> None:
    url = prometheus(kube)
    expected = monitors(kube)
    assert expected, "the release rendered no ServiceMonitor or PodMonitor"

    def health() -> dict[str, set[str]]:
        targets = httpx.get(f"{url}/api/v1/targets", timeout=30).json()["data"]["activeTargets"]
        seen: dict[str, set[str]] = defaultdict(set)
        for target in targets:
            for prefix in expected:
                if target["scrapePool"].startswith(prefix):
                    seen[prefix].add(target["health"])
        return seen

    def all_up() -> bool:
        seen = health()
        return all("up" in seen.get(prefix, set()) for prefix in expected)

    try:
        wait_until("a healthy target for every monitor", all_up, 300, every=10)
    except TimeoutError:
        seen = health()
        missing = {
            p: sorted(seen.get(p, set())) for p in expected if "up" not in seen.get(p, set())
        }
        pytest.fail(f"monitors without a healthy target (their targets' health): {missing}")


def dashboard_queries() -> list[tuple[str, str, str]]:
    """(dashboard file, panel title, expression) of every panel target."""
    found = []

    def walk(file: Path, panels: list[dict[str, Any]]) -> None:
        for panel in panels:
            for target in panel.get("targets", []):
                if target.get("expr"):
                    found.append((file.name, panel.get("title", "?"), target["expr"]))
            walk(file, panel.get("panels", []))

    for file in sorted(DASHBOARDS.glob("*.json")):
        walk(file, json.loads(file.read_text())["panels"])
    return found


def test_every_dashboard_query_returns_data(kube: Kube) -> None:
    url = prometheus(kube)
    queries = dashboard_queries()
    assert len(queries) > 50
    empty = []
    for file, title, expr in queries:
        # Grafana's variable: a range that holds at least two scrapes.
        concrete = re.sub(r"\$__rate_interval", "5m", expr)
        if not query(url, concrete):
            empty.append(f"{file} / {title}: {expr}")
    assert empty == [], "dashboard queries without data:\n" + "\n".join(empty)
