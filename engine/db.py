"""Database connection: one SQLAlchemy engine per process, sessions per unit of work.

Construction does no I/O (gunicorn imports the app in its master process and
forks; a pool created before the fork must be empty). SQLite gets WAL and a
busy timeout so the web and worker processes can write side by side.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlalchemy.orm import Session, sessionmaker

from engine.migrate import ensure_sqlite_directory


class Database:
    """The ledger's connection factory."""

    def __init__(self, url: str, sqlite_busy_timeout_ms: int = 30_000) -> None:
        self.url = url
        self.engine = _make_engine(url, sqlite_busy_timeout_ms)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

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
        return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
    ensure_sqlite_directory(url)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": busy_timeout_ms / 1000})
    event.listen(engine, "connect", lambda conn, record: _sqlite_pragmas(conn, busy_timeout_ms))
    event.listen(engine, "begin", _sqlite_begin_immediate)
    return engine


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
