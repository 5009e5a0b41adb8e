"""What the JSON API accepts and returns; one model per resource, so /api/openapi.json is generated from them.

The query models (`RunQuery`, `EventQuery`) are also what the API validates
`request.args` with, so the document and the behaviour cannot drift apart.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, field_validator

_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
RunStatusName = Literal["queued", "running", "succeeded", "failed", "cancelled"]
EventStatusName = Literal["accepted", "rejected"]

# --- Query parameters and request bodies ------------------------------------------------------


class _Query(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        """PostgreSQL text cannot hold NUL; refuse it here rather than fail in the database."""
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value


def through_the_day(value: Any) -> Any:
    """A date without a time, as an exclusive `until`, means the whole of that day: the next midnight.

    `until` is exclusive (engine.queries), and a bare date reads as midnight at the
    start of the day, so "to 2026-03-02" would leave out all of 2 March, and from
    2 March to 2 March would always be empty. The console's date pickers send bare dates.
    """
    if isinstance(value, str) and _DATE_ONLY.match(value.strip()):
        value = date.fromisoformat(value.strip())
    if isinstance(value, date) and not isinstance(value, datetime):
        if value == date.max:
            raise ValueError("the last day of the calendar has no end to count to")
        return datetime.combine(value + timedelta(days=1), time())
    return value


def last_day(until: datetime) -> date:
    """The last day an exclusive `until` includes (what a "to" date picker shows for it)."""
    return (until - timedelta(microseconds=1)).date()


class RunFilter(_Query):
    """Which runs: every given condition must hold."""

    status: RunStatusName | None = Field(None, description="The run's status.")
    workflow: str | None = Field(None, max_length=200, description="Workflow name.")
    source: str | None = Field(None, max_length=100, description="The source of the run's event.")
    event_id: str | None = Field(None, max_length=40, description="Runs of this event.")
    since: datetime | None = Field(None, description="Created at or after (ISO 8601; naive means UTC).")
    until: datetime | None = Field(
        None, description="Created before (ISO 8601; naive means UTC). A date alone includes that whole day."
    )
    q: str | None = Field(
        None, min_length=1, max_length=200, description="Text anywhere in the event's data, e.g. an email address."
    )

    _until_a_date = field_validator("until", mode="before")(through_the_day)


class RunQuery(RunFilter):
    """GET /api/runs: a filter and a keyset page, newest first."""

    limit: int = Field(50, ge=1, le=200, description="Runs per page.")
    before: str | None = Field(None, max_length=40, description="A run id: the page of runs older than it.")


class BulkRetryIn(RunFilter):
    """POST /api/runs/retry: retry every failed run matching the filter (status is always `failed`)."""

    status: Literal["failed"] | None = Field(None, description="Only failed runs can be retried.")
    limit: int = Field(100, ge=1, le=1000, description="The most runs retried by one call; call again for more.")
    dry_run: bool = Field(False, description="List what would be retried, change nothing.")


class EventFilter(_Query):
    source: str | None = Field(None, max_length=100)
    status: EventStatusName | None = None
    type: str | None = Field(None, max_length=200, description="Event type.")
    duplicates: bool | None = Field(None, description="true: only events delivered more than once.")
    since: datetime | None = Field(None, description="Received at or after (ISO 8601; naive means UTC).")
    until: datetime | None = Field(
        None, description="Received before (ISO 8601; naive means UTC). A date alone includes that whole day."
    )
    q: str | None = Field(None, min_length=1, max_length=200, description="Text anywhere in the event's data.")

    _until_a_date = field_validator("until", mode="before")(through_the_day)


class EventQuery(EventFilter):
    limit: int = Field(50, ge=1, le=200)
    before: str | None = Field(None, max_length=40, description="An event id: the page of events older than it.")


class ValidateIn(BaseModel):
    """POST /api/workflows/validate (JSON form; a text/yaml body is accepted as the file itself)."""

    model_config = ConfigDict(extra="forbid")

    yaml: str = Field(max_length=256 * 1024, description="The workflow file's text.")
    filename: str = Field("workflow.yaml", max_length=200, pattern=r"^[\w.-]+\.ya?ml$")


class ReplayIn(BaseModel):
    """POST /api/events/<id>/replay (the body is optional): replay into one workflow only."""

    model_config = ConfigDict(extra="forbid")

    workflow: str | None = Field(
        None, max_length=200, description="Start only this workflow; the others matching the event do not run again."
    )


class RunWorkflowQuery(BaseModel):
    """POST /api/workflows/<name>/run: `wait`; every other parameter reaches the run as `event.query`."""

    model_config = ConfigDict(extra="allow")

    wait: float | None = Field(
        None,
        ge=0,
        description="Hold the answer up to this many seconds (at most DIRECT_RUN_MAX_WAIT_SECONDS) for the run to end.",
    )


class RunWorkflowIn(RootModel[dict[str, Any]]):
    """POST /api/workflows/<name>/run: any JSON object (or form fields); it becomes the run's `event.data`.

    engine.direct parses it, as /hooks parses a delivery; this model is what the document shows.
    """


# --- Responses --------------------------------------------------------------------------------


class ErrorOut(BaseModel):
    error: str


class AttemptOut(BaseModel):
    attempt: int
    status: Literal["started", "succeeded", "failed", "skipped", "deferred"]
    started_at: datetime
    finished_at: datetime | None
    duration_ms: float | None
    input: Any = None
    calls: list[dict[str, Any]] = []
    output: Any = None
    error_class: str | None = None
    error: str | None = None
    outcome_unknown: bool = False
    reconciled: bool = False


class ItemOut(BaseModel):
    """One item of a foreach step: its latest state."""

    index: int
    attempt: int
    status: Literal["started", "succeeded", "failed", "skipped"]
    input: Any = None
    calls: list[dict[str, Any]] = []
    output: Any = None
    error_class: str | None = None
    error: str | None = None
    outcome_unknown: bool = False
    reconciled: bool = False
    duration_ms: float | None = None


class StepOut(BaseModel):
    id: str
    uses: str
    status: Literal["pending", "running", "succeeded", "failed", "skipped"]
    output: Any = None
    error: str | None = None
    attempts: list[AttemptOut] = []
    items: list[ItemOut] = []


class RunSummary(BaseModel):
    id: str
    workflow: str
    event_id: str
    status: RunStatusName
    current_step: str | None
    error: str | None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None
    duration_ms: float | None = Field(None, description="From start (or creation) to finish; null while active.")
    source: str | None = Field(None, description="The source of the run's event.")


class RunOut(RunSummary):
    workflow_hash: str
    due_at: datetime | None
    steps: list[StepOut]


class RunList(BaseModel):
    runs: list[RunSummary]
    next_before: str | None = None


class SkippedRun(BaseModel):
    id: str
    error: str


class BulkRetryOut(BaseModel):
    dry_run: bool
    matched: int = Field(description="Failed runs matching the filter, up to the limit.")
    retried: list[str] = Field(description="Run ids resumed (or that would be, in a dry run).")
    skipped: list[SkippedRun] = Field(description="Runs that could not be retried, with why.")


class EventSummary(BaseModel):
    id: str
    source: str
    type: str | None
    key: str | None
    status: EventStatusName
    reason: str | None
    received_at: datetime
    duplicates: int = Field(0, description="Later deliveries of the same event, answered 200 duplicate.")
    last_duplicate_at: datetime | None = None


class EventLinks(BaseModel):
    self_: str = Field(alias="self")
    runs: str
    replay: str = Field(description="POST here to start the event's workflows again (new runs).")

    model_config = ConfigDict(populate_by_name=True)


class EventOut(EventSummary):
    content_type: str | None
    headers: dict[str, Any]
    query: dict[str, Any]
    data: Any
    body: str
    runs: list[str]
    links: EventLinks


class ReplayedEvent(BaseModel):
    """One event a replayed rejected event became (a batching sender's delivery can hold several)."""

    event_id: str
    runs: list[str] | None = Field(None, description="The runs it started.")
    duplicate: bool | None = Field(None, description="true: that event was already stored; nothing started.")
    error: str | None = Field(None, description="Why it is still rejected.")


class ReplayOut(BaseModel):
    """What a replay started; fields that do not apply are left out.

    An accepted event: `event_id` (the same) and its new `runs`. A rejected event,
    read again: `replay_of` (its id) and the event it became (`event_id` with `runs`,
    or `duplicate`), or `events` when it became several (or none: a handshake).
    """

    replay_of: str | None = Field(None, description="The rejected event that was read again.")
    event_id: str | None = None
    runs: list[str] | None = None
    duplicate: bool | None = Field(None, description="true: the event it became was already stored (200).")
    error: str | None = None
    events: list[ReplayedEvent] | None = None


class EventList(BaseModel):
    events: list[EventSummary]
    next_before: str | None = None


class IssueOut(BaseModel):
    file: str
    line: int
    col: int
    path: str
    message: str
    hint: str = ""
    severity: Literal["error", "warning"]


class WorkflowStats(BaseModel):
    window_days: int = Field(description="The stats cover runs created in this many recent days.")
    succeeded: int
    failed: int
    cancelled: int
    active: int
    success_rate: float | None = Field(description="succeeded / (succeeded + failed); null without finished runs.")


class WorkflowSummary(BaseModel):
    name: str
    description: str
    file: str
    source: str
    events: list[str] | None = Field(description="Event types that start it; null: any.")
    condition: str | bool | None = Field(description="The trigger's `if`.")
    steps: list[str] = Field(description="Step ids, then on_failure step ids.")
    stats: WorkflowStats
    last_runs: list[RunSummary]


class WorkflowOut(WorkflowSummary):
    definition: dict[str, Any] = Field(description="The definition new runs pin.")
    hash: str
    issues: list[IssueOut] = Field(description="Problems found in its file (warnings, or errors in a newer edit).")


class WorkflowList(BaseModel):
    workflows: list[WorkflowSummary]
    issues: list[IssueOut] = Field(description="Every load problem in WORKFLOWS_DIR, as file:line:col.")


class ValidateOut(BaseModel):
    valid: bool
    name: str | None = Field(description="The workflow's name, when it parsed.")
    issues: list[IssueOut]
