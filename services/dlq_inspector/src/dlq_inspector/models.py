"""The inspector's API: what it accepts and what it answers."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from dlq_inspector.index import Entry, MessageFilter
from dlq_inspector.ledger import LedgerEntry
from iotpipe.contract import ErrorType
from iotpipe.pagination import Page

MessageId = Annotated[
    str,
    Field(
        pattern=r"^\d{1,6}:\d{1,19}$",
        description="A DLQ message: `<partition>:<offset>` in the DLQ topic.",
        examples=["0:42"],
    ),
]
JsonObject = dict[str, Any]


def to_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def to_ms(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


class SourceCoordinates(BaseModel):
    """Where the dead-lettered record was originally read."""

    topic: str
    partition: int
    offset: int
    timestamp: datetime


class Replayed(BaseModel):
    """The message's entry in the replay ledger."""

    replay_id: str
    replayed_at: datetime
    topic: str
    partition: int
    offset: int
    patched: bool

    @classmethod
    def of(cls, entry: LedgerEntry) -> Replayed:
        return cls(
            replay_id=entry.replay_id,
            replayed_at=to_datetime(entry.replayed_at_ms),
            topic=entry.target_topic,
            partition=entry.target_partition,
            offset=entry.target_offset,
            patched=entry.patched,
        )


class MessageSummary(BaseModel):
    id: MessageId
    partition: int
    offset: int
    error_type: ErrorType
    error_detail: str
    sensor_id: str | None = Field(description="Read from the bytes where possible.")
    dead_lettered_at: datetime
    size_bytes: int
    source: SourceCoordinates
    replayed: Replayed | None = Field(description="Set once the message has been replayed.")

    @classmethod
    def of(cls, entry: Entry, ledger_entry: LedgerEntry | None) -> MessageSummary:
        return cls(
            id=entry.id,
            partition=entry.partition,
            offset=entry.offset,
            error_type=entry.error_type,
            error_detail=entry.error_detail,
            sensor_id=entry.sensor_id,
            dead_lettered_at=to_datetime(entry.dead_lettered_at_ms),
            size_bytes=entry.size,
            source=SourceCoordinates(
                topic=entry.source_topic,
                partition=entry.source_partition,
                offset=entry.source_offset,
                timestamp=to_datetime(entry.source_timestamp_ms),
            ),
            replayed=Replayed.of(ledger_entry) if ledger_entry else None,
        )


class MessageDetail(MessageSummary):
    value_base64: str = Field(description="The original bytes, base64: always safe to show.")
    value_text: str | None = Field(description="The original bytes as text, when valid UTF-8.")
    value_json: Any | None = Field(
        default=None,
        description="The bytes parsed, when JSON nested at most 64 deep (else null: see "
        "value_text).",
    )
    headers: dict[str, str]


class MessagePage(Page[MessageSummary]):
    """The shared page envelope (iotpipe.pagination.Page); this list's cursor is always set
    (Kafka offsets), so a client can poll it for new messages."""

    next_cursor: str = Field(
        description="Pass as `cursor` for the next page; also valid later, to see new messages."
    )
    has_more: bool = Field(description="More matching messages exist now after this page.")


class Occurrence(BaseModel):
    id: MessageId
    dead_lettered_at: datetime


class ErrorTypeStats(BaseModel):
    total: int
    unresolved: int


class Stats(BaseModel):
    total: int
    unresolved: int
    replayed: int
    unreadable: int = Field(description="Records on the topic that are not dead letters.")
    by_error_type: dict[ErrorType, ErrorTypeStats]
    oldest: Occurrence | None
    newest: Occurrence | None
    oldest_unresolved: Occurrence | None
    recent_window_s: int
    recent_count: int = Field(description="Dead-lettered within the recent window.")
    recent_rate_per_s: float


