"""The ledger on SQLite and PostgreSQL: atomic intake, dedupe by constraint, attempt claims and records, migrations."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from engine import ledger, ledger_pg, store
from engine.conductor import AttemptStatus, Next, RunStatus
from engine.db import Database
from engine.http import CallLog
from engine.invoke import AttemptResult
from engine.models import Base, Event, Run, StepAttempt
from engine.runner import outcome_row


@pytest.fixture
def db(any_db_url: str) -> Database:
    database = Database(any_db_url)
    yield database
    database.dispose()


def make_event(key: str | None = "k1", status: str = "accepted") -> Event:
    return Event(
        id=store.new_id("evt"),
        source="webform",
        dedupe_key=key,
        type="form.submitted",
        status=status,
        received_at=store.utcnow(),
        content_type="application/json",
        raw_body=b'{"name": "Jane"}',
        data={"name": "Jane", "nested": {"n": [1, 2]}},
        headers={"content-type": "application/json"},
        query={},
    )


def make_run(event: Event, status: str = "queued", step: str = "contact") -> Run:
    now = store.utcnow()
    return Run(
        id=store.new_id("run"),
        workflow="web-enquiry",
        workflow_hash="h" * 64,
        definition={"name": "web-enquiry", "steps": [{"id": step, "uses": "x"}]},
        event_id=event.id,
        status=status,
        current_step=step,
        step_index=0,
        attempt=1,
        budget_start=1,
        due_at=now,
        created_at=now,
        updated_at=now,
    )


def test_migrations_produce_exactly_the_models(any_db_url: str) -> None:
    engine = sa.create_engine(any_db_url)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    engine.dispose()


def test_an_event_and_its_runs_are_stored_in_one_commit(db: Database) -> None:
    event = make_event()
    run = make_run(event)
    ledger.insert_event(db, event, [run])
    with db.session() as session:
        stored = session.get(Event, event.id)
        assert stored.data == {"name": "Jane", "nested": {"n": [1, 2]}}
        assert stored.raw_body == b'{"name": "Jane"}'
        assert session.get(Run, run.id).event_id == event.id


def test_columns_left_unset_take_the_models_defaults(db: Database) -> None:
    event = make_event()  # duplicates unset
    run = make_run(event)
    for column in ("step_index", "attempt", "budget_start"):
        del run.__dict__[column]  # as if never assigned
    ledger.insert_event(db, event, [run])
    with db.session() as session:
        assert session.get(Event, event.id).duplicates == 0
        stored = session.get(Run, run.id)
        assert (stored.step_index, stored.attempt, stored.budget_start) == (0, 1, 1)


def test_datetimes_come_back_timezone_aware_utc(db: Database) -> None:
    event = make_event()
    event.received_at = datetime(2026, 11, 22, 9, 30, tzinfo=timezone(timedelta(hours=2)))
    ledger.insert_event(db, event, [])
    with db.session() as session:
        assert session.get(Event, event.id).received_at == datetime(2026, 11, 22, 7, 30, tzinfo=timezone.utc)


def test_naive_datetimes_are_refused() -> None:
    from engine.models import UTCDateTime

    with pytest.raises(ValueError, match="naive"):
        UTCDateTime().process_bind_param(datetime(2026, 1, 1), None)  # type: ignore[arg-type]


def test_a_duplicate_key_names_the_original_and_stores_no_runs(db: Database) -> None:
    first = make_event("same")
    ledger.insert_event(db, first, [make_run(first)])
    second = make_event("same")
    with pytest.raises(store.DuplicateEvent) as raised:
        ledger.insert_event(db, second, [make_run(second)])
    assert raised.value.event_id == first.id
    with db.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Run)) == 1
        assert session.get(Event, second.id) is None


def test_concurrent_duplicates_are_decided_by_the_constraint(db: Database) -> None:
    # Given 8 deliveries of the same event racing each other
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def deliver() -> None:
        event = make_event("raced")
        barrier.wait()
        try:
            ledger.insert_event(db, event, [make_run(event)])
            outcomes.append("stored")
        except store.DuplicateEvent:
            outcomes.append("duplicate")

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then exactly one was stored, the rest were told they are duplicates
    assert sorted(outcomes) == ["duplicate"] * 7 + ["stored"]
    with db.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Run)) == 1


def test_rejected_events_without_a_key_never_collide(db: Database) -> None:
    for _ in range(3):
        ledger.insert_event(db, make_event(key=None, status="rejected"), [])
    with db.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Event)) == 3


def claim(db: Database, run: Run, step: str = "contact", attempt: int = 1) -> ledger.Claim | None:
    return ledger.claim(db, ledger.EventViews(), run.id, step, attempt)


# An attempt's outcome exactly as the step runner writes it.
OUTCOME = outcome_row(
    AttemptResult(AttemptStatus.SUCCEEDED, input={"name": "Jane"}, output={"id": 7}), CallLog(), 0.0015
)


class TestClaims:
    def stored_run(self, db: Database, status: str = "queued") -> Run:
        event = make_event()
        run = make_run(event, status=status)
        ledger.insert_event(db, event, [run])
        return run

    def test_the_awaited_attempt_is_claimed_once(self, db: Database) -> None:
        run = self.stored_run(db)
        claimed = claim(db, run)
        assert claimed is not None
        assert claimed.run.id == run.id and claimed.event["data"] == {"name": "Jane", "nested": {"n": [1, 2]}}
        assert [(past.step_id, past.attempt, past.status) for past in claimed.history] == [("contact", 1, "started")]
        assert claim(db, run) is None
        with db.session() as session:
            stored = session.get(Run, run.id)
            assert stored.status == "running" and stored.started_at is not None
            (attempt,) = store.attempts_of(session, run.id)
            assert (attempt.step_id, attempt.attempt, attempt.status) == ("contact", 1, "started")

    @pytest.mark.parametrize(("step", "attempt"), [("contact", 2), ("job", 1)])
    def test_a_job_for_a_step_or_attempt_the_run_is_not_waiting_for_is_stale(
        self, db: Database, step: str, attempt: int
    ) -> None:
        run = self.stored_run(db)
        assert claim(db, run, step, attempt) is None

    @pytest.mark.parametrize("status", ["succeeded", "failed", "cancelled"])
    def test_a_finished_run_claims_nothing(self, db: Database, status: str) -> None:
        run = self.stored_run(db, status=status)
        assert claim(db, run) is None
        with db.session() as session:
            assert store.attempts_of(session, run.id) == []

    def test_racing_claims_let_exactly_one_worker_through(self, db: Database) -> None:
        run = self.stored_run(db)
        wins: list[bool] = []
        barrier = threading.Barrier(6)

        def race() -> None:
            barrier.wait()
            wins.append(claim(db, run) is not None)

        threads = [threading.Thread(target=race) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(wins) == [False] * 5 + [True]
        with db.session() as session:
            assert session.scalar(sa.select(sa.func.count()).select_from(StepAttempt)) == 1


def claimed_run(db: Database) -> ledger.Claim:
    """A stored run whose first step ("contact") has just been claimed."""
    event = make_event()
    run = make_run(event)
    ledger.insert_event(db, event, [run])
    claimed = claim(db, run)
    assert claimed is not None
    return claimed


class TestHistory:
    """What a claim knows of the run's earlier attempts: the same on both databases, to the microsecond."""

    def test_a_retry_sees_the_earlier_attempts_as_stored_and_its_own_as_started(self, db: Database) -> None:
        first = claimed_run(db)
        failed = {**OUTCOME, "status": "failed", "output": {"id": 7, "more": [1.5, None, "é"]}, "outcome_unknown": True}
        assert ledger.record(db, first, failed, Next(RunStatus.RUNNING, "contact", 0, 2, 1)) is True
        retry = ledger.claim(db, ledger.EventViews(), first.run.id, "contact", 2)
        assert retry is not None
        with db.session() as session:
            stored = store.attempts_of(session, first.run.id)
        expected = [
            (a.step_id, a.step_index, a.attempt, a.status, a.output, a.outcome_unknown, a.started_at) for a in stored
        ]
        assert [tuple(vars(past).values()) for past in retry.history] == expected
        assert [(past.attempt, past.status, past.outcome_unknown) for past in retry.history] == [
            (1, "failed", True),
            (2, "started", False),
        ]
        assert retry.history[0].output == {"id": 7, "more": [1.5, None, "é"]}
        assert all(past.started_at.tzinfo is timezone.utc for past in retry.history)

    def test_history_is_ordered_by_step_then_attempt(self, db: Database) -> None:
        claimed = claimed_run(db)
        job = ledger.advance(db, claimed, OUTCOME, Next(RunStatus.RUNNING, "job", 1, 1, 1))
        assert job is not None
        assert ledger.record(db, job, {**OUTCOME, "status": "failed"}, Next(RunStatus.RUNNING, "job", 1, 2, 1))
        retry = ledger.claim(db, ledger.EventViews(), claimed.run.id, "job", 2)
        assert retry is not None
        assert [(past.step_id, past.attempt, past.status) for past in retry.history] == [
            ("contact", 1, "succeeded"),
            ("job", 1, "failed"),
            ("job", 2, "started"),
        ]

    def test_a_step_claimed_again_after_a_later_one_ran_takes_its_place_by_step(self, db: Database) -> None:
        """A manual retry of a failed step, after the workflow's on_failure step (a later index) ran."""
        job = ledger.advance(db, claimed_run(db), OUTCOME, Next(RunStatus.RUNNING, "job", 1, 1, 1))
        assert job is not None
        notify = ledger.advance(db, job, {**OUTCOME, "status": "failed"}, Next(RunStatus.RUNNING, "notify", 4, 1, 1))
        assert notify is not None
        assert ledger.record(db, notify, OUTCOME, Next(RunStatus.FAILED, "job", 1, 1, 1))
        with db.session() as session:  # what a manual retry leaves: the run waits for the failed step again
            run = session.get(Run, job.run.id)
            run.status, run.current_step, run.step_index, run.attempt = "queued", "job", 1, 2
            session.commit()
        retry = ledger.claim(db, ledger.EventViews(), job.run.id, "job", 2)
        assert retry is not None
        assert [(past.step_id, past.attempt) for past in retry.history] == [
            ("contact", 1),
            ("job", 1),
            ("job", 2),
            ("notify", 1),
        ]


