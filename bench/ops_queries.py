"""How fast the console's and /api's lists stay on a big ledger (issue #7): seed N runs, time each query.

    .venv/bin/python -m bench.ops_queries --db postgresql+psycopg://postgres@127.0.0.1:5432/hookflow_bench_ops
    .venv/bin/python -m bench.ops_queries --db sqlite:////tmp/hookflow-bench-ops.db --runs 1000000

The database is created and migrated if needed and seeded once (re-runs reuse
it; --reseed starts over). Every query goes through engine.queries, the code
the console and the API run, and is timed as the median of --repeat runs.
Seeding is synthetic but shaped like production: ids spread over 90 days,
most runs succeeded, a few failed, workflows and sources skewed, one email
per event (what ops search for).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa
from ulid import ULID

from engine import queries
from engine.db import Database
from engine.migrate import upgrade
from engine.models import Event, Run
from schemas.api import EventQuery, RunQuery

WORKFLOWS = [("web-enquiry", 50), ("customer-sync", 25), ("credit-hold", 12), ("credit-release", 8), ("rare", 0.5)]
STATUSES = [("succeeded", 90), ("failed", 7), ("cancelled", 2), ("queued", 0.5), ("running", 0.5)]
BATCH = 20_000


def _ensure_database(url: str) -> None:
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return
    admin = sa.create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": parsed.database}).scalar()
        if not exists:
            conn.execute(sa.text(f'CREATE DATABASE "{parsed.database}"'))
    admin.dispose()


def _rows(count: int, seed: int) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    rng = random.Random(seed)
    start = datetime.now(timezone.utc) - timedelta(days=90)
    step = timedelta(days=90) / count
    names, weights = zip(*WORKFLOWS, strict=True)
    statuses, status_weights = zip(*STATUSES, strict=True)
    for i in range(count):
        at = start + step * i
        millis = int(at.timestamp() * 1000)
        event_id = f"evt_{ULID.from_bytes(millis.to_bytes(6, 'big') + rng.randbytes(10))}"
        run_id = f"run_{ULID.from_bytes(millis.to_bytes(6, 'big') + rng.randbytes(10))}"
        status = rng.choices(statuses, status_weights)[0]
        data = {
            "submission_id": f"sub-{i}",
            "name": f"Person {i}",
            "email": f"person{i}@example.com",
            "postcode": "SW1A",
        }
        yield (
            {
                "id": event_id,
                "source": "accounts" if rng.random() < 0.3 else "webform",
                "dedupe_key": f"sub-{i}",
                "type": "form.submitted",
                "status": "rejected" if rng.random() < 0.01 else "accepted",
                "received_at": at,
                "raw_body": json.dumps(data).encode(),
                "data": data,
                "headers": {},
                "query": {},
            },
            {
                "id": run_id,
                "workflow": rng.choices(names, weights)[0],
                "workflow_hash": "h" * 64,
                "definition": {"name": "x", "steps": [{"id": "a", "uses": "core.log"}]},
                "event_id": event_id,
                "status": status,
                "current_step": "a",
                "step_index": 0,
                "attempt": 1,
                "budget_start": 1,
                "error": "step a: HTTP 400: refused" if status == "failed" else None,
                "created_at": at,
                "updated_at": at,
                "finished_at": at if status in ("succeeded", "failed", "cancelled") else None,
            },
        )


def seed(db: Database, count: int, reseed: bool) -> None:
    with db.engine.begin() as conn:
        have = conn.execute(sa.select(sa.func.count()).select_from(Run)).scalar()
        if have >= count and not reseed:
            print(f"reusing {have} runs")
            return
        for table in ("step_items", "step_attempts", "runs", "events"):
            conn.execute(sa.text(f"DELETE FROM {table}"))
    started = time.perf_counter()
    postgres = db.engine.dialect.name == "postgresql"
    if postgres:  # one index build at the end beats a million GIN insertions
        with db.engine.begin() as conn:
            conn.execute(sa.text("DROP INDEX IF EXISTS ix_events_data_trgm"))
    events: list[dict[str, Any]] = []
    runs: list[dict[str, Any]] = []
    for event, run in _rows(count, seed=7):
        events.append(event)
        runs.append(run)
        if len(runs) == BATCH:
            _insert(db, events, runs)
            events, runs = [], []
    if runs:
        _insert(db, events, runs)
    with db.engine.begin() as conn:
        if postgres:
            conn.execute(sa.text("CREATE INDEX ix_events_data_trgm ON events USING gin ((data::text) gin_trgm_ops)"))
        conn.execute(sa.text("ANALYZE"))
    print(f"seeded {count} events and runs in {time.perf_counter() - started:.0f} s")


def _insert(db: Database, events: list[dict[str, Any]], runs: list[dict[str, Any]]) -> None:
    if db.engine.dialect.name == "postgresql":
        copy_rows(db.engine, "events", events)
        copy_rows(db.engine, "runs", runs)
        return
    with db.engine.begin() as conn:
        conn.execute(sa.insert(Event), events)
        conn.execute(sa.insert(Run), runs)


def copy_rows(engine: sa.Engine, table: str, rows: list[dict[str, Any]]) -> None:
    """PostgreSQL's COPY: a million rows in seconds rather than minutes of INSERTs (tests seed with it too)."""
    columns = list(rows[0])
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([json.dumps(v) if isinstance(v, dict) else v for v in row.values()])
        raw.commit()
    finally:
        raw.close()


