"""What the measured processes run on: commands from the Procfile, their environment, Redis and the ledger.

The web and worker commands are read from the Procfile, so the bench measures
the settings `make run` and production use and follows them when they change.
The ledger is a PostgreSQL database the bench creates and drops itself (or a
SQLite file when asked), so it never touches anyone's data.
"""

from __future__ import annotations

import os
import shlex
import sys
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from redis import Redis
from redis.exceptions import RedisError

from engine.models import Base
from schemas.settings import Settings

# The venv the harness runs in (the snapshot a run executes from has no .venv of its own).
VENV_BIN = Path(sys.executable).parent
WEBFORM_TOKEN = "bench-webform-token"
API_KEY = "bench-api-key"


class BenchSetupError(RuntimeError):
    """Something the bench needs is missing; the message says what to do."""


def procfile_command(procfile_text: str, process: str, port: int | None = None) -> list[str]:
    """The argv of one Procfile process, as the bench runs it.

    `${VAR:-default}` becomes `port` (the web port) or its default, a leading
    `exec` is dropped, executables resolve to the venv, and 0.0.0.0 binds become
    127.0.0.1: the bench serves loopback only.

    Raises:
        BenchSetupError: the Procfile has no such process.
    """
    for line in procfile_text.splitlines():
        name, sep, command = line.partition(":")
        if sep and name.strip() == process and not line.lstrip().startswith("#"):
            break
    else:
        raise BenchSetupError(f"the Procfile has no {process!r} process")
    argv = shlex.split(command)
    if argv and argv[0] == "exec":
        argv = argv[1:]
    resolved = []
    for arg in argv:
        if "${" in arg:
            head, _, rest = arg.partition("${")
            default = rest.split(":-", 1)[1].split("}", 1)[0] if ":-" in rest else ""
            arg = head + (str(port) if port is not None else default) + rest.split("}", 1)[1]
        resolved.append(arg.replace("0.0.0.0:", "127.0.0.1:"))
    # The program is the first word after `env NAME=value …`, if the line starts that way.
    program = 0
    if resolved and resolved[0] == "env":
        program = 1
        while program < len(resolved) and "=" in resolved[program]:
            program += 1
    if program < len(resolved) and (VENV_BIN / resolved[program]).exists():
        resolved[program] = str(VENV_BIN / resolved[program])
    return resolved


def process_env(overrides: Mapping[str, str]) -> dict[str, str]:
    """The environment for a measured process: ours, minus any Hookflow setting the caller's shell had.

    A developer's DATABASE_URL or REDIS_URL must never leak into a bench process.
    """
    settings = {name.upper() for name in Settings.model_fields}
    env = {k: v for k, v in os.environ.items() if k.upper() not in settings and not k.startswith("FLASK_")}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(overrides)
    return env


# --- Redis --------------------------------------------------------------------------------------------


def redis_client(url: str) -> Redis:
    """A client for `url`.

    Raises:
        BenchSetupError: nothing answers there.
    """
    client = Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.ping()
    except (RedisError, OSError) as exc:
        raise BenchSetupError(f"no Redis answers at {url} ({exc}); pass --redis-url") from exc
    return client


def redis_version(client: Redis) -> str:
    return str(client.info("server").get("redis_version", "?"))


def redis_pid(client: Redis) -> int | None:
    """The server's pid when it runs on this machine (its CPU is then measurable), else None."""
    pid = client.info("server").get("process_id")
    return int(pid) if pid and Path(f"/proc/{pid}").exists() else None


# --- The ledger ---------------------------------------------------------------------------------------


@dataclass
class Ledger:
    """The bench's private database: created, migrated, emptied between phases, dropped at the end."""

    url: str
    admin_url: str | None = None  # PostgreSQL only: where CREATE/DROP DATABASE go
    name: str | None = None

    @property
    def is_postgres(self) -> bool:
        return self.url.startswith("postgresql")

    @classmethod
    def postgres(cls, admin_url: str) -> Ledger:
        """Create a fresh database next to `admin_url`'s.

        Raises:
            BenchSetupError: PostgreSQL does not answer (with how to run on SQLite instead).
        """
        admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        name = f"hookflow_bench_{uuid.uuid4().hex[:10]}"
        try:
            with admin.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        except sa.exc.OperationalError as exc:
            raise BenchSetupError(
                f"PostgreSQL does not answer at {admin_url} ({type(exc.orig).__name__}).\n"
                "  The benchmark measures the ledger on PostgreSQL, as production runs it. Either start one and\n"
                "  pass --pg-admin-url, or run on SQLite: make bench DB=sqlite (numbers not comparable)."
            ) from exc
        finally:
            admin.dispose()
        url = sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        return cls(url, admin_url, name)

    @classmethod
    def sqlite(cls, directory: Path) -> Ledger:
        directory.mkdir(parents=True, exist_ok=True)
        return cls(f"sqlite:///{directory / 'bench.db'}")

    def engine(self) -> sa.Engine:
        return sa.create_engine(self.url)

    def empty(self) -> None:
        """Delete every row, children before parents, so each scenario starts from nothing."""
        engine = self.engine()
        try:
            with engine.begin() as conn:
                if self.is_postgres:
                    names = ", ".join(table.name for table in Base.metadata.sorted_tables)
                    conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY"))
                else:
                    for table in reversed(Base.metadata.sorted_tables):
                        conn.execute(table.delete())
        finally:
            engine.dispose()

    def version(self) -> str:
        engine = self.engine()
        try:
            with engine.connect() as conn:
                if self.is_postgres:
                    return str(conn.execute(sa.text("SHOW server_version")).scalar())
                return "SQLite " + str(conn.execute(sa.text("SELECT sqlite_version()")).scalar())
        finally:
            engine.dispose()

    def backend_pids(self) -> list[int]:
        """The PostgreSQL server processes serving this database right now (for CPU accounting)."""
        if not self.is_postgres:
            return []
        engine = self.engine()
        try:
            with engine.connect() as conn:
                rows = conn.execute(
                    sa.text("SELECT pid FROM pg_stat_activity WHERE datname = :name AND pid <> pg_backend_pid()"),
                    {"name": self.name},
                )
                return [int(pid) for (pid,) in rows]
        finally:
            engine.dispose()

    def drop(self) -> None:
        if not self.is_postgres or self.admin_url is None:
            return
        admin = sa.create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        finally:
            admin.dispose()
