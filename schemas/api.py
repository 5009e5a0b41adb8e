"""What the JSON API returns; one model per resource so the OpenAPI document can be generated from them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel


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
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    current_step: str | None
    error: str | None
    created_at: datetime
    finished_at: datetime | None


class RunOut(RunSummary):
    workflow_hash: str
    started_at: datetime | None
    due_at: datetime | None
    steps: list[StepOut]


class RunList(BaseModel):
    runs: list[RunSummary]
    next_before: str | None = None


class EventOut(BaseModel):
    id: str
    source: str
    type: str | None
    key: str | None
    status: Literal["accepted", "rejected"]
    reason: str | None
    received_at: datetime
    content_type: str | None
    headers: dict[str, Any]
    query: dict[str, Any]
    data: Any
    body: str
    runs: list[str]
