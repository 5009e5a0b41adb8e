"""The ledger's hot writes on PostgreSQL: the portable transaction against engine.ledger_pg's one statement.

    .venv/bin/python -m bench.ledger_writes [--db postgresql+psycopg://postgres@127.0.0.1:5432/test] [--runs 1000]

Creates (and drops) a private database and times each write both ways,
alternating rounds so that drift in the machine's speed hits both alike:

- `insert`: a webhook's event and the run it starts (once per accepted webhook);
- `claim`: a run's first step: move the run, claim the attempt, read the run's
  attempts and its event (once per run; the reads are the same both ways);
- `advance`: a step's end when the next step follows at once: record it, move
  the run, claim the next step (three times in a 4-step run);
- `record`: the last step's end: record it, finish the run (once per run).

For each it reports, per operation, the client's CPU (this process), the
PostgreSQL backend's CPU (read from /proc: the server must run on this
machine) and the wall time. `make bench-writes` writes the table to
docs/benchmarks-writes.md.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench import machine
from bench.procs import cpu_seconds
from engine import ledger, ledger_pg, store
from engine.conductor import AttemptStatus, Next, RunStatus
from engine.db import Database
from engine.http import CallLog
from engine.invoke import AttemptResult
from engine.migrate import upgrade
from engine.models import Event, Run
from engine.runner import outcome_row
from schemas.settings import PROJECT_ROOT

ROUNDS = 6
ADVANCE = Next(RunStatus.RUNNING, "job", 1, 1, 1)
FINISH = Next(RunStatus.SUCCEEDED, None, 1, 1, 1)
# What the runner writes for a successful create: the input it sent, the API's answer, one logged call.
OUTCOME = outcome_row(
    AttemptResult(
        AttemptStatus.SUCCEEDED,
        input={"firstName": "Jane", "lastName": "Doe", "email": "jane@example.com", "customerId": 4711},
        output={"contactId": 90210, "customerId": 4711, "email": "jane@example.com"},
    ),
    CallLog(),
    0.004,
)
OUTCOME["calls"] = [
    {"method": "POST", "url": "https://api.example.com/v3/contacts", "status": 201, "ms": 3.1, "waited_ms": 0.0}
]

# One way of doing one write to one prepared item; False when the write found the run moved on.
Way = Callable[[Database, Any], bool]


def _ends_step(write: Callable[..., Any], nxt: Next) -> Way:
    def way(db: Database, claimed: ledger.Claim) -> bool:
        where = {"p_run": claimed.run.id, "p_step": claimed.step_id, "p_attempt": claimed.attempt}
        return write(db, where, claimed.attempt_id, OUTCOME, nxt, store.utcnow()) not in (None, False)

    return way


def _claims(claim: Callable[..., ledger.Claim | None]) -> Way:
    def way(db: Database, run_id: str) -> bool:
        # A fresh event cache each time: a run's first claim always reads its event.
        return claim(db, ledger.EventViews(), run_id, "contact", 1) is not None

    return way


def _insert_in_transaction(db: Database, rows: tuple[dict[str, Any], dict[str, Any]]) -> bool:
    ledger.insert_in_transaction(db, rows[0], [rows[1]])
    return True


def _insert_in_one_statement(db: Database, rows: tuple[dict[str, Any], dict[str, Any]]) -> bool:
    ledger_pg.insert_event(db, *rows)
    return True


def _event_and_run() -> tuple[dict[str, Any], dict[str, Any]]:
    """The columns of a new web enquiry and the run it starts, as intake sets them."""
    now = store.utcnow()
    event = Event(
        id=store.new_id("evt"),
        source="webform",
        dedupe_key=uuid.uuid4().hex,
        type="form.submitted",
        status="accepted",
        received_at=now,
        content_type="application/json",
        raw_body=b"{}",
        data={"name": "Jane"},
        headers={},
        query={},
    )
    run = Run(
        id=store.new_id("run"),
        workflow="web-enquiry",
        workflow_hash="h" * 64,
        definition={},
        event_id=event.id,
        status="queued",
        current_step="contact",
        step_index=0,
        attempt=1,
        budget_start=1,
        due_at=now,
        created_at=now,
        updated_at=now,
    )
    return ledger.row_values(event), ledger.row_values(run)


def _stored(db: Database, count: int) -> list[str]:
    """The ids of `count` stored runs waiting for their first step ("contact")."""
    rows = [_event_and_run() for _ in range(count)]
    for event, run in rows:
        ledger.insert_in_transaction(db, event, [run])
    return [run["id"] for _, run in rows]


def _claimed(db: Database, count: int) -> list[ledger.Claim]:
    """`count` stored runs, each with its first step ("contact") claimed."""
    views = ledger.EventViews()
    claims = [ledger.claim(db, views, run_id, "contact", 1) for run_id in _stored(db, count)]
    return [claimed for claimed in claims if claimed is not None]


def _new_rows(db: Database, count: int) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [_event_and_run() for _ in range(count)]


# What each write is done to (made before the clock starts), and its two ways.
OPERATIONS: dict[str, tuple[Callable[[Database, int], list[Any]], dict[str, Way]]] = {
    "insert": (_new_rows, {"transaction": _insert_in_transaction, "one statement": _insert_in_one_statement}),
    "claim": (
        _stored,
        {
            "transaction": _claims(ledger.claim_in_transaction),
            "one statement": _claims(ledger.claim_in_one_statement),
        },
    ),
    "advance": (
        _claimed,
        {
            "transaction": _ends_step(ledger.advance_in_transaction, ADVANCE),
            "one statement": _ends_step(ledger_pg.advance, ADVANCE),
        },
    ),
    "record": (
        _claimed,
        {
            "transaction": _ends_step(ledger.record_in_transaction, FINISH),
            "one statement": _ends_step(ledger_pg.record, FINISH),
        },
    ),
}


def _backend_cpu_seconds(pid: int) -> float:
    seconds = cpu_seconds(pid)
    if seconds is None:
        raise RuntimeError(f"no CPU reading for PostgreSQL backend {pid}: the server must run on this machine")
    return seconds


def _measure(db: Database, backend: int, items: list[Any], way: Way) -> dict[str, float]:
    server, client, wall = _backend_cpu_seconds(backend), time.process_time(), time.perf_counter()
    for item in items:
        if not way(db, item):
            raise RuntimeError(f"the write did not happen: {item}")
    return {
        "client": (time.process_time() - client) * 1000 / len(items),
        "server": (_backend_cpu_seconds(backend) - server) * 1000 / len(items),
        "wall": (time.perf_counter() - wall) * 1000 / len(items),
    }


def run(url: str, runs: int, rounds: int = ROUNDS) -> list[str]:
    """The report's table: per operation and way, the medians over `rounds` measured rounds of `runs` writes."""
    db = Database(url)
    with db.engine.connect() as conn:  # one thread: the LIFO pool hands out this one connection throughout
        backend = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
    results: dict[tuple[str, str], list[dict[str, float]]] = {}
    for round_ in range(rounds + 1):  # round 0 warms up and is not counted
        for operation, (prepare, ways) in OPERATIONS.items():
            order = list(ways.items()) if round_ % 2 else list(reversed(ways.items()))
            for name, way in order:
                measured = _measure(db, backend, prepare(db, runs), way)
                if round_:
                    results.setdefault((operation, name), []).append(measured)
    db.dispose()
    lines = [
        "| Operation | Written as | Client CPU ms | PostgreSQL CPU ms | Wall ms |",
        "|---|---|---|---|---|",
    ]
    for (operation, way), rounds in results.items():
        medians = {key: statistics.median(r[key] for r in rounds) for key in ("client", "server", "wall")}
        lines.append(
            f"| {operation} | {way} | {medians['client']:.3f} | {medians['server']:.3f} | {medians['wall']:.3f} |"
        )
    return lines