def _timed(call: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    call()  # warm the cache: we measure the query, not the first disk read
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), result


def measure(db: Database, repeat: int) -> list[tuple[str, float, int]]:
    with db.session() as session:
        middle = session.scalar(
            sa.select(Run.id)
            .order_by(Run.id)
            .offset(session.scalar(sa.select(sa.func.count()).select_from(Run)) // 2)
            .limit(1)
        )
        day = datetime.now(timezone.utc) - timedelta(days=30)
        cases: list[tuple[str, Callable[[], Any]]] = [
            ("runs: first page", lambda: queries.run_page(session, RunQuery())),
            ("runs: page in the middle (keyset)", lambda: queries.run_page(session, RunQuery(before=middle))),
            ("runs: status=failed", lambda: queries.run_page(session, RunQuery(status="failed"))),
            ("runs: status=queued (rare)", lambda: queries.run_page(session, RunQuery(status="queued"))),
            ("runs: workflow=web-enquiry", lambda: queries.run_page(session, RunQuery(workflow="web-enquiry"))),
            ("runs: workflow=rare (0.5%)", lambda: queries.run_page(session, RunQuery(workflow="rare"))),
            (
                "runs: workflow+failed",
                lambda: queries.run_page(session, RunQuery(workflow="credit-hold", status="failed")),
            ),
            ("runs: source=accounts", lambda: queries.run_page(session, RunQuery(source="accounts"))),
            (
                "runs: one day, 30 days ago",
                lambda: queries.run_page(session, RunQuery(since=day, until=day + timedelta(days=1))),
            ),
            ("runs: search one email", lambda: queries.run_page(session, RunQuery(q="person123456@example.com"))),
            ("runs: search common text", lambda: queries.run_page(session, RunQuery(q="example.com"))),
            ("runs: search absent text", lambda: queries.run_page(session, RunQuery(q="nobody@nowhere.test"))),
            ("events: first page", lambda: queries.event_page(session, EventQuery())),
            ("events: status=rejected", lambda: queries.event_page(session, EventQuery(status="rejected"))),
            (
                "workflow stats (7 days)",
                lambda: queries.workflow_counts(session, "web-enquiry", datetime.now(timezone.utc)),
            ),
            (
                "for contrast: OFFSET 500000",
                lambda: session.execute(sa.select(Run.id).order_by(Run.id.desc()).offset(500_000).limit(50)).all(),
            ),
        ]
        results = []
        for name, call in cases:
            millis, result = _timed(call, repeat)
            rows = len(result[0]) if isinstance(result, tuple) else len(result) if isinstance(result, list) else 0
            results.append((name, millis, rows))
            print(f"{name:40s} {millis:9.1f} ms  ({rows} rows)")
        return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="SQLAlchemy URL of a database this script may fill")
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--reseed", action="store_true")
    args = parser.parse_args()
    _ensure_database(args.db)
    upgrade(args.db)
    db = Database(args.db)
    try:
        seed(db, args.runs, args.reseed)
        measure(db, args.repeat)
    finally:
        db.dispose()


if __name__ == "__main__":
    main()
