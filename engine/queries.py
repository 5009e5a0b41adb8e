"""Read-only questions operators ask of the ledger: pages of runs and events, search, workflow stats.

Pages are keyset pages, newest first, on the time-ordered ids (`run_<ULID>`):
"the 50 runs older than this id" costs the same on page 1 and page 20,000,
where OFFSET would read and skip every earlier row. A date range becomes an id
range for the same reason (a ULID starts with its millisecond timestamp), so
it rides the primary key instead of needing an index of its own.

Search looks for text anywhere in an event's data. On PostgreSQL the
migration adds a trigram index for it (`ix_events_data_trgm`); SQLite scans,
stopping as soon as a page is full. `make bench-ops` (bench/ops_queries.py) times both;
tests/engine/test_query_plans.py checks that every page is read in index order.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import ColumnElement, Select, Text, cast, func, or_, select
from sqlalchemy.orm import Session, defer
from ulid import ULID

from engine.conductor import ACTIVE_RUN, RunStatus
from engine.models import Event, Run
from schemas.api import EventFilter, EventQuery, RunFilter, RunQuery

STATS_WINDOW_DAYS = 7


def utc(moment: datetime) -> datetime:
    """Naive datetimes in a query string mean UTC."""
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def id_bound(prefix: str, moment: datetime) -> str:
    """The smallest id of that kind created at `moment`: a ULID with that time and all-zero randomness."""
    millis = min(max(0, int(utc(moment).timestamp() * 1000)), 2**48 - 1)  # a ULID's time is 48 bits
    return f"{prefix}_{ULID.from_bytes(millis.to_bytes(6, 'big') + bytes(10))}"


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def data_contains(text: str) -> ColumnElement[bool]:
    """Case-insensitive substring match over an event's data, as JSON text.

    JSON text may hold non-ASCII characters escaped (`\\u00f6`, as SQLite stores
    it), so the escaped spelling is searched for too.
    """
    as_text = cast(Event.data, Text)
    spellings = {text, json.dumps(text)[1:-1]}
    return or_(*(as_text.ilike(_like_pattern(spelling), escape="\\") for spelling in spellings))


def _id_window(column: ColumnElement[str], prefix: str, since: datetime | None, until: datetime | None) -> list:
    conditions = []
    if since is not None:
        conditions.append(column >= id_bound(prefix, since))
    if until is not None:
        conditions.append(column < id_bound(prefix, until))
    return conditions


def filter_runs(query: Select, wanted: RunFilter) -> Select:
    """Add a RunFilter's conditions to a query over Run joined to its Event."""
    conditions = _id_window(Run.id, "run", wanted.since, wanted.until)
    if wanted.status:
        conditions.append(Run.status == wanted.status)
    if wanted.workflow:
        conditions.append(Run.workflow == wanted.workflow)
    if wanted.event_id:
        conditions.append(Run.event_id == wanted.event_id)
    if wanted.source:
        conditions.append(Event.source == wanted.source)
    if wanted.q:
        conditions.append(data_contains(wanted.q))
    return query.where(*conditions)


@dataclass(frozen=True)
class RunRow:
    run: Run
    source: str


def run_page_query(wanted: RunQuery) -> Select:
    """The SELECT behind a page of runs (one more row than the page, to know whether there is a next)."""
    query = (
        select(Run, Event.source)
        .join(Event, Event.id == Run.event_id)
        .options(defer(Run.definition))  # the pinned definition is large and a list never shows it
        .order_by(Run.id.desc())
        .limit(wanted.limit + 1)
    )
    query = filter_runs(query, wanted)
    if wanted.before:
        query = query.where(Run.id < wanted.before)
    return query


def run_page(session: Session, wanted: RunQuery) -> tuple[list[RunRow], str | None]:
    """One page of runs, newest first, and the cursor for the next (None on the last page)."""
    rows = [RunRow(run, source) for run, source in session.execute(run_page_query(wanted))]
    page = rows[: wanted.limit]
    return page, (page[-1].run.id if len(rows) > wanted.limit else None)


def matching_run_ids(session: Session, wanted: RunFilter, limit: int) -> list[str]:
    """Ids of runs matching the filter, oldest first (bulk actions go in arrival order)."""
    query = select(Run.id).join(Event, Event.id == Run.event_id).order_by(Run.id).limit(limit)
    return list(session.scalars(filter_runs(query, wanted)))


def event_page_query(wanted: EventQuery) -> Select:
    """The SELECT behind a page of events (one more row than the page)."""
    query = select(Event).options(defer(Event.raw_body)).order_by(Event.id.desc()).limit(wanted.limit + 1)
    query = filter_events(query, wanted)
    if wanted.before:
        query = query.where(Event.id < wanted.before)
    return query


def event_page(session: Session, wanted: EventQuery) -> tuple[list[Event], str | None]:
    """One page of events (accepted and rejected), newest first."""
    events = list(session.scalars(event_page_query(wanted)))
    page = events[: wanted.limit]
    return page, (page[-1].id if len(events) > wanted.limit else None)


def filter_events(query: Select, wanted: EventFilter) -> Select:
    conditions = _id_window(Event.id, "evt", wanted.since, wanted.until)
    for value, column in ((wanted.source, Event.source), (wanted.status, Event.status), (wanted.type, Event.type)):
        if value:
            conditions.append(column == value)
    if wanted.duplicates is not None:
        conditions.append(Event.duplicates > 0 if wanted.duplicates else Event.duplicates == 0)
    if wanted.q:
        conditions.append(data_contains(wanted.q))
    return query.where(*conditions)


def run_ids_of_event(session: Session, event_id: str) -> list[str]:
    return list(session.scalars(select(Run.id).where(Run.event_id == event_id).order_by(Run.id)))


def source_of(session: Session, run: Run) -> str | None:
    return session.scalar(select(Event.source).where(Event.id == run.event_id))


@dataclass(frozen=True)
class WorkflowCounts:
    counts: dict[str, int]

    def get(self, status: RunStatus) -> int:
        return self.counts.get(status.value, 0)

    @property
    def active(self) -> int:
        return sum(self.get(status) for status in ACTIVE_RUN)

    @property
    def success_rate(self) -> float | None:
        finished = self.get(RunStatus.SUCCEEDED) + self.get(RunStatus.FAILED)
        return round(self.get(RunStatus.SUCCEEDED) / finished, 4) if finished else None


def workflow_counts(session: Session, workflow: str, now: datetime, days: int = STATS_WINDOW_DAYS) -> WorkflowCounts:
    """Runs of a workflow created in the last `days`, by status (one index range per status)."""
    since = id_bound("run", now - timedelta(days=days))
    counts = {}
    for status in RunStatus:
        counts[status.value] = session.scalar(
            select(func.count())
            .select_from(Run)
            .where(Run.workflow == workflow, Run.status == status.value, Run.id >= since)
        )
    return WorkflowCounts(counts)


def last_runs(session: Session, workflow: str, limit: int = 5) -> Sequence[Run]:
    return list(
        session.scalars(
            select(Run)
            .options(defer(Run.definition))
            .where(Run.workflow == workflow)
            .order_by(Run.created_at.desc(), Run.id.desc())
            .limit(limit)
        )
    )
