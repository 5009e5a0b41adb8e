"""`make run`'s launcher (python -m bootstrap.run), started and stopped the way a user does it.

The system tests start real honcho, gunicorn, two workers and the BigChange
sandbox, each in its own process, against real Redis and a SQLite file. They
walk the 60-second tour the launcher prints, then press Ctrl-C (SIGINT to the
launcher's process group) and check that nothing is left running. A few fast
tests pin what the launcher prints and which values it fills.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import redis

from bootstrap import run
from bootstrap.embedded_redis import free_port
from bootstrap.procs import port_in_use
from schemas.settings import PROJECT_ROOT

T = TypeVar("T")
# Set by a developer's shell, these would change what the launcher decides; the tests want its defaults.
UNSET = (
    "BIGCHANGE_API_KEY",
    "BIGCHANGE_BASE_URL",
    "ADMIN_TOKEN",
    "WEBFORM_TOKEN",
    "ACCOUNTS_SECRET",
    "WORKFLOWS_DIR",
    "PORT",
)
STARTUP_SECONDS = 60.0
RUN_SECONDS = 60.0
SHUTDOWN_SECONDS = 20.0
TOUR_CALLS = [
    ("POST", "/contacts/create"),
    ("POST", "/jobs/create"),
    ("POST", "/jobs/constraints/create"),
    ("POST", "/jobs/scheduling"),
]


@dataclass
class Launcher:
    """A running `python -m bootstrap.run`, its output file and the ports it was given."""

    process: subprocess.Popen[bytes]
    log: Path
    web_port: int
    sandbox_port: int
    embedded_redis_port: int

    @property
    def web(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def sandbox(self) -> str:
        return f"http://127.0.0.1:{self.sandbox_port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def explain(self, message: str) -> str:
        """`message` followed by everything the launcher and its processes printed."""
        return f"{message}\n----- launcher output -----\n{self.output()}"

    def wait_for(self, what: str, check: Callable[[], T | None], timeout: float) -> T:
        """Poll `check` until it returns a value; fail early if the launcher exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(self.explain(f"the launcher exited ({self.process.returncode}) while waiting for {what}"))
            value = check()
            if value is not None:
                return value
            time.sleep(0.2)
        pytest.fail(self.explain(f"timed out after {timeout:.0f}s waiting for {what}"))

    def interrupt(self) -> int:
        """Ctrl-C, as a terminal sends it: SIGINT to the launcher's whole process group."""
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            return self.process.wait(timeout=SHUTDOWN_SECONDS)
        except subprocess.TimeoutExpired:
            pytest.fail(self.explain(f"the launcher did not exit within {SHUTDOWN_SECONDS:.0f}s of SIGINT"))

    def started_process_groups(self) -> dict[str, int]:
        """Each honcho process (`web.1`, `worker.2`, ...) and its pid, which is also its process group."""
        return {name: int(pid) for name, pid in re.findall(r"\| (\S+) started \(pid=(\d+)\)", self.output())}


def _get(url: str, **headers: str) -> httpx.Response | None:
    try:
        return httpx.get(url, headers=headers, timeout=2)
    except httpx.TransportError:
        return None


def _alive_in_session(session_id: int) -> list[int]:
    """Pids of live processes in a session: the launcher's own children (honcho, an embedded Redis)."""
    alive = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.getsid(int(entry)) == session_id:
                    alive.append(int(entry))
            except (ProcessLookupError, PermissionError):
                continue
    return alive


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _leftovers(launcher: Launcher) -> list[str]:
    """Everything the launcher started that is still running or listening."""
    left = [
        f"{name} (process group {pgid})"
        for name, pgid in launcher.started_process_groups().items()
        if _group_alive(pgid)
    ]
    left += [f"pid {pid} in the launcher's session" for pid in _alive_in_session(launcher.process.pid)]
    ports = {"web": launcher.web_port, "sandbox": launcher.sandbox_port, "redis": launcher.embedded_redis_port}
    left += [f"{name} port {port} still open" for name, port in ports.items() if port_in_use(port)]
    return left


