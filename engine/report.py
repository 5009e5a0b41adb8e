"""Ledger rows -> the API's view of a run, with each step's status derived from its attempts."""

from __future__ import annotations

from collections.abc import Sequence

from engine.conductor import ACTIVE_RUN, AttemptStatus, StepStatus
from engine.models import Event, Run, StepAttempt, StepItem
from schemas.api import AttemptOut, EventOut, ItemOut, RunOut, RunSummary, StepOut


def summarize(run: Run) -> RunSummary:
    return RunSummary(
        id=run.id,
        workflow=run.workflow,
        event_id=run.event_id,
        status=run.status,
        current_step=run.current_step,
        error=run.error,
        created_at=run.created_at,
        finished_at=run.finished_at,
    )


def describe(run: Run, attempts: list[StepAttempt], items: Sequence[StepItem] = ()) -> RunOut:
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
        **summarize(run).model_dump(),
        workflow_hash=run.workflow_hash,
        started_at=run.started_at,
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


def describe_event(event: Event, run_ids: list[str]) -> EventOut:
    return EventOut(
        id=event.id,
        source=event.source,
        type=event.type,
        key=event.dedupe_key,
        status=event.status,
        reason=event.reason,
        received_at=event.received_at,
        content_type=event.content_type,
        headers=event.headers,
        query=event.query,
        data=event.data,
        body=event.raw_body.decode("utf-8", errors="replace"),
        runs=run_ids,
    )
