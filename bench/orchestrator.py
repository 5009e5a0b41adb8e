"""The order of a bench run: set up, ingest, end to end, write the results, tear everything down.

Teardown is unconditional: the Supervisor stops every child, the private
database is dropped and the bench's Redis dbs are flushed, whether the run
finished, failed, or was interrupted (Ctrl-C or SIGTERM, both raised as
KeyboardInterrupt wherever the harness is, so the same `finally` blocks run).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from types import FrameType
from typing import Any

from bench import infra, machine, report, verdict
from bench.config import BenchConfig
from bench.e2e import run_e2e
from bench.infra import BenchSetupError, Ledger
from bench.ingest import run_ingest
from bench.procs import Supervisor
from bench.stack import Stack
from schemas.settings import PROJECT_ROOT

MIGRATE_TIMEOUT = 120


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _open_ledger(config: BenchConfig, run_dir: Path) -> Ledger:
    if config.db == "sqlite":
        print("bench: WARNING: running on SQLite; production runs PostgreSQL, so these numbers are not comparable")
        return Ledger.sqlite(run_dir / "sqlite")
    return Ledger.postgres(config.pg_admin_url)


def _migrate(stack: Stack, db: Ledger, redis_url: str) -> None:
    """`flask --app app db upgrade`, as a deploy runs it."""
    argv = [str(infra.VENV_BIN / "flask"), "--app", "app", "db", "upgrade"]
    done = subprocess.run(
        argv,
        env=stack.env(db.url, redis_url),
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=MIGRATE_TIMEOUT,
    )
    if done.returncode != 0:
        raise BenchSetupError(f"migrating the bench database failed:\n{done.stdout}{done.stderr}")


def measure(config: BenchConfig, run_dir: Path) -> dict[str, Any]:
    """Every phase, with every child stopped and the database dropped however it ends."""
    revision = machine.revision(config.output_root, config.source)
    ingest_redis = infra.redis_client(config.ingest_redis_url)
    e2e_redis = infra.redis_client(config.e2e_redis_url)
    (run_dir / "logs").mkdir(parents=True, exist_ok=True)
    db = _open_ledger(config, run_dir)
    try:
        with Supervisor(run_dir / "logs") as supervisor:
            stack = Stack(supervisor, (PROJECT_ROOT / "Procfile").read_text())
            _migrate(stack, db, config.ingest_redis_url)
            started = time.monotonic()
            speed = {"start": machine.speed_probe()}
            print(f"bench: ingest (logs in {run_dir / 'logs'})", flush=True)
            ingest = run_ingest(config, stack, db, ingest_redis, run_dir)
            speed["after ingest"] = machine.speed_probe()
            print("bench: end to end", flush=True)
            e2e = run_e2e(config, stack, db, e2e_redis, run_dir)
            speed["end"] = machine.speed_probe()
            elapsed = time.monotonic() - started
        return {
            "date": machine.now(),
            "machine": machine.machine(),
            "machine_speed": speed,
            "versions": {
                **machine.versions(),
                "Redis": infra.redis_version(ingest_redis),
                "Database": db.version(),
            },
            "revision": revision,
            "config": _config_dict(config),
            "ingest": ingest,
            "e2e": e2e,
            "elapsed_s": round(elapsed, 1),
        }
    finally:
        db.drop()
        for client in (ingest_redis, e2e_redis):
            client.flushdb()
            client.close()


def _config_dict(config: BenchConfig) -> dict[str, Any]:
    return {key: str(value) if isinstance(value, Path) else value for key, value in asdict(config).items()}


def run(config: BenchConfig, run_dir: Path) -> int:
    """Measure, write results.json and the report; exit status 1 if a correctness check failed."""
    # Our own handler for both: asyncio.run's SIGINT handling cancels the load's task, and a cancellation
    # absorbed on the way (wait_for can) would let the run carry on as if nothing had been pressed.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    try:
        results = measure(config, run_dir)
    except BenchSetupError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench: interrupted; every process it started has been stopped", file=sys.stderr)
        return 130
    (run_dir / "results.json").write_text(json.dumps(results, indent=2, default=str))
    if config.save_baseline:
        config.baseline_path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    _write_report(config, results)
    print(report.summary(results))
    print(f"bench: wrote {config.report} and {run_dir / 'results.json'}")
    return _verdict(results)


def _write_report(config: BenchConfig, results: dict[str, Any]) -> None:
    baseline = json.loads(config.baseline_path.read_text()) if config.baseline_path.exists() else None
    config.report.parent.mkdir(parents=True, exist_ok=True)
    config.report.write_text(report.render(results, baseline))


def render_saved(config: BenchConfig, results_json: Path) -> int:
    """Re-render the report from a saved run (after a change to the report, say) without measuring again."""
    results = json.loads(results_json.read_text())
    _write_report(config, results)
    print(f"bench: wrote {config.report} from {results_json}")
    return _verdict(results)


def _verdict(results: dict[str, Any]) -> int:
    failed = verdict.failed_checks(results)
    for check in failed:
        print(f"bench: CHECK FAILED: {check}", file=sys.stderr)
    return 1 if failed else 0
