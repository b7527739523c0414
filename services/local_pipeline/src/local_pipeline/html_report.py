"""The demo's HTML report: the run's data as plots a person opens in a browser.

One self-contained file (inline SVG and CSS, no script, nothing fetched: it works offline):

- a header with the run's counts and whether the books balance;
- a **health heatmap**: one row per sensor of the fleet, one column per time bucket, each
  cell the readings the sensor sent in that bucket over those it should have sent
  (``rate_hz`` x the part of the bucket the run covered). Buckets are hours when the run
  spans six hours or more, else the largest of 5 minutes, 1 minute, 10 seconds and 1 second that
  gives at least six columns (a demo run lasts about a minute);
- **per-sensor series**: every Silver reading of each sensor as a line (one vertex per
  reading; readings dated before the run, the simulator's late events, in a narrow strip
  left of a dashed line), its anomalies (``is_anomaly``) as red dots and its anomaly alerts
  (``is_anomaly_alert``, one per incident) as dark triangles above them.

The SVG elements carry ``data-*`` attributes (sensor, readings, health) so that a test can
count what the page shows against the data (tests/e2e, tests/browser).
"""

from __future__ import annotations

import html
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from iotpipe.lake import Lake
    from iotpipe.windows import Window

COLUMNS = (
    "sensor_id",
    "sensor_type",
    "unit",
    "location",
    "timestamp",
    "value",
    "is_anomaly",
    "is_anomaly_alert",
)
"""The Silver columns the report plots."""
BUCKETS = (300, 60, 10, 1)
"""Heatmap buckets (seconds) below an hour, largest first."""
MIN_COLUMNS = 6


@dataclass
class ReportData:
    """What the page shows."""

    title: str
    readings: list[dict[str, Any]]
    """Silver rows with :data:`COLUMNS` (``timestamp`` timezone-aware, UTC)."""
    start: datetime
    end: datetime
    """The span the heatmap covers (the simulator run)."""
    rate_hz: float
    """Readings per second each sensor should send."""
    fleet: Sequence[str] = ()
    """Every sensor of the run, also those that sent nothing."""
    facts: list[tuple[str, str]] = field(default_factory=list)
    """(label, value) lines of the header."""
    ok: bool = True


@dataclass(frozen=True)
class Heatmap:
    sensors: list[str]
    starts: list[datetime]
    bucket_s: int
    cells: dict[tuple[str, int], tuple[int, float]]
    """(sensor, column) -> (readings, health %)."""


def silver_readings(spark: SparkSession, lake: Lake, window: Window) -> list[dict[str, Any]]:
    """The Silver rows of ``window`` with :data:`COLUMNS`, as Python dicts."""
    from pyspark.sql import functions as sf
    from spark_jobs import schemas
    from spark_jobs.medallion import read_table

    frame = read_table(spark, lake.silver, schemas.SILVER).where(
        (sf.col("timestamp") >= sf.lit(window.start)) & (sf.col("timestamp") < sf.lit(window.end))
    )
    return list(frame.select(*COLUMNS).toArrow().to_pylist())


def bucket_seconds(span_s: float) -> int:
    """Hours for six hours or more, else the largest bucket giving six columns."""
    if span_s >= MIN_COLUMNS * 3600:
        return 3600
    return next((b for b in BUCKETS if span_s / b >= MIN_COLUMNS), BUCKETS[-1])


