"""Child processes the harness starts, and what /proc says about them.

Every child starts in its own session (so its process group is its own, and a
Ctrl-C at the terminal reaches only the harness), is registered with the
Supervisor, and is stopped by process group id when the phase ends, when the
harness fails, or when it is interrupted: nothing the bench starts outlives it,
and nothing it did not start is touched.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
CORES = os.cpu_count() or 1


def free_port() -> int:
    """A port nothing listens on right now (the kernel's pick)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Child:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None


class ChildFailed(RuntimeError):
    """A child exited or never became ready; the message points at its log."""


class Supervisor:
    """Starts children and guarantees they are stopped (context manager)."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.children: list[Child] = []

    def start(self, name: str, argv: Sequence[str], env: Mapping[str, str], cwd: Path) -> Child:
        log = self.log_dir / f"{name}.log"
        with log.open("ab") as out:
            popen = subprocess.Popen(
                list(argv), env=dict(env), cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        child = Child(name, popen, log)
        self.children.append(child)
        return child

    def stop(self, *children: Child, timeout: float = 15.0) -> None:
        """SIGTERM to each child's process group (gunicorn's workers too), all at once; SIGKILL what lingers.

        Signalling every child before waiting for any keeps stopping eight workers as quick as stopping one.
        """
        for child in children:
            if child in self.children:
                self.children.remove(child)
            if child.alive():
                _signal_group(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in children:
            try:
                child.popen.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(child.pid, signal.SIGKILL)
                child.popen.wait(5)
            # A group member that outlived its leader (rare) goes too.
            _signal_group(child.pid, signal.SIGKILL)

    def stop_all(self) -> None:
        self.stop(*reversed(self.children))

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop_all()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def wait_until(ready: Callable[[], bool], child: Child, timeout: float, what: str) -> None:
    """Poll `ready` until true.

    Raises:
        ChildFailed: the child exited first, or `timeout` passed.
    """
    deadline = time.monotonic() + timeout
    while not ready():
        if not child.alive():
            raise ChildFailed(f"{child.name} exited with {child.popen.returncode} before {what}; see {child.log}")
        if time.monotonic() > deadline:
            raise ChildFailed(f"{child.name}: no {what} within {timeout:.0f}s; see {child.log}")
        time.sleep(0.05)


def port_answers(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


# --- /proc ------------------------------------------------------------------------------------------


def _proc_field(pid: int, field: str, file: str = "status") -> int | None:
    try:
        text = Path(f"/proc/{pid}/{file}").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return None


def peak_rss_kb(pid: int) -> int | None:
    """VmHWM: the most resident memory the process ever had (kB); None once it is gone."""
    return _proc_field(pid, "VmHWM")


def pss_kb(pid: int) -> int | None:
    """Resident memory with each shared page split among the processes sharing it (kB); None once it is gone.

    A forked pool's processes share most of their pages with the parent: RSS counts those
    pages once per process, so summing RSS overstates the pool; summing PSS does not.
    """
    return _proc_field(pid, "Pss", "smaps_rollup")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU the process has used so far; None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # the command name may contain spaces
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def children_of(pid: int) -> list[int]:
    """Direct children of `pid` (gunicorn's workers), from /proc/<pid>/task/*/children."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found.extend(int(p) for p in (task / "children").read_text().split())
    return found


def machine_jiffies() -> tuple[int, int]:
    """(busy, total) CPU jiffies of the whole machine since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # without guest time, which is already counted in user
    return total - idle, total


class CpuMeter:
    """CPU used per role (web, workers, postgres, …) and by the whole machine over one measurement.

    Roles map to callables that return the role's current pids, so processes that
    appear during the measurement (a new database backend) are counted from zero.
    """

    def __init__(self, roles: Mapping[str, Callable[[], Iterable[int]]]) -> None:
        self.roles = roles
        self._start: dict[int, float] = {}
        self._t0 = 0.0
        self._machine0 = (0, 0)
        self.result: dict[str, object] = {}

    def __enter__(self) -> CpuMeter:
        self._t0 = time.monotonic()
        self._machine0 = machine_jiffies()
        for pids in self.roles.values():
            for pid in pids():
                self._start[pid] = cpu_seconds(pid) or 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.result = self.read()

    def read(self) -> dict[str, object]:
        wall = time.monotonic() - self._t0
        busy0, total0 = self._machine0
        busy1, total1 = machine_jiffies()
        roles: dict[str, dict[str, float]] = {}
        for role, pids in self.roles.items():
            used = 0.0
            for pid in set(pids()):
                now = cpu_seconds(pid)
                if now is not None:
                    used += now - self._start.get(pid, 0.0)
            roles[role] = {"cpu_s": round(used, 2), "cores": round(used / wall, 2) if wall else 0.0}
        machine = (busy1 - busy0) / (total1 - total0) if total1 > total0 else 0.0
        # Whatever else ran meanwhile (someone's test suite, say) took CPU from the measured processes.
        others = machine * CORES - sum(role["cores"] for role in roles.values())
        return {
            "wall_s": round(wall, 2),
            "machine_busy": round(machine, 3),
            "roles": roles,
            "other_cores": round(max(0.0, others), 2),
        }
