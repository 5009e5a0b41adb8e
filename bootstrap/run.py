"""`make run`: Hookflow's whole stack on one machine, with development defaults (`python -m bootstrap.run`).

Why a launcher in front of `honcho start`: some decisions must be taken before
any process starts. Web and worker must find Redis up, so an embedded one is
started here when none answers; the BigChange sandbox stands in only when no
real key is set; and the database is migrated once, not by every process.
Every decision is printed, loudly where it matters; values the user set are
never echoed (they may be secrets).

Configuration is a plain dict, read once from the environment (and `.env`) in
`main()`, prepared step by step, and handed to each child process.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from honcho.environ import parse as parse_dotenv

from bootstrap.embedded_redis import EmbeddedRedis, free_port, redis_answers
from bootstrap.procs import port_in_use, run_forwarding_signals
from sandbox.mounts import SIMULATED, sandbox_settings

ROOT = Path(__file__).resolve().parent.parent
DEV_DEFAULTS = {
    "ADMIN_TOKEN": "dev-admin-token",
    "WEBFORM_TOKEN": "dev-webform-token",
    "ACCOUNTS_SECRET": "dev-accounts-secret",
}
DEFAULT_REDIS_URL = "redis://localhost:6379/0"
SANDBOX_API_KEY = "sandbox-key"  # what `flask sandbox` accepts by default
WORKER_PROCESSES = 2

Env = MutableMapping[str, str]


@dataclass(frozen=True)
class Ports:
    web: int
    sandbox: int
    embedded_redis: int

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Ports:
        return cls(
            web=_port(env, "WEB_PORT", 8000),
            sandbox=_port(env, "SANDBOX_PORT", 8001),
            embedded_redis=_port(env, "EMBEDDED_REDIS_PORT", 6390),
        )


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    value = env.get(name) or str(default)
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise SystemExit(f"{name} must be a TCP port number, not {value!r}")
    return int(value)


def say(*lines: str) -> None:
    print(*lines, sep="\n", flush=True)  # flushed: honcho's output interleaves with ours


def banner(*lines: str) -> None:
    rule = "=" * 78
    say("", rule, *(f"  {line}" for line in lines), rule)


def redacted(url: str) -> str:
    """`url` without its password, fit to print."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def load_environment(environ: Mapping[str, str], dotenv: Path) -> dict[str, str]:
    """The environment the stack runs with: `.env` (honcho's format) under the real environment, which wins.

    The launcher reads `.env` itself (and tells honcho not to) so its decisions
    and the processes it starts see the same values.
    """
    values = parse_dotenv(dotenv.read_text()) if dotenv.is_file() else {}
    return {**values, **environ}


def fill_dev_defaults(env: Env) -> set[str]:
    """Set each unset development secret to its default, print it, and return the names filled."""
    filled = {name for name in DEV_DEFAULTS if not env.get(name)}
    for name in sorted(filled):
        env[name] = DEV_DEFAULTS[name]
        say(f"{name}={DEV_DEFAULTS[name]}    (development default: export {name} to choose your own)")
    return filled


def ensure_redis(env: Env, embedded_port: int) -> EmbeddedRedis | None:
    """Use the Redis at REDIS_URL if it answers; else start an embedded one and point REDIS_URL at it.

    Returns:
        The embedded Redis to stop when the stack stops, or None.
    """
    wanted = env["REDIS_URL"] = env.get("REDIS_URL") or DEFAULT_REDIS_URL
    if redis_answers(wanted):
        banner(f"Redis: using the one answering at REDIS_URL={redacted(wanted)}")
        return None
    port = free_port() if port_in_use(embedded_port) else embedded_port
    embedded = EmbeddedRedis(port).start()
    env["REDIS_URL"] = embedded.url
    banner(
        f"Redis: nothing answered at {redacted(wanted)},",
        f"so make run started an EMBEDDED redis-server at {embedded.url}.",
        "It lives in memory and stops with make run (the database keeps every run).",
    )
    return embedded


def choose_sandboxes(env: Env, sandbox_port: int) -> bool:
    """Point every connector without credentials at the sandbox; True when the sandbox must run."""
    base = f"http://127.0.0.1:{sandbox_port}"
    simulated = []
    for connector in SIMULATED:
        credential = connector.credential.upper()
        if env.get(credential):
            say(f"{connector.connector}: steps call the real API with your {credential}.")
            continue
        settings = sandbox_settings(base, SANDBOX_API_KEY, (connector,))
        env.update({name.upper(): value for name, value in settings.items()})
        simulated.append(connector)
    if simulated:
        credentials = " / ".join(c.credential.upper() for c in simulated)
        banner(
            f"No credentials for: {', '.join(c.connector for c in simulated)}.",
            f"Their steps go to the SANDBOX at {base} (simulators started by make run).",
            f"NOTHING reaches those real APIs. Set {credentials} to use them.",
        )
    return bool(simulated)


