"""The facts a reader needs to reproduce the numbers: machine, software versions, code revision, date."""

from __future__ import annotations

import os
import platform
import subprocess
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
