"""`foreach`: one step, one call per item, progress committed item by item.

The items run inside the step's single job (sequentially, or `max_parallel`
at a time on threads), so the run keeps one cursor and the reconciler stays
simple. Each item's state is written to `step_items` as it starts and as it
ends; a later attempt (a retry, or the one after a lost worker) therefore
skips every item that already succeeded and reconciles the one that was in
flight. The step's output is the list of item outputs, in item order.

Semantics:
- the step's `if:` is evaluated once, before the list is expanded (filter
  items in the `foreach` expression itself, e.g. `| selectattr('qty') | list`);
- a failing item stops the others (sequential: no further item starts;
  parallel: no new item starts) unless `on_error: continue`, which lets every
  item be tried; the step then fails with the first failed item's error,
  transient if every failure was transient (so a retry resumes the rest);
- a spent request budget defers the whole step; finished items stay finished.
"""

from __future__ import annotations

import copy
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from sqlalchemy import select

from engine import store
from engine.conductor import AttemptStatus
from engine.errors import RenderError, StepDeferred, StepError, StepValidationError, TransientStepError
from engine.http import CallLog
from engine.invoke import AttemptResult, Invocation, jsonable, perform
from engine.models import StepItem

_DONE = (AttemptStatus.SUCCEEDED.value, AttemptStatus.SKIPPED.value)


def run_foreach(invocation: Invocation, attempt: int) -> AttemptResult:
    """Run every item not yet done; the step's result summarises them all."""
    services, step = invocation.services, invocation.step
    try:
        if not services.renderer.is_true(step.if_, invocation.context):
            return AttemptResult(AttemptStatus.SKIPPED)
        items = services.renderer.render(step.foreach, invocation.context)
    except RenderError as exc:
        return AttemptResult(AttemptStatus.FAILED, error=StepValidationError(str(exc)))
    problem = not_a_list(items, services.settings.foreach_max_items)
    if problem:
        return AttemptResult(AttemptStatus.FAILED, error=StepValidationError(f"foreach: {problem}"))
    loop = _ItemLoop(invocation, attempt, items)
    loop.run()
    return loop.result()


def not_a_list(items: Any, limit: int) -> str | None:
    if not isinstance(items, list):
        return f"expected a list of items, got {type(items).__name__}"
    if len(items) > limit:
        return f"{len(items)} items is more than FOREACH_MAX_ITEMS ({limit})"
    return None


class _ItemLoop:
    def __init__(self, invocation: Invocation, attempt: int, items: list[Any]) -> None:
        self.invocation = invocation
        self.step = invocation.step.model_copy(update={"if_": None})  # `if` was decided for the whole step
        self.attempt = attempt
        self.items = items
        self.before = _item_rows(invocation)
        self.failures: dict[int, StepError] = {}
        self.deferred: StepDeferred | None = None
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def run(self) -> None:
        pending = [i for i in range(len(self.items)) if i not in self.before or self.before[i].status not in _DONE]
        if self.step.max_parallel == 1:
            for index in pending:
                if self.stop.is_set():
                    break
                self._run_item(index)
        else:
            with ThreadPoolExecutor(max_workers=self.step.max_parallel, thread_name_prefix="foreach") as pool:
                list(pool.map(self._run_item, pending))

    def _run_item(self, index: int) -> None:
        if self.stop.is_set():
            return
        try:
            outcome = _perform_item(
                self.invocation, self.step, self.attempt, index, self.items[index], self.before.get(index)
            )
        except StepDeferred as deferred:
            with self.lock:
                self.deferred = self.deferred or deferred
            self.stop.set()
            return
        if outcome.status == AttemptStatus.FAILED:
            with self.lock:
                self.failures[index] = outcome.error  # type: ignore[assignment]
            if self.step.on_error != "continue":
                self.stop.set()

    def result(self) -> AttemptResult:
        rows = _item_rows(self.invocation)
        outputs = [
            rows[i].output if i in rows and rows[i].status == "succeeded" else None for i in range(len(self.items))
        ]
        summary = {"items": len(self.items)}
        if self.failures:
            return AttemptResult(AttemptStatus.FAILED, summary, outputs, error=step_error(self.failures))
        if self.deferred is not None:
            raise self.deferred
        return AttemptResult(AttemptStatus.SUCCEEDED, summary, outputs)


