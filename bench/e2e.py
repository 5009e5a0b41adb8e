"""Phase 2, end to end: web-enquiry workflows (4 API calls each) through real workers against the stub.

Per API latency: an empty ledger and Redis db, the real web service and N
`flask --app app worker` processes, then the events posted through the web
endpoint (while the workers run, or all before they start with --preload),
then wait until every run has finished. Throughput, overhead and the verdict
come from the ledger's own timestamps and the stub's counts, never from the
harness's clock.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
from redis import Redis

from bench import infra, ledger, profiling
from bench.config import BenchConfig, Pool
from bench.infra import BenchSetupError, Ledger
from bench.ingest import enquiry_bodies, web_memory, webform_target
from bench.loadgen import Target, closed_loop
from bench.procs import CpuMeter
from bench.reference import run_reference
from bench.stack import Stack, Web, Workers

POLL_SECONDS = 0.25
FINISHED = ("succeeded", "failed", "cancelled")


class StubControl:
    """The stub's operator routes."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{port}/bigchange/__sandbox__", timeout=10)

    def reset(self, latency_ms: float) -> None:
        self.client.post("/reset").raise_for_status()
        self.client.post("/latency", json={"ms": latency_ms}).raise_for_status()

    def counts(self) -> dict[str, Any]:
        return self.client.get("/counts").json()

    def close(self) -> None:
        self.client.close()


def stub_capacity(config: BenchConfig, port: int, stub_pid: int) -> dict[str, Any]:
    """Contacts the stub can create per second at 0 ms, with our load generator on the same machine."""
    target = Target("127.0.0.1", port, "/bigchange/contacts/create", {"X-API-Key": infra.API_KEY})

    def body(index: int) -> bytes:
        return b'{"name": "Capacity", "reference": "CAP-%d"}' % index

    roles = {"stub": lambda: [stub_pid], "load generator": lambda: [os.getpid()]}
    with CpuMeter(roles) as meter:
        result = asyncio.run(
            closed_loop(target, body, config.stub_capacity_concurrency, duration=config.stub_capacity_seconds)
        )
    return {**result.as_dict(), "cpu": meter.result}


def _wait_for_runs(db: Ledger, expected: int, timeout: float) -> tuple[bool, dict[str, int]]:
    """Poll the ledger until `expected` runs have finished (True) or `timeout` passes (False)."""
    engine = db.engine()
    deadline = time.monotonic() + timeout
    try:
        while True:
            statuses = ledger.run_statuses(engine)
            if sum(statuses[s] for s in FINISHED) >= expected:
                return True, dict(statuses)
            if time.monotonic() > deadline:
                return False, dict(statuses)
            time.sleep(POLL_SECONDS)
    finally:
        engine.dispose()


def _seconds(later: Any, earlier: Any) -> float | None:
    return (later - earlier).total_seconds() if later is not None and earlier is not None else None


def throughput(window: dict[str, Any], succeeded: int, attempts: int, workers: int) -> dict[str, Any]:
    """Workflows per second over the ledger's window, and worker time per step."""
    e2e_s = _seconds(window["last_finished"], window["first_event"])
    drain_s = _seconds(window["last_finished"], window["first_attempt"])
    return {
        "window_s": round(e2e_s, 3) if e2e_s else None,
        "workflows_per_s": round(succeeded / e2e_s, 1) if e2e_s else None,
        "drain_window_s": round(drain_s, 3) if drain_s else None,
        "drain_workflows_per_s": round(succeeded / drain_s, 1) if drain_s else None,
        # Everything a worker spends per step (API time, engine, RQ, idle) when all workers are busy.
        "worker_ms_per_step": round(workers * drain_s * 1000 / attempts, 2) if drain_s and attempts else None,
    }


