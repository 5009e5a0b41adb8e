"""The ledger observer: facts only for committed changes, only to the engine's own observers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from engine import observe, store
from engine.db import Database
from engine.models import Event, Run, StepAttempt, StepItem, Xref
from engine.observe import Fact, RunFinished, RunStarted, StepFinished

DEFINITION = {"name": "w", "steps": [{"id": "a", "uses": "bigchange.contacts.create"}]}


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.dispose()


@pytest.fixture
def seen(db: Database) -> list[Fact]:
    facts: list[Fact] = []
    observe.attach(db.engine, facts.append)
    return facts


def event_and_run(status: str = "queued") -> tuple[Event, Run]:
    now = store.utcnow()
    event = Event(
        id=store.new_id("evt"),
        source="webform",
        status="accepted",
        received_at=now,
        raw_body=b"{}",
        data={},
        headers={},
        query={},
    )
    run = Run(
        id=store.new_id("run"),
        workflow="w",
        workflow_hash="h",
        definition=DEFINITION,
        event_id=event.id,
        status=status,
        current_step="a",
        created_at=now,
        updated_at=now,
    )
    return event, run


def test_a_rolled_back_change_is_never_reported(db: Database, seen: list[Fact]) -> None:
    event, run = event_and_run()
    with db.session() as session:
        session.add_all([event, run])
        session.flush()
        session.rollback()
    assert seen == []


def test_committed_changes_become_facts_and_other_rows_are_ignored(db: Database, seen: list[Fact]) -> None:
    event, run = event_and_run()
    now = store.utcnow()
    with db.session() as session:
        session.add_all([event, run, Xref(map="m", key="k", value=1, created_at=now, updated_at=now)])
        session.commit()
    assert seen == [RunStarted(run.id, event.id, "w")]

    with db.session() as session:  # the runner's finish: attempt ended, run failed, in one commit
        loaded = session.get(Run, run.id)
        attempt = StepAttempt(run_id=run.id, step_id="a", step_index=0, attempt=1, status="started", started_at=now)
        session.add(attempt)
        session.commit()
        attempt.status, attempt.duration_ms, attempt.calls = "failed", 12.0, [{"status": 400}]
        loaded.status, loaded.error, loaded.finished_at = "failed", "step a: HTTP 400", now
        session.commit()
    (step,) = [fact for fact in seen if isinstance(fact, StepFinished)]
    (finished,) = [fact for fact in seen if isinstance(fact, RunFinished)]
    assert (step.operation, step.connector, step.http_statuses, step.retry_scheduled) == (
        "bigchange.contacts.create",
        "bigchange",
        [400],
        False,
    )
    assert (finished.status, finished.step, finished.error) == ("failed", "a", "step a: HTTP 400")


def test_an_item_written_in_its_own_session_is_resolved_after_the_commit(db: Database, seen: list[Fact]) -> None:
    event, run = event_and_run("running")
    with db.session() as session:
        session.add_all([event, run])
        session.commit()
    with db.session() as session:  # as engine.foreach writes items: without the run in the session
        now = store.utcnow()
        item = StepItem(
            run_id=run.id,
            step_id="a",
            item_index=0,
            attempt=1,
            status="succeeded",
            updated_at=now,
            duration_ms=3.0,
            calls=[{"status": 201, "waited_ms": 250}],
        )
        session.add(item)
        session.commit()
    step = seen[-1]
    assert isinstance(step, StepFinished)
    assert (step.item, step.operation, step.workflow, step.event_id) == (0, "bigchange.contacts.create", "w", event.id)
    assert step.budget_waits == [0.25]


def test_another_databases_writes_are_not_seen(database_url: str, tmp_path: object, seen: list[Fact]) -> None:
    other = Database(f"sqlite:///{tmp_path}/other.db")
    from engine.migrate import upgrade

    upgrade(other.url)
    event, run = event_and_run()
    with other.session() as session:
        session.add_all([event, run])
        session.commit()
    other.dispose()
    assert seen == []
