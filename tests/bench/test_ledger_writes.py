"""The ledger-writes benchmark times both ways of every hot write, and each way really writes."""

from __future__ import annotations

import sqlalchemy as sa

from bench import ledger_writes


def test_every_write_is_timed_both_ways_and_lands_in_the_ledger(empty_postgres_url: str) -> None:
    table = ledger_writes.run(empty_postgres_url, runs=3, rounds=1)
    rows = [line.split(" | ") for line in table[2:]]
    assert [(row[0].lstrip("| "), row[1]) for row in rows] == [
        (operation, way)
        for operation in ("insert", "claim", "advance", "record")
        for way in ("transaction", "one statement")
    ]
    assert all(float(value.rstrip(" |")) > 0 for row in rows for value in (row[2], row[4]))  # client CPU, wall
    engine = sa.create_engine(empty_postgres_url)
    with engine.connect() as conn:
        statuses = dict(conn.execute(sa.text("SELECT status, count(*) FROM runs GROUP BY status")).all())
        attempts = dict(conn.execute(sa.text("SELECT status, count(*) FROM step_attempts GROUP BY status")).all())
    engine.dispose()
    # 2 rounds (one warm-up) x 2 ways x 3 writes: inserted runs wait, claimed ones run their first step, advanced
    # ones their second, recorded ones ended.
    assert statuses == {"queued": 12, "running": 24, "succeeded": 12}
    assert attempts == {"succeeded": 24, "started": 24}
