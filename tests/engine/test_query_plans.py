"""The console's and /api's lists at scale: their plans read runs in index order, never a full scan or a sort.

Timing them on 1,000,000 runs is `make bench-ops` (docs/benchmarks-ops.md). This
checks, in a second or two per database, the property those numbers rest on: a
page of 50 costs the same on page 1 and page 20,000 only if the database walks
an index in the page's order and stops after 51 rows. A plan that scans or
sorts all runs would grow with the table.

The plans are the planners' own choice (nothing is forced) on a ledger of
20,000 runs, ANALYZEd, where every filter below matches several pages of runs:
were no index to fit, scanning and sorting would be the cheaper plan, and the
test would see it. PostgreSQL is asked with EXPLAIN, SQLite with EXPLAIN QUERY PLAN.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Select
from ulid import ULID

from bench.ops_queries import copy_rows
from engine import queries
from engine.migrate import upgrade
from engine.models import Event, Run
from schemas.api import EventQuery, RunQuery

RUNS = 20_000
DAYS = 90
# Shaped like bench/ops_queries.py: most runs succeed, some fail; workflows and sources skewed.
WORKFLOWS = {"web-enquiry": 55, "customer-sync": 25, "credit-hold": 20}
STATUSES = {"succeeded": 88, "failed": 8, "cancelled": 2, "queued": 1, "running": 1}


@dataclass(frozen=True)
class Ledger:
    engine: sa.Engine
    middle_run: str  # a run id half-way back: where a keyset "next page" starts
    middle_event: str

    @property
    def postgresql(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def plan(self, query: Select) -> str:
        """The plan the database chooses for `query`, with its real bound parameters, one line per node."""
        compiled = query.compile(dialect=self.engine.dialect)
        params: Any = (
            tuple(compiled.params[name] for name in compiled.positiontup or ())
            if compiled.positional
            else compiled.params
        )
        explain = "EXPLAIN " if self.postgresql else "EXPLAIN QUERY PLAN "
        with self.engine.connect() as conn:
            return "\n".join(str(row[-1]) for row in conn.exec_driver_sql(explain + compiled.string, params))


def _id(prefix: str, at: datetime, rng: random.Random) -> str:
    return f"{prefix}_{ULID.from_bytes(int(at.timestamp() * 1000).to_bytes(6, 'big') + rng.randbytes(10))}"


def _rows() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rng = random.Random(7)
    start = datetime.now(timezone.utc) - timedelta(days=DAYS)
    events, runs = [], []
    for i in range(RUNS):
        at = start + timedelta(days=DAYS) * i / RUNS
        event_id = _id("evt", at, rng)
        events.append(
            {
                "id": event_id,
                "source": "accounts" if rng.random() < 0.3 else "webform",
                "dedupe_key": f"sub-{i}",
                "type": "form.submitted",
                "status": "rejected" if rng.random() < 0.02 else "accepted",
                "received_at": at,
                "raw_body": b"{}",
                "data": {"email": f"person{i}@example.com"},
                "headers": {},
                "query": {},
            }
        )
        runs.append(
            {
                "id": _id("run", at, rng),
                "workflow": rng.choices(list(WORKFLOWS), list(WORKFLOWS.values()))[0],
                "workflow_hash": "h" * 64,
                "definition": {},
                "event_id": event_id,
                "status": rng.choices(list(STATUSES), list(STATUSES.values()))[0],
                "step_index": 0,
                "attempt": 1,
                "budget_start": 1,
                "created_at": at,
                "updated_at": at,
            }
        )
    return events, runs


def _seed(url: str) -> Ledger:
    engine = sa.create_engine(url)
    events, runs = _rows()
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(sa.text("TRUNCATE step_items, step_attempts, runs, events, xrefs"))
        copy_rows(engine, "events", events)
        copy_rows(engine, "runs", runs)
    else:
        with engine.begin() as conn:
            conn.execute(sa.insert(Event), events)
            conn.execute(sa.insert(Run), runs)
    with engine.begin() as conn:
        conn.execute(sa.text("ANALYZE"))  # what `flask retention prune` leaves SQLite with; autovacuum on PostgreSQL
    ordered = sorted(run["id"] for run in runs)
    return Ledger(engine, ordered[RUNS // 2], sorted(event["id"] for event in events)[RUNS // 2])


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def ledger(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ledger]:
    if request.param == "sqlite":
        url = f"sqlite:///{Path(tmp_path_factory.mktemp('plans')) / 'ledger.db'}"
        upgrade(url)
    else:
        url = request.getfixturevalue("postgres_url")  # the session's database; tests that follow empty it
    seeded = _seed(url)
    yield seeded
    seeded.engine.dispose()


def assert_reads_runs_in_index_order(ledger: Ledger, plan: str, index: str | None = None) -> None:
    """Runs are read through an index, in the page's order: no full scan of runs, no sort of any kind."""
    if ledger.postgresql:
        assert "Seq Scan on runs" not in plan and "Bitmap Heap Scan on runs" not in plan, plan
        assert "Sort" not in plan, plan  # Sort, Incremental Sort: both mean reading past the page
        used = re.findall(r"Index (?:Only )?Scan(?: Backward)? using (\w+) on runs", plan)
    else:
        assert "TEMP B-TREE" not in plan, plan  # SQLite's sort
        assert not re.search(r"^SCAN runs$", plan, re.MULTILINE), plan  # a scan of the table itself
        used = re.findall(r"^(?:SCAN|SEARCH) runs USING (?:COVERING )?INDEX (\w+)", plan, re.MULTILINE)
    assert used, plan
    if index is not None:
        expected = {"pkey": "runs_pkey" if ledger.postgresql else "sqlite_autoindex_runs_1"}.get(index, index)
        assert used == [expected], plan


