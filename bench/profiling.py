"""py-spy on a running process, and the top frames of what it recorded.

py-spy samples from outside the process (`--nonblocking`: without pausing it),
so the profiled worker runs the same code as the measured ones. Two processes
of the same kind are recorded at once: one as an SVG flamegraph for people, one
as raw collapsed stacks that `top_frames` summarises for the report (and that
speedscope or flamegraph.pl can load too).
"""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.infra import VENV_BIN, BenchSetupError
from bench.procs import Child, Supervisor
from schemas.settings import PROJECT_ROOT

_LINE_NUMBER = re.compile(r":\d+\)$")
PROJECT_PACKAGES = frozenset({"app", "engine", "web", "handlers", "commands", "schemas"})


def py_spy() -> str:
    """The py-spy executable.

    Raises:
        BenchSetupError: it is not installed (it comes with requirements-dev.txt).
    """
    found = VENV_BIN / "py-spy"
    if found.exists():
        return str(found)
    on_path = shutil.which("py-spy")
    if on_path is None:
        raise BenchSetupError("py-spy is not installed: .venv/bin/pip install -r requirements-dev.txt")
    return on_path


@dataclass
class Recording:
    child: Child
    output: Path


def start(supervisor: Supervisor, name: str, pid: int, output: Path, gil_only: bool = False) -> Recording:
    """Record `pid` at 100 Hz into `output` (an .svg flamegraph, or raw collapsed stacks) until `stop`."""
    fmt = "flamegraph" if output.suffix == ".svg" else "raw"
    argv = [py_spy(), "record", "--pid", str(pid), "--rate", "100", "--nonblocking", "--format", fmt]
    argv += ["--output", str(output), *(["--gil"] if gil_only else [])]
    return Recording(supervisor.start(name, argv, {"PATH": str(VENV_BIN)}, PROJECT_ROOT), output)


GIL_PROCESSES = 2  # processes of one kind recorded for the summary; more py-spy processes would eat the CPU measured


def start_pair(supervisor: Supervisor, kind: str, pids: list[int], directory: Path) -> list[Recording]:
    """Processes of one kind: the first as a flamegraph of every non-idle sample (wall time, waits
    included), and up to GIL_PROCESSES of them as raw stacks of only the samples holding the GIL
    (Python's CPU time), which is what `top_frames` summarises: on a saturated 2-core machine the CPU,
    not the waits, sets throughput. More than one, because the load need not reach every process:
    gunicorn's workers race to accept connections, and one of two once took all 16 (0 samples).
    """
    recordings = [start(supervisor, f"py-spy-{kind}-svg", pids[0], directory / f"{kind}-flamegraph.svg")]
    for n, pid in enumerate(pids[:GIL_PROCESSES], start=1):
        output = directory / f"{kind}-profile-gil-{n}.txt"
        recordings.append(start(supervisor, f"py-spy-{kind}-gil-{n}", pid, output, gil_only=True))
    return recordings


def stop_all(supervisor: Supervisor, recordings: list[Recording]) -> dict[str, Any]:
    """Stop the recordings; the files written and the summary of the raw ones, merged."""
    files = [path for recording in recordings if (path := stop(supervisor, recording)) is not None]
    return {"files": [str(path) for path in files], "top": merged_top(files)}


def merged_top(files: list[Path]) -> dict[str, Any] | None:
    """`top_frames` over every raw recording among `files` together (None: there is none)."""
    raws = [path.read_text() for path in files if path.suffix == ".txt"]
    return top_frames("\n".join(raws)) if raws else None


def stop(supervisor: Supervisor, recording: Recording, timeout: float = 30.0) -> Path | None:
    """Ask py-spy to finish (SIGINT, as Ctrl-C would) and wait for its file; None if it wrote none."""
    if recording.child.alive():
        recording.child.popen.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):  # the supervisor kills it below
            recording.child.popen.wait(timeout)
    supervisor.stop(recording.child)
    return recording.output if recording.output.exists() else None


def _function(frame: str) -> str:
    return _LINE_NUMBER.sub(")", frame.strip())


def _package(frame: str) -> str:
    """`execute (engine/runner.py)` -> `engine`; `select (selectors.py)` -> `selectors`."""
    inside = frame.rpartition("(")[2].rstrip(")")
    return re.split(r"[/.]", inside, maxsplit=1)[0] or "?"


def _ranked(counter: Counter[str], samples: int, limit: int) -> list[dict[str, Any]]:
    return [
        {"frame": frame, "samples": n, "pct": round(100 * n / samples, 1)} for frame, n in counter.most_common(limit)
    ]


def top_frames(raw: str, limit: int = 15) -> dict[str, Any]:
    """Where the samples were, three ways.

    - `self`: the innermost function of each sample (where the time is spent);
    - `packages`: the same, summed by top-level package (psycopg, redis, rq, engine, …);
    - `ours`: Hookflow's own functions anywhere on the stack (what calls that time).

    `raw` is py-spy's raw format, one `frame;frame;…;frame count` line per distinct
    stack (outermost first); line numbers are dropped so a function counts once.
    """
    self_time: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    samples = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [_function(f) for f in stack.split(";") if f.strip()]
        if not frames or not count.isdigit():
            continue
        n = int(count)
        samples += n
        self_time[frames[-1]] += n
        packages[_package(frames[-1])] += n
        for frame in {f for f in frames if _package(f) in PROJECT_PACKAGES}:
            ours[frame] += n
    if not samples:
        return {"samples": 0, "self": [], "packages": [], "ours": []}
    return {
        "samples": samples,
        "self": _ranked(self_time, samples, limit),
        "packages": _ranked(packages, samples, limit),
        "ours": _ranked(ours, samples, limit),
    }
