"""Shared fixtures: real Redis, real databases, the sandbox over HTTP, the app, and a worker drain.

- Redis: TEST_REDIS_URL (default redis://127.0.0.1:6379/15), flushed per test; if
  nothing answers there, an embedded redis-server (bootstrap.embedded_redis).
- Databases: a fresh SQLite file per test by default. PostgreSQL at
  TEST_POSTGRES_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/test) in a
  database created for this session; `any_db_url` runs a test on both, and
  DATABASE_URL pointing at PostgreSQL makes it the default for every test.
- The BigChange sandbox is served over real HTTP in a thread, reset per test.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from pydantic import SecretStr
from rq import SimpleWorker
from rq.registry import ScheduledJobRegistry

from app import create_app
from bootstrap.embedded_redis import EmbeddedRedis, redis_answers
from engine import ledger
from engine.migrate import upgrade
from engine.services import EXTENSION, Services
from sandbox import mounts
from sandbox.mounts import sandbox_settings
from sandbox.server import serve_in_thread
from schemas.settings import PROJECT_ROOT, Settings

SANDBOX_KEY = "sandbox-test-key"
ADMIN_TOKEN = "test-admin-token"
SECRETS = {"WEBFORM_TOKEN": "webform-test-token", "ACCOUNTS_SECRET": "accounts-test-secret"}
SHIPPED_WORKFLOWS = PROJECT_ROOT / "workflows"
TABLES = ("step_items", "step_attempts", "runs", "events", "xrefs")


# --- Redis ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    if redis_answers(url):
        yield url
        return
    embedded = EmbeddedRedis().start()
    try:
        yield embedded.url
    finally:
        embedded.stop()


# --- Databases --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A migrated PostgreSQL database private to this test session."""
    admin_url = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        pytest.skip(f"PostgreSQL is not reachable at {admin_url} ({type(exc).__name__}); set TEST_POSTGRES_URL")
    name = f"hookflow_test_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    try:
        yield url
    finally:
        sa.create_engine(url).dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _fresh_sqlite(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'hookflow.db'}"
    upgrade(url)
    return url


def _emptied(url: str) -> str:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {', '.join(TABLES)}"))
    engine.dispose()
    return url


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The suite's default backend: PostgreSQL when DATABASE_URL names one, else SQLite."""
    if os.environ.get("DATABASE_URL", "").startswith("postgresql"):
        return _emptied(request.getfixturevalue("postgres_url"))
    return _fresh_sqlite(tmp_path)


@pytest.fixture
def empty_postgres_url(postgres_url: str) -> str:
    """The session's PostgreSQL database with every table emptied, for a test about PostgreSQL itself."""
    return _emptied(postgres_url)


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Runs the test once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return _fresh_sqlite(tmp_path)
    return _emptied(request.getfixturevalue("postgres_url"))


# --- Sandbox ----------------------------------------------------------------------------------


@dataclass
class Sandbox:
    """The BigChange simulator as a test sees it: over HTTP, like the connector does."""

    url: str
    control: httpx.Client

    def calls(self, path: str | None = None) -> list[dict[str, Any]]:
        calls = self.control.get("/__sandbox__/calls").json()
        return [c for c in calls if path is None or c["path"] == path]

    def state(self) -> dict[str, Any]:
        return self.control.get("/__sandbox__/state").json()

    def fault(self, path: str, **spec: Any) -> None:
        self.control.post("/__sandbox__/faults", json={"path": path, **spec}).raise_for_status()

    def clear_faults(self) -> None:
        self.control.delete("/__sandbox__/faults").raise_for_status()


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[str]:
    """Every simulator on one port, as `flask sandbox` serves them; each lives under its prefix."""
    server = serve_in_thread(mounts.create_app(api_key=SANDBOX_KEY))
    yield server.url
    server.stop()


@pytest.fixture
def sandbox(sandbox_server: str) -> Iterator[Sandbox]:
    """The BigChange simulator, reset."""
    with httpx.Client(base_url=f"{sandbox_server}/bigchange", timeout=10) as control:
        control.post("/__sandbox__/reset").raise_for_status()
        yield Sandbox(f"{sandbox_server}/bigchange", control)


