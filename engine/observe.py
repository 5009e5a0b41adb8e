"""Committed ledger changes -> facts for metrics, logs and the failure notifier.

Why here and not in the runner: every place that moves a run or finishes a
step (the runner, foreach items, the reconciler, intake, operator actions)
writes the ledger through a SQLAlchemy session, so watching those writes sees
all of them with no call to forget. Facts are gathered when a session flushes
and handed on only once its transaction commits, so a rolled-back change is
never counted, logged or notified.

Observers are attached to one database engine (one app); two apps in one
process (tests) never see each other's writes. An observer must not raise: it
runs inside the committing code's `commit()`.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

from sqlalchemy import Engine, event, inspect, select
from sqlalchemy.orm import Session

from engine.conductor import FINISHED_RUN, AttemptStatus, RunStatus
from engine.models import Run, StepAttempt, StepItem

FACTS = "hookflow.facts"
UNRESOLVED = "?"
_FINISHED = {status.value for status in FINISHED_RUN}
_ENDED_ATTEMPT = {s.value for s in AttemptStatus} - {AttemptStatus.STARTED.value}


@dataclass(frozen=True)
class RunStarted:
    run_id: str
    event_id: str
    workflow: str


@dataclass(frozen=True)
class RunFinished:
    run_id: str
    event_id: str
    workflow: str
    status: str
    error: str | None
    step: str | None
    duration_ms: float | None


@dataclass(frozen=True)
class StepFinished:
    """One step attempt (or one foreach item) that ended, with the HTTP statuses of its calls."""

    run_id: str
    event_id: str | None
    workflow: str | None
    step: str
    operation: str
    attempt: int
    status: str
    duration_ms: float | None
    error: str | None
    http_statuses: list[int | None] = field(default_factory=list)
    # Seconds each call waited in place for the shared request budget (calls that record `waited_ms`).
    budget_waits: list[float] = field(default_factory=list)
    item: int | None = None
    retry_scheduled: bool = False

    @property
    def connector(self) -> str:
        return self.operation.split(".", 1)[0]


Fact = RunStarted | RunFinished | StepFinished
Sink = Callable[[Fact], None]

_observers: weakref.WeakKeyDictionary[Engine, list[Sink]] = weakref.WeakKeyDictionary()


def attach(engine: Engine, sink: Sink) -> None:
    """Send facts about writes through `engine` to `sink` (after their commit)."""
    _observers.setdefault(engine, []).append(sink)
    if not event.contains(Session, "after_flush", _after_flush):
        event.listen(Session, "after_flush", _after_flush)
        event.listen(Session, "after_commit", _after_commit)
        event.listen(Session, "after_rollback", _forget)
        event.listen(Session, "after_begin", _forget_on_begin)


def _sinks(session: Session) -> list[Sink]:
    bind = session.bind
    return _observers.get(bind, []) if isinstance(bind, Engine) else []


def _after_flush(session: Session, _context: Any) -> None:
    if not _sinks(session):
        return
    runs = {obj.id: obj for obj in session.identity_map.values() if isinstance(obj, Run)}
    facts = session.info.setdefault(FACTS, [])
    facts.extend(_facts(session.new, session.dirty, runs))


def _after_commit(session: Session) -> None:
    facts = session.info.pop(FACTS, [])
    sinks = _sinks(session)
    if not facts or not sinks:
        return
    facts = [_resolved(session.bind, fact) if isinstance(fact, StepFinished) else fact for fact in facts]
    for sink in sinks:
        for fact in facts:
            sink(fact)


def publish(engine: Engine, facts: Iterable[Fact]) -> None:
    """Hand facts written outside the ORM (the runner's Core hot path) to `engine`'s sinks.

    The caller must call this only after its transaction committed, like `_after_commit` does.
    """
    sinks = _observers.get(engine, [])
    for fact in facts:
        for sink in sinks:
            sink(fact)


def facts_of_new(rows: Iterable[Any]) -> list[Fact]:
    """What inserting these new (transient) rows tells the sinks: for runs, that they started (or failed at once)."""
    return _facts(rows, [], {})


def _resolved(engine: Any, fact: StepFinished) -> StepFinished:
    """Fill in the run's workflow, event and the step's operation when the writing session did not load the run.

    (foreach items are written in sessions of their own.) One indexed read per run, cached.
    """
    if fact.operation != UNRESOLVED:
        return fact
    workflow, event_id, operations = _run_facts(engine, fact.run_id)
    return replace(fact, workflow=workflow, event_id=event_id, operation=operations.get(fact.step, "unknown"))


@lru_cache(maxsize=512)
def _run_facts(engine: Engine, run_id: str) -> tuple[str | None, str | None, dict[str, str]]:
    with engine.connect() as conn:
        row = conn.execute(select(Run.workflow, Run.event_id, Run.definition).where(Run.id == run_id)).first()
    if row is None:
        return None, None, {}
    return row.workflow, row.event_id, _operations(row.definition)


def _forget(session: Session) -> None:
    session.info.pop(FACTS, None)


def _forget_on_begin(session: Session, _transaction: Any, _connection: Any) -> None:
    session.info.pop(FACTS, None)


def _status_change(obj: Any) -> tuple[str | None, str] | None:
    """(old, new) when the object's status changed in this flush; old is None for a new row."""
    history = inspect(obj).attrs.status.history
    if not history.added:
        return None
    return (history.deleted[0] if history.deleted else None), history.added[0]


def _facts(new: Iterable[Any], dirty: Iterable[Any], runs: dict[str, Run]) -> list[Fact]:
    facts: list[Fact] = []
    for obj in [*new, *dirty]:
        if not isinstance(obj, Run | StepAttempt | StepItem):  # events, xrefs: nothing to report
            continue
        change = _status_change(obj)
        if change is None:
            continue
        old, status = change
        if isinstance(obj, Run):
            if old is None:
                facts.append(RunStarted(obj.id, obj.event_id, obj.workflow))
            if status in _FINISHED and old not in _FINISHED:
                facts.append(_run_finished(obj))
        elif isinstance(obj, StepAttempt) and status in _ENDED_ATTEMPT:
            facts.append(_step_finished(obj, runs.get(obj.run_id)))
        elif isinstance(obj, StepItem) and status in _ENDED_ATTEMPT and inspect(obj).attrs.updated_at.history.added:
            # (An item put back as it was after a deferral changes status without a new updated_at: not an end.)
            facts.append(_step_finished(obj, runs.get(obj.run_id)))
    return facts


def _run_finished(run: Run) -> RunFinished:
    duration = None
    if run.finished_at is not None:
        duration = round((run.finished_at - (run.started_at or run.created_at)).total_seconds() * 1000, 1)
    step = run.failed_step or run.current_step if run.status == RunStatus.FAILED.value else None
    return RunFinished(run.id, run.event_id, run.workflow, run.status, run.error, step, duration)


def _operations(definition: dict[str, Any]) -> dict[str, str]:
    steps = [*definition.get("steps", []), *definition.get("on_failure", [])]
    return {str(step.get("id")): str(step.get("uses", "unknown")) for step in steps}


def _operation(run: Run | None, step_id: str) -> str:
    if run is None or "definition" not in inspect(run).dict:  # not loaded here: resolved after the commit
        return UNRESOLVED
    return _operations(run.definition).get(step_id, "unknown")


def _step_finished(row: StepAttempt | StepItem, run: Run | None) -> StepFinished:
    item = row.item_index if isinstance(row, StepItem) else None
    calls = [call for call in row.calls or [] if isinstance(call, dict)]
    # A failed attempt whose run now waits for the next attempt of the same step: an automatic retry.
    retry = (
        item is None
        and row.status == AttemptStatus.FAILED.value
        and run is not None
        and run.status == RunStatus.RUNNING.value
        and run.current_step == row.step_id
        and run.attempt == row.attempt + 1
    )
    return StepFinished(
        run_id=row.run_id,
        event_id=run.event_id if run is not None else None,
        workflow=run.workflow if run is not None else None,
        step=row.step_id,
        operation=_operation(run, row.step_id),
        attempt=row.attempt,
        status=row.status,
        duration_ms=row.duration_ms,
        error=row.error_message,
        http_statuses=[call.get("status") for call in calls],
        budget_waits=[call["waited_ms"] / 1000 for call in calls if isinstance(call.get("waited_ms"), int | float)],
        item=item,
        retry_scheduled=retry,
    )
