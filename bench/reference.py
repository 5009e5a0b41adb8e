"""Phase 2's yardstick: the naive Flask + RQ pipeline (bench/naive.py) under the same load as Hookflow.

Same stub and latencies, same gunicorn settings, as many workers (RQ's
SimpleWorker in a WorkerPool), the same events posted the same way after the
same warm-up. It keeps nothing, so its only check is the stub's: every event
became exactly one contact, job, constraint and scheduling. Its window runs
from the first post to the stub counting the last scheduling (polled, so it
is late by at most POLL_SECONDS).
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import TYPE_CHECKING, Any

from redis import Redis

from bench import infra, naive
from bench.config import BenchConfig
from bench.infra import BenchSetupError
from bench.ingest import enquiry_bodies, webform_target
from bench.loadgen import Target, closed_loop
from bench.procs import CpuMeter, peak_rss_kb, pss_kb
from bench.stack import Stack

if TYPE_CHECKING:  # bench.e2e runs this module
    from bench.e2e import StubControl

POLL_SECONDS = 0.1
UNUSED_DATABASE = "sqlite://"  # the naive pipeline has no ledger


def worker_argv(count: int, redis_url: str) -> list[str]:
    return [
        str(infra.VENV_BIN / "rq"),
        "worker-pool",
        naive.QUEUE,
        "--num-workers",
        str(count),
        "--worker-class",
        "rq.worker.SimpleWorker",
        "--url",
        redis_url,
        "--quiet",
    ]


def _scheduled_reaches(stub: StubControl, expected: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while stub.counts()["scheduled"] < expected:
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL_SECONDS)
    return True


def _post(config: BenchConfig, target: Target, tag: str, total: int) -> dict[str, Any]:
    load = asyncio.run(closed_loop(target, enquiry_bodies(tag), config.load_concurrency, total=total, timeout=60))
    return load.as_dict()


def run_reference(
    config: BenchConfig, stack: Stack, redis: Redis, stub: StubControl, stub_pid: int
) -> list[dict[str, Any]]:
    """One measurement per API latency."""
    return [_scenario(config, stack, redis, stub, stub_pid, latency) for latency in config.latencies_ms]


def _scenario(
    config: BenchConfig, stack: Stack, redis: Redis, stub: StubControl, stub_pid: int, latency_ms: int
) -> dict[str, Any]:
    tag = f"naive{latency_ms}"
    redis.flushdb()
    stub.reset(latency_ms)
    env = stack.env(UNUSED_DATABASE, config.e2e_redis_url, stub.port)
    web = stack.web(f"{tag}-web", env, app="bench.naive:app")
    workers = stack.workers(
        f"{tag}-workers", config.workers, env, redis, argv=worker_argv(config.workers, config.e2e_redis_url)
    )
    try:
        target = webform_target(web.port)
        if config.e2e_warmup_events:
            warm = _post(config, target, f"{tag}-warm", config.e2e_warmup_events)
            if warm["ok"] != config.e2e_warmup_events or not _scheduled_reaches(
                stub, config.e2e_warmup_events, config.e2e_timeout
            ):
                raise BenchSetupError(f"the naive pipeline's warm-up did not complete: {warm['statuses']}")
            stub.reset(latency_ms)
        roles = {
            "web (gunicorn)": web.pids,
            "workers (all)": workers.pids,
            "stub": lambda: [stub_pid],
            "load generator": lambda: [os.getpid()],
        }
        redis_pid = infra.redis_pid(redis)
        if redis_pid is not None:
            roles["redis-server"] = lambda: [redis_pid]
        with CpuMeter(roles) as meter:
            started = time.monotonic()
            load = _post(config, target, tag, config.events)
            finished = _scheduled_reaches(stub, load["ok"], config.e2e_timeout)
            window = time.monotonic() - started
        counts = stub.counts()
        memory = {
            "workers_mib": [round(kb / 1024, 1) for pid in workers.worker_pids() if (kb := peak_rss_kb(pid))],
            "workers_pss_mib": round(sum(pss_kb(pid) or 0 for pid in workers.pids()) / 1024, 1),
        }
    finally:
        stack.supervisor.stop(workers.pool, web.child)
    done = counts["scheduled"]
    exact = [counts[name] == config.events for name in ("contacts", "jobs", "constraints", "scheduled")]
    return {
        "latency_ms": latency_ms,
        "events": config.events,
        "workers": config.workers,
        "load": load,
        "finished": finished,
        "window_s": round(window, 3),
        "workflows_per_s": round(done / window, 1) if window else None,
        "succeeded": done,
        "verify": {
            **{name: counts[name] for name in ("contacts", "jobs", "constraints", "scheduled")},
            "duplicate_references": counts["duplicate_references"],
            "stub_errors": counts["errors"],
            "ok": finished and all(exact) and not counts["duplicate_references"] and not counts["errors"],
        },
        "cpu": meter.result,
        "memory": memory,
    }
