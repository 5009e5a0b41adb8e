"""Database connection: one SQLAlchemy engine per process, sessions per unit of work.

Construction does no I/O (gunicorn imports the app in its master process and
forks; a pool created before the fork must be empty). SQLite gets WAL and a
busy timeout so the web and worker processes can write side by side.

A pooled PostgreSQL connection is pinged before use only when it sat idle
(see `ping_when_idle`), not before every transaction as SQLAlchemy's
`pool_pre_ping` does: the ledger's hot paths are one transaction each, so
that was a round trip, and a statement for the server to run, per webhook
and per step.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, Executable, create_engine, event, make_url, text
from sqlalchemy.exc import InvalidatePoolError
from sqlalchemy.orm import Session, sessionmaker

from engine.migrate import ensure_sqlite_directory
from engine.pg_direct import Direct, compile_direct

IDLE_PING_SECONDS = 1.0
# libpq's defaults turn a silent network (a dropped route, a firewall that forgets the flow) into
# hangs of minutes to hours: no connect timeout, TCP keepalives after the OS's two hours, unacked
# data retried for ~15 minutes. A worker stuck there holds its step until the job timeout. These
# make such a connection fail within about a minute, which every caller handles as the database
# being away (503 + Retry-After, or wait and retry). Any of them set in DATABASE_URL wins.
PG_CONNECT_DEFAULTS = {
    "connect_timeout": "10",
    "keepalives": "1",
    "keepalives_idle": "30",
    "keepalives_interval": "10",
    "keepalives_count": "3",
    "tcp_user_timeout": "30000",  # ms: data sent and never acknowledged
}
_IDLE_SINCE = "hookflow_idle_since"


class Database:
    """The ledger's connection factory."""

    def __init__(self, url: str, sqlite_busy_timeout_ms: int = 30_000) -> None:
        self.url = url
        self.engine = _make_engine(url, sqlite_busy_timeout_ms)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._direct: dict[Executable, Direct] = {}

    def direct(self, statement: Executable) -> Direct:
        """`statement` compiled once for this database, to run through engine.pg_direct (PostgreSQL only).

        For statements that live as long as the process (module constants, cached builders):
        statements hash by identity, so each is compiled once and kept.
        """
        found = self._direct.get(statement)
        if found is None:
            found = self._direct[statement] = compile_direct(statement, self.engine.dialect)
        return found

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @property
    def is_postgresql(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that rolls back on error and always closes; callers commit explicitly."""
        session = self._sessions()
        try:
            yield session
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def ping(self) -> None:
        """Raise if the database cannot answer a trivial query."""
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()


def _make_engine(url: str, busy_timeout_ms: int) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        connect_args = {key: value for key, value in PG_CONNECT_DEFAULTS.items() if key not in parsed.query}
        # LIFO: under load the same few connections stay busy (and unpinged); the rest go idle.
        engine = create_engine(url, pool_size=10, max_overflow=20, pool_use_lifo=True, connect_args=connect_args)
        ping_when_idle(engine, IDLE_PING_SECONDS)
        return engine
    ensure_sqlite_directory(url)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": busy_timeout_ms / 1000})
    event.listen(engine, "connect", lambda conn, record: _sqlite_pragmas(conn, busy_timeout_ms))
    event.listen(engine, "begin", _sqlite_begin_immediate)
    return engine


def ping_when_idle(engine: Engine, idle_seconds: float) -> None:
    """Check a pooled connection that sat idle over `idle_seconds` before handing it out; reconnect if dead.

    Why idle only: a connection in steady use proves itself alive every few milliseconds, and
    one that died under it (the server restarted in that window) fails its next statement with
    a disconnect error. SQLAlchemy then invalidates the whole pool, so only the transactions
    in flight at that moment see an error, and the callers already treat it as the database being away
    (ingest answers 503 with Retry-After, a step worker waits and tries again). A connection
    left idle is where the silent deaths pile up (restarts at night, idle timeouts in
    proxies and firewalls), so those are pinged, and replaced without any caller noticing.
    """

    @event.listens_for(engine, "checkin")
    def _idle_from(dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        idle_since = record.info.get(_IDLE_SINCE)  # none yet: a fresh connection
        if idle_since is None or time.monotonic() - idle_since < idle_seconds:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            if not engine.dialect.is_disconnect(exc, dbapi_connection, None):
                raise
            # As SQLAlchemy's own pre-ping: the pool replaces this connection, and every older one
            # (a dead connection usually means a restarted server), then tries again.
            raise InvalidatePoolError(f"idle connection failed its ping: {exc}") from exc


def _sqlite_pragmas(dbapi_conn: Any, busy_timeout_ms: int) -> None:
    # pysqlite's own transaction handling defers BEGIN in ways that break
    # SAVEPOINTs and lock upgrades; take control of it (SQLAlchemy's documented recipe).
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    cursor.close()


def _sqlite_begin_immediate(conn: Any) -> None:
    # BEGIN IMMEDIATE takes the write lock up front, so two processes never both
    # read and then deadlock upgrading to write (SQLITE_BUSY without waiting).
    conn.exec_driver_sql("BEGIN IMMEDIATE")