def heatmap(data: ReportData) -> Heatmap:
    """Health per sensor and bucket over ``[data.start, data.end]``."""
    start, end = data.start, data.end
    bucket = bucket_seconds((end - start).total_seconds())
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    first = start - timedelta(seconds=(start - epoch).total_seconds() % bucket)
    starts = []
    while first < end:
        starts.append(first)
        first += timedelta(seconds=bucket)
    counts: dict[tuple[str, int], int] = defaultdict(int)
    for row in data.readings:
        at = row["timestamp"]
        if start <= at <= end:
            column = min(int((at - starts[0]).total_seconds() // bucket), len(starts) - 1)
            counts[row["sensor_id"], column] += 1
    sensors = sorted(set(data.fleet) | {row["sensor_id"] for row in data.readings})
    cells = {}
    for column, begin in enumerate(starts):
        covered = (min(begin + timedelta(seconds=bucket), end) - max(begin, start)).total_seconds()
        due = max(data.rate_hz * covered, 1e-9)
        for sensor in sensors:
            got = counts.get((sensor, column), 0)
            cells[sensor, column] = (got, 100.0 * got / due)
    return Heatmap(sensors, starts, bucket, cells)


# ---------------------------------------------------------------------------- drawing
def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def health_colour(pct: float) -> str:
    """Red (0 %) through amber (50 %) to green (100 % and more)."""
    share = max(0.0, min(1.0, pct / 100.0))
    if share < 0.5:
        a, b, t = (198, 40, 40), (239, 170, 30), share / 0.5
    else:
        a, b, t = (239, 170, 30), (46, 140, 60), (share - 0.5) / 0.5
    r, g, bl = (round(x + (y - x) * t) for x, y in zip(a, b, strict=True))
    return f"#{r:02x}{g:02x}{bl:02x}"


def _clock(at: datetime, bucket_s: int) -> str:
    return at.strftime("%H:%M" if bucket_s >= 60 else "%H:%M:%S")


def heatmap_svg(grid: Heatmap) -> str:
    label_w, cell_h, top = 190, 14, 22
    cell_w = max(18, min(60, 720 // max(1, len(grid.starts))))
    width = label_w + cell_w * len(grid.starts) + 10
    height = top + cell_h * len(grid.sensors) + 6
    parts = [
        f'<svg class="heatmap" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'data-sensors="{len(grid.sensors)}" data-columns="{len(grid.starts)}" '
        f'data-bucket-seconds="{grid.bucket_s}">'
    ]
    step = max(1, math.ceil(len(grid.starts) / 12))
    for column, begin in enumerate(grid.starts):
        if column % step == 0:
            x = label_w + column * cell_w + 2
            parts.append(f'<text class="tick" x="{x}" y="14">{_clock(begin, grid.bucket_s)}</text>')
    for line, sensor in enumerate(grid.sensors):
        y = top + line * cell_h
        parts.append(
            f'<text class="label" x="{label_w - 6}" y="{y + cell_h - 3}" '
            f'text-anchor="end">{_e(sensor)}</text>'
        )
        for column, begin in enumerate(grid.starts):
            got, pct = grid.cells[sensor, column]
            parts.append(
                f'<rect class="cell" x="{label_w + column * cell_w}" y="{y}" '
                f'width="{cell_w - 1}" height="{cell_h - 1}" fill="{health_colour(pct)}" '
                f'data-sensor="{_e(sensor)}" data-readings="{got}" data-health="{pct:.1f}">'
                f"<title>{_e(sensor)} from {begin:%H:%M:%S}: {got} readings, {pct:.0f} %"
                "</title></rect>"
            )
    parts.append("</svg>")
    return "".join(parts)


def legend_svg() -> str:
    stops = "".join(
        f'<stop offset="{p}%" stop-color="{health_colour(p)}"/>' for p in range(0, 101, 10)
    )
    return (
        '<svg class="legend" xmlns="http://www.w3.org/2000/svg" width="260" height="34" '
        'viewBox="0 0 260 34"><defs><linearGradient id="health-scale">'
        f'{stops}</linearGradient></defs><rect x="10" y="4" width="240" height="12" '
        'fill="url(#health-scale)"/><text class="tick" x="10" y="30">0 %</text>'
        '<text class="tick" x="118" y="30">50 %</text>'
        '<text class="tick" x="224" y="30">100 %</text></svg>'
    )


LATE_SHARE = 0.12
"""Share of a chart's width for readings dated before the run (the simulator's late events)."""


@dataclass(frozen=True)
class Frame:
    """The time axis every series shares: the run, and a narrow strip on its left for the
    readings dated before it (late events are minutes old on purpose; on one linear axis
    they would squeeze the run against the right edge)."""

    t0: float
    """The earliest reading."""
    start: float
    end: float
    """The run."""

    @property
    def late(self) -> bool:
        return self.t0 < self.start

    def x(self, at: datetime, width: float) -> float:
        t = at.timestamp()
        strip = LATE_SHARE * width if self.late else 0.0
        if t < self.start:
            return (t - self.t0) / max(self.start - self.t0, 1e-9) * strip
        share = (min(t, self.end) - self.start) / max(self.end - self.start, 1e-9)
        return strip + share * (width - strip)


def series_svg(sensor: str, rows: list[dict[str, Any]], frame: Frame) -> str:
    """One sensor's readings (sorted by time): the line, anomaly dots, alert triangles."""
    width, height, left, top, plot_w, plot_h = 380, 126, 46, 18, 324, 84
    values = [float(r["value"]) for r in rows]
    low, high = min(values), max(values)
    pad = (high - low) * 0.08 or max(abs(high) * 0.05, 1.0)
    low, high = low - pad, high + pad

    def xy(row: dict[str, Any]) -> tuple[float, float]:
        x = left + frame.x(row["timestamp"], plot_w)
        y = top + (high - float(row["value"])) / (high - low) * plot_h
        return round(x, 1), round(y, 1)

    points = " ".join(f"{x},{y}" for x, y in map(xy, rows))
    anomalies = [r for r in rows if r["is_anomaly"]]
    alerts = [r for r in rows if r["is_anomaly_alert"]]
    parts = [
        f'<svg class="series" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'data-sensor="{_e(sensor)}" data-readings="{len(rows)}" '
        f'data-anomalies="{len(anomalies)}" data-alerts="{len(alerts)}">',
        f'<rect class="plot" x="{left}" y="{top}" width="{plot_w}" height="{plot_h}"/>',
        f'<text class="tick" x="{left - 4}" y="{top + 8}" text-anchor="end">{high:.4g}</text>',
        f'<text class="tick" x="{left - 4}" y="{top + plot_h}" text-anchor="end">{low:.4g}</text>',
        f'<text class="tick" x="{left + frame.x(datetime.fromtimestamp(frame.start, UTC), plot_w)}" '
        f'y="{height - 6}">{datetime.fromtimestamp(frame.start, UTC):%H:%M:%S}</text>',
        f'<text class="tick" x="{left + plot_w}" y="{height - 6}" text-anchor="end">'
        f"{datetime.fromtimestamp(frame.end, UTC):%H:%M:%S}</text>",
        f'<polyline class="line" points="{points}"/>',
    ]
    if frame.late:
        edge = round(left + LATE_SHARE * plot_w, 1)
        parts.insert(
            2,
            f'<line class="late" x1="{edge}" y1="{top}" x2="{edge}" y2="{top + plot_h}"/>'
            f'<text class="tick" x="{left + 2}" y="{top + plot_h - 3}">late</text>',
        )
    for row in anomalies:
        x, y = xy(row)
        parts.append(
            f'<circle class="anomaly" cx="{x}" cy="{y}" r="3.2"><title>anomaly: '
            f"{float(row['value']):.4g} at {row['timestamp']:%H:%M:%S.%f}</title></circle>"
        )
    for row in alerts:
        x, y = xy(row)
        parts.append(
            f'<path class="alert" d="M{x},{y - 6} l-4.5,-8 h9 z"><title>alert at '
            f"{row['timestamp']:%H:%M:%S.%f}</title></path>"
        )
    parts.append("</svg>")
    return "".join(parts)


STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1d232a; background: #fbfbfc; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 28px 0 8px; }
h3 { font-size: 15px; margin: 18px 0 6px; text-transform: capitalize; }
.status { font-weight: 600; } .status.ok { color: #2e8c3c; } .status.bad { color: #c62828; }
dl.facts { display: grid; grid-template-columns: max-content max-content; gap: 2px 16px; }
dl.facts dt { color: #5b6670; } dl.facts dd { margin: 0; font-variant-numeric: tabular-nums; }
.grid { display: flex; flex-wrap: wrap; gap: 12px; }
figure { margin: 0; background: #fff; border: 1px solid #dde1e5; border-radius: 4px; padding: 6px; }
figcaption { font-size: 12px; color: #39424b; } figcaption b { color: #1d232a; }
svg text { font: 10px system-ui, sans-serif; fill: #5b6670; }
svg text.label { font-size: 11px; fill: #1d232a; }
rect.plot { fill: #f6f8fa; stroke: #dde1e5; } line.late { stroke: #9aa4ad; stroke-dasharray: 3 2; }
polyline.line { fill: none; stroke: #2f6db5; stroke-width: 1; }
circle.anomaly { fill: #d62728; stroke: #fff; stroke-width: .6; }
path.alert { fill: #5a0d0d; }
.key span { margin-right: 14px; } .dot { color: #d62728; } .tri { color: #5a0d0d; }
"""


def render_html(data: ReportData) -> str:
    """The page for ``data``."""
    by_sensor: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in data.readings:
        by_sensor[row["sensor_id"]].append(row)
    for rows in by_sensor.values():
        rows.sort(key=lambda r: r["timestamp"])
    times = [r["timestamp"].timestamp() for r in data.readings]
    end = max([*times, data.end.timestamp()])
    frame = Frame(min([*times, data.start.timestamp()]), data.start.timestamp(), end)
    grid = heatmap(data)
    bucket = {3600: "hour", 300: "5 minutes", 60: "minute"}.get(
        grid.bucket_s, f"{grid.bucket_s} seconds"
    )
    status = "balanced" if data.ok else "does NOT balance"
    parts = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(data.title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{_e(data.title)}</h1>",
        f'<p class="status {"ok" if data.ok else "bad"}">The accounting {status}.</p>',
        '<dl class="facts">',
        *(f"<dt>{_e(label)}</dt><dd>{_e(value)}</dd>" for label, value in data.facts),
        "</dl>",
        f'<h2 id="health">Sensor health per {bucket}</h2>',
        f"<p>Readings received over readings expected ({data.rate_hz:g} per second per "
        f"sensor) in each {bucket} of the run, {data.start:%Y-%m-%d %H:%M:%S} to "
        f"{data.end:%H:%M:%S} UTC. Silenced sensors show as red and amber cells.</p>",
        legend_svg(),
        f"<figure>{heatmap_svg(grid)}</figure>",
        '<h2 id="series">Readings per sensor</h2>',
        '<p class="key"><span>— every Silver reading</span><span class="dot">● anomaly '
        '(out of range or |z| &gt; 3)</span><span class="tri">▼ anomaly alert (one per '
        "incident)</span></p>",
    ]
    kinds: dict[str, list[str]] = defaultdict(list)
    for sensor, rows in sorted(by_sensor.items()):
        kinds[str(rows[0]["sensor_type"])].append(sensor)
    for kind, sensors in sorted(kinds.items()):
        parts.append(f'<h3>{_e(kind)}</h3><div class="grid">')
        for sensor in sensors:
            rows = by_sensor[sensor]
            first = rows[0]
            anomalies = sum(1 for r in rows if r["is_anomaly"])
            parts.append(
                f"<figure><figcaption><b>{_e(sensor)}</b> · {_e(first['location'] or 'no location')} · "
                f"{_e(first['unit'])}: {len(rows):,} readings, {anomalies} anomalies"
                f"</figcaption>{series_svg(sensor, rows, frame)}</figure>"
            )
        parts.append("</div>")
    parts.append("</body></html>\n")
    return "".join(parts)


def write_report(path: Path, data: ReportData) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(data), encoding="utf-8")
    return path


def facts_of(pairs: Iterable[tuple[str, object]]) -> list[tuple[str, str]]:
    return [
        (label, f"{value:,}" if isinstance(value, int) else str(value)) for label, value in pairs
    ]
