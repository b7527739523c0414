"""The expectation suites, derived from the event contract and the lake schemas.

Nothing here restates a fact kept elsewhere: required fields come from
``iotpipe.contract.REQUIRED_FIELDS``, bounds and units from ``SENSOR_TYPES``, column
names and nullability from ``spark_jobs.schemas`` (via :mod:`quality_gate.layers`).
Every expectation carries a short stable name in ``meta.name``; that name is what
verdicts, metrics and the API report when it fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import great_expectations as gx
import great_expectations.expectations as gxe
from great_expectations.expectations.row_conditions import Column

from iotpipe.contract import REQUIRED_FIELDS, SCHEMA_VERSION, SENSOR_TYPES, SensorType
from iotpipe.gate_client import Layer
from iotpipe.windows import Window
from quality_gate.layers import LAYERS, LayerSpec

NAME = "name"
"""The ``meta`` key of an expectation's stable name."""


@dataclass(frozen=True)
class SuiteOptions:
    bounds_mostly: float
    freshness_max_lag: timedelta
    now: datetime
    naive_datetimes: bool = False
    """Compare datetimes as naive local time (what Spark's ``collect`` returns)."""

    def instant(self, value: datetime) -> datetime:
        return value.astimezone().replace(tzinfo=None) if self.naive_datetimes else value


def _named(name: str, expectation: gxe.Expectation) -> gxe.Expectation:
    expectation.meta = {NAME: name}
    return expectation


def _event_expectations(options: SuiteOptions) -> list[gxe.Expectation]:
    """What the event contract says about every reading (Bronze and Silver)."""
    expectations = [
        _named(
            "sensor_type_known",
            gxe.ExpectColumnValuesToBeInSet(
                column="sensor_type", value_set=[kind.value for kind in SensorType]
            ),
        ),
        _named(
            "schema_version_supported",
            gxe.ExpectColumnValuesToBeBetween(
                column="schema_version", min_value=1, max_value=SCHEMA_VERSION
            ),
        ),
    ]
    for kind, spec in SENSOR_TYPES.items():
        of_kind = Column("sensor_type") == kind.value
        expectations += [
            _named(
                f"unit_matches:{kind.value}",
                gxe.ExpectColumnValuesToBeInSet(
                    column="unit", value_set=[spec.unit], row_condition=of_kind
                ),
            ),
            _named(
                f"value_in_bounds:{kind.value}",
                gxe.ExpectColumnValuesToBeBetween(
                    column="value",
                    min_value=spec.min_value,
                    max_value=spec.max_value,
                    mostly=options.bounds_mostly,
                    row_condition=of_kind,
                ),
            ),
        ]
    return expectations


def _gold_expectations() -> list[gxe.Expectation]:
    return [
        _named(
            "sensor_type_known",
            gxe.ExpectColumnValuesToBeInSet(
                column="sensor_type", value_set=[kind.value for kind in SensorType]
            ),
        ),
        _named(
            "reading_count_positive",
            gxe.ExpectColumnValuesToBeBetween(column="reading_count", min_value=1),
        ),
        _named(
            "health_pct_within_0_100",
            gxe.ExpectColumnValuesToBeBetween(column="health_pct", min_value=0, max_value=100),
        ),
        _named(
            "anomalies_within_readings",
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="reading_count", column_B="anomaly_count", or_equal=True
            ),
        ),
        _named(
            "min_within_max",
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="max_value",
                column_B="min_value",
                or_equal=True,
                ignore_row_if="either_value_is_missing",
            ),
        ),
    ]


def freshness_floor(window: Window, options: SuiteOptions) -> datetime:
    """The newest data must be at least this recent: the window's end (or now, while the
    window is open) minus the allowed lag."""
    return min(window.end, options.now) - options.freshness_max_lag


def build_suite(spec: LayerSpec, window: Window, options: SuiteOptions) -> gx.ExpectationSuite:
    """The suite for one layer and window (freshness depends on the window)."""
    required = [
        name for name in spec.columns if name in REQUIRED_FIELDS or name in spec.non_nullable
    ]
    expectations: list[gxe.Expectation] = [
        _named("rows_present", gxe.ExpectTableRowCountToBeBetween(min_value=1)),
        _named(
            "columns_present",
            gxe.ExpectTableColumnsToMatchSet(column_set=required, exact_match=False),
        ),
        *(
            _named(f"not_null:{column}", gxe.ExpectColumnValuesToNotBeNull(column=column))
            for column in required
        ),
    ]
    if spec.layer is Layer.GOLD:
        expectations += _gold_expectations()
    else:
        expectations += _event_expectations(options)
    if spec.unique_key:
        expectations.append(
            _named(
                "unique:" + ",".join(spec.unique_key),
                gxe.ExpectCompoundColumnsToBeUnique(column_list=list(spec.unique_key)),
            )
        )
    expectations.append(
        _named(
            f"fresh:{spec.freshness_column}",
            gxe.ExpectColumnMaxToBeBetween(
                column=spec.freshness_column,
                min_value=options.instant(freshness_floor(window, options)),
                max_value=options.instant(window.end),
            ),
        )
    )
    return gx.ExpectationSuite(name=f"{spec.layer.value}", expectations=expectations)


def suite_names(layer: Layer) -> list[str]:
    """The names of a layer's expectations (for docs and tests)."""
    from datetime import UTC

    now = datetime.now(UTC)
    window = Window(now - timedelta(hours=1), now)
    options = SuiteOptions(bounds_mostly=0.99, freshness_max_lag=timedelta(minutes=15), now=now)
    return [(e.meta or {})[NAME] for e in build_suite(LAYERS[layer], window, options).expectations]
