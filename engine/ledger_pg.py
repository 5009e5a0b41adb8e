"""The ledger's hot writes as one statement each, on PostgreSQL.

engine.ledger writes a webhook's event and run, a step's claim and a step's
end as transactions of two or three statements between BEGIN and COMMIT.
Each is a round trip (and, on a busy machine, a context switch on both
sides) and, through SQLAlchemy, ~0.1-0.2 ms of client CPU. PostgreSQL runs
data-modifying statements inside WITH, all in one snapshot and all or
nothing, so here the same writes are one statement sent in autocommit mode:
one round trip. `make bench-writes` times both ways per operation
(docs/benchmarks-writes.md); a 4-step run makes one insert, one claim,
three advances and one record.

The semantics are the transaction's, row for row: the attempt is always
recorded; the run moves only if it is still on this attempt (a cancel that
came in meanwhile stands); the next attempt is inserted only if the run moved
(PostgreSQL runs every data-modifying WITH clause to completion whether or
not the statement reads it); a duplicate claim fails on the attempt's unique
key and leaves the run as it was. SQLite has no data-modifying WITH, so it
keeps the transactions; tests/engine/test_store.py runs both on both databases.

Each statement is sent through engine.pg_direct: compiled once, then run on
the pooled connection's psycopg connection, which saves SQLAlchemy's
per-call work (~0.13 ms of CPU of a statement's ~0.21).
"""

from __future__ import annotations

import functools
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any

