"""The orchestrator's configuration (env ``ORCHESTRATOR_*``; the lake from ``LAKE_ROOT``).

Tokens and the webhook URL are secrets: the chart fills them from Kubernetes Secrets.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from iotpipe.settings import LakeSettings


class OrchestratorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ORCHESTRATOR_", extra="ignore")

    namespace: str = Field(
        default="iotpipe", description="Namespace of the release's SparkApplications."
    )
    release: str = Field(
        default="iotpipe",
        description="The chart's name prefix (`iotpipe.fullname`): objects are `<release>-...`.",
    )
    kubeconfig: str | None = Field(
        default=None,
        description="Kubeconfig file; unset: the pod's service account (in-cluster), "
        "else ~/.kube/config.",
    )
    quality_gate_url: str = "http://iotpipe-quality-gate:8000"
    quality_gate_token: SecretStr = Field(min_length=16, description="The gate's bearer token.")
    loader_url: str = "http://iotpipe-warehouse-loader:8000"
    loader_token: SecretStr = Field(min_length=16, description="The loader's bearer token.")
    webhook_url: SecretStr | None = Field(
        default=None,
        description="Slack-compatible incoming webhook for failures and SLA misses; unset: none.",
    )
    pushgateway_url: str | None = Field(
        default=None, description="Prometheus Pushgateway (host:port or URL); unset: no push."
    )
    sla_minutes: float = Field(
        default=30, gt=0, description="Bronze older than this many minutes misses the SLA."
    )
    job_timeout_seconds: float = Field(
        default=3 * 3600, gt=0, description="How long one batch SparkApplication may take."
    )
    stream_timeout_seconds: float = Field(
        default=600, gt=0, description="How long the stream may take to reach RUNNING."
    )
    deadline_bronze_to_silver_minutes: float = Field(
        default=90, gt=0, description="Daily run: bronze-to-silver done this long after the start."
    )
    deadline_silver_to_gold_minutes: float = Field(
        default=150, gt=0, description="Daily run: silver-to-gold done this long after the start."
    )
    deadline_quality_gate_minutes: float = Field(
        default=180, gt=0, description="Daily run: the quality gate done this long after the start."
    )
    deadline_warehouse_load_minutes: float = Field(
        default=210,
        gt=0,
        description="Daily run: the warehouse load done this long after the start.",
    )
    reconcile_lookback_days: int = Field(
        default=7,
        gt=0,
        le=366,
        description="Reconcile: loaded windows starting this many days back are compared "
        "with Gold and reloaded when it changed.",
    )
    gate_timeout_seconds: float = Field(default=900, gt=0)
    loader_timeout_seconds: float = Field(default=900, gt=0)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool = False
    lake: LakeSettings = Field(default_factory=LakeSettings)

    @property
    def step_deadlines(self) -> dict[str, float]:
        """Seconds from the daily run's start by which each step must be done."""
        return {
            "bronze-to-silver": self.deadline_bronze_to_silver_minutes * 60,
            "silver-to-gold": self.deadline_silver_to_gold_minutes * 60,
            "quality-gate": self.deadline_quality_gate_minutes * 60,
            "warehouse-load": self.deadline_warehouse_load_minutes * 60,
        }

    @property
    def webhook(self) -> str | None:
        return self.webhook_url.get_secret_value() if self.webhook_url else None