@pytest.fixture
def simulator(sandbox_server: str) -> Iterator[Callable[[str], Sandbox]]:
    """Any simulator by its mount prefix, reset: `simulator("/lightening")`."""
    clients: list[httpx.Client] = []

    def reset(prefix: str) -> Sandbox:
        control = httpx.Client(base_url=f"{sandbox_server}{prefix}", timeout=10)
        clients.append(control)
        control.post("/__sandbox__/reset").raise_for_status()
        return Sandbox(f"{sandbox_server}{prefix}", control)

    yield reset
    for control in clients:
        control.close()


# --- The app ----------------------------------------------------------------------------------


@pytest.fixture
def workflows_dir() -> Path:
    """Override in a test module to run against other workflow files."""
    return SHIPPED_WORKFLOWS


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Override in a test module to tweak Settings."""
    return {}


@pytest.fixture
def settings(
    database_url: str,
    redis_url: str,
    sandbox: Sandbox,
    sandbox_server: str,
    workflows_dir: Path,
    settings_overrides: dict[str, Any],
) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "redis_url": redis_url,
        "workflows_dir": workflows_dir,
        "admin_token": SecretStr(ADMIN_TOKEN),
        # Every connector points at its simulator on the same server (see sandbox/mounts.py).
        **sandbox_settings(sandbox_server, SANDBOX_KEY),
        "http_timeout_seconds": 5.0,
        "retry_initial_seconds": 0.01,  # real backoff arithmetic, test-sized delays
        "retry_max_delay_seconds": 0.05,
        "workflow_reload_seconds": 0,
        "reconcile_grace_seconds": 0,
        **settings_overrides,
    }
    return Settings(**values)


@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    app = create_app(settings, environ=SECRETS)
    services = app.extensions[EXTENSION]
    services.redis.flushdb()
    yield app
    services.close()


@pytest.fixture
def services(app: Flask) -> Services:
    return app.extensions[EXTENSION]


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


Drain = Callable[..., int]


class CountingWorker(SimpleWorker):
    """RQ's SimpleWorker, counting the jobs it performs (RQ 3 keeps its own counts only in Redis)."""

    jobs_performed = 0

    def perform_job(self, *args: Any, **kwargs: Any) -> bool:
        self.jobs_performed += 1
        return super().perform_job(*args, **kwargs)


@pytest.fixture
def drain(app: Flask, services: Services) -> Drain:
    """Run real RQ SimpleWorkers in burst mode until no job is queued or scheduled; returns jobs run.

    Scheduled retries are moved to the queue by RQ's own scheduler (burst mode
    enqueues what is due), so delayed retries go through the real path.
    """

    def run(timeout: float = 20.0) -> int:
        queue = services.queue.queue
        scheduled = ScheduledJobRegistry(queue=queue)
        deadline = time.monotonic() + timeout
        jobs = 0
        with app.app_context():
            while time.monotonic() < deadline:
                if queue.count:
                    worker = CountingWorker([queue], connection=services.redis)
                    worker.work(burst=True, with_scheduler=True, logging_level="WARNING")
                    jobs += worker.jobs_performed
                elif scheduled.count:
                    time.sleep(0.02)
                    worker = CountingWorker([queue], connection=services.redis)
                    worker.work(burst=True, with_scheduler=True, logging_level="WARNING")
                    jobs += worker.jobs_performed
                else:
                    return jobs
        raise AssertionError(f"queue did not drain within {timeout}s")

    return run


def claim(services: Services, run_id: str, step_id: str, attempt: int = 1) -> ledger.Claim | None:
    """Claim a step attempt the way a worker does before it calls anything (to stage a lost worker)."""
    return ledger.claim(services.db, services.event_views, run_id, step_id, attempt)


def post_hook(client: FlaskClient, source: str, body: bytes, **headers: str) -> Any:
    """POST a webhook the way a sender would."""
    headers.setdefault("Content-Type", "application/json")
    return client.post(f"/hooks/{source}", data=body, headers=headers)
