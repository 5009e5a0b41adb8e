"""Children are stopped by process group, all of them, and /proc is read correctly."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from bench.procs import CpuMeter, Supervisor, children_of, cpu_seconds, free_port, peak_rss_kb, port_answers, pss_kb
from bench.stack import Workers


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


def test_a_pool_s_memory_is_each_worker_s_peak_and_the_whole_pool_s_share(tmp_path: Path) -> None:
    # Given a pool parent that forked two workers (as RQ's WorkerPool does)
    script = (
        "import os, time\n"
        "for _ in range(2):\n"
        "    if os.fork() == 0:\n"
        "        time.sleep(30)\n"
        "        os._exit(0)\n"
        "time.sleep(30)"
    )
    with Supervisor(tmp_path) as supervisor:
        pool = Workers(supervisor.start("pool", [sys.executable, "-c", script], dict(os.environ), tmp_path), [])
        deadline = time.monotonic() + 5
        while len(pool.worker_pids()) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        memory = pool.memory()
        rss_total = sum(memory["workers_mib"]) + (peak_rss_kb(pool.pool.pid) or 0) / 1024
    # Then both workers are listed, all three processes counted, and sharing makes the pool less than its RSS
    assert len(memory["workers_mib"]) == 2 and memory["pool_processes"] == 3
    assert 0 < memory["workers_pss_mib"] < rss_total
