"""Storing a batch: each event deduplicated on its own, a key taken concurrently costs only that event."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError

from engine import ledger, store
from engine.intake import Stored, insert_new
from engine.models import Event
from engine.services import Services


def event(key: str | None, event_id: str | None = None) -> Event:
    return Event(
        id=event_id or store.new_id("evt"),
        source="quickbooks",
        dedupe_key=key,
        status="accepted" if key else "rejected",
        received_at=store.utcnow(),
        raw_body=b"{}",
        data={},
        headers={},
        query={},
    )


def stored_keys(services: Services) -> list[str | None]:
    with services.db.session() as session:
        return sorted(e.dedupe_key or "" for e in session.query(Event).all())


def test_a_key_taken_after_the_lookup_makes_only_that_event_a_duplicate(services: Services) -> None:
    # Given another transaction stored key "b" after this batch looked its keys up (known = {})
    first = event("b")
    ledger.insert_event(services.db, first, [])
    batch = [Stored(event("a")), Stored(event("b")), Stored(event(None)), Stored(event("c"))]
    # When the batch is inserted
    with services.db.session() as session:
        insert_new(session, "quickbooks", batch, {})
        session.commit()
    # Then "b" is answered as the earlier event and everything else is stored
    assert [item.duplicate_of for item in batch] == [None, first.id, None, None]
    assert stored_keys(services) == ["", "a", "b", "c"]


def test_another_constraint_failing_is_not_taken_for_a_duplicate(services: Services) -> None:
    taken = event("x")
    ledger.insert_event(services.db, taken, [])
    with services.db.session() as session, pytest.raises(IntegrityError):
        insert_new(session, "quickbooks", [Stored(event("y", event_id=taken.id))], {})
