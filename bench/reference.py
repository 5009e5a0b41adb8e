"""Phase 2's yardstick: the naive Flask + RQ pipeline (bench/naive.py) under the same load as Hookflow.

Same stub and latencies, same gunicorn settings, as many workers (RQ's
SimpleWorker in a WorkerPool, logging at RQ's default level as ours do), the
same events posted the same way after the same warm-up. It keeps nothing, so
its only check is the stub's: every event became exactly one contact, job,
constraint and scheduling. With no ledger to time it, its window runs from
the stub's first contact to its last scheduling, which leaves out the ack and
queue hop before the first call that Hookflow's window (first event received
to last run finished) includes: if anything, the ratio is unfair to Hookflow.

Each latency is measured twice: the naive pipeline as the issue describes it,
and its *durable minimum* (bench/minimal_ledger.py), which commits the body
before the 202 and each step's result after its call, in the bench's
database. The second is the floor for a pipeline that keeps what it
acknowledged, so Hookflow's cost splits into what durability costs anyone
and what Hookflow adds. Its rows are checked too: one per event, four steps each.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import TYPE_CHECKING, Any

from redis import Redis

from bench import infra, minimal_ledger, naive
from bench.config import BenchConfig, Pool
from bench.infra import BenchSetupError, Ledger
from bench.ingest import enquiry_bodies, webform_target
from bench.loadgen import Target, closed_loop
from bench.procs import CpuMeter
from bench.stack import Stack, Web, Workers

if TYPE_CHECKING:  # bench.e2e runs this module
    from bench.e2e import StubControl

POLL_SECONDS = 0.1
UNUSED_DATABASE = "sqlite://"  # the naive pipeline has no ledger
VARIANTS = ("naive", "durable")


def worker_argv(count: int, redis_url: str) -> list[str]:
    """RQ's own pool of non-forking workers: the reference's "8 non-forking workers", at our count."""
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
    ]


def _scheduled_reaches(stub: StubControl, expected: int, timeout: float) -> bool:
    """Wait for the stub to have scheduled `expected` jobs (False: `timeout` passed first)."""
    deadline = time.monotonic() + timeout
    while stub.counts()["scheduled"] < expected:
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL_SECONDS)
    return True


def _send_events(config: BenchConfig, target: Target, tag: str, total: int) -> dict[str, Any]:
    load = asyncio.run(closed_loop(target, enquiry_bodies(tag), config.load_concurrency, total=total, timeout=60))
    return load.as_dict()


def run_reference(
    config: BenchConfig, stack: Stack, db: Ledger, redis: Redis, stub: StubControl, stub_pid: int
) -> list[dict[str, Any]]:
    """One measurement per API latency and variant; one that failed to run is reported, not fatal."""
    results = []
    for latency in config.latencies_ms:
        for variant in VARIANTS:
            try:
                results.append(
                    _scenario(config, stack, db if variant == "durable" else None, redis, stub, stub_pid, latency)
                )
            except BenchSetupError as exc:  # the yardstick failing must not throw away Hookflow's measurements
                print(f"bench: the {variant} pipeline at {latency} ms did not run: {exc}", flush=True)
                results.append({"latency_ms": latency, "variant": variant, "error": str(exc)})
    return results


def _scenario(
    config: BenchConfig,
    stack: Stack,
    db: Ledger | None,
    redis: Redis,
    stub: StubControl,
    stub_pid: int,
    latency_ms: int,
) -> dict[str, Any]:
    """The naive pipeline at one latency; with `db`, its durable minimum keeping its ledger there."""
    variant = "naive" if db is None else "durable"
    tag = f"{variant}{latency_ms}"
    redis.flushdb()
    stub.reset(latency_ms)
    env = stack.env(UNUSED_DATABASE, config.e2e_redis_url, stub.port)
    if db is not None:
        minimal_ledger.create(db.url)
        env[naive.LEDGER_ENV] = db.url
    web = stack.web(f"{tag}-web", env, app="bench.naive:app")
    workers: Workers | None = None
    try:
        # As many step workers as Hookflow's pool, each a process: RQ has no threaded worker.
        pool = Pool(config.workers_at(latency_ms).workers)
        argv = worker_argv(pool.processes, config.e2e_redis_url)
        workers = stack.workers(f"{tag}-workers", pool, env, redis, argv=argv)
        measured = _measure(config, web, workers, redis, stub, stub_pid, latency_ms, tag, db)
        return {"variant": variant, **measured}
    finally:
        stack.supervisor.stop(*([workers.pool] if workers else []), web.child)


def _measure(
    config: BenchConfig,
    web: Web,
    workers: Workers,
    redis: Redis,
    stub: StubControl,
    stub_pid: int,
    latency_ms: int,
    tag: str,
    db: Ledger | None,
) -> dict[str, Any]:
    target = webform_target(web.port)
    if config.e2e_warmup_events:
        warm = _send_events(config, target, f"{tag}-warm", config.e2e_warmup_events)
        if warm["ok"] != config.e2e_warmup_events or not _scheduled_reaches(
            stub, config.e2e_warmup_events, config.e2e_timeout
        ):
            raise BenchSetupError(f"the naive pipeline's warm-up did not complete: {warm['statuses']}")
        stub.reset(latency_ms)
        if db is not None:
            minimal_ledger.create(db.url)  # the warm-up's rows go, like Hookflow's
    roles = {
        "web (gunicorn)": web.pids,
        "workers (all)": workers.pids,
        "stub": lambda: [stub_pid],
        "load generator": lambda: [os.getpid()],
    }
    redis_pid = infra.redis_pid(redis)
    if redis_pid is not None:
        roles["redis-server"] = lambda: [redis_pid]
    if db is not None and db.is_postgres:
        roles["postgres backends"] = db.backend_pids
    with CpuMeter(roles) as meter:
        load = _send_events(config, target, tag, config.events)
        finished = _scheduled_reaches(stub, load["ok"], config.e2e_timeout)
    counts = stub.counts()
    memory = workers.memory()
    done = counts["scheduled"]
    window = (counts["last_scheduled_at"] or 0.0) - (counts["first_contact_at"] or 0.0)
    exact = [counts[name] == config.events for name in ("contacts", "jobs", "constraints", "scheduled")]
    if db is not None:
        rows, finished_rows = minimal_ledger.count(db.url)
        exact += [rows == config.events, finished_rows == config.events]
    return {
        "latency_ms": latency_ms,
        "events": config.events,
        "workers": config.workers_at(latency_ms).workers,
        "load": load,
        "finished": finished,
        "window_s": round(window, 3),
        "workflows_per_s": round(done / window, 1) if window > 0 else None,
        "succeeded": done,
        "verify": {
            **{name: counts[name] for name in ("contacts", "jobs", "constraints", "scheduled")},
            "duplicate_references": counts["duplicate_references"],
            "stub_errors": counts["errors"],
            **({"ledger_rows": rows, "ledger_rows_finished": finished_rows} if db is not None else {}),
            "ok": finished and all(exact) and not counts["duplicate_references"] and not counts["errors"],
        },
        "cpu": meter.result,
        "memory": memory,
    }
