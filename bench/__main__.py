"""`python -m bench`: the command line behind `make bench` and `make bench-quick`.

The first invocation freezes the code to measure (see bench.snapshot) and
re-executes itself inside that copy with `--in-snapshot`, so the harness and
every process it starts run the same code from start to end.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path

from bench import snapshot
from bench.config import BenchConfig, Pool, quick
from bench.infra import BenchSetupError
from bench.orchestrator import render_saved, run
from schemas.settings import PROJECT_ROOT


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(",") if part.strip())


def _pool(text: str) -> Pool:
    """`4` (processes of one step worker each) or `4x8` (4 processes of 8 threads)."""
    processes, sep, threads = text.partition("x")
    return Pool(int(processes), int(threads)) if sep else Pool(int(processes))


def _workers(text: str) -> tuple[Pool, tuple[tuple[int, Pool], ...]]:
    """`24` or `4x8`, or per API latency: `0:4,4x12` (4 processes at 0 ms, 4 of 12 threads at every other latency)."""
    default, exceptions = None, []
    for part in text.split(","):
        latency, sep, pool = part.partition(":")
        if sep:
            exceptions.append((int(latency), _pool(pool)))
        elif default is None:
            default = _pool(part)
        else:
            raise argparse.ArgumentTypeError(f"{text!r}: give one plain count, for the other latencies")
    if default is None:
        raise argparse.ArgumentTypeError(f"{text!r}: give a plain count for the other latencies, e.g. 0:4,4x12")
    return default, tuple(exceptions)


def _shown_workers(config: BenchConfig) -> str:
    return ",".join([*(f"{latency}:{pool}" for latency, pool in config.workers_by_latency), str(config.workers)])


def _parser(defaults: BenchConfig) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description="Hookflow's benchmarks (docs/benchmarks.md).")
    add = parser.add_argument
    add("--quick", action="store_true", help="a smoke-sized run; the report goes to bench-results/")
    add("--source", default=defaults.source, help="'worktree' (default) or a git revision, e.g. HEAD")
    add("--db", choices=("postgresql", "sqlite"), default=defaults.db)
    add("--pg-admin-url", default=defaults.pg_admin_url, help="where the bench creates (and drops) its database")
    add("--ingest-redis-url", default=defaults.ingest_redis_url, help="flushed before and after")
    add("--e2e-redis-url", default=defaults.e2e_redis_url, help="flushed before and after")
    add("--concurrency", type=_ints, default=defaults.saturation_concurrency, help="closed-loop clients, e.g. 4,16,64")
    add("--saturation-seconds", type=float, default=defaults.saturation_seconds)
    add("--rate", type=float, default=defaults.rate, help="open-loop requests per second")
    add("--duration", type=float, default=defaults.duration, help="open-loop seconds")
    add("--events", type=int, default=defaults.events, help="end-to-end events per latency")
    add(
        "--workers",
        type=_workers,
        default=(defaults.workers, defaults.workers_by_latency),
        help="flask worker processes N or processes x threads NxT, or per API latency as LATENCY:N,...,N "
        f"(default {_shown_workers(defaults)})",
    )
    add("--latencies", type=_ints, default=defaults.latencies_ms, help="stub latencies in ms, e.g. 0,50")
    add("--preload", action="store_true", help="post every event before the workers start")
    add("--no-reference", action="store_true", help="skip the naive Flask + RQ pipeline (bench/naive.py)")
    add("--serial-events", type=int, default=defaults.serial_events, help="runs through one worker alone; 0 skips")
    add("--e2e-timeout", type=float, default=defaults.e2e_timeout, help="seconds per latency")
    add("--profile", action="store_true", help="add py-spy profiled runs (web and one worker)")
    add("--profile-events", type=int, default=defaults.profile_events, help="runs in the profiled end-to-end run")
    add("--save-baseline", action="store_true", help="also store these results as bench/baseline.json")
    add("--report", type=Path, help="where to write the report (default docs/benchmarks.md)")
    add("--render", type=Path, metavar="RESULTS_JSON", help="only re-render the report from a saved results.json")
    add("--in-snapshot", nargs=2, metavar=("REPO", "RUN_DIR"), help=argparse.SUPPRESS)
    return parser


def parse(argv: list[str]) -> tuple[BenchConfig, argparse.Namespace]:
    defaults = BenchConfig()
    parser = _parser(defaults)
    args = parser.parse_args(argv)
    workers, workers_by_latency = args.workers
    if (
        min(n for pool in [workers, *(pool for _, pool in workers_by_latency)] for n in pool) < 1
        or args.events < 1
        or args.rate <= 0
        or args.duration <= 0
    ):
        parser.error("workers, events, rate and duration must be positive")
    if args.serial_events < 0:
        parser.error("--serial-events must be 0 (skip) or more")
    if args.profile and args.preload:
        # The profiled workers are chosen when the load starts; with --preload none exist yet.
        parser.error("--profile records workers while the load runs; drop --preload to profile")
    shown = argv[: argv.index("--in-snapshot")] if "--in-snapshot" in argv else argv
    config = replace(
        defaults,
        source=args.source,
        db=args.db,
        pg_admin_url=args.pg_admin_url,
        ingest_redis_url=args.ingest_redis_url,
        e2e_redis_url=args.e2e_redis_url,
        saturation_concurrency=args.concurrency,
        saturation_seconds=args.saturation_seconds,
        rate=args.rate,
        duration=args.duration,
        events=args.events,
        workers=workers,
        workers_by_latency=workers_by_latency,
        latencies_ms=args.latencies,
        preload=args.preload,
        reference=not args.no_reference,
        serial_events=args.serial_events,
        e2e_timeout=args.e2e_timeout,
        profile=args.profile,
        profile_events=args.profile_events,
        save_baseline=args.save_baseline,
        output_root=Path(args.in_snapshot[0]) if args.in_snapshot else PROJECT_ROOT,
        command=shlex.join(["python", "-m", "bench", *shown]),
    )
    config = quick(config) if args.quick else config
    return (replace(config, report_path=args.report.resolve()) if args.report else config), args


def main(argv: list[str]) -> int:
    config, args = parse(argv)
    if args.render:
        return render_saved(config, args.render)
    if args.in_snapshot:
        return run(config, Path(args.in_snapshot[1]))
    run_dir = config.results_dir / time.strftime("%Y%m%d-%H%M%S")
    try:
        measured = snapshot.make(PROJECT_ROOT, run_dir / "src", config.source)
    except BenchSetupError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    print(f"bench: measuring {measured}, copied to {run_dir / 'src'}", flush=True)
    os.chdir(run_dir / "src")
    os.execv(sys.executable, [sys.executable, "-m", "bench", *argv, "--in-snapshot", str(PROJECT_ROOT), str(run_dir)])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
