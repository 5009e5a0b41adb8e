"""engine.pg_direct runs a statement as SQLAlchemy would, minus the per-call work: same values, same errors."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, OperationalError

from engine import pg_direct
from engine.db import Database
from engine.models import Event, Run

_INSERT = sa.insert(Event).values(
    id=sa.bindparam("p_id"),
    source="webform",
    status="accepted",
    received_at=sa.bindparam("p_at", type_=Event.received_at.type),
    data=sa.bindparam("p_data", type_=Event.data.type),
    headers={},
    query={},
    raw_body=b"{}",
    duplicates=0,  # a default SQLAlchemy would fill in at execution: a direct statement is given every value
)
_READ = sa.select(Event.id, Event.received_at, Event.data).where(Event.id == sa.bindparam("p_id"))


@pytest.fixture
def db(empty_postgres_url: str) -> Iterator[Database]:
    database = Database(empty_postgres_url)
    yield database
    database.dispose()


def test_values_are_written_and_read_back_as_sqlalchemy_does(db: Database) -> None:
    at = datetime(2026, 12, 7, 6, 30, tzinfo=timezone.utc)
    with pg_direct.connect(db.engine) as conn:
        conn.run(db.direct(_INSERT), {"p_id": "evt_direct", "p_at": at, "p_data": {"name": "Jane"}})
        conn.run(db.direct(_INSERT), {"p_id": "evt_null", "p_at": at, "p_data": None})
        direct = conn.run(db.direct(_READ), {"p_id": "evt_direct"}).first()
    with db.engine.connect() as conn:
        through_sqlalchemy = conn.execute(_READ, {"p_id": "evt_direct"}).one()
        # None in a JSON column is JSON null, as SQLAlchemy binds it, not SQL NULL.
        kinds = conn.execute(sa.text("SELECT jsonb_typeof(data) FROM events WHERE id = 'evt_null'")).scalar()
    assert tuple(direct) == tuple(through_sqlalchemy) == ("evt_direct", at, {"name": "Jane"})
    assert direct.received_at.tzinfo == timezone.utc and direct.id == "evt_direct"
    assert kinds == "null"


def test_a_type_s_own_check_still_applies(db: Database) -> None:
    naive = datetime(2026, 12, 7, 6, 30)
    with pytest.raises(ValueError, match="naive datetime"), pg_direct.connect(db.engine) as conn:
        conn.run(db.direct(_INSERT), {"p_id": "evt_naive", "p_at": naive, "p_data": {}})


def test_a_missing_parameter_is_named(db: Database) -> None:
    with pytest.raises(KeyError, match="p_data"), pg_direct.connect(db.engine) as conn:
        conn.run(db.direct(_INSERT), {"p_id": "evt_x", "p_at": datetime.now(timezone.utc)})


def test_a_column_default_left_to_compute_is_refused_not_written_as_null(db: Database) -> None:
    statement = sa.insert(Event).values(id="evt_default", source="webform", status="accepted", raw_body=b"")
    with pytest.raises(ValueError, match="give duplicates a value"):
        db.direct(statement)


def test_an_in_list_bound_at_execution_is_refused() -> None:
    statement = sa.select(Run.id).where(Run.status.in_(["queued", "running"]))
    with pytest.raises(ValueError, match="expanding"):
        pg_direct.compile_direct(statement, Database("postgresql+psycopg://nobody@127.0.0.1/none").engine.dialect)


def test_a_constraint_violation_is_sqlalchemy_s_integrity_error(db: Database) -> None:
    values = {"p_id": "evt_twice", "p_at": datetime.now(timezone.utc), "p_data": {}}
    with pg_direct.connect(db.engine) as conn:
        conn.run(db.direct(_INSERT), values)
        with pytest.raises(IntegrityError):
            conn.run(db.direct(_INSERT), values)
        assert conn.run(db.direct(_READ), {"p_id": "evt_twice"}).first().id == "evt_twice"  # autocommit: still usable


def test_a_connection_that_died_is_replaced_after_one_operational_error(db: Database) -> None:
    with pg_direct.connect(db.engine) as conn:
        conn.run(db.direct(_READ), {"p_id": "evt_absent"})
    with db.engine.connect() as other:  # the pool is LIFO: the same connection comes back next
        pid = other.execute(sa.text("SELECT pg_backend_pid()")).scalar()
    killer = sa.create_engine(db.url, isolation_level="AUTOCOMMIT")
    with killer.connect() as admin:
        admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    killer.dispose()
    with pytest.raises(OperationalError) as lost, pg_direct.connect(db.engine) as conn:
        conn.run(db.direct(_READ), {"p_id": "evt_absent"})
    assert lost.value.connection_invalidated
    with pg_direct.connect(db.engine) as conn:  # a new connection, in autocommit like the first
        assert conn.run(db.direct(_READ), {"p_id": "evt_absent"}).first() is None
    with db.engine.connect() as again:
        assert again.execute(sa.text("SELECT pg_backend_pid()")).scalar() != pid
        assert again.connection.dbapi_connection.autocommit is False


def test_a_database_that_does_not_answer_is_sqlalchemy_s_operational_error() -> None:
    away = Database("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1")
    with pytest.raises(OperationalError), pg_direct.connect(away.engine):
        pass


def test_a_lost_connection_has_the_pool_replace_every_older_one(db: Database) -> None:
    """As SQLAlchemy does: a dead connection usually means a restarted server, so its siblings are dead too."""
    first, second = db.engine.connect(), db.engine.connect()
    pids = [conn.execute(sa.text("SELECT pg_backend_pid()")).scalar() for conn in (first, second)]
    first.close()
    second.close()  # both idle in the pool now; the LIFO pool hands out `second` next
    killer = sa.create_engine(db.url, isolation_level="AUTOCOMMIT")
    with killer.connect() as admin:
        for pid in pids:
            admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    killer.dispose()
    with pytest.raises(OperationalError), pg_direct.connect(db.engine) as conn:
        conn.run(db.direct(_READ), {"p_id": "evt_absent"})
    # Two at once: the failed one's slot (reconnected) and `first`, older than the failure: replaced, not tried.
    with pg_direct.connect(db.engine) as one, pg_direct.connect(db.engine) as other:
        for conn in (one, other):
            assert conn.run(db.direct(_READ), {"p_id": "evt_absent"}).first() is None


def test_a_connection_left_in_a_transaction_is_dropped_not_handed_back(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    with pg_direct.connect(db.engine) as conn:
        conn.run(db.direct(sa.text("BEGIN")), {})  # autocommit cannot be switched off inside a transaction
    assert "left its connection unusable" in caplog.text
    assert db.engine.pool.checkedout() == 0  # released, not leaked
    with db.engine.connect() as again:  # a fresh connection: no transaction carried over
        assert again.connection.dbapi_connection.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


def test_literal_values_are_part_of_the_statement_even_none_and_false(db: Database) -> None:
    statement = sa.select(sa.literal(None, sa.String).label("nothing"), sa.literal(False).label("no"))
    with pg_direct.connect(db.engine) as conn:
        assert tuple(conn.run(db.direct(statement), {}).first()) == (None, False)
