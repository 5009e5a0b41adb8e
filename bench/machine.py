"""The facts a reader needs to reproduce the numbers: machine, software versions, code revision, date."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("Flask", "Werkzeug", "gunicorn", "rq", "redis", "SQLAlchemy", "psycopg", "httpx", "pydantic", "py-spy")


def cpu_model(cpuinfo: str) -> str:
    for line in cpuinfo.splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def mem_total_gib(meminfo: str) -> float | None:
    for line in meminfo.splitlines():
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / 1024 / 1024, 1)
    return None


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    return {
        "cpu": cpu_model(cpuinfo),
        "cores": os.cpu_count(),
        "ram_gib": mem_total_gib(Path("/proc/meminfo").read_text()),
        "kernel": platform.release(),
    }


# A webhook-sized payload: the probe's work looks like the measured code's (dicts, strings, JSON).
_PROBE_PAYLOAD = {
    "submission_id": "probe-0001",
    "name": "Ada Lovelace",
    "email": "ada@example.com",
    "phone": "+44 20 7946 0000",
    "address": {"line1": "12 Analytical Row", "town": "London", "postcode": "EC1A 1BB"},
    "message": "Please call about a boiler service. " * 8,
    "fields": [{"key": f"field_{n}", "value": n * 3.5, "ok": n % 2 == 0} for n in range(20)],
}


def speed_probe(rounds: int = 10, loops: int = 1000, pause: float = 0.1) -> dict[str, float]:
    """Milliseconds of CPU a fixed pure-Python workload takes here now: best and median of `rounds`.

    The machine's own speed drifts between runs and within one (a shared host: on
    2026-12-07 this probe flipped between ~27 and ~45 ms within seconds, and the same
    code's CPU per webhook moved by ~30% within an hour), and every number in the report
    moves with it. Probed at the start, between the phases and at the end, it says whether
    two reports, or two phases of one, ran on an equally fast machine: the best is the
    machine's speed, a median well above it means it was often slower. The rounds are
    spread over about a second so that a short slow spell does not decide it.
    """
    times = []
    for n in range(rounds):
        if n:
            time.sleep(pause)
        started = time.process_time()
        for _ in range(loops):
            json.loads(json.dumps(_PROBE_PAYLOAD))
        times.append((time.process_time() - started) * 1000)
    times.sort()
    return {"best_ms": round(times[0], 1), "median_ms": round(times[len(times) // 2], 1)}


def versions() -> dict[str, str]:
    found = {"Python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def _git(repo: Path, *args: str) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def revision(repo: Path, source: str) -> dict[str, Any]:
    """What code was measured: HEAD's commit and uncommitted files when the run started, and which was copied."""
    changed = [line for line in _git(repo, "status", "--porcelain", "--untracked-files=no").splitlines() if line]
    head = _git(repo, "rev-parse", "--short", "HEAD") or "unknown"
    if source == "worktree":
        measured = f"the working tree (HEAD {head}, {len(changed)} uncommitted file(s))"
    else:
        measured = f"commit {_git(repo, 'rev-parse', '--short', source) or source} ({source})"
    return {"commit": head, "uncommitted_files": len(changed), "measured": measured}


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
