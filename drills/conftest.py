"""Fixtures for the fault drills (`make drills`): a private Redis, a private database, the stack."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bootstrap.embedded_redis import EmbeddedRedis
from drills.harness import Stack, postgres_database


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    """A deployment with its own Redis (which a drill may restart) and its own PostgreSQL database."""
    with postgres_database() as database_url:
        deployment = Stack(tmp_path, database_url, EmbeddedRedis().start())
        try:
            yield deployment
        finally:
            deployment.stop()
            deployment.redis.stop()
