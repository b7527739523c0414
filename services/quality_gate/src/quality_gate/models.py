"""The API's bodies: run requests, run summaries and details."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, Field, computed_field, model_validator

from iotpipe.gate_client import Layer, Verdict
from iotpipe.jobs import JobView
from iotpipe.windows import END_DOC, START_DOC, Window, window_of

Engine = Literal["pandas", "spark"]


class RunRequest(BaseModel):
    """Validate ``layer`` over ``[window_start, window_end)``."""

    layer: Layer
    window_start: AwareDatetime | None = Field(
        default=None, description=START_DOC, examples=["2026-11-26T10:00:00Z"]
    )
    window_end: AwareDatetime | None = Field(
        default=None, description=END_DOC, examples=["2026-11-26T11:00:00Z"]
    )
    window: str | None = Field(
        default=None,
        json_schema_extra={"deprecated": True},
        description="Deprecated (accepted for one release; use `window_start`/`window_end`): "
        "`START--END`, a day `YYYY-MM-DD` or an hour `YYYY-MM-DDTHH`.",
    )

    @model_validator(mode="after")
    def _one_window(self) -> RunRequest:
        if self.window is not None:
            if self.window_start is not None or self.window_end is not None:
                raise ValueError("give window_start and window_end, or the deprecated window")
            parsed = Window.parse(self.window)
            self.window_start, self.window_end = parsed.start, parsed.end
            self.window = None
        if self.window_start is None or self.window_end is None:
            raise ValueError("window_start and window_end are required")
        window_of(self.window_start, self.window_end)
        return self

    @property
    def parsed_window(self) -> Window:
        assert self.window_start is not None
        assert self.window_end is not None
        return window_of(self.window_start, self.window_end)


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
    window: str = Field(
        json_schema_extra={"deprecated": True},
        description="Deprecated: the window as text; read window_start/_end.",
    )
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

    @computed_field(description=START_DOC)  # type: ignore[prop-decorator]
    @property
    def window_start(self) -> datetime:
        return self.parsed_window.start

    @computed_field(description=END_DOC)  # type: ignore[prop-decorator]
    @property
    def window_end(self) -> datetime:
        return self.parsed_window.end

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


class RunJob(JobView[RunDetail]):
    """A run started by ``POST /runs``: its ``result`` is the run (as ``GET /runs/{id}``)."""
