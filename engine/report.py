"""Ledger rows -> the API's (and the console's) view: runs with steps derived from attempts, events, workflows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from engine import queries
from engine.conductor import ACTIVE_RUN, AttemptStatus, StepStatus
from engine.issues import Issue
from engine.loader import LoadedWorkflow
from engine.models import Event, Run, StepAttempt, StepItem
from engine.queries import WorkflowCounts
from engine.redact import redact_secret_fields
from schemas.api import (
    AttemptOut,
    EventLinks,
    EventOut,
    EventSummary,
    IssueOut,
    ItemOut,
    RunOut,
    RunSummary,
    StepOut,
    WorkflowOut,
    WorkflowStats,
    WorkflowSummary,
)


def summarize(run: Run, source: str | None = None) -> RunSummary:
    return RunSummary(
        id=run.id,
        workflow=run.workflow,
        event_id=run.event_id,
        status=run.status,
        current_step=run.current_step,
        error=run.error,
        created_at=run.created_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
        duration_ms=_duration_ms(run),
        source=source,
    )


def _duration_ms(run: Run) -> float | None:
    if run.finished_at is None:
        return None
    return round((run.finished_at - (run.started_at or run.created_at)).total_seconds() * 1000, 1)


def describe(
    run: Run, attempts: list[StepAttempt], items: Sequence[StepItem] = (), source: str | None = None
) -> RunOut:
    by_step: dict[str, list[StepAttempt]] = {}
    for attempt in attempts:
        by_step.setdefault(attempt.step_id, []).append(attempt)
    items_by_step: dict[str, list[StepItem]] = {}
    for item in sorted(items, key=lambda i: i.item_index):
        items_by_step.setdefault(item.step_id, []).append(item)
    declared = [*run.definition["steps"], *run.definition.get("on_failure", [])]
    steps = [
        _step(step["id"], step["uses"], run, by_step.get(step["id"], []), items_by_step.get(step["id"], []))
        for step in declared
    ]
    return RunOut(
        **summarize(run, source).model_dump(),
        workflow_hash=run.workflow_hash,
        due_at=run.due_at,
        steps=steps,
    )


def _step(step_id: str, uses: str, run: Run, attempts: list[StepAttempt], items: list[StepItem]) -> StepOut:
    last = attempts[-1] if attempts else None
    return StepOut(
        id=step_id,
        uses=uses,
        status=_step_status(step_id, run, last),
        output=last.output if last and last.status == AttemptStatus.SUCCEEDED.value else None,
        error=last.error_message if last else None,
        attempts=[_attempt(a) for a in attempts],
        items=[_item(i) for i in items],
    )


def _item(item: StepItem) -> ItemOut:
    return ItemOut(
        index=item.item_index,
        attempt=item.attempt,
        status=item.status,
        input=item.input,
        calls=item.calls or [],
        output=item.output,
        error_class=item.error_class,
        error=item.error_message,
        outcome_unknown=item.outcome_unknown,
        reconciled=item.reconciled,
        duration_ms=item.duration_ms,
    )


def _step_status(step_id: str, run: Run, last: StepAttempt | None) -> StepStatus:
    if last is None:
        return StepStatus.PENDING
    if last.status in (AttemptStatus.FAILED.value, AttemptStatus.DEFERRED.value):
        # A failure (or deferral) with another attempt still to come is a step in progress.
        waiting_for_retry = run.status in {s.value for s in ACTIVE_RUN} and run.current_step == step_id
        return StepStatus.RUNNING if waiting_for_retry else StepStatus.FAILED
    return {
        AttemptStatus.STARTED.value: StepStatus.RUNNING,
        AttemptStatus.SUCCEEDED.value: StepStatus.SUCCEEDED,
        AttemptStatus.SKIPPED.value: StepStatus.SKIPPED,
    }[last.status]


def _attempt(attempt: StepAttempt) -> AttemptOut:
    return AttemptOut(
        attempt=attempt.attempt,
        status=attempt.status,
        started_at=attempt.started_at,
        finished_at=attempt.finished_at,
        duration_ms=attempt.duration_ms,
        input=attempt.input,
        calls=attempt.calls or [],
        output=attempt.output,
        error_class=attempt.error_class,
        error=attempt.error_message,
        outcome_unknown=attempt.outcome_unknown,
        reconciled=attempt.reconciled,
    )


def summarize_event(event: Event) -> EventSummary:
    return EventSummary(
        id=event.id,
        source=event.source,
        type=event.type,
        key=event.dedupe_key,
        status=event.status,
        reason=event.reason,
        received_at=event.received_at,
        duplicates=event.duplicates or 0,
        last_duplicate_at=event.last_duplicate_at,
    )


def describe_event(event: Event, run_ids: list[str]) -> EventOut:
    """The event as received. Data fields named like credentials are masked, as everywhere we show things."""
    return EventOut(
        **summarize_event(event).model_dump(),
        content_type=event.content_type,
        headers=event.headers,
        query=event.query,
        data=redact_secret_fields(event.data),
        body=event.raw_body.decode("utf-8", errors="replace"),
        runs=run_ids,
        links=EventLinks(
            self_=f"/api/events/{event.id}",
            runs=f"/api/runs?event_id={event.id}",
            replay=f"/api/events/{event.id}/replay",
        ),
    )


def issue_out(issue: Issue) -> IssueOut:
    return IssueOut(
        file=issue.file,
        line=issue.line,
        col=issue.col,
        path=issue.path,
        message=issue.message,
        hint=issue.hint,
        severity="warning" if issue.severity == "warning" else "error",
    )


def summarize_workflow(
    workflow: LoadedWorkflow, counts: WorkflowCounts, window_days: int, recent: Sequence[Run]
) -> WorkflowSummary:
    spec = workflow.spec
    return WorkflowSummary(
        name=spec.name,
        description=spec.description,
        file=str(workflow.path),
        source=spec.on.source,
        events=spec.on.event_types(),
        condition=spec.on.if_,
        steps=[step.id for step in spec.all_steps],
        stats=WorkflowStats(
            window_days=window_days,
            succeeded=counts.counts.get("succeeded", 0),
            failed=counts.counts.get("failed", 0),
            cancelled=counts.counts.get("cancelled", 0),
            active=counts.active,
            success_rate=counts.success_rate,
        ),
        last_runs=[summarize(run) for run in recent],
    )


def describe_workflow(summary: WorkflowSummary, workflow: LoadedWorkflow, issues: Sequence[Issue]) -> WorkflowOut:
    mine = [issue_out(issue) for issue in issues if issue.file == str(workflow.path)]
    return WorkflowOut(**summary.model_dump(), definition=workflow.definition, hash=workflow.hash, issues=mine)


def workflow_overview(session: Session, workflow: LoadedWorkflow, now: datetime) -> WorkflowSummary:
    """A loaded workflow with its recent record: counts over STATS_WINDOW_DAYS and its last five runs."""
    name = workflow.spec.name
    counts = queries.workflow_counts(session, name, now)
    return summarize_workflow(workflow, counts, queries.STATS_WINDOW_DAYS, queries.last_runs(session, name))
