"""Retention: old finished history goes, in batches; runs in flight and their events stay, whatever their age."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy import func, select

from engine import store
from engine.db import Database
from engine.models import Event, Run, StepAttempt, StepItem
from engine.retention import prune

NOW = store.utcnow()
OLD = NOW - timedelta(days=100)
RECENT = NOW - timedelta(days=10)


@pytest.fixture
def db(any_db_url: str) -> Iterator[Database]:
    database = Database(any_db_url)
    yield database
    database.dispose()


def add_event(db: Database, received: datetime, status: str = "accepted") -> str:
    event = Event(
        id=store.new_id("evt"),
        source="webform",
        dedupe_key=None if status == "rejected" else store.new_id("key"),
        status=status,
        received_at=received,
        raw_body=b"{}",
        data={},
        headers={},
        query={},
    )
    with db.session() as session:
        session.add(event)
        session.commit()
    return event.id


def add_run(db: Database, event_id: str, status: str, touched: datetime) -> str:
    run = Run(
        id=store.new_id("run"),
        workflow="w",
        workflow_hash="h" * 64,
        definition={"name": "w", "steps": [{"id": "a", "uses": "core.log"}]},
        event_id=event_id,
        status=status,
        current_step="a",
        created_at=touched,
        updated_at=touched,
        finished_at=touched if status in ("succeeded", "failed", "cancelled") else None,
    )
    with db.session() as session:
        session.add(run)
        session.flush()
        session.add(
            StepAttempt(run_id=run.id, step_id="a", step_index=0, attempt=1, status="succeeded", started_at=touched)
        )
        session.add(
            StepItem(run_id=run.id, step_id="a", item_index=0, attempt=1, status="succeeded", updated_at=touched)
        )
        session.commit()
    return run.id


def existing(db: Database, model: type, ids: list[str]) -> list[str]:
    with db.session() as session:
        return sorted(session.scalars(select(model.id).where(model.id.in_(ids))))


def test_old_finished_history_is_pruned_and_everything_in_flight_is_kept(db: Database) -> None:
    # Given old finished runs, an old run still in flight, recent runs, and old events with and without runs
    old_event, busy_event, recent_event = add_event(db, OLD), add_event(db, OLD), add_event(db, RECENT)
    rejected_old, rejected_recent = add_event(db, OLD, "rejected"), add_event(db, RECENT, "rejected")
    gone = [add_run(db, old_event, status, OLD) for status in ("succeeded", "failed", "cancelled")]
    in_flight = [add_run(db, busy_event, "running", OLD), add_run(db, busy_event, "queued", OLD)]
    finished_with_busy = add_run(db, busy_event, "succeeded", OLD)
    recent = add_run(db, recent_event, "succeeded", RECENT)

    # When history older than 90 days is pruned, two rows per batch
    report = prune(db, days=90, batch_size=2)

    # Then the old finished runs (and their attempts and items) are gone, and so are events left without runs
    assert (report.runs, report.events) == (4, 2)
    assert existing(db, Run, [*gone, finished_with_busy]) == []
    assert existing(db, Run, [*in_flight, recent]) == sorted([*in_flight, recent])
    assert existing(db, Event, [old_event, rejected_old]) == []
    assert existing(db, Event, [busy_event, recent_event, rejected_recent]) == sorted(
        [busy_event, recent_event, rejected_recent]
    )
    with db.session() as session:
        for model in (StepAttempt, StepItem):
            assert session.scalar(select(func.count()).select_from(model).where(model.run_id.in_(gone))) == 0
    assert "deleted 4 run(s) and 2 event(s)" in str(report)


def test_a_dry_run_counts_and_deletes_nothing(db: Database) -> None:
    old_event = add_event(db, OLD)
    run = add_run(db, old_event, "succeeded", OLD)
    add_event(db, OLD, "rejected")

    report = prune(db, days=90, dry_run=True)

    assert (report.runs, report.events, report.dry_run) == (1, 2, True)
    assert existing(db, Run, [run]) == [run]
    assert str(report).startswith("would delete 1 run(s) and 2 event(s)")


def test_a_bounded_prune_stops_after_its_batches_and_the_next_one_resumes(db: Database) -> None:
    event = add_event(db, OLD)
    runs = [add_run(db, event, "succeeded", OLD) for _ in range(3)]
    assert prune(db, days=90, batch_size=1, max_batches=2).runs == 2
    assert len(existing(db, Run, runs)) == 1
    assert prune(db, days=90, batch_size=1).runs == 1


def test_the_cli_prunes_with_the_configured_default(app: Flask, database_url: str) -> None:
    db = Database(database_url)
    event = add_event(db, OLD)
    add_run(db, event, "failed", OLD)
    keep = add_run(db, add_event(db, RECENT), "failed", RECENT)

    result = app.test_cli_runner().invoke(args=["retention", "prune", "--dry-run"])
    assert result.exit_code == 0 and "would delete 1 run(s) and 1 event(s) older than" in result.output
    result = app.test_cli_runner().invoke(args=["retention", "prune", "--days", "5", "--batch-size", "10"])
    assert result.exit_code == 0 and "deleted 2 run(s) and 2 event(s)" in result.output
    assert existing(db, Run, [keep]) == []
    result = app.test_cli_runner().invoke(args=["retention", "prune", "--days", "0"])
    assert result.exit_code == 2 and "--days" in result.output
    db.dispose()


def test_a_prune_on_sqlite_leaves_the_planner_fresh_statistics(tmp_path: object) -> None:
    from engine.migrate import upgrade

    url = f"sqlite:///{tmp_path}/stats.db"
    upgrade(url)
    db = Database(url)
    add_run(db, add_event(db, RECENT), "succeeded", RECENT)
    prune(db, days=90)
    with db.engine.connect() as conn:
        tables = {row[0] for row in conn.exec_driver_sql("SELECT tbl FROM sqlite_stat1")}
    db.dispose()
    assert {"runs", "events"} <= tables
