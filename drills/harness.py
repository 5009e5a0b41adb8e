"""The real process tree for fault drills: sandbox, gunicorn, `flask worker`s, a Redis and a database of their own.

Everything a drill breaks is private to it (its own Redis it may restart, its
own PostgreSQL database or SQLite file, its own ports), so drills never disturb
the test suite or each other. Steps retry with the shipped default policy (a
drill that passed only on a drill-sized retry budget would prove nothing about
production); only the reconciler is quicker (a pass every second, a lost
attempt judged after 3 s) and timeouts shorter, so each drill takes seconds to
a few minutes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from bootstrap.embedded_redis import EmbeddedRedis, free_port
from engine.migrate import upgrade

ROOT = Path(__file__).resolve().parent.parent
WEBFORM_TOKEN = "drill-webform-token"
SANDBOX_KEY = "drill-sandbox-key"
ADMIN_TOKEN = "drill-admin-token"
POSTGRES_ADMIN = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

# Quick recovery for drills: a reconciler pass every second. No RETRY_*: the shipped retry policy applies.
FAST_RECOVERY = {
    "RECONCILE_INTERVAL_SECONDS": "1",
    "RECONCILE_GRACE_SECONDS": "3",
    "STEP_JOB_TIMEOUT_SECONDS": "10",
    "HTTP_TIMEOUT_SECONDS": "3",
    "BIGCHANGE_REQUESTS_PER_SECOND": "0",
}


def wait_for(predicate: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {seconds:.0f}s")


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database, dropped afterwards."""
    admin = sa.create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    name = f"hookflow_drill_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.make_url(POSTGRES_ADMIN).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@dataclass
class Stack:
    """One deployment of Hookflow, started piece by piece by a drill."""

    tmp: Path
    database_url: str
    redis: EmbeddedRedis
    extra_env: dict[str, str] = field(default_factory=dict)
    web_port: int = field(default_factory=free_port)
    sandbox_port: int = field(default_factory=free_port)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        sandbox = f"http://127.0.0.1:{self.sandbox_port}"
        return {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis.url,
            "WORKFLOWS_DIR": str(ROOT / "workflows"),
            "ADMIN_TOKEN": ADMIN_TOKEN,
            "WEBFORM_TOKEN": WEBFORM_TOKEN,
            "ACCOUNTS_SECRET": "drill-accounts-secret",
            "BIGCHANGE_BASE_URL": f"{sandbox}/bigchange",
            "BIGCHANGE_API_KEY": SANDBOX_KEY,
            # The drills post thousands of events to one source; its 50/s default limit would only slow them down.
            "INBOUND_RATE_LIMIT_PER_SECOND": "0",
            **FAST_RECOVERY,
            **self.extra_env,
        }

    def _spawn(self, name: str, *command: str) -> subprocess.Popen[bytes]:
        log = (self.tmp / f"{name}.log").open("ab")
        process = subprocess.Popen(
            list(command), cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.processes[name] = process
        return process

    def start_sandbox(self) -> None:
        self._spawn(
            "sandbox",
            sys.executable,
            "-m",
            "flask",
            "--app",
            "app",
            "sandbox",
            "--port",
            str(self.sandbox_port),
            "--api-key",
            SANDBOX_KEY,
        )
        wait_for(self._sandbox_up, 20, "the sandbox to answer")

    def _sandbox_up(self) -> bool:
        try:
            return httpx.get(f"{self.sandbox}/__sandbox__/state", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    @property
    def sandbox(self) -> str:
        return f"http://127.0.0.1:{self.sandbox_port}/bigchange"

    def start_web(self, workers: int = 2) -> None:
        self._spawn(
            "web",
            sys.executable,
            "-m",
            "gunicorn",
            "app:app",
            "--bind",
            f"127.0.0.1:{self.web_port}",
            "--workers",
            str(workers),
            "--worker-class",
            "gthread",
            "--threads",
            "4",
            "--no-control-socket",
        )
        wait_for(self._web_up, 30, "the web service to be ready")

    def _web_up(self) -> bool:
        try:
            return httpx.get(f"{self.web}/readyz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    @property
    def web(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def start_worker(self, name: str, *options: str) -> subprocess.Popen[bytes]:
        """`flask worker` with `options` (e.g. `--threads 4`)."""
        return self._spawn(name, sys.executable, "-m", "flask", "--app", "app", "worker", *options)

    def restart_redis(self, down_for: float = 2.0) -> None:
        """Stop Redis and start an empty one on the same port, as a restart without persistence does."""
        port = self.redis.port
        self.redis.stop()
        time.sleep(down_for)
        self.redis = EmbeddedRedis(port).start()

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        process = self.processes.pop(name)
        os.killpg(process.pid, sig)
        process.wait(timeout=30)

    def stop(self) -> None:
        for name in list(self.processes):
            process = self.processes[name]
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for name, process in list(self.processes.items()):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
            del self.processes[name]

    def enquiry(self, submission: str) -> bytes:
        body = json.loads((ROOT / "examples" / "web-enquiry.json").read_text())
        body["submission_id"] = submission
        return json.dumps(body).encode()

    def post(self, client: httpx.Client, submission: str) -> httpx.Response:
        headers = {"X-Hook-Token": WEBFORM_TOKEN, "Content-Type": "application/json"}
        return client.post(f"{self.web}/hooks/webform", content=self.enquiry(submission), headers=headers)

    def query(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        engine = sa.create_engine(self.database_url)
        try:
            with engine.connect() as conn:
                return [tuple(row) for row in conn.execute(sa.text(sql), params)]
        finally:
            engine.dispose()

    def run_statuses(self) -> dict[str, int]:
        return dict(self.query("SELECT status, count(*) FROM runs GROUP BY status"))  # type: ignore[arg-type]

    def run_ids(self) -> list[str]:
        return [row[0] for row in self.query("SELECT id FROM runs")]

    def sandbox_state(self) -> dict[str, Any]:
        return httpx.get(f"{self.sandbox}/__sandbox__/state", timeout=120).json()  # 10,000 contacts take a while

    def all_runs_succeeded(self, expected: int) -> bool:
        return self.run_statuses().get("succeeded", 0) == expected

    def log(self, name: str) -> str:
        path = self.tmp / f"{name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""
