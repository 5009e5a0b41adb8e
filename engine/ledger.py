"""The hot paths' reads and writes, in SQLAlchemy Core: a webhook's insert, a step's claim and record.

Every webhook inserts once and every step claims and records once, so these
are written for few round trips and no ORM bookkeeping (benchmarks: the ORM
path cost ~18 ms of CPU per step, most of it identity-map and flush machinery
for rows we touch once; see docs/benchmarks.md):

- insert_event: the event and its runs in one transaction; the unique
  (source, dedupe_key) constraint decides duplicates, so concurrent
  deliveries of one event race safely and exactly one insert wins;

- claim: one UPDATE ... RETURNING moves the run to `running` only if it still
  waits for exactly this step and attempt (and its lane is free), one INSERT
  claims the attempt (unique: a duplicate delivery fails here), and the
  event and the run's earlier attempts are read in the same transaction;
- record: the attempt's result and the run's next state in one transaction;
  the run is updated only if it is still on this attempt (a run cancelled in
  the meantime keeps its cancel), so no row lock is held during the API call;
- advance: record, and claim the next step of the same run, in one
  transaction, when the worker goes straight on to that step (engine.runner);
  the history is then carried over in memory instead of read back.

On PostgreSQL, insert_event, claim, advance and record are one statement
each instead (engine.ledger_pg): same rows, same conditions, one round trip;
the claim's statement also reads the event and the run's earlier attempts.

The statements are built once, at import, with bind parameters: building
and hashing a SQLAlchemy statement per call cost more CPU than running it.
The event's template view is cached per process: events never change.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, inspect, literal, select, update
from sqlalchemy.exc import IntegrityError

from engine import ledger_pg, observe, pg_direct, store
from engine.conductor import ACTIVE_RUN, AttemptStatus, Failure, Next, RunStatus
from engine.db import Database
from engine.models import Event, Run, StepAttempt

_ACTIVE = [status.value for status in ACTIVE_RUN]

# Bind parameters are named p_*: SQLAlchemy reserves column names for the SET clause.
_CLAIM_RUN = (
    update(Run)
    .where(
        Run.id == bindparam("p_run"),
        Run.current_step == bindparam("p_step"),
        Run.attempt == bindparam("p_attempt"),
        Run.status.in_([literal(status) for status in _ACTIVE]),  # literals: engine.pg_direct binds no IN list
        ~store.blocked_in_lane(),
    )
    .values(
        status=RunStatus.RUNNING.value,
        started_at=func.coalesce(Run.started_at, bindparam("p_now", type_=Run.started_at.type)),
        updated_at=bindparam("p_now", type_=Run.updated_at.type),
    )
    .returning(
        Run.id,
        Run.workflow,
        Run.workflow_hash,
        Run.event_id,
        Run.step_index,
        Run.budget_start,
        Run.concurrency_key,
        Run.failure,
        Run.failed_step,
        Run.failed_attempt,
        Run.started_at,
    )
)
_CLAIM_IN_ONE_STATEMENT = ledger_pg.claiming(_CLAIM_RUN)
_INSERT_EVENT = insert(Event)
_INSERT_RUN = insert(Run)
_CLAIM_ATTEMPT = insert(StepAttempt).returning(StepAttempt.id)
_HISTORY = (
    select(*(StepAttempt.__table__.c[name] for name in ledger_pg.PAST_ATTEMPT_COLUMNS))
    .where(StepAttempt.run_id == bindparam("p_run"))
    .order_by(StepAttempt.step_index, StepAttempt.attempt)
)
_EVENT = select(*ledger_pg.EVENT_COLUMNS).where(Event.id == bindparam("p_event"))
_RECORD_ATTEMPT = update(StepAttempt).where(StepAttempt.id == bindparam("p_attempt_id"))
# The run moves only if it is still on this attempt: a cancel that came in meanwhile stands.
_RECORD_RUN = update(Run).where(
    Run.id == bindparam("p_run"),
    Run.status == RunStatus.RUNNING.value,
    Run.current_step == bindparam("p_step"),
    Run.attempt == bindparam("p_attempt"),
)


@dataclass(frozen=True)
class ClaimedRun:
    """What the step job needs of its run, as it was when the attempt was claimed."""

    id: str
    workflow: str
    workflow_hash: str
    event_id: str
    step_index: int
    budget_start: int
    concurrency_key: str | None
    failure: Failure | None
    started_at: datetime


@dataclass(frozen=True)
class PastAttempt:
    step_id: str
    step_index: int
    attempt: int
    status: str
    output: Any
    outcome_unknown: bool
    started_at: datetime


@dataclass(frozen=True)
class Claim:
    run: ClaimedRun
    step_id: str
    attempt: int
    attempt_id: int
    event: dict[str, Any]  # the event as templates see it (shared, read-only)
    history: list[PastAttempt]  # every attempt of the run so far, this one included, by step then attempt


class EventViews:
    """The template view of recently used events; they never change, so a process may keep them."""

    def __init__(self, size: int = 2048) -> None:
        self._size = size
        self._views: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, event_id: str, read: Callable[[str], Any]) -> dict[str, Any]:
        """The event's view; `read(event_id)` gives its row when this process has not seen it lately."""
        with self._lock:
            view = self._views.get(event_id)
            if view is not None:
                self._views.move_to_end(event_id)
                return view
        view = event_view(read(event_id))
        with self._lock:
            self._views[event_id] = view
            if len(self._views) > self._size:
                self._views.popitem(last=False)
        return view


