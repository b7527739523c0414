"""What the demo's HTML report shows once Chromium has laid it out (shared by tests/browser
and the end-to-end scenario): counted from the rendered DOM, not from the HTML text."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.chromium import Chromium

INSPECT = """(() => {
  const series = [...document.querySelectorAll('svg.series')].map(svg => {
    const line = svg.querySelector('polyline.line');
    const plot = svg.querySelector('rect.plot').getBBox();
    const box = svg.getBoundingClientRect();
    const points = line ? line.points : null;
    let inside = 0;
    for (let i = 0; points && i < points.numberOfItems; i++) {
      const p = points.getItem(i);
      if (p.x >= plot.x - 0.5 && p.x <= plot.x + plot.width + 0.5 &&
          p.y >= plot.y - 0.5 && p.y <= plot.y + plot.height + 0.5) inside++;
    }
    return {sensor: svg.dataset.sensor, readings: Number(svg.dataset.readings),
            points: points ? points.numberOfItems : 0, inside,
            length: line ? line.getTotalLength() : 0,
            anomalies: svg.querySelectorAll('circle.anomaly').length,
            alerts: svg.querySelectorAll('path.alert').length,
            width: box.width, height: box.height};
  });
  const heatmap = document.querySelector('svg.heatmap');
  const cells = [...document.querySelectorAll('svg.heatmap rect.cell')].map(r => ({
    sensor: r.dataset.sensor, readings: Number(r.dataset.readings),
    health: Number(r.dataset.health), fill: getComputedStyle(r).fill,
    width: r.getBoundingClientRect().width}));
  return {title: document.title, heading: (document.querySelector('h1') || {}).textContent || '',
          series, cells, scripts: document.scripts.length,
          columns: heatmap ? Number(heatmap.dataset.columns) : 0,
          heatmap_sensors: heatmap ? Number(heatmap.dataset.sensors) : 0,
          heatmap_width: heatmap ? heatmap.getBoundingClientRect().width : 0};
})()"""


@dataclass
class Shown:
    """The rendered page: its series, heatmap cells and everything it logged."""

    title: str
    heading: str
    series: list[dict[str, Any]]
    cells: list[dict[str, Any]]
    columns: int
    heatmap_sensors: int
    heatmap_width: float
    scripts: int
    problems: list[str]
    requests: list[str]

    def by_sensor(self) -> dict[str, dict[str, Any]]:
        return {s["sensor"]: s for s in self.series}


def show(browser: Chromium, report: Path, screenshot: Path | None = None) -> Shown:
    """Open ``report`` (file://) in ``browser`` and read back what it rendered."""
    page = browser.open(report.resolve().as_uri())
    found = page.evaluate(INSPECT)
    if screenshot is not None:
        page.screenshot(screenshot)
    page.settle(0.2)
    return Shown(**found, problems=page.problems(), requests=list(page.requests))
