"""Configuration of the warehouse loader (env ``LOADER_*``; the lake from ``LAKE_*``)."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from iotpipe.settings import LakeSettings, ServiceSettings

Dialect = Literal["postgresql", "redshift"]


class LoaderSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="LOADER_", extra="ignore")

    dialect: Dialect = Field(
        default="postgresql",
        description="Which warehouse: `redshift` (production) or `postgresql` (local, CI).",
    )
    warehouse_dsn: SecretStr = Field(
        validation_alias=AliasChoices("LOADER_WAREHOUSE_DSN", "WAREHOUSE_DSN"),
        description=(
            "Connection URL with credentials (from a Kubernetes Secret): "
            "`postgresql://user:password@host:5432/db` or `redshift://user:password@host:5439/db`. "
            "`WAREHOUSE_DSN` (what `iotpipe local env` prints) is read too."
        ),
    )
    quality_gate_url: str | None = Field(
        default=None,
        description=(
            "Base URL of the quality-gate service. Unset: every load is refused unless it "
            "carries an override with a reason."
        ),
    )
    gate_timeout_s: float = Field(default=10.0, gt=0, description="Per attempt, 3 attempts.")
    redshift_iam_role: str | None = Field(
        default=None,
        pattern=r"^(default|arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+)$",
        description="IAM role Redshift assumes to COPY from the lake (`default` or an ARN).",
    )
    max_window_days: int = Field(
        default=31, ge=1, description="Largest window one load may cover (a guard against typos)."
    )
    lake: LakeSettings = Field(default_factory=LakeSettings)
    test_pause_after_delete_s: float = Field(
        default=0.0,
        ge=0,
        description=(
            "Test hook only: sleep this long between the DELETE and the INSERT of a load, "
            "inside the transaction (the crash tests kill the process there). Never set it "
            "in production."
        ),
    )

    @model_validator(mode="after")
    def _redshift_needs_s3_and_role(self) -> LoaderSettings:
        if self.dialect == "redshift":
            if not self.lake.root.startswith(("s3://", "s3a://")):
                raise ValueError(
                    f"the redshift dialect COPYs from S3, but LAKE_ROOT is {self.lake.root!r}; "
                    "set it to s3a://bucket/prefix"
                )
            if not self.redshift_iam_role:
                raise ValueError("the redshift dialect needs LOADER_REDSHIFT_IAM_ROLE for COPY")
        return self
