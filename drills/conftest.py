"""Fixtures for the fault drills (`make drills`): a private Redis, a private database, the stack."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from bootstrap.embedded_redis import EmbeddedRedis
from drills.harness import POSTGRES_ADMIN, Stack, postgres_database


@pytest.fixture(scope="session")
def postgres_admin() -> str:
    """PostgreSQL, or a skip that says why: the drills stop and restart a database, which SQLite cannot model."""
    admin = sa.create_engine(POSTGRES_ADMIN)
    try:
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:
        pytest.skip(
            f"the fault drills need PostgreSQL, and none answers at {POSTGRES_ADMIN} ({type(exc).__name__}); "
            "start one or set TEST_POSTGRES_URL"
        )
    finally:
        admin.dispose()
    return POSTGRES_ADMIN


@pytest.fixture
def stack(tmp_path: Path, postgres_admin: str) -> Iterator[Stack]:
    """A deployment with its own Redis (which a drill may restart) and its own PostgreSQL database."""
    with postgres_database() as database_url:
        deployment = Stack(tmp_path, database_url, EmbeddedRedis().start())
        try:
            yield deployment
        finally:
            deployment.stop()
            deployment.redis.stop()
