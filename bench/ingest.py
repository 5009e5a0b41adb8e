"""Phase 1, ingest: how fast the ack path takes webhooks, against a bare Flask endpoint and a durable minimum.

The real web service runs with the Procfile's gunicorn settings and no workers,
so the queue only fills. Each request is a web enquiry with its own
`submission_id` (nothing is deduplicated) and the webform token. Afterwards the
ledger must hold exactly as many events as there were 202 answers, and Redis
as many queued step jobs.

The same load then goes to the bare endpoint (it answers 202 and does nothing)
and to the durable minimum (bench/minimal_ledger.py through bench/naive.py:
the body committed with one statement and an RQ job queued, nothing else), so
the report can tell what any implementation that stores before it answers
must pay from what Hookflow adds to that.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from redis import Redis
from rq import Queue

from bench import infra, ledger, minimal_ledger, naive, profiling
from bench.config import BenchConfig
from bench.infra import Ledger
from bench.loadgen import BodyFactory, LoadResult, Target, closed_loop, open_loop
from bench.procs import CpuMeter, peak_rss_kb
from bench.stack import Stack, Web
from schemas.settings import PROJECT_ROOT, Settings

QUEUE_NAME: str = Settings.model_fields["queue_name"].default
EXAMPLE = json.loads((PROJECT_ROOT / "examples" / "web-enquiry.json").read_text())


def enquiry_bodies(tag: str) -> BodyFactory:
    """Web enquiries like examples/web-enquiry.json, each with a unique submission_id."""

    def body(index: int) -> bytes:
        return json.dumps({**EXAMPLE, "submission_id": f"bench-{tag}-{index}"}).encode()

    return body


def webform_target(port: int) -> Target:
    return Target("127.0.0.1", port, "/hooks/webform", {"X-Hook-Token": infra.WEBFORM_TOKEN})


def web_memory(web: Web) -> dict[str, Any]:
    """Peak RSS (VmHWM, MiB) of gunicorn's master and of each worker, read while they still run."""
    workers = [kb for pid in web.worker_pids() if (kb := peak_rss_kb(pid)) is not None]
    master = peak_rss_kb(web.child.pid)
    return {
        "master_mib": round(master / 1024, 1) if master else None,
        "workers_mib": [round(kb / 1024, 1) for kb in workers],
        "total_mib": round(((master or 0) + sum(workers)) / 1024, 1),
    }


class IngestRunner:
    """Runs the same load against one web service (ours or the bare one)."""

    def __init__(self, config: BenchConfig, web: Web, tag: str, roles: dict[str, Callable[[], Iterable[int]]]) -> None:
        self.config = config
        self.web = web
        self.target = webform_target(web.port)
        self.bodies = enquiry_bodies(tag)
        self.roles = roles
        self._offset = 0  # submission ids continue across runs, so none repeats
        self.ok_202 = 0
        self.ok_2xx = 0
        self.unanswered = 0  # sent, but no answer came (timeout, reset): stored or not, nobody was told

    def _next_bodies(self, count_hint: int) -> BodyFactory:
        start = self._offset
        self._offset += count_hint
        return lambda index: self.bodies(start + index)

    def _measure(self, load: Callable[[BodyFactory], Any], budget: int) -> dict[str, Any]:
        with CpuMeter(self.roles) as meter:
            result: LoadResult = asyncio.run(load(self._next_bodies(budget)))
        self.ok_202 += result.tally.statuses.get(202, 0)
        self.ok_2xx += result.tally.ok()
        self.unanswered += sum(n for error, n in result.tally.errors.items() if error != "ConnectionRefusedError")
        return {**result.as_dict(), "cpu": meter.result}

    def warm_up(self) -> dict[str, Any]:
        """Boot costs (imports, the first workflow load) are paid here, not in a measurement."""
        n = self.config.warmup_requests
        return self._measure(lambda bodies: closed_loop(self.target, bodies, 8, total=n, timeout=60), n)

    def saturation(self, concurrency: int) -> dict[str, Any]:
        seconds = self.config.saturation_seconds
        return self._measure(lambda bodies: closed_loop(self.target, bodies, concurrency, duration=seconds), 10**7)

    def fixed_rate(self) -> dict[str, Any]:
        rate, duration = self.config.rate, self.config.duration
        # A generous timeout: a request given up on might still be stored, and then the check would not add up.
        return self._measure(lambda bodies: open_loop(self.target, bodies, rate, duration, timeout=60), 10**7)

    def run(self) -> dict[str, Any]:
        results: dict[str, Any] = {"argv": self.web.argv, "warmup": self.warm_up()}
        results["saturation"] = [self.saturation(c) for c in self.config.saturation_concurrency]
        results["open_loop"] = self.fixed_rate()
        results["best_ok_per_s"] = max(s["ok_per_s"] for s in results["saturation"])
        results["memory"] = web_memory(self.web)
        results["answers_202"] = self.ok_202
        results["answers_2xx"] = self.ok_2xx
        results["unanswered"] = self.unanswered
        return results