def event_view(event: Any) -> dict[str, Any]:
    """What `event.*` means in a template (an Event row or object)."""
    return {
        "id": event.id,
        "key": event.dedupe_key,
        "source": event.source,
        "type": event.type,
        "received_at": event.received_at.isoformat(),
        "data": event.data,
        "raw": event.data if event.raw_data is None else event.raw_data,  # the sender's payload as sent (presets)
        "headers": event.headers,
        "query": event.query,
    }


def insert_event(db: Database, event: Event, runs: Sequence[Run]) -> None:
    """Commit a new event with its new runs atomically, then report the runs (metrics, logs).

    `event` and `runs` are transient ORM objects; only the attributes set on them are written,
    so column defaults apply to the rest.

    Raises:
        store.DuplicateEvent: the source already delivered an event with this dedupe key.
    """
    try:
        if db.is_postgresql and len(runs) <= 1:
            ledger_pg.insert_event(db, row_values(event), row_values(runs[0]) if runs else None)
        else:
            insert_in_transaction(db, row_values(event), [row_values(run) for run in runs])
    except IntegrityError:
        with db.engine.connect() as conn:
            original = conn.execute(
                select(Event.id).where(Event.source == event.source, Event.dedupe_key == event.dedupe_key)
            ).scalar()
        if original is None:  # the constraint that failed was not the dedupe key
            raise
        raise store.DuplicateEvent(original) from None
    observe.publish(db.engine, observe.facts_of_new(runs))


def insert_in_transaction(db: Database, event: dict[str, Any], runs: Sequence[dict[str, Any]]) -> None:
    """insert_event's writes as a transaction: the portable path, taken on SQLite (see engine.ledger_pg)."""
    with db.engine.begin() as conn:
        conn.execute(_INSERT_EVENT, event)
        for run in runs:
            conn.execute(_INSERT_RUN, run)


def row_values(obj: Event | Run) -> dict[str, Any]:
    """The columns set on a transient ORM object, and the model's scalar defaults for those left unset.

    The defaults are filled in here rather than by SQLAlchemy at execution, which does not
    apply them to an INSERT inside a WITH clause (engine.ledger_pg's one-statement insert).
    """
    table = obj.__table__
    values = {key: value for key, value in inspect(obj).dict.items() if key in table.c}
    for column in table.c:
        if column.key not in values and column.default is not None and column.default.is_scalar:
            values[column.key] = column.default.arg
    return values