def _assert_nothing_left(launcher: Launcher) -> None:
    # Bounded: grandchildren (gunicorn's workers, RQ's scheduler) exit a moment after their parents.
    deadline = time.monotonic() + 5.0
    while (left := _leftovers(launcher)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, launcher.explain(f"still running after the launcher exited: {left}")


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Callable[..., Launcher]]:
    """Start the launcher with free ports and a fresh SQLite file; extra keyword arguments are env vars."""
    started: list[Launcher] = []

    def start(**env_vars: str) -> Launcher:
        ports = {"WEB_PORT": free_port(), "SANDBOX_PORT": free_port(), "EMBEDDED_REDIS_PORT": free_port()}
        env = {name: value for name, value in os.environ.items() if name not in UNSET}
        env.update({name: str(port) for name, port in ports.items()})
        env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'hookflow.db'}"
        env.update(env_vars)
        log = tmp_path / "launcher.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "bootstrap.run"],
                cwd=PROJECT_ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        launcher = Launcher(process, log, *ports.values())
        started.append(launcher)
        return launcher

    yield start
    for launcher in started:  # a failed test must not leave a stack running
        if launcher.process.poll() is None:
            os.killpg(launcher.process.pid, signal.SIGINT)
            try:
                launcher.process.wait(timeout=SHUTDOWN_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(launcher.process.pid, signal.SIGKILL)
                launcher.process.wait()
        for pgid in launcher.started_process_groups().values():
            if _group_alive(pgid):
                os.killpg(pgid, signal.SIGKILL)
        for pid in _alive_in_session(launcher.process.pid):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def launcher_redis_url(redis_url: str) -> str:
    """The suite's Redis, on the db just below the suite's (the in-process tests flush theirs), emptied first.

    Deriving it from the suite's db keeps two suites run side by side on different dbs apart.
    """
    match = re.search(r"/(\d+)$", redis_url)
    db = int(match.group(1)) if match else 0
    url = re.sub(r"/\d+$", "", redis_url) + f"/{db - 1 if db > 0 else db + 1}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()
    return url


def _ready(launcher: Launcher) -> None:
    launcher.wait_for("GET /readyz = 200", lambda: _ok(_get(f"{launcher.web}/readyz")), STARTUP_SECONDS)


def _ok(response: httpx.Response | None) -> bool | None:
    return True if response is not None and response.status_code == 200 else None


def _last_request(step: dict[str, Any]) -> dict[str, Any]:
    """The JSON body of the last API call the step's last attempt made."""
    return step["attempts"][-1]["calls"][-1]["body"]


@pytest.mark.system
def test_make_run_serves_the_tour_end_to_end_and_stops_cleanly_on_ctrl_c(
    launch: Callable[..., Launcher], launcher_redis_url: str
) -> None:
    # Given: the launcher with no BigChange key and no tokens set, so the sandbox and dev defaults are used
    launcher = launch(REDIS_URL=launcher_redis_url)
    _ready(launcher)
    launcher.wait_for(
        "the sandbox", lambda: _ok(_get(f"{launcher.sandbox}/bigchange/__sandbox__/calls")), STARTUP_SECONDS
    )
    output = launcher.output()
    assert "WEBFORM_TOKEN=dev-webform-token" in output, launcher.explain("the filled default is not printed")
    assert "No credentials for: BigChange" in output, launcher.explain("no sandbox banner")

    # When: the tour's first curl sends the example enquiry with the default token
    accepted = httpx.post(
        f"{launcher.web}/hooks/webform",
        content=(PROJECT_ROOT / "examples" / "web-enquiry.json").read_bytes(),
        headers={"Content-Type": "application/json", "X-Hook-Token": "dev-webform-token"},
        timeout=10,
    )
    assert accepted.status_code == 202, launcher.explain(f"POST /hooks/webform answered {accepted.text}")
    (run_id,) = accepted.json()["runs"]

    # Then: the workers run all 4 steps, each feeding the next the ids the sandbox handed out
    def finished() -> dict[str, Any] | None:
        response = _get(f"{launcher.web}/api/runs/{run_id}", Authorization="Bearer dev-admin-token")
        run = response.json() if response is not None and response.status_code == 200 else None
        return run if run is not None and run["status"] in ("succeeded", "failed", "cancelled") else None

    run = launcher.wait_for(f"run {run_id} to finish", finished, RUN_SECONDS)
    assert run["status"] == "succeeded", launcher.explain(f"run: {run}")
    steps = {step["id"]: step for step in run["steps"]}
    assert [(s["id"], s["status"]) for s in run["steps"]] == [
        ("contact", "succeeded"),
        ("job", "succeeded"),
        ("constraint", "succeeded"),
        ("schedule", "succeeded"),
    ], launcher.explain(f"run: {run}")
    contact_id, job_id = steps["contact"]["output"]["id"], steps["job"]["output"]["id"]
    assert _last_request(steps["job"])["contactId"] == contact_id
    assert _last_request(steps["constraint"])["jobId"] == job_id
    assert _last_request(steps["schedule"])["jobId"] == job_id

    # And: the sandbox, not real BigChange, received each call exactly once, in order
    calls = httpx.get(f"{launcher.sandbox}/bigchange/__sandbox__/calls", timeout=5).json()
    assert [(c["method"], c["path"]) for c in calls] == TOUR_CALLS, launcher.explain(f"sandbox calls: {calls}")

    # When: the user presses Ctrl-C
    launcher.interrupt()

    # Then: the launcher has exited, and nothing it started survives
    _assert_nothing_left(launcher)


@pytest.mark.system
def test_make_run_starts_an_embedded_redis_when_none_answers(launch: Callable[..., Launcher]) -> None:
    # Given: REDIS_URL pointing at a port where nothing listens
    launcher = launch(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")

    # When: the stack comes up
    _ready(launcher)

    # Then: it runs on the embedded Redis, and Ctrl-C stops that Redis along with everything else
    embedded = f"redis://127.0.0.1:{launcher.embedded_redis_port}/0"
    assert f"EMBEDDED redis-server at {embedded}" in launcher.output(), launcher.explain("no embedded Redis banner")
    launcher.interrupt()
    _assert_nothing_left(launcher)


# --- What the launcher prints and fills (fast, no processes) -----------------------------------


def test_only_unset_secrets_get_dev_defaults_and_a_set_value_is_never_printed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given: the user chose an admin token; the webform token is set but empty
    env = {"ADMIN_TOKEN": "users-own-admin-token", "WEBFORM_TOKEN": ""}

    # When
    filled = run.fill_dev_defaults(env)
    run.print_tour(env, filled, run.Ports(web=8000, sandbox=8001, embedded_redis=6390), with_sandbox=True)

    # Then: the two unset ones are filled and printed; the user's token is neither changed nor echoed
    printed = capsys.readouterr().out
    assert filled == {"WEBFORM_TOKEN", "ACCOUNTS_SECRET"}
    assert env["ADMIN_TOKEN"] == "users-own-admin-token"
    assert "WEBFORM_TOKEN=dev-webform-token" in printed and "ACCOUNTS_SECRET=dev-accounts-secret" in printed
    assert "users-own-admin-token" not in printed
    assert '-H "Authorization: Bearer $ADMIN_TOKEN"' in printed
    assert '-H "X-Hook-Token: dev-webform-token" --data-binary @examples/web-enquiry.json' in printed


def test_connectors_with_credentials_keep_the_sandbox_out(capsys: pytest.CaptureFixture[str]) -> None:
    real = {
        "BIGCHANGE_API_KEY": "real-key",
        "BIGCHANGE_BASE_URL": "https://bigchange.example",
        "BIGCHANGE_WEBSERVICE_KEY": "ws",
        "LIGHTENING_TOKEN": "lt",
        "ADDITIV_TOKEN": "ad",
    }
    env = dict(real)

    assert run.choose_sandboxes(env, sandbox_port=8001) is False

    assert env == real
    assert "real-key" not in capsys.readouterr().out
    assert "sandbox" not in run.honcho_command(Path("/venv/bin"), with_sandbox=False)


def test_no_bigchange_key_points_steps_at_the_sandbox_and_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    env: dict[str, str] = {"LIGHTENING_TOKEN": "lt", "ADDITIV_TOKEN": "ad", "BIGCHANGE_WEBSERVICE_KEY": "ws"}

    assert run.choose_sandboxes(env, sandbox_port=9101) is True

    assert env["BIGCHANGE_BASE_URL"] == "http://127.0.0.1:9101/bigchange"
    assert env["BIGCHANGE_API_KEY"] == "sandbox-key"
    assert "LIGHTENING_BASE_URL" not in env
    printed = capsys.readouterr().out
    assert "No credentials for: BigChange." in printed and "NOTHING reaches those real APIs" in printed


def test_every_connector_without_credentials_gets_its_simulator() -> None:
    env: dict[str, str] = {}
    run.choose_sandboxes(env, sandbox_port=8001)
    assert env["LIGHTENING_BASE_URL"] == "http://127.0.0.1:8001/lightening"
    assert env["ADDITIV_BASE_URL"] == "http://127.0.0.1:8001/additiv"
    assert env["BIGCHANGE_WEBSERVICE_URL"] == "http://127.0.0.1:8001/bigchange-webservice/services.ashx"


def test_dotenv_fills_in_but_the_real_environment_wins(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("WEB_PORT=9000\nADMIN_TOKEN=from-dotenv\n")

    env = run.load_environment({"WEB_PORT": "9100"}, dotenv)

    assert env == {"WEB_PORT": "9100", "ADMIN_TOKEN": "from-dotenv"}


def test_a_password_in_a_url_is_not_printed() -> None:
    assert run.redacted("redis://:s3cret@redis.internal:6379/0") == "redis://:***@redis.internal:6379/0"
    assert run.redacted("postgresql+psycopg://app:pw@db/hookflow") == "postgresql+psycopg://app:***@db/hookflow"
    assert run.redacted("redis://localhost:6379/0") == "redis://localhost:6379/0"