class TestRecords:
    def claimed(self, db: Database) -> ledger.Claim:
        return claimed_run(db)

    def test_the_outcome_and_the_next_state_are_written_together(self, db: Database) -> None:
        claimed = self.claimed(db)
        done = Next(RunStatus.SUCCEEDED, None, 1, 1, 1)
        assert ledger.record(db, claimed, OUTCOME, done) is True
        with db.session() as session:
            run = session.get(Run, claimed.run.id)
            assert (run.status, run.current_step, run.finished_at is not None) == ("succeeded", None, True)
            (attempt,) = store.attempts_of(session, run.id)
            assert (attempt.status, attempt.output, attempt.finished_at is not None) == ("succeeded", {"id": 7}, True)

    def test_a_run_cancelled_meanwhile_keeps_its_cancel_but_the_outcome_is_kept(self, db: Database) -> None:
        claimed = self.claimed(db)
        with db.session() as session:
            session.get(Run, claimed.run.id).status = "cancelled"
            session.commit()
        done = Next(RunStatus.SUCCEEDED, None, 1, 1, 1)
        assert ledger.record(db, claimed, OUTCOME, done) is False
        with db.session() as session:
            assert session.get(Run, claimed.run.id).status == "cancelled"
            (attempt,) = store.attempts_of(session, claimed.run.id)
            assert attempt.status == "succeeded"


