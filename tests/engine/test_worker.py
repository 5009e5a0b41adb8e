"""The `flask worker` process: keeps working through a Redis restart, stops when told to."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import pytest
from pydantic import SecretStr
from redis import Redis
from rq import Queue, Worker
from rq.registry import StartedJobRegistry

from app import create_app
from bootstrap.embedded_redis import EmbeddedRedis
from engine.migrate import upgrade
from engine.models import Run
from engine.services import EXTENSION
from schemas.settings import Settings
from tests.conftest import SECRETS, SHIPPED_WORKFLOWS, post_hook

ROOT = Path(__file__).parents[2]
LOG_ONLY = "name: ping\non: {source: webform}\nsteps:\n  - id: note\n    uses: core.log\n    with: {message: pong}\n"


@pytest.fixture
def private_redis() -> EmbeddedRedis:
    redis = EmbeddedRedis().start()  # a Redis of its own, so the test may stop and start it
    yield redis
    redis.stop()


@pytest.fixture
def deployment(tmp_path: Path) -> tuple[str, Path]:
    """A ledger and a workflows directory with one workflow that needs no external API."""
    workflows = tmp_path / "workflows"
    workflows.mkdir()
    shutil.copy(SHIPPED_WORKFLOWS / "sources.yaml", workflows)
    (workflows / "ping.yaml").write_text(LOG_ONLY)
    database = f"sqlite:///{tmp_path / 'ledger.db'}"
    upgrade(database)
    return database, workflows


_OUTPUT: dict[int, IO[str]] = {}  # each spawned process's output file, by pid


def spawn(argv: list[str], database: str, workflows: Path, redis_url: str) -> subprocess.Popen[str]:
    """The process, its output going to a file: a pipe read only at the end would block it once full."""
    env = {**os.environ, "DATABASE_URL": database, "REDIS_URL": redis_url, "WORKFLOWS_DIR": str(workflows), **SECRETS}
    output = tempfile.TemporaryFile("w+")  # noqa: SIM115 (it outlives this call: `finish` closes it)
    process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, text=True)
    _OUTPUT[process.pid] = output
    return process


def finish(process: subprocess.Popen[str]) -> str:
    """Kill the process if it still runs; its whole output, also printed (pytest shows it when a test fails)."""
    if process.poll() is None:
        process.kill()
    process.wait()
    with _OUTPUT.pop(process.pid) as output:
        output.seek(0)
        text = output.read()
    print(text)
    return text


def start_worker(database: str, workflows: Path, redis_url: str, *options: str) -> subprocess.Popen[str]:
    return spawn([sys.executable, "-m", "flask", "--app", "app", "worker", *options], database, workflows, redis_url)


def wait_for(predicate: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def submit_and_wait(database: str, workflows: Path, redis_url: str, submission: str) -> bool:
    """POST one event through the real intake and wait for its run to succeed in the ledger."""
    settings = Settings(database_url=database, redis_url=redis_url, workflows_dir=workflows, admin_token=SecretStr("a"))
    app = create_app(settings, environ=SECRETS)
    services = app.extensions[EXTENSION]
    try:
        body = f'{{"submission_id": "{submission}", "name": "x"}}'.encode()
        response = post_hook(app.test_client(), "webform", body, **{"X-Hook-Token": SECRETS["WEBFORM_TOKEN"]})
        (run_id,) = response.get_json()["runs"]

        def succeeded() -> bool:
            with services.db.session() as session:
                return session.get(Run, run_id).status == "succeeded"

        return wait_for(succeeded, 60)
    finally:
        services.close()


@pytest.mark.parametrize("options", [pytest.param([], id="one-worker"), pytest.param(["--threads", "3"], id="threads")])
def test_the_worker_keeps_working_through_a_redis_restart_and_stops_on_sigterm(
    options: list[str], deployment: tuple[str, Path], private_redis: EmbeddedRedis
) -> None:
    database, workflows = deployment
    worker = start_worker(database, workflows, private_redis.url, *options)
    try:
        assert submit_and_wait(database, workflows, private_redis.url, "before"), "no run completed at all"
        # When Redis goes away and comes back empty on the same port
        port = private_redis.port
        private_redis.stop()
        time.sleep(2)
        assert worker.poll() is None, "the worker quit when Redis went away"
        restarted = EmbeddedRedis(port).start()
        try:
            # Then the same worker process runs new work
            assert submit_and_wait(database, workflows, restarted.url, "after"), "no run completed after the restart"
            assert worker.poll() is None
            # And SIGTERM still stops it, promptly and cleanly
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(timeout=20) == 0
        finally:
            restarted.stop()
    finally:
        finish(worker)


@contextmanager
def redis_at(url: str) -> Iterator[Redis]:
    connection = Redis.from_url(url)
    try:
        yield connection
    finally:
        connection.close()


def registered_workers(redis_url: str) -> int:
    with redis_at(redis_url) as connection:
        return Worker.count(connection=connection)


def registered_worker_pids(redis_url: str) -> set[int]:
    with redis_at(redis_url) as connection:
        return {worker.pid for worker in Worker.all(connection=connection)}


FLASK_WORKER = [sys.executable, "-m", "flask", "--app", "app", "worker"]


@pytest.mark.parametrize(
    ("command", "workers"),
    [
        pytest.param([*FLASK_WORKER, "--processes", "2"], 2, id="flask-worker"),
        pytest.param([*FLASK_WORKER, "--processes", "2", "--threads", "3"], 6, id="flask-worker-threads"),
        pytest.param(
            [sys.executable, "-m", "rq.cli", "worker-pool", "hookflow", "-w", "commands.worker.PoolWorker", "-n", "2"],
            2,
            id="rq-worker-pool",
        ),
    ],
)
def test_a_pool_of_step_workers_runs_runs_in_separate_processes_and_stops_on_sigterm(
    command: list[str], workers: int, deployment: tuple[str, Path], private_redis: EmbeddedRedis
) -> None:
    database, workflows = deployment
    if "rq.cli" in command:
        command = [*command, "--url", private_redis.url]
    pool = spawn(command, database, workflows, private_redis.url)
    try:
        # Its step workers register, in two processes of their own (not the pool's)
        assert wait_for(lambda: registered_workers(private_redis.url) == workers, 60), "the pool did not start"
        assert len(registered_worker_pids(private_redis.url)) == 2
        assert pool.pid not in registered_worker_pids(private_redis.url)
        # They run work inside the app (the step job finds its services) ...
        for submission in ("one", "two", "three"):
            assert submit_and_wait(database, workflows, private_redis.url, submission), f"run {submission} never ran"
        # ... and SIGTERM stops the pool and its workers
        pool.send_signal(signal.SIGTERM)
        pool.wait(timeout=30)
        assert wait_for(lambda: not registered_worker_pids(private_redis.url), 10)
    finally:
        output = finish(pool)
    assert "Traceback" not in output, output


@contextmanager
def two_threads_napping(
    deployment: tuple[str, Path], redis_url: str, seconds: float
) -> Iterator[subprocess.Popen[str]]:
    """`flask worker --threads 2`, each thread in a job that sleeps `seconds` like a step waiting on an API."""
    database, workflows = deployment
    worker = start_worker(database, workflows, redis_url, "--threads", "2")
    try:
        assert wait_for(lambda: registered_workers(redis_url) == 2, 60), "the workers did not start"
        with redis_at(redis_url) as connection:
            for _ in range(2):
                Queue("hookflow", connection=connection).enqueue("tests.engine.test_worker_threads.nap", seconds)
            started = StartedJobRegistry("hookflow", connection=connection)
            assert wait_for(lambda: started.count == 2, 20), "the two jobs did not both start"
        yield worker
    finally:
        finish(worker)


def naps_done(redis_url: str) -> int:
    with redis_at(redis_url) as connection:
        return connection.llen("test:naps")


def test_sigterm_lets_every_thread_finish_its_step_in_hand(
    deployment: tuple[str, Path], private_redis: EmbeddedRedis
) -> None:
    with two_threads_napping(deployment, private_redis.url, 3.0) as worker:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
    assert naps_done(private_redis.url) == 2  # the crew's thread finished its job too, not only the main one


def test_a_second_sigterm_stops_at_once_without_waiting_for_the_threads(
    deployment: tuple[str, Path], private_redis: EmbeddedRedis
) -> None:
    with two_threads_napping(deployment, private_redis.url, 60.0) as worker:
        worker.send_signal(signal.SIGTERM)
        time.sleep(1.5)  # RQ ignores a second signal within a second of the first
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=15)  # far less than the naps' 60 s; raises if the process is still there
    assert naps_done(private_redis.url) == 0