from sqlalchemy import (
    JSON,
    BindParameter,
    Executable,
    Insert,
    Select,
    Table,
    Update,
    bindparam,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by

from engine import pg_direct, store
from engine.conductor import AttemptStatus, Next, RunStatus
from engine.db import Database
from engine.models import Event, Run, StepAttempt

# The attempt's columns an outcome sets (engine.runner.outcome_row); a move sets store.RUN_STATE_COLUMNS.
OUTCOME_COLUMNS = (
    "status",
    "input",
    "output",
    "calls",
    "reconciled",
    "duration_ms",
    "error_class",
    "error_message",
    "outcome_unknown",
    "finished_at",
)

# What a claim reads of the run's earlier attempts (engine.ledger.PastAttempt, in this order) and of its event.
PAST_ATTEMPT_COLUMNS = ("step_id", "step_index", "attempt", "status", "output", "outcome_unknown", "started_at")
EVENT_COLUMNS = (
    Event.id,
    Event.dedupe_key,
    Event.source,
    Event.type,
    Event.received_at,
    Event.data,
    Event.raw_data,
    Event.headers,
    Event.query,
)


def _binds(prefix: str, table: Table, columns: tuple[str, ...]) -> dict[str, BindParameter[Any]]:
    """`column: :<prefix><column>` typed like the column (JSON and timestamps are then bound as the ORM binds them)."""
    return {column: bindparam(prefix + column, type_=table.c[column].type) for column in columns}


_RECORDED = (
    update(StepAttempt)
    .where(StepAttempt.id == bindparam("p_attempt_id"))
    .values(_binds("a_", StepAttempt.__table__, OUTCOME_COLUMNS))
    .returning(StepAttempt.id)
    .cte("recorded")
)
# Moves only if the run is still on this attempt; the same condition as engine.ledger's transaction.
_MOVE = (
    update(Run)
    .where(
        Run.id == bindparam("p_run"),
        Run.status == RunStatus.RUNNING.value,
        Run.current_step == bindparam("p_step"),
        Run.attempt == bindparam("p_attempt"),
    )
    .values(_binds("r_", Run.__table__, store.RUN_STATE_COLUMNS))
)
_MOVED = _MOVE.returning(Run.id).cte("moved")


def _started_attempt(run_id: Any, step_id: Any, step_index: Any, attempt: Any, started_at: Any) -> Insert:
    """The INSERT of a claimed (`started`) attempt, its values selected from a WITH clause's row."""
    return insert(StepAttempt).from_select(
        ["run_id", "step_id", "step_index", "attempt", "started_at", "status", "outcome_unknown", "reconciled"],
        select(run_id, step_id, step_index, attempt, started_at, literal(AttemptStatus.STARTED.value), False, False),
    )


_NEXT = _binds("n_", StepAttempt.__table__, ("step_id", "step_index", "attempt", "started_at"))
_ADVANCE = _started_attempt(_MOVED.c.id, *_NEXT.values()).add_cte(_RECORDED).returning(StepAttempt.id)
_RECORD = _MOVE.add_cte(_RECORDED)


def claiming(claim_run: Update) -> Select[Any]:
    """engine.ledger's `claim_run`, the attempt's INSERT and the claim's reads, as one statement.

    Its row is claim_run's, plus `attempt_id`, the event's columns (`event_*`) and `earlier`, the
    run's attempts before this one as a JSON array (see `earlier_attempts`); there is none when the
    run was not waiting for this attempt. A duplicate delivery fails on the attempt's unique key
    and, the statement being all or nothing, leaves the run as it was, as the transaction does.
    The reads see the statement's snapshot, so `earlier` never holds the attempt it inserts.
    """
    run = claim_run.cte("claimed_run")
    attempt = (
        _started_attempt(
            run.c.id,
            bindparam("p_step", type_=StepAttempt.step_id.type),
            run.c.step_index,
            bindparam("p_attempt", type_=StepAttempt.attempt.type),
            bindparam("p_now", type_=StepAttempt.started_at.type),
        )
        .returning(StepAttempt.id.label("attempt_id"))
        .cte("claimed_attempt")
    )
    earlier = (
        select(
            func.json_agg(
                aggregate_order_by(
                    func.json_build_array(*(StepAttempt.__table__.c[name] for name in PAST_ATTEMPT_COLUMNS)),
                    StepAttempt.step_index,
                    StepAttempt.attempt,
                ),
                type_=JSON,
            )
        )
        .where(StepAttempt.run_id == run.c.id)
        .scalar_subquery()
    )
    return (
        select(run, attempt.c.attempt_id, *(column.label(f"event_{column.key}") for column in EVENT_COLUMNS))
        .add_columns(earlier.label("earlier"))
        # An outer join: whatever it finds, a claim that happened returns its row (PostgreSQL runs the
        # UPDATE and the INSERT above even when the outer query returns nothing).
        .select_from(run.join(attempt, literal(True)).outerjoin(Event, Event.id == run.c.event_id))
    )


def earlier_attempts(earlier: list[list[Any]] | None) -> list[tuple[Any, ...]]:
    """`claiming`'s `earlier` as rows of PAST_ATTEMPT_COLUMNS, `started_at` a UTC datetime as the column reads.

    PostgreSQL writes a timestamp in JSON as ISO 8601 with its offset and up to six decimals,
    which `datetime.fromisoformat` reads back to the microsecond.
    """
    return [(*past[:-1], datetime.fromisoformat(past[-1]).astimezone(timezone.utc)) for past in earlier or ()]


def event_row(row: Any) -> SimpleNamespace:
    """The event's columns of a `claiming` row, named as engine.ledger.event_view reads them."""
    return SimpleNamespace(**{column.key: getattr(row, f"event_{column.key}") for column in EVENT_COLUMNS})


def advance(
    db: Database, where: dict[str, Any], attempt_id: int, outcome: dict[str, Any], nxt: Next, now: datetime
) -> int | None:
    """Record the attempt, move the run to `nxt` and claim it: the new attempt's id, or None if the run did not move.

    `where` names the attempt the run must still be on: p_run, p_step, p_attempt.
    """
    params = {
        **_outcome_params(attempt_id, outcome, now),
        **where,
        **_move_params(nxt, now),
        "n_step_id": nxt.step_id,
        "n_step_index": nxt.step_index,
        "n_attempt": nxt.attempt,
        "n_started_at": now,
    }
    with pg_direct.connect(db.engine) as conn:
        return conn.run(db.direct(_ADVANCE), params).scalar()


def record(
    db: Database, where: dict[str, Any], attempt_id: int, outcome: dict[str, Any], nxt: Next, now: datetime
) -> bool:
    """Record the attempt and, if the run is still on it, move the run to `nxt`; True if it moved."""
    params = {**_outcome_params(attempt_id, outcome, now), **where, **_move_params(nxt, now)}
    with pg_direct.connect(db.engine) as conn:
        return conn.run(db.direct(_RECORD), params).rowcount == 1


def insert_event(db: Database, event: dict[str, Any], run: dict[str, Any] | None) -> None:
    """Insert an event and its run (if it starts one) as one statement; raises IntegrityError as the transaction does.

    `event` and `run` are the columns to write, the models' defaults included
    (engine.ledger.row_values: SQLAlchemy does not apply them inside WITH). An
    event that starts several runs goes through engine.ledger's transaction.
    """
    statement = _event_insert(tuple(sorted(event)), tuple(sorted(run)) if run is not None else None)
    params = {f"e_{key}": value for key, value in event.items()}
    if run is not None:
        params.update({f"r_{key}": value for key, value in run.items()})
    with pg_direct.connect(db.engine) as conn:
        conn.run(db.direct(statement), params)


@functools.cache
def _event_insert(event_columns: tuple[str, ...], run_columns: tuple[str, ...] | None) -> Executable:
    """The INSERT for one set of event (and run) columns: built once per set, as engine.ledger's statements are."""
    insert_event = insert(Event).values(_binds("e_", Event.__table__, event_columns))
    if run_columns is None:
        return insert_event
    return insert(Run).values(_binds("r_", Run.__table__, run_columns)).add_cte(insert_event.cte("event"))


def _outcome_params(attempt_id: int, outcome: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {"p_attempt_id": attempt_id, "a_finished_at": now, **{f"a_{key}": value for key, value in outcome.items()}}


def _move_params(nxt: Next, now: datetime) -> dict[str, Any]:
    return {f"r_{key}": value for key, value in store.run_values(nxt, now).items()}
