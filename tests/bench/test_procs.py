"""Children are stopped by process group, all of them, and /proc is read correctly."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from bench.procs import CpuMeter, Supervisor, children_of, cpu_seconds, free_port, peak_rss_kb, port_answers, pss_kb


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]


def test_stopping_a_child_stops_its_own_children_too(tmp_path: Path) -> None:
    # Given a child that starts a grandchild (as gunicorn starts its workers)
    script = "import subprocess, time; subprocess.Popen(['sleep', '30']); time.sleep(30)"
    with Supervisor(tmp_path) as supervisor:
        child = supervisor.start("parent", [sys.executable, "-c", script], dict(os.environ), tmp_path)
        deadline = time.monotonic() + 5
        while not children_of(child.pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        grandchildren = children_of(child.pid)
        assert grandchildren
    # When the supervisor exits, Then both are gone
    time.sleep(0.05)
    assert not child.alive()
    assert not any(_alive(pid) for pid in grandchildren)


def test_proc_readings_of_this_process() -> None:
    assert (peak_rss_kb(os.getpid()) or 0) > 1000
    assert (cpu_seconds(os.getpid()) or 0) > 0
    assert peak_rss_kb(2**22 + 1) is None
    assert (pss_kb(os.getpid()) or 0) > 1000
    assert pss_kb(2**22 + 1) is None


def test_a_forked_process_is_charged_only_its_share_of_the_pages_it_shares_with_its_parent() -> None:
    # Given a child forked from this process, sharing its pages
    child = os.fork()
    if child == 0:  # never return into pytest from here, whatever happens
        try:
            time.sleep(10)
        finally:
            os._exit(0)
    try:
        time.sleep(0.2)
        # Then its PSS is well under its RSS (each shared page counts half for each of the two)
        status = Path(f"/proc/{child}/status").read_text().splitlines()
        rss = int(next(line for line in status if line.startswith("VmRSS:")).split()[1])
        assert (pss_kb(child) or 0) < rss * 0.75
    finally:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)


def test_cpu_meter_reports_each_role_and_the_machine() -> None:
    with CpuMeter({"me": lambda: [os.getpid()]}) as meter:
        sum(range(200_000))
    assert set(meter.result) == {"wall_s", "machine_busy", "roles", "other_cores"}
    assert meter.result["roles"]["me"]["cpu_s"] >= 0


def test_free_port_is_free() -> None:
    assert not port_answers(free_port())
