"""The ledger's hot statements on PostgreSQL, compiled once and sent straight through psycopg.

Every webhook inserts once and every step claims or records once (engine.ledger,
engine.ledger_pg). Through SQLAlchemy's `Connection.execute` each of those costs
~0.21 ms of client CPU, of which the statement itself (psycopg's prepared
execute) is ~0.08: the rest is SQLAlchemy looking the statement up in its
compiled cache, building an execution context and a result, on every call
(`make bench-writes`, docs/benchmarks-writes.md). A 4-step run makes six
such statements (seven when this was written), so this was ~1 ms of CPU per
run on a machine where the whole run cost ~16.

Here the statement is compiled once per dialect, by SQLAlchemy, and its types'
own bind and result processors are looked up once; each call then runs the
SQL on a pooled connection's psycopg connection. Everything around the call
stays SQLAlchemy's: the pool (and its checkout events: engine.db's idle ping),
the processors, and the error classes (a psycopg error becomes the same
IntegrityError or OperationalError `Connection.execute` would raise), and what
a lost connection does: as in `Connection.execute`, it invalidates every
connection of the pool made before it (a dead connection usually means a
restarted server), so the others are replaced on their next checkout rather
than each failing a statement first.

Only for statements whose parameters are all named and not expanding (`IN`
lists must be written as literals); `compile_direct` refuses the others.
Column defaults that SQLAlchemy computes at execution are not filled in: an
INSERT is given every value (engine.ledger.row_values does), and a statement
that leaves one to compute is refused when compiled, rather than writing NULL.
"""

from __future__ import annotations

import logging
from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from sqlalchemy import Dialect, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.expression import Executable
from sqlalchemy.sql.selectable import ReturnsRows

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Direct:
    """A statement as psycopg runs it: its SQL, how to bind each parameter, how to read each column."""

    sql: str
    binders: dict[str, Callable[[Any], Any] | None]  # every parameter the SQL names, with its type's processor
    fixed: dict[str, Any]  # parameters whose value is part of the statement (literals)
    row: type | None  # a namedtuple of the returned columns; None: returns no rows
    readers: tuple[Callable[[Any], Any] | None, ...]  # each column's result processor

    def bind(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The parameters as psycopg gets them: processed by their types, None included, as SQLAlchemy does.

        Raises:
            KeyError: a parameter the statement names has no value.
        """
        values = {**self.fixed, **params}
        missing = self.binders.keys() - values.keys()
        if missing:
            raise KeyError(f"no value for parameter(s) {', '.join(sorted(missing))}")
        return {name: values[name] if binder is None else binder(values[name]) for name, binder in self.binders.items()}

    def read(self, raw: tuple[Any, ...]) -> Any:
        assert self.row is not None
        return self.row(
            *(value if reader is None else reader(value) for value, reader in zip(raw, self.readers, strict=True))
        )


def compile_direct(statement: Executable, dialect: Dialect) -> Direct:
    """Compile `statement` once for `dialect` (psycopg's), with its types' processors.

    Raises:
        ValueError: the statement has an expanding parameter (an `IN` list bound at execution), a
            parameter whose name the SQL spells differently, or a column default to compute at execution.
    """
    compiled = statement.compile(dialect=dialect)
    expanding = [name for bind, name in compiled.bind_names.items() if bind.expanding]
    if expanding:
        raise ValueError(f"expanding parameter(s) {expanding}: write IN lists as literals for a direct statement")
    if compiled.escaped_bind_names:
        raise ValueError(f"parameter names SQLAlchemy would escape: {sorted(compiled.escaped_bind_names)}")
    computed = [column.key for column in (*compiled.insert_prefetch, *compiled.update_prefetch)]
    if computed:
        raise ValueError(f"column default(s) SQLAlchemy computes at execution: give {', '.join(computed)} a value")
    binders = {
        name: bind.type.dialect_impl(dialect).bind_processor(dialect) for bind, name in compiled.bind_names.items()
    }
    fixed = {name: bind.effective_value for bind, name in compiled.bind_names.items() if not bind.required}
    columns = list(statement.exported_columns) if isinstance(statement, ReturnsRows) else []
    row = namedtuple("Row", [column.key for column in columns], rename=True) if columns else None  # type: ignore[misc]
    readers = tuple(column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns)
    return Direct(compiled.string, binders, fixed, row, readers)


@dataclass
class Outcome:
    """A statement's rows and count, read like SQLAlchemy's Result where the ledger uses one."""

    rows: list[Any]
    rowcount: int

    def first(self) -> Any:
        return self.rows[0] if self.rows else None

    def scalar(self) -> Any:
        return self.rows[0][0] if self.rows else None


class DirectConnection:
    """One pooled connection in autocommit, for a few direct statements in a row."""

    def __init__(self, engine: Engine, dbapi: psycopg.Connection[Any], invalidate: Callable[[BaseException], None]):
        self._engine = engine
        self._dbapi = dbapi
        self._invalidate = invalidate

    def run(self, direct: Direct, params: Mapping[str, Any]) -> Outcome:
        """Execute `direct` with `params`; each statement commits on its own.

        Raises:
            sqlalchemy.exc.DBAPIError: as `Connection.execute` would (IntegrityError, OperationalError, ...).
        """
        bound = direct.bind(params)
        try:
            cursor = self._dbapi.execute(direct.sql, bound)
            rows = [direct.read(raw) for raw in cursor.fetchall()] if direct.row is not None else []
            return Outcome(rows, cursor.rowcount)
        except psycopg.Error as exc:
            dialect = self._engine.dialect
            lost = dialect.is_disconnect(exc, self._dbapi, None)
            if lost:
                self._invalidate(exc)
            raise DBAPIError.instance(
                direct.sql,
                None,
                exc,
                psycopg.Error,
                hide_parameters=True,
                dialect=dialect,
                connection_invalidated=lost,
            ) from exc


@contextmanager
def connect(engine: Engine) -> Iterator[DirectConnection]:
    """A connection from `engine`'s pool, in autocommit while it is lent out here.

    Raises:
        sqlalchemy.exc.DBAPIError: no connection could be made (as `engine.connect()` would).
    """
    try:
        pooled = engine.raw_connection()
    except psycopg.Error as exc:  # the pool hands out the driver's error: wrapped here as engine.connect() does
        raise DBAPIError.instance(None, None, exc, psycopg.Error, hide_parameters=True, dialect=engine.dialect) from exc
    dbapi = pooled.driver_connection
    assert isinstance(dbapi, psycopg.Connection)
    invalidated = False

    def invalidate(exc: BaseException) -> None:
        nonlocal invalidated
        invalidated = True
        # What Connection._handle_dbapi_exception does on a disconnect: this connection and every
        # older one of the pool are replaced (Pool._invalidate; SQLAlchemy is pinned, and the
        # test of a killed server holds it to that).
        engine.pool._invalidate(pooled, exc)

    try:
        dbapi.autocommit = True
        yield DirectConnection(engine, dbapi, invalidate)
    finally:
        try:
            if not invalidated and not dbapi.closed:
                dbapi.autocommit = False  # as the pool's other users expect it
        except psycopg.Error:
            # Left inside a transaction (a statement that began one) or broken: it cannot go back as the
            # pool's other users expect it, so the pool drops it. A bug to fix, hence the traceback.
            log.error("a direct statement left its connection unusable; the pool replaces it", exc_info=True)
            pooled.invalidate()
        pooled.close()
