"""Pooled PostgreSQL connections: pinged when they sat idle, not before every transaction (engine.db)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from engine import db as db_module
from engine.db import Database

IDLE = 0.2  # seconds, for these tests (the shipped threshold is IDLE_PING_SECONDS)


@pytest.fixture
def make_database(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[float], Database]]:
    made: list[Database] = []

    def make(idle_seconds: float) -> Database:
        monkeypatch.setattr(db_module, "IDLE_PING_SECONDS", idle_seconds)
        made.append(Database(postgres_url))
        return made[-1]

    yield make
    for database in made:
        database.dispose()


@pytest.fixture
def database(make_database: Callable[[float], Database]) -> Database:
    return make_database(IDLE)


@pytest.fixture
def pg_admin(postgres_url: str) -> Iterator[sa.Engine]:
    """A connection to the server from outside the database under test."""
    engine = sa.create_engine(sa.make_url(postgres_url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()


def _pid(conn: sa.Connection) -> int:
    return conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()


def backend_pid(database: Database) -> int:
    with database.engine.connect() as conn:
        return _pid(conn)


def kill(pg_admin: sa.Engine, pid: int) -> None:
    """What a server restart, or a proxy's idle timeout, does to a pooled connection."""
    with pg_admin.connect() as conn:
        assert conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()


def test_an_idle_connection_that_died_is_replaced_before_anyone_uses_it(
    database: Database, pg_admin: sa.Engine
) -> None:
    # Given a pooled connection whose server side went away while it sat idle
    dead = backend_pid(database)
    kill(pg_admin, dead)
    time.sleep(IDLE * 1.5)

    # When the next transaction takes a connection from the pool
    # Then it gets a live one, and never sees the error
    assert backend_pid(database) != dead


def test_a_connection_in_steady_use_is_not_pinged_and_its_death_costs_one_transaction(
    make_database: Callable[[float], Database], pg_admin: sa.Engine
) -> None:
    # Given a pool of two connections, one of whose server side has just gone away (the threshold is
    # far off, so neither counts as idle however slow this machine is)
    database = make_database(3600)
    with database.engine.connect() as one, database.engine.connect() as two:
        pids = {_pid(one), _pid(two)}
    kill(pg_admin, min(pids))

    # When connections are used again at once: no ping, so a transaction on the dead one fails as a
    # disconnect (the callers' answer to any database error: ingest says 503, a step worker waits)
    with pytest.raises(OperationalError), database.engine.connect() as one, database.engine.connect() as two:
        for conn in (one, two):
            conn.execute(sa.text("SELECT 1"))

    # Then the whole pool has been replaced: neither old connection is handed out again
    with database.engine.connect() as one, database.engine.connect() as two:
        assert {_pid(one), _pid(two)}.isdisjoint(pids)


def test_a_pool_whose_database_is_unreachable_reports_it_instead_of_looping(
    database: Database, pg_admin: sa.Engine, postgres_url: str
) -> None:
    # Given an idle pooled connection, and the database then refusing every connection
    name = sa.make_url(postgres_url).database
    dead = backend_pid(database)
    try:
        with pg_admin.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
        kill(pg_admin, dead)
        time.sleep(IDLE * 1.5)

        # When a transaction asks for a connection: the ping fails, and so does reconnecting
        with pytest.raises(OperationalError, match="not currently accepting connections"):
            backend_pid(database)
    finally:
        with pg_admin.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))

    # And once it is back, the same pool works again
    assert backend_pid(database) != dead


def connection_parameters(database: Database) -> dict[str, str]:
    with database.engine.connect() as conn:
        return conn.connection.driver_connection.info.get_parameters()


def test_a_silent_network_fails_a_connection_within_a_minute_instead_of_hanging(database: Database) -> None:
    # libpq's defaults would wait minutes to hours on a dead route; these make it an error the callers handle
    parameters = connection_parameters(database)
    assert {key: parameters.get(key) for key in db_module.PG_CONNECT_DEFAULTS} == db_module.PG_CONNECT_DEFAULTS


def test_the_database_url_can_set_its_own_timeouts(postgres_url: str) -> None:
    url = sa.make_url(postgres_url).update_query_dict({"keepalives_idle": "5", "connect_timeout": "3"})
    database = Database(url.render_as_string(hide_password=False))
    try:
        parameters = connection_parameters(database)
    finally:
        database.dispose()
    assert (parameters["keepalives_idle"], parameters["connect_timeout"], parameters["keepalives_count"]) == (
        "5",
        "3",
        "3",
    )