def claim(db: Database, events: EventViews, run_id: str, step_id: str, attempt: int) -> Claim | None:
    """Claim this attempt of this step, or None when the job is stale, a duplicate, or its lane is busy."""
    if db.is_postgresql:
        return claim_in_one_statement(db, events, run_id, step_id, attempt)
    return claim_in_transaction(db, events, run_id, step_id, attempt)


def claim_in_transaction(db: Database, events: EventViews, run_id: str, step_id: str, attempt: int) -> Claim | None:
    """claim as a transaction: the portable path, taken on SQLite (see engine.ledger_pg)."""
    now = store.utcnow()
    try:
        with db.engine.begin() as conn:
            params = {"p_run": run_id, "p_step": step_id, "p_attempt": attempt, "p_now": now}
            row = conn.execute(_CLAIM_RUN, params).first()
            if row is None:
                return None
            attempt_id = conn.execute(
                _CLAIM_ATTEMPT, _started_attempt(run_id, step_id, row.step_index, attempt, now)
            ).scalar_one()
            history = [PastAttempt(*past) for past in conn.execute(_HISTORY, {"p_run": run_id})]
            event = events.get(row.event_id, lambda event_id: conn.execute(_EVENT, {"p_event": event_id}).one())
            return Claim(_claimed_run(row), step_id, attempt, attempt_id, event, history)
    except IntegrityError:  # another delivery of this job claimed the attempt first
        return None


def claim_in_one_statement(db: Database, events: EventViews, run_id: str, step_id: str, attempt: int) -> Claim | None:
    """claim on PostgreSQL: the run's move, the attempt's row, the event and the run's earlier attempts, one statement.

    The attempt it inserts is not among the attempts it reads (one snapshot): its row is known
    here, and goes into the history as the transaction's read would have returned it.
    """
    now = store.utcnow()
    params = {"p_run": run_id, "p_step": step_id, "p_attempt": attempt, "p_now": now}
    try:
        with pg_direct.connect(db.engine) as conn:
            row = conn.run(db.direct(_CLAIM_IN_ONE_STATEMENT), params).first()
    except IntegrityError:  # another delivery of this job claimed the attempt first
        return None
    if row is None:
        return None
    started = PastAttempt(step_id, row.step_index, attempt, AttemptStatus.STARTED.value, None, False, now)
    earlier = [PastAttempt(*past) for past in ledger_pg.earlier_attempts(row.earlier)]
    history = sorted([*earlier, started], key=lambda past: (past.step_index, past.attempt))
    event = events.get(row.event_id, lambda _: ledger_pg.event_row(row))
    return Claim(_claimed_run(row), step_id, attempt, row.attempt_id, event, history)


def _claimed_run(row: Any) -> ClaimedRun:
    failure = None
    if row.failure is not None and row.failed_step is not None and row.failed_attempt is not None:
        failure = Failure(row.failure, row.failed_step, row.failed_attempt)
    return ClaimedRun(
        row.id,
        row.workflow,
        row.workflow_hash,
        row.event_id,
        row.step_index,
        row.budget_start,
        row.concurrency_key,
        failure,
        row.started_at,
    )


def definition_of(db: Database, run_id: str) -> dict[str, Any]:
    """A run's pinned definition (read only when this process has not parsed that version yet)."""
    with db.engine.connect() as conn:
        return conn.execute(select(Run.definition).where(Run.id == run_id)).scalar_one()