class ReplayFilter(BaseModel):
    """Select messages by what they are (every given criterion must hold)."""

    model_config = ConfigDict(extra="forbid")

    error_type: list[ErrorType] = Field(default_factory=list)
    sensor_id: str | None = None
    window_start: AwareDatetime | None = Field(
        default=None, description="Dead-lettered at or after."
    )
    window_end: AwareDatetime | None = Field(default=None, description="Dead-lettered before.")
    since: AwareDatetime | None = Field(
        default=None,
        description="Deprecated (one release): `window_start`.",
        json_schema_extra={"deprecated": True},
    )
    until: AwareDatetime | None = Field(
        default=None,
        description="Deprecated (one release): `window_end`.",
        json_schema_extra={"deprecated": True},
    )
    status: Literal["unresolved", "replayed", "any"] = Field(
        default="unresolved",
        description="Replayed messages are skipped unless `force`; select them with "
        "`replayed` or `any`.",
    )

    def to_filter(self) -> MessageFilter:
        return MessageFilter(
            error_types=frozenset(self.error_type),
            sensor_id=self.sensor_id,
            since_ms=to_ms(self.window_start or self.since),
            until_ms=to_ms(self.window_end or self.until),
            replayed={"unresolved": False, "replayed": True, "any": None}[self.status],
        )


class ReplayRequest(BaseModel):
    """Replay dead letters to the events topic, optionally fixed by a JSON merge patch."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"ids": ["0:42"], "patches": {"0:42": {"unit": "celsius"}}, "dry_run": True},
                {"filter": {"error_type": ["out_of_contract"]}, "patch": {"schema_version": 1}},
            ]
        },
    )

    ids: list[MessageId] | None = Field(default=None, min_length=1, max_length=100_000)
    filter: ReplayFilter | None = None
    patch: JsonObject | None = Field(
        default=None, description="JSON merge patch (RFC 7386) applied to every selected message."
    )
    patches: dict[MessageId, JsonObject] = Field(
        default_factory=dict,
        description="JSON merge patch per message id, applied after `patch`.",
    )
    dry_run: bool = Field(
        default=False, description="Validate and show what would be sent; send nothing."
    )
    force: bool = Field(default=False, description="Replay messages the ledger says were replayed.")
    background: bool | None = Field(
        default=None,
        description="Run as a job (202) or inline (200); default: a job when the selection is large.",
    )

    @model_validator(mode="after")
    def _one_selection(self) -> ReplayRequest:
        if (self.ids is None) == (self.filter is None):
            raise ValueError("give exactly one of `ids` or `filter`")
        if self.ids is not None:
            unselected = sorted(set(self.patches) - set(self.ids))
            if unselected:
                raise ValueError(f"`patches` names messages not in `ids`: {', '.join(unselected)}")
        return self


class Outcome(StrEnum):
    REPLAYED = "replayed"
    WOULD_REPLAY = "would_replay"
    REFUSED = "refused"
    ALREADY_REPLAYED = "already_replayed"
    NOT_FOUND = "not_found"


class Target(BaseModel):
    topic: str
    partition: int
    offset: int


class MessageResult(BaseModel):
    id: MessageId
    result: Outcome
    reason: str | None = Field(default=None, description="Why it was refused or skipped.")
    error_type: ErrorType | None = Field(
        default=None, description="For a refusal: how the (patched) message breaks the contract."
    )
    event: JsonObject | None = Field(
        default=None, description="The event as it is (or would be) sent."
    )
    target: Target | None = None


class JobStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class ReplayJob(BaseModel):
    id: str
    status: JobStatus
    dry_run: bool
    force: bool
    total: int = Field(description="Messages selected (including ids not found).")
    processed: int
    counts: dict[Outcome, int]
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_s: float | None = None
    error: str | None = None
    results: list[MessageResult] = Field(
        description="Per message, in processing order; background jobs keep a capped number, "
        "refusals and skips before successes (see `results_truncated`)."
    )
    results_truncated: bool = False