class Scenario:
    """One end-to-end run at one API latency."""

    def __init__(self, config: BenchConfig, stack: Stack, db: Ledger, redis: Redis, stub: StubControl) -> None:
        self.config = config
        self.stack = stack
        self.db = db
        self.redis = redis
        self.stub = stub

    def _roles(self, web: Web, workers: list[Workers], stub_pid: int) -> dict[str, Callable[[], Iterable[int]]]:
        roles: dict[str, Callable[[], Iterable[int]]] = {
            "web (gunicorn)": web.pids,
            "workers (all)": lambda: [pid for pool in workers for pid in pool.pids()],
            "stub": lambda: [stub_pid],
            "load generator": lambda: [os.getpid()],
        }
        if self.db.is_postgres:
            roles["postgres backends"] = self.db.backend_pids
        redis_pid = infra.redis_pid(self.redis)
        if redis_pid is not None:
            roles["redis-server"] = lambda: [redis_pid]
        return roles

    def run(self, latency_ms: int, events: int, stub_pid: int, profile_dir: Path | None = None) -> dict[str, Any]:
        config, tag = self.config, f"e2e{latency_ms}{'p' if profile_dir else ''}"
        self.db.empty()
        self.redis.flushdb()
        self.stub.reset(latency_ms)
        env = self.stack.env(self.db.url, config.e2e_redis_url, self.stub.port)
        web = self.stack.web(f"{tag}-web", env)
        workers: list[Workers] = []
        load_target = webform_target(web.port)
        if not config.preload:
            workers.append(self.stack.workers(f"{tag}-workers", config.workers_at(latency_ms), env, self.redis))
            self._warm_up(load_target, tag, latency_ms)
        pids = [pid for pool in workers for pid in pool.worker_pids()]
        recordings = profiling.start_pair(self.stack.supervisor, "worker", pids, profile_dir) if profile_dir else []
        with CpuMeter(self._roles(web, workers, stub_pid)) as meter:
            load = asyncio.run(
                closed_loop(load_target, enquiry_bodies(tag), config.load_concurrency, total=events, timeout=60)
            )
            if config.preload:
                workers.append(self.stack.workers(f"{tag}-workers", config.workers_at(latency_ms), env, self.redis))
            finished, statuses = _wait_for_runs(self.db, load.tally.statuses.get(202, 0), config.e2e_timeout)
        profile = profiling.stop_all(self.stack.supervisor, recordings) if recordings else None
        (started,) = workers  # started before the load, or after it with --preload
        memory = {"web": web_memory(web), **started.memory()}
        self.stack.supervisor.stop(*[pool.pool for pool in workers], web.child)
        return self._results(latency_ms, events, load.as_dict(), finished, statuses, meter.result, memory, profile)

    def _warm_up(self, target: Target, tag: str, latency_ms: int) -> None:
        """Send `e2e_warmup_events` runs and let them finish, then wipe them from the ledger and the stub.

        Each fresh worker process pays one-off costs on its first steps; a deployment's workers
        live for days, so those are not what a run costs. The processes keep running: only the
        rows and the stub's counts go, and the measured scenario starts from nothing again.
        """
        total = self.config.e2e_warmup_events
        if not total:
            return
        bodies = enquiry_bodies(f"{tag}-warm")
        load = asyncio.run(closed_loop(target, bodies, self.config.load_concurrency, total=total))
        accepted = load.tally.statuses.get(202, 0)
        finished, statuses = _wait_for_runs(self.db, accepted, self.config.e2e_timeout)
        if accepted != total or not finished or statuses.get("succeeded", 0) != total:
            raise BenchSetupError(
                f"the warm-up did not complete: {accepted} of {total} events accepted, runs {statuses}"
            )
        self.db.empty()
        self.stub.reset(latency_ms)

    def _results(
        self,
        latency_ms: int,
        events: int,
        load: dict[str, Any],
        finished: bool,
        statuses: dict[str, int],
        cpu: dict[str, Any],
        memory: dict[str, Any],
        profile: dict[str, Any] | None,
    ) -> dict[str, Any]:
        pool = self.config.workers_at(latency_ms)
        engine = self.db.engine()
        try:
            attempts = ledger.load_attempts(engine)
            window = ledger.window(engine)
            stored = ledger.event_count(engine)
        finally:
            engine.dispose()
        counts = self.stub.counts()
        succeeded = statuses.get("succeeded", 0)
        checks = {
            "answers_202": load["statuses"].get("202", 0),
            "events_stored": stored,
            "runs_succeeded": succeeded,
            "stub_contacts": counts["contacts"],
            "stub_jobs": counts["jobs"],
            "stub_constraints": counts["constraints"],
            "stub_scheduled": counts["scheduled"],
            "duplicate_references": counts["duplicate_references"],
            "stub_errors": counts["errors"],
        }
        exact = [checks[name] == events for name in list(checks)[:7]]
        checks["ok"] = finished and all(exact) and not checks["duplicate_references"] and not checks["stub_errors"]
        return {
            "latency_ms": latency_ms,
            "events": events,
            "workers": pool.workers,
            "processes": pool.processes,
            "threads": pool.threads,
            "preload": self.config.preload,
            "finished": finished,
            "run_statuses": statuses,
            "load": load,
            **throughput(window, succeeded, len(attempts), pool.workers),
            "overhead_ms": ledger.overhead_report(attempts),
            "stub_requests": counts["requests"],
            "verify": checks,
            "cpu": cpu,
            "memory": memory,
            "profile": profile,
        }


def run_e2e(config: BenchConfig, stack: Stack, db: Ledger, redis: Redis, run_dir: Path) -> dict[str, Any]:
    """The stub's capacity, then one scenario per latency (and a profiled one with --profile)."""
    stub_child, port, argv = stack.stub()
    control = StubControl(port)
    try:
        capacity = stub_capacity(config, port, stub_child.pid)
        scenario = Scenario(config, stack, db, redis, control)
        results: dict[str, Any] = {
            "stub_argv": argv,
            "stub_capacity": capacity,
            "scenarios": [scenario.run(latency, config.events, stub_child.pid) for latency in config.latencies_ms],
        }
        if config.reference and not config.preload:  # the reference posts while its workers run
            results["reference"] = run_reference(config, stack, db, redis, control, stub_child.pid)
        if config.serial_events:
            # Warmed up like the others; the events are posted ~7x faster than one worker runs them, so most
            # runs have the CPU to themselves. (--preload would count the worker's start-up in its CPU.)
            alone = replace(config, workers=Pool(1), workers_by_latency=())
            results["serial"] = Scenario(alone, stack, db, redis, control).run(0, config.serial_events, stub_child.pid)
        if config.profile:
            results["profiled"] = scenario.run(0, config.profile_events, stub_child.pid, profile_dir=run_dir)
        return results
    finally:
        control.close()
        stack.supervisor.stop(stub_child)