def advance(db: Database, claimed: Claim, outcome: dict[str, Any], nxt: Next) -> Claim | None:
    """Record this attempt, move the run to `nxt` (a step due now) and claim that step, all in one transaction.

    Returns the claim of the next step, or None when the run did not move (cancelled while this
    attempt ran): the attempt's outcome is recorded either way.
    """
    if nxt.step_id is None:
        raise ValueError("advance needs a next step; a finished run is recorded with `record`")
    step_id, attempt, now = claimed.step_id, claimed.attempt, store.utcnow()
    where = {"p_run": claimed.run.id, "p_step": step_id, "p_attempt": attempt}
    if db.is_postgresql:
        attempt_id = ledger_pg.advance(db, where, claimed.attempt_id, outcome, nxt, now)
    else:
        attempt_id = advance_in_transaction(db, where, claimed.attempt_id, outcome, nxt, now)
    if attempt_id is None:
        return None
    finished = PastAttempt(
        step_id,
        claimed.run.step_index,
        attempt,
        outcome["status"],
        outcome["output"],
        outcome["outcome_unknown"],
        next(past.started_at for past in claimed.history if (past.step_id, past.attempt) == (step_id, attempt)),
    )
    started = PastAttempt(nxt.step_id, nxt.step_index, nxt.attempt, AttemptStatus.STARTED.value, None, False, now)
    history = [past for past in claimed.history if (past.step_id, past.attempt) != (step_id, attempt)]
    history = sorted([*history, finished, started], key=lambda past: (past.step_index, past.attempt))
    run = replace(claimed.run, step_index=nxt.step_index, budget_start=nxt.budget_start, failure=nxt.failure)
    return Claim(run, nxt.step_id, nxt.attempt, attempt_id, claimed.event, history)


def advance_in_transaction(
    db: Database, where: dict[str, Any], attempt_id: int, outcome: dict[str, Any], nxt: Next, now: datetime
) -> int | None:
    """advance's writes as a transaction: the portable path, taken on SQLite (see engine.ledger_pg)."""
    with db.engine.begin() as conn:
        conn.execute(_RECORD_ATTEMPT, {"p_attempt_id": attempt_id, "finished_at": now, **outcome})
        if conn.execute(_RECORD_RUN, {**where, **store.run_values(nxt, now)}).rowcount != 1:
            return None
        started = _started_attempt(where["p_run"], nxt.step_id, nxt.step_index, nxt.attempt, now)
        return conn.execute(_CLAIM_ATTEMPT, started).scalar_one()


def _started_attempt(run_id: str, step_id: str, step_index: int, attempt: int, now: datetime) -> dict[str, Any]:
    """A claimed attempt's row (engine.ledger_pg's one-statement claim and advance insert the same columns)."""
    return {
        "run_id": run_id,
        "step_id": step_id,
        "step_index": step_index,
        "attempt": attempt,
        "status": AttemptStatus.STARTED.value,
        "started_at": now,
        "outcome_unknown": False,
        "reconciled": False,
    }


def numbered(nxt: Next, history: list[PastAttempt]) -> Next:
    """A step entered afresh continues its attempt numbering (see store.apply_next)."""
    if nxt.step_id is None or nxt.attempt != 1:
        return nxt
    earlier = [past.attempt for past in history if past.step_id == nxt.step_id]
    if not earlier:
        return nxt
    return Next(**{**nxt.__dict__, "attempt": max(earlier) + 1, "budget_start": max(earlier) + 1})


def record(db: Database, claimed: Claim, outcome: dict[str, Any], nxt: Next) -> bool:
    """Write the attempt's outcome and, if the run is still on it, its next state; True if the run moved."""
    now = store.utcnow()
    where = {"p_run": claimed.run.id, "p_step": claimed.step_id, "p_attempt": claimed.attempt}
    if db.is_postgresql:
        return ledger_pg.record(db, where, claimed.attempt_id, outcome, nxt, now)
    return record_in_transaction(db, where, claimed.attempt_id, outcome, nxt, now)


def record_in_transaction(
    db: Database, where: dict[str, Any], attempt_id: int, outcome: dict[str, Any], nxt: Next, now: datetime
) -> bool:
    """record's writes as a transaction: the portable path, taken on SQLite (see engine.ledger_pg)."""
    with db.engine.begin() as conn:
        conn.execute(_RECORD_ATTEMPT, {"p_attempt_id": attempt_id, "finished_at": now, **outcome})
        return conn.execute(_RECORD_RUN, {**where, **store.run_values(nxt, now)}).rowcount == 1
