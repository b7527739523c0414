"""Running a suite with Great Expectations 1.x on one DataFrame (pandas or Spark).

Each run gets its own ephemeral data context (nothing leaks between runs): a data
source for the engine, a DataFrame asset with a whole-DataFrame batch definition,
the suite, a validation definition tying them together, and a checkpoint that runs it.
"""

from __future__ import annotations

from typing import Any

import great_expectations as gx
from great_expectations.data_context.types.base import ProgressBarsConfig

from quality_gate.models import Engine, ExpectationOutcome
from quality_gate.suites import NAME

RESULT_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": 10}
"""Counts and percentages for every expectation, plus up to 10 offending values."""

_OBSERVED = (
    "observed_value",
    "element_count",
    "unexpected_count",
    "unexpected_percent",
    "missing_count",
    "partial_unexpected_list",
)


def validate(frame: Any, suite: gx.ExpectationSuite, engine: Engine) -> dict[str, Any]:
    """Validate ``frame`` against ``suite``; the GX validation result as JSON."""
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)  # logs, not tty bars
    source = (
        context.data_sources.add_spark("lake")
        if engine == "spark"
        else context.data_sources.add_pandas("lake")
    )
    batch = source.add_dataframe_asset(suite.name).add_batch_definition_whole_dataframe("window")
    suite = context.suites.add(suite)
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=suite.name, data=batch, suite=suite)
    )
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name=f"gate-{suite.name}",
            validation_definitions=[definition],
            actions=[],
            result_format=RESULT_FORMAT,
        )
    )
    outcome = checkpoint.run(batch_parameters={"dataframe": frame})
    (result,) = outcome.run_results.values()
    document: dict[str, Any] = result.to_json_dict()
    return document


def outcomes(result: dict[str, Any]) -> list[ExpectationOutcome]:
    """One line per expectation of a GX validation result."""
    lines = []
    for item in result.get("results", []):
        config = item.get("expectation_config", {})
        kwargs = config.get("kwargs", {})
        exception = item.get("exception_info") or {}
        observed = item.get("result") or {}
        lines.append(
            ExpectationOutcome(
                name=(config.get("meta") or {}).get(NAME) or config.get("type", "unnamed"),
                expectation_type=config.get("type", "unknown"),
                success=bool(item.get("success")),
                column=kwargs.get("column"),
                observed={key: observed[key] for key in _OBSERVED if key in observed},
                exception=exception.get("exception_message")
                if exception.get("raised_exception")
                else None,
            )
        )
    return lines
