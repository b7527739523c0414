"""Configuration of the quality gate (env ``QUALITY_*``; the lake from ``LAKE_*``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from iotpipe.settings import LakeSettings, ServiceSettings


class GateSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="QUALITY_", extra="ignore")

    pass_threshold: float = Field(
        default=0.99,
        gt=0,
        le=1,
        description="Share of a suite's expectations that must pass for the verdict 'pass'.",
    )
    bounds_mostly: float = Field(
        default=0.99,
        gt=0,
        le=1,
        description="Share of readings that must lie within their sensor type's physical bounds.",
    )
    freshness_max_lag: timedelta = Field(
        default=timedelta(minutes=15),
        description=(
            "The newest event of a window must be at most this much older than the window's "
            "end (or now, for a window still open). ISO-8601 duration or seconds."
        ),
    )
    max_window: timedelta = Field(
        default=timedelta(days=31),
        gt=timedelta(0),
        description="The longest window one run may validate (longer: 422, run it in parts). "
        "ISO-8601 duration or seconds.",
    )
    engine: Literal["auto", "pandas", "spark"] = Field(
        default="auto",
        description="Where GX computes: pandas (in process), Spark, or by slice size (auto).",
    )
    spark_min_rows: int = Field(
        default=500_000,
        ge=1,
        description="With engine=auto, slices of at least this many rows are validated on Spark.",
    )
    lake: LakeSettings = Field(default_factory=LakeSettings)