def _roles(web: Web, db: Ledger | None, redis_pid: int | None) -> dict[str, Callable[[], Iterable[int]]]:
    roles: dict[str, Callable[[], Iterable[int]]] = {
        "web (gunicorn)": web.pids,
        "load generator": lambda: [os.getpid()],
    }
    if db is not None and db.is_postgres:
        roles["postgres backends"] = db.backend_pids
    if db is not None and redis_pid is not None:
        roles["redis-server"] = lambda: [redis_pid]
    return roles


def run_ingest(config: BenchConfig, stack: Stack, db: Ledger, redis: Redis, run_dir: Path) -> dict[str, Any]:
    """Ours, then the bare endpoint, under identical load; then the durability check."""
    db.empty()
    redis.flushdb()
    env = stack.env(db.url, config.ingest_redis_url)
    redis_pid = infra.redis_pid(redis)

    web = stack.web("ingest-web", env)
    ours = IngestRunner(config, web, "ingest", _roles(web, db, redis_pid)).run()
    if config.profile:
        ours["profile"] = profile_web(config, stack, web, run_dir)
    stack.supervisor.stop(web.child)
    profiled = ours.get("profile", {})
    ours["verify"] = verify(
        db,
        redis,
        ours["answers_202"] + profiled.get("answers_202", 0),
        ours["answers_2xx"] + profiled.get("answers_2xx", 0),
        ours["unanswered"] + profiled.get("unanswered", 0),
    )

    bare_web = stack.web("ingest-bare", env, app="bench.bare_app:app")
    bare = IngestRunner(config, bare_web, "bare", _roles(bare_web, None, None)).run()
    stack.supervisor.stop(bare_web.child)

    durable = run_durable_minimum(config, stack, db, redis, env)
    return {
        "ours": ours,
        "bare": bare,
        "durable": durable,
        "ratio": _ratio(ours, bare),
        "durable_ratio": _ratio(durable, bare),
    }


def _ratio(mine: dict[str, Any], theirs: dict[str, Any]) -> float | None:
    return round(mine["best_ok_per_s"] / theirs["best_ok_per_s"], 3) if theirs["best_ok_per_s"] else None


def run_durable_minimum(
    config: BenchConfig, stack: Stack, db: Ledger, redis: Redis, env: dict[str, str]
) -> dict[str, Any]:
    """The same load on the durable minimum; every 202 must have its row and its queued job."""
    redis.flushdb()
    minimal_ledger.create(db.url)
    web = stack.web("ingest-durable", {**env, naive.LEDGER_ENV: db.url}, app="bench.naive:app")
    try:
        durable = IngestRunner(config, web, "durable", _roles(web, db, infra.redis_pid(redis))).run()
    finally:
        stack.supervisor.stop(web.child)
    rows, _finished = minimal_ledger.count(db.url)
    queued = Queue(naive.QUEUE, connection=redis).count
    durable["verify"] = {
        "answers_202": durable["answers_202"],
        "events_stored": rows,
        "jobs_queued": queued,
        "ok": durable["answers_202"] <= rows <= durable["answers_202"] + durable["unanswered"] and rows == queued,
    }
    return durable


def verify(db: Ledger, redis: Redis, answers_202: int, answers_2xx: int, unanswered: int) -> dict[str, Any]:
    """Every 202 has its event and run in the ledger, and its first step job in Redis.

    A request that got no answer (the client gave up) may or may not have been stored, so the events
    may exceed the 202s by at most that many. Every submission_id is new, so any other 2xx (a 200
    "duplicate") would mean a request was delivered twice: only a retry on a dropped keep-alive
    connection can do that, and it is shown.
    """
    engine = db.engine()
    try:
        events = ledger.event_count(engine)
        runs = sum(ledger.run_statuses(engine).values())
    finally:
        engine.dispose()
    queued = Queue(QUEUE_NAME, connection=redis).count
    return {
        "answers_202": answers_202,
        "answers_2xx": answers_2xx,
        "unanswered": unanswered,
        "events_stored": events,
        "runs_stored": runs,
        "jobs_queued": queued,
        "ok": answers_202 <= events <= answers_202 + unanswered and events == runs == queued,
    }


def profile_web(config: BenchConfig, stack: Stack, web: Web, run_dir: Path) -> dict[str, Any]:
    """An extra, unmeasured saturation run with py-spy on the gunicorn workers."""
    recordings = profiling.start_pair(stack.supervisor, "web", web.worker_pids(), run_dir)
    runner = IngestRunner(config, web, "profile", {})
    result = runner.saturation(16 if 16 in config.saturation_concurrency else config.saturation_concurrency[-1])
    return {
        **profiling.stop_all(stack.supervisor, recordings),
        "ok_per_s_while_profiled": result["ok_per_s"],
        "answers_202": runner.ok_202,
        "answers_2xx": runner.ok_2xx,
        "unanswered": runner.unanswered,
    }
