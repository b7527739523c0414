"""The API's bodies: run requests, run summaries and details."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from iotpipe.gate_client import Layer, Verdict
from iotpipe.windows import Window

Engine = Literal["pandas", "spark"]


class RunRequest(BaseModel):
    layer: Layer
    window: str = Field(
        description="UTC window `START--END` (ISO-8601 with Z), a day `YYYY-MM-DD` or an hour "
        "`YYYY-MM-DDTHH`.",
        examples=["2026-11-26T10:00:00Z--2026-11-26T11:00:00Z", "2026-11-26"],
    )

    @field_validator("window")
    @classmethod
    def _window(cls, value: str) -> str:
        return str(Window.parse(value))

    @property
    def parsed_window(self) -> Window:
        return Window.parse(self.window)


class ExpectationOutcome(BaseModel):
    """One expectation of a run, in short (the full GX result is in the run's detail)."""

    name: str = Field(description="Stable name of the check, e.g. `value_in_bounds:temperature`.")
    expectation_type: str = Field(description="The Great Expectations expectation.")
    success: bool
    column: str | None = None
    observed: dict[str, Any] = Field(
        default_factory=dict,
        description="What GX observed: element/unexpected counts and percent, observed value.",
    )
    exception: str | None = Field(default=None, description="Why GX could not evaluate it.")


class RunSummary(BaseModel):
    run_id: str
    layer: Layer
    window: str
    verdict: Verdict = Field(description="`pass` when pass_rate >= threshold, else `fail`.")
    pass_rate: float = Field(ge=0, le=1)
    threshold: float
    evaluated_expectations: int
    successful_expectations: int
    failed_expectations: list[str]
    row_count: int = Field(description="Rows of the slice that was validated.")
    engine: Engine
    started_at: datetime
    finished_at: datetime
    result_location: str = Field(description="Where the full result JSON is in the lake.")
    data_fingerprints: dict[str, str] = Field(
        default_factory=dict,
        description="What the run validated: per partition folder, the digest of its files "
        "(iotpipe.lakefs.fingerprints). Empty for runs recorded before fingerprints.",
    )

    @property
    def parsed_window(self) -> Window:
        return Window.parse(self.window)


class RunDetail(RunSummary):
    expectations: list[ExpectationOutcome]
    result: dict[str, Any] = Field(
        description="The full Great Expectations validation result (JSON)."
    )

    def summary(self) -> RunSummary:
        return RunSummary.model_validate(self.model_dump(include=set(RunSummary.model_fields)))