class TestAdvance:
    """Going straight on to the run's next step: record one attempt and claim the next in one transaction."""

    def claimed(self, db: Database) -> ledger.Claim:
        return claimed_run(db)

    def test_the_outcome_the_move_and_the_next_claim_are_written_together(self, db: Database) -> None:
        claimed = self.claimed(db)
        job = Next(RunStatus.RUNNING, "job", 1, 1, 1)
        following = ledger.advance(db, claimed, OUTCOME, job)
        assert following is not None
        assert (following.step_id, following.attempt, following.run.step_index) == ("job", 1, 1)
        with db.session() as session:
            run = session.get(Run, claimed.run.id)
            assert (run.status, run.current_step, run.step_index, run.attempt) == ("running", "job", 1, 1)
            contact, job_attempt = store.attempts_of(session, run.id)
            assert (contact.step_id, contact.status, contact.output) == ("contact", "succeeded", {"id": 7})
            assert (job_attempt.step_id, job_attempt.status, job_attempt.id) == ("job", "started", following.attempt_id)

    def test_the_history_carried_over_is_what_the_ledger_now_holds(self, db: Database) -> None:
        claimed = self.claimed(db)
        following = ledger.advance(db, claimed, OUTCOME, Next(RunStatus.RUNNING, "job", 1, 1, 1))
        assert following is not None
        with db.engine.connect() as conn:
            rows = conn.execute(ledger._HISTORY, {"p_run": claimed.run.id})
            assert following.history == [ledger.PastAttempt(*row) for row in rows]
        assert following.event is claimed.event  # the event never changes: not read again

    def test_the_next_claim_is_unique_like_any_claim(self, db: Database) -> None:
        claimed = self.claimed(db)
        following = ledger.advance(db, claimed, OUTCOME, Next(RunStatus.RUNNING, "job", 1, 1, 1))
        assert following is not None
        # A stray queue job for the step this worker went on to finds it claimed
        assert ledger.claim(db, ledger.EventViews(), claimed.run.id, "job", 1) is None

    def test_a_run_cancelled_meanwhile_is_not_advanced_but_the_outcome_is_kept(self, db: Database) -> None:
        claimed = self.claimed(db)
        with db.session() as session:
            session.get(Run, claimed.run.id).status = "cancelled"
            session.commit()
        assert ledger.advance(db, claimed, OUTCOME, Next(RunStatus.RUNNING, "job", 1, 1, 1)) is None
        with db.session() as session:
            run = session.get(Run, claimed.run.id)
            assert (run.status, run.current_step) == ("cancelled", "contact")
            (attempt,) = store.attempts_of(session, claimed.run.id)
            assert attempt.status == "succeeded"

    def test_a_finished_run_is_recorded_not_advanced(self, db: Database) -> None:
        with pytest.raises(ValueError, match="record"):
            ledger.advance(db, self.claimed(db), OUTCOME, Next(RunStatus.SUCCEEDED, None, 1, 1, 1))