def step_error(failures: dict[int, StepError]) -> StepError:
    """The error the step fails with: the first permanent item failure, else the first transient one.

    Transient only when every failure was, so that a retry (which resumes the
    unfinished items) is tried only when it can help.
    """
    ordered = sorted(failures.items())
    permanent = [(i, e) for i, e in ordered if not isinstance(e, TransientStepError)]
    index, chosen = (permanent or ordered)[0]
    error = copy.copy(chosen)
    error.message = f"item {index}: {chosen.message}"
    if len(failures) > 1:
        error.message += f" ({len(failures)} items failed)"
    error.args = (error.message,)
    return error


def _perform_item(
    invocation: Invocation, step: Any, attempt: int, index: int, item: Any, before: StepItem | None
) -> AttemptResult:
    connector = invocation.connector
    calls = CallLog()
    deadline = time.monotonic() + step.timeout if step.timeout else None
    item_invocation = Invocation(
        invocation.services,
        step,
        {**invocation.context, "item": item, "index": index},
        replace(connector, calls=calls, deadline=deadline),
        reconcile=before is not None and (before.status == AttemptStatus.STARTED.value or before.outcome_unknown),
    )
    _write_item(invocation, index, attempt, AttemptResult(AttemptStatus.STARTED), calls, None)
    started = time.perf_counter()
    try:
        outcome = perform(item_invocation)
    except StepDeferred:
        _forget_started(invocation, index, before)
        raise
    _write_item(invocation, index, attempt, outcome, calls, time.perf_counter() - started)
    return outcome


def _item_rows(invocation: Invocation) -> dict[int, StepItem]:
    connector = invocation.connector
    with invocation.services.db.session() as session:
        rows = session.scalars(
            select(StepItem).where(StepItem.run_id == connector.run_id, StepItem.step_id == connector.step_id)
        )
        return {row.item_index: row for row in rows}


def _write_item(
    invocation: Invocation, index: int, attempt: int, outcome: AttemptResult, calls: CallLog, seconds: float | None
) -> None:
    connector = invocation.connector
    with invocation.services.db.session() as session:
        row = session.scalar(
            select(StepItem)
            .where(
                StepItem.run_id == connector.run_id, StepItem.step_id == connector.step_id, StepItem.item_index == index
            )
            .with_for_update()
        )
        if row is None:
            row = StepItem(run_id=connector.run_id, step_id=connector.step_id, item_index=index)
            session.add(row)
        row.attempt = attempt
        row.status = outcome.status.value
        row.input = outcome.input
        row.output = jsonable(outcome.output) if outcome.output is not None else None
        row.calls = jsonable(calls.calls)
        row.error_class = outcome.error.kind if outcome.error else None
        row.error_message = outcome.error.message if outcome.error else None
        row.outcome_unknown = bool(outcome.error and outcome.error.outcome_unknown)
        row.reconciled = outcome.reconciled
        row.updated_at = store.utcnow()
        row.duration_ms = round(seconds * 1000, 2) if seconds is not None else None
        session.commit()


def _forget_started(invocation: Invocation, index: int, before: StepItem | None) -> None:
    """A deferred item sent nothing: put its row back as it was, so it is not taken for in flight."""
    connector = invocation.connector
    with invocation.services.db.session() as session:
        row = session.scalar(
            select(StepItem).where(
                StepItem.run_id == connector.run_id, StepItem.step_id == connector.step_id, StepItem.item_index == index
            )
        )
        if row is None:
            return
        if before is None:
            session.delete(row)
        else:
            row.status, row.outcome_unknown = before.status, before.outcome_unknown
        session.commit()
