"""The least any pipeline must write to keep what it acknowledged: a floor to measure Hookflow against.

Issue #8 compares Hookflow with a bare endpoint and a naive Flask + RQ
pipeline, neither of which stores anything. This is the durable minimum the
design asks of any implementation, written as cheaply as Python can: the
event's body inserted and committed before the 202 (one prepared statement,
autocommit, straight through the driver), and one row update per step after
its call. No claim before a call, no attempt rows, no reads, no ORM, no
SQLAlchemy. bench/naive.py uses it when NAIVE_LEDGER_URL is set, so the
report can say how much of Hookflow's cost any durable pipeline would pay.

Each thread has its own connection (gunicorn's gthread workers share a process).
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from typing import Any, Protocol

import psycopg
from sqlalchemy import make_url

TABLE = "naive_events"


class _Connection(Protocol):
    """What sqlite3's and psycopg's connections both offer (autocommit: each execute commits)."""

    def execute(self, query: Any, params: Any = ...) -> Any: ...

    def close(self) -> None: ...


def _connect(url: str) -> _Connection:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        # Autocommit, and the pragmas Hookflow's ledger runs with (engine/db.py).
        conn = sqlite3.connect(parsed.database or ":memory:", isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=5000")
        return conn
    conninfo = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    return psycopg.connect(conninfo, autocommit=True)


def _placeholders(url: str, sql: str) -> str:
    """`?` for sqlite3, `%s` for psycopg: the statements are written once with `?`."""
    return sql if make_url(url).get_backend_name() == "sqlite" else sql.replace("?", "%s")


def create(url: str) -> None:
    """An empty ledger table (dropped first): called once by the bench before the pipeline starts."""
    conn = _connect(url)
    try:
        conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
        conn.execute(
            f"CREATE TABLE {TABLE} (id TEXT PRIMARY KEY, body TEXT NOT NULL, steps INTEGER NOT NULL, output TEXT)"
        )
    finally:
        conn.close()


def count(url: str) -> tuple[int, int]:
    """(rows, rows whose four steps were all recorded)."""
    conn = _connect(url)
    try:
        row = conn.execute(f"SELECT COUNT(*), COUNT(*) FILTER (WHERE steps = 4) FROM {TABLE}").fetchone()
        return int(row[0]), int(row[1])
    finally:
        conn.close()


class MinimalLedger:
    """One committed INSERT per event, one committed UPDATE per step."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._local = threading.local()
        self._insert = _placeholders(url, f"INSERT INTO {TABLE} (id, body, steps) VALUES (?, ?, 0)")
        self._update = _placeholders(url, f"UPDATE {TABLE} SET steps = ?, output = ? WHERE id = ?")

    def _conn(self) -> _Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = _connect(self._url)
        return conn

    def store_event(self, body: bytes) -> str:
        """The event, committed: after this returns it may be acknowledged."""
        event_id = uuid.uuid4().hex
        self._conn().execute(self._insert, (event_id, body.decode()))
        return event_id

    def record_step(self, event_id: str, step: int, output: str) -> None:
        self._conn().execute(self._update, (step, output, event_id))
