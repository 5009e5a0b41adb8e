"""The shared request budget holds a burst of events under the limit with two worker processes.

Two real `flask worker --burst` processes (the command `make run` starts, configured
through the environment as in production) drain a burst of web enquiries against
the sandbox. The sandbox stamps each call with its arrival time; no one-second
window may hold more than rate + burst calls, and every run must still succeed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from engine.services import Services
from schemas.settings import PROJECT_ROOT
from tests.conftest import SANDBOX_KEY, SECRETS, SHIPPED_WORKFLOWS, Sandbox
from tests.test_pipeline import enquiry, get_run, submit

RATE, BURST = 8.0, 4
EVENTS = 10  # four calls each: 40 calls, about five seconds at this rate
WORKER_SECONDS = 60


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"bigchange_requests_per_second": RATE, "bigchange_burst": BURST, "rate_limit_max_wait_seconds": 10}


def worker_environment(services: Services, sandbox: Sandbox) -> dict[str, str]:
    """What a deployed worker reads: the test's settings, passed the production way."""
    settings = services.settings
    environ = {key: value for key, value in os.environ.items() if not key.startswith(("BIGCHANGE_", "HOOKFLOW_"))}
    return (
        environ
        | SECRETS
        | {
            "DATABASE_URL": settings.database_url,
            "REDIS_URL": settings.redis_url,
            "WORKFLOWS_DIR": str(SHIPPED_WORKFLOWS),
            "BIGCHANGE_BASE_URL": sandbox.url,
            "BIGCHANGE_API_KEY": SANDBOX_KEY,
            "BIGCHANGE_REQUESTS_PER_SECOND": str(RATE),
            "BIGCHANGE_BURST": str(BURST),
            "RATE_LIMIT_MAX_WAIT_SECONDS": "10",  # wait in place: a deferred step would outlive a burst worker
            "HTTP_TIMEOUT_SECONDS": "5",
            "QUEUE_NAME": settings.queue_name,
        }
    )


def run_two_workers(environ: dict[str, str], logs: Path) -> list[str]:
    """Start two burst workers at once, wait for both, return what each logged."""
    command = [sys.executable, "-m", "flask", "--app", "app", "worker", "--burst", "--no-reconciler"]
    paths = [logs / f"worker-{n}.log" for n in (1, 2)]
    processes = []
    for path in paths:
        with path.open("wb") as log:
            processes.append(
                subprocess.Popen(command, cwd=PROJECT_ROOT, env=environ, stdout=log, stderr=subprocess.STDOUT)
            )
    try:
        for process in processes:
            process.wait(timeout=WORKER_SECONDS)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    outputs = [path.read_text(errors="replace") for path in paths]
    assert [p.returncode for p in processes] == [0, 0], "\n".join(outputs)
    return outputs


def busiest_second(times: list[float]) -> int:
    """The most calls that arrived within any one-second window [t, t + 1)."""
    times = sorted(times)
    return max(sum(1 for other in times[i:] if other < start + 1.0) for i, start in enumerate(times))


@pytest.mark.system
def test_two_workers_share_one_budget_and_every_run_succeeds(
    client: FlaskClient, services: Services, sandbox: Sandbox, admin: dict[str, str], tmp_path: Path
) -> None:
    # Given a burst of enquiries, all queued at once
    run_ids = [submit(client, enquiry(submission_id=f"burst-{n}"))["runs"][0] for n in range(EVENTS)]
    # When two worker processes drain them
    outputs = run_two_workers(worker_environment(services, sandbox), tmp_path)
    # Then both workers did work, and every run succeeded without a single 429
    assert all("Job OK" in output for output in outputs), outputs
    runs = [get_run(client, admin, run_id) for run_id in run_ids]
    assert [run["status"] for run in runs] == ["succeeded"] * EVENTS, json.dumps(runs)[:2000]
    calls = sandbox.calls()
    assert len(calls) == EVENTS * 4 and {call["status"] for call in calls} <= {201, 204}
    # And no second saw more calls than the budget allows
    assert busiest_second([call["at"] for call in calls]) <= RATE + BURST