def report(table: list[str], runs: int, server: str, measured: str) -> str:
    """docs/benchmarks-writes.md: the table, with the machine, the date, the versions and the code measured."""
    box = machine.machine()
    versions = ", ".join(f"{name} {version}" for name, version in machine.versions().items())
    return "\n".join(
        [
            "# The ledger's hot writes on PostgreSQL",
            "",
            f"Written by `make bench-writes` (bench/ledger_writes.py; rerun rather than edit) on {machine.now()}.",
            "",
            f"- Machine: {box['cpu']}, {box['cores']} cores, {box['ram_gib']} GiB RAM, Linux {box['kernel']}.",
            f"- Code measured: {measured}. Database: {server}, over loopback on the same machine.",
            f"- Versions: {versions}.",
            f"- Each figure is per operation, the median of {ROUNDS} rounds of {runs:,} operations per way, the "
            "ways alternating from round to round, one connection, one thread. PostgreSQL CPU is the serving "
            "backend's, read from /proc.",
            "",
            "*Transaction* is engine.ledger's portable path (BEGIN, one statement per row, COMMIT), which "
            "SQLite takes; *one statement* is engine.ledger_pg's data-modifying WITH in autocommit, which "
            "PostgreSQL takes. A 4-step run costs one insert (in the web process), one claim, three advances "
            "and one record (in the worker).",
            "",
            *table,
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default="postgresql+psycopg://postgres@127.0.0.1:5432/test", help="admin URL")
    parser.add_argument("--runs", type=int, default=1000, help="runs per round and way")
    parser.add_argument("--report", type=Path, help="write the report here (default: print the table)")
    args = parser.parse_args()
    measured = machine.revision(PROJECT_ROOT, "worktree")["measured"]
    admin = sa.create_engine(args.db, isolation_level="AUTOCOMMIT")
    name = f"hookflow_bench_writes_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        server = conn.execute(sa.text("SELECT version()")).scalar_one().split(" on ")[0]
    url = sa.make_url(args.db).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        table = run(url, args.runs)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    print("\n".join(table))
    if args.report is not None:
        args.report.write_text(report(table, args.runs, server, measured))
        print(f"bench: wrote {args.report}")


if __name__ == "__main__":
    main()