class TestOneStatementOnPostgresql:
    """On PostgreSQL a step's end is one statement in autocommit (engine.ledger_pg): one round trip, no BEGIN/COMMIT."""

    @pytest.fixture
    def statements(self, empty_postgres_url: str) -> Iterator[tuple[Database, list[str]]]:
        """A database whose connections record every statement psycopg sends, by SQLAlchemy or engine.pg_direct."""
        database = Database(empty_postgres_url)
        sent: list[str] = []

        class Recording(psycopg.Cursor[Any]):
            def execute(self, query: Any, params: Any = None, **options: Any) -> Any:
                sent.append(str(query))
                return super().execute(query, params, **options)

        sa.event.listen(database.engine, "connect", lambda dbapi, _record: setattr(dbapi, "cursor_factory", Recording))
        yield database, sent
        database.dispose()

    def test_a_claim_is_one_statement_with_its_reads(self, statements: tuple[Database, list[str]]) -> None:
        db, sent = statements
        event = make_event()
        run = make_run(event)
        ledger.insert_event(db, event, [run])
        sent.clear()
        claimed = claim(db, run)
        assert claimed is not None and claimed.event["data"] == event.data
        assert [(past.step_id, past.attempt, past.status) for past in claimed.history] == [("contact", 1, "started")]
        assert len(sent) == 1 and sent[0].startswith("WITH claimed_run AS")

    def test_advance_is_one_statement(self, statements: tuple[Database, list[str]]) -> None:
        db, sent = statements
        claimed = claimed_run(db)
        sent.clear()
        assert ledger.advance(db, claimed, OUTCOME, Next(RunStatus.RUNNING, "job", 1, 1, 1)) is not None
        assert len(sent) == 1 and sent[0].startswith("WITH recorded AS")

    def test_record_is_one_statement(self, statements: tuple[Database, list[str]]) -> None:
        db, sent = statements
        claimed = claimed_run(db)
        sent.clear()
        assert ledger.record(db, claimed, OUTCOME, Next(RunStatus.SUCCEEDED, None, 1, 1, 1)) is True
        assert len(sent) == 1 and sent[0].startswith("WITH recorded AS")

    def test_an_event_and_the_run_it_starts_are_one_statement(self, statements: tuple[Database, list[str]]) -> None:
        db, sent = statements
        event = make_event()
        ledger.insert_event(db, event, [make_run(event)])
        assert len(sent) == 1 and sent[0].startswith("WITH event AS")

    def test_an_event_starting_several_runs_is_a_transaction(self, statements: tuple[Database, list[str]]) -> None:
        db, sent = statements
        event = make_event()
        ledger.insert_event(db, event, [make_run(event), make_run(event)])
        assert [statement.split(" ", 2)[:2] for statement in sent] == [["INSERT", "INTO"]] * 3
        with db.session() as session:
            assert session.scalar(sa.select(sa.func.count()).select_from(Run)) == 2

    def test_the_connection_goes_back_to_the_pool_in_a_transaction_again(
        self, statements: tuple[Database, list[str]]
    ) -> None:
        db, _ = statements
        ledger.record(db, claimed_run(db), OUTCOME, Next(RunStatus.SUCCEEDED, None, 1, 1, 1))
        with db.engine.connect() as conn:  # the same pooled connection (LIFO)
            assert conn.connection.dbapi_connection.autocommit is False


def test_the_one_statement_writes_bind_every_column_the_transaction_writes() -> None:
    now = store.utcnow()
    assert set(store.run_values(Next(RunStatus.RUNNING, "job", 1, 1, 1), now)) == set(store.RUN_STATE_COLUMNS)
    assert {*OUTCOME, "finished_at"} == set(ledger_pg.OUTCOME_COLUMNS)


def test_idle_active_runs_are_oldest_first_and_exclude_finished(db: Database) -> None:
    event = make_event()
    old, recent, done = make_run(event), make_run(event), make_run(event, status="succeeded")
    now = store.utcnow()
    old.updated_at, recent.updated_at, done.updated_at = now - timedelta(minutes=5), now, now - timedelta(hours=1)
    ledger.insert_event(db, event, [recent, old, done])
    with db.session() as session:
        idle = store.idle_active_runs(session, now - timedelta(minutes=1), limit=10)
    assert [run.id for run in idle] == [old.id]


def test_migrating_a_fresh_sqlite_path_creates_its_folder(tmp_path) -> None:
    from engine.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'instance' / 'nested' / 'hookflow.db'}"
    upgrade(url)
    assert (tmp_path / "instance" / "nested" / "hookflow.db").exists()