def busy_ports(ports: Mapping[str, int]) -> list[str]:
    """The `NAME=port` entries whose port something already listens on."""
    return [f"{name}={port}" for name, port in ports.items() if port_in_use(port)]


def migrate(env: Mapping[str, str], bin_dir: Path) -> int:
    """Bring DATABASE_URL to the latest schema, once, before any process uses it.

    Through `flask db upgrade` so the URL is read by Settings exactly as the
    web and worker processes will read it (and a SQLite directory gets created).

    Returns:
        The exit code of `flask db upgrade`.
    """
    say(f"Database: migrating {redacted(env.get('DATABASE_URL') or 'the default SQLite file in instance/')}")
    command = [str(bin_dir / "flask"), "--app", "app", "db", "upgrade"]
    return subprocess.run(command, env=dict(env), cwd=ROOT, check=False).returncode


def print_tour(env: Mapping[str, str], filled: set[str], ports: Ports, with_sandbox: bool) -> None:
    """The 60-second tour: the exact commands to send the example enquiry and watch its run."""

    def secret(name: str) -> str:
        return env[name] if name in filled else f"${name}"  # never echo a value the user chose

    base = f"http://localhost:{ports.web}"
    lines = [
        f"Hookflow is starting on {base} (ready when {base}/readyz answers 200).",
        "60-second tour:",
        "  1. Send the example web enquiry (answers 202 with a run id):",
        f"     curl -sS -X POST {base}/hooks/webform -H 'Content-Type: application/json' \\",
        f'       -H "X-Hook-Token: {secret("WEBFORM_TOKEN")}" --data-binary @examples/web-enquiry.json',
        "     (the same submission_id again answers 200 duplicate: edit it to send another)",
        "  2. Watch its 4 steps run (contact -> job -> constraint -> schedule):",
        f'     curl -sS {base}/api/runs/<run_id> -H "Authorization: Bearer {secret("ADMIN_TOKEN")}"',
    ]
    if with_sandbox:
        lines += [
            "  3. See what the BigChange sandbox received:",
            f"     curl -sS http://127.0.0.1:{ports.sandbox}/bigchange/__sandbox__/calls",
        ]
    banner(*lines, "Stop with Ctrl-C.")


def honcho_command(bin_dir: Path, with_sandbox: bool) -> list[str]:
    processes = ["web", "worker", *(["sandbox"] if with_sandbox else [])]
    # --env /dev/null: .env was already merged by load_environment; honcho must not re-apply it over our decisions.
    return [
        str(bin_dir / "honcho"),
        "start",
        "--procfile",
        "Procfile",
        "--env",
        os.devnull,
        "--concurrency",
        f"worker={WORKER_PROCESSES}",
        *processes,
    ]


def child_environment(env: Env, ports: Ports, bin_dir: Path) -> None:
    """What every child needs besides the decisions: its ports, this venv's tools first on PATH, unbuffered logs."""
    env["WEB_PORT"], env["SANDBOX_PORT"] = str(ports.web), str(ports.sandbox)
    env["PATH"] = os.pathsep.join([str(bin_dir), env.get("PATH", "")])
    env.setdefault("PYTHONUNBUFFERED", "1")


def main() -> int:
    """Prepare, migrate, run the stack until it stops; the exit code is honcho's."""
    # A SIGTERM before honcho runs unwinds like Ctrl-C, so the embedded Redis is still stopped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    bin_dir = Path(sys.executable).parent
    env = load_environment(os.environ, ROOT / ".env")
    ports = Ports.from_env(env)
    child_environment(env, ports, bin_dir)
    filled = fill_dev_defaults(env)
    with_sandbox = choose_sandboxes(env, ports.sandbox)
    busy = busy_ports({"WEB_PORT": ports.web, **({"SANDBOX_PORT": ports.sandbox} if with_sandbox else {})})
    if busy:
        say(f"make run: port already in use: {', '.join(busy)}. Stop what listens there, or choose another port.")
        return 1
    embedded = ensure_redis(env, ports.embedded_redis)
    try:
        migrated = migrate(env, bin_dir)
        if migrated != 0:
            say(f"make run: the database migration failed (exit code {migrated}, see above); nothing started.")
            return migrated
        # Prometheus' multiprocess files belong to one run of the processes: start the counters afresh.
        shutil.rmtree(ROOT / "instance" / "prometheus", ignore_errors=True)
        print_tour(env, filled, ports, with_sandbox)
        return run_forwarding_signals(honcho_command(bin_dir, with_sandbox), env, ROOT)
    finally:
        if embedded is not None:
            embedded.stop()
            say(f"Stopped the embedded Redis at {embedded.url}.")


if __name__ == "__main__":
    sys.exit(main())