# --- Runs -------------------------------------------------------------------------------------


def test_the_first_page_walks_the_primary_key_backwards(ledger: Ledger) -> None:
    assert_reads_runs_in_index_order(ledger, ledger.plan(queries.run_page_query(RunQuery())), "pkey")


def test_the_next_page_starts_inside_the_primary_key(ledger: Ledger) -> None:
    # The keyset cursor is an index bound: page 20,000 starts where it is, it does not count its way there
    plan = ledger.plan(queries.run_page_query(RunQuery(before=ledger.middle_run)))
    assert_reads_runs_in_index_order(ledger, plan, "pkey")
    assert ("Index Cond: ((id)::text < " if ledger.postgresql else "(id<?)") in plan


@pytest.mark.parametrize(
    ("wanted", "index"),
    [
        (RunQuery(status="queued"), "ix_runs_status_id"),  # 1% of runs: walking the primary key would read 100x
        (RunQuery(status="failed"), None),  # 8%: PostgreSQL may as well walk the primary key, filtering
        (RunQuery(workflow="credit-hold", status="failed"), "ix_runs_workflow_status_id"),
        (RunQuery(workflow="customer-sync"), None),
        (RunQuery(source="accounts"), None),
    ],
    ids=["rare status", "status", "workflow+status", "workflow", "source"],
)
def test_a_filtered_page_reads_runs_in_index_order(ledger: Ledger, wanted: RunQuery, index: str | None) -> None:
    assert_reads_runs_in_index_order(ledger, ledger.plan(queries.run_page_query(wanted)), index)


def test_the_next_page_of_a_filtered_list_too(ledger: Ledger) -> None:
    for wanted in (
        RunQuery(status="failed", before=ledger.middle_run),
        RunQuery(workflow="credit-hold", status="failed", before=ledger.middle_run),
    ):
        assert_reads_runs_in_index_order(ledger, ledger.plan(queries.run_page_query(wanted)))


def test_a_date_range_is_a_range_of_the_primary_key(ledger: Ledger) -> None:
    day = datetime.now(timezone.utc) - timedelta(days=30)
    plan = ledger.plan(queries.run_page_query(RunQuery(since=day, until=day + timedelta(days=1))))
    assert_reads_runs_in_index_order(ledger, plan, "pkey")
    assert ("Index Cond: (((id)::text >= " if ledger.postgresql else "(id>? AND id<?)") in plan


# --- Events -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wanted", "index"),
    [
        (EventQuery(), "pkey"),
        (EventQuery(status="rejected"), "ix_events_status_id"),
        (EventQuery(source="webform"), None),
    ],
    ids=["first page", "status", "source"],
)
def test_an_events_page_reads_events_in_index_order(ledger: Ledger, wanted: EventQuery, index: str | None) -> None:
    for page in (wanted, wanted.model_copy(update={"before": ledger.middle_event})):
        plan = ledger.plan(queries.event_page_query(page))
        if ledger.postgresql:
            assert "Seq Scan on events" not in plan and "Sort" not in plan and "Bitmap" not in plan, plan
            used = re.findall(r"Index (?:Only )?Scan(?: Backward)? using (\w+) on events", plan)
        else:
            assert "TEMP B-TREE" not in plan and not re.search(r"^SCAN events$", plan, re.MULTILINE), plan
            used = re.findall(r"^(?:SCAN|SEARCH) events USING (?:COVERING )?INDEX (\w+)", plan, re.MULTILINE)
        assert used, plan
        if index is not None and page.before is None:
            assert (
                used == ["events_pkey" if ledger.postgresql else "sqlite_autoindex_events_1"]
                if index == "pkey"
                else [index]
            ), plan
