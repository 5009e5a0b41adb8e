"""Starting the measured processes: the web service (ours or bare), RQ workers, the API stub.

Each start waits until the process is really ready (its port answers, or the
worker has registered with Redis), so no phase measures a boot.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from redis import Redis
from rq import Worker

from bench import infra
from bench.config import Pool
from bench.procs import Child, Supervisor, children_of, free_port, peak_rss_kb, port_answers, pss_kb, wait_until
from schemas.settings import PROJECT_ROOT

BOOT_TIMEOUT = 60.0


@dataclass
class Web:
    child: Child
    port: int
    argv: list[str]

    def worker_pids(self) -> list[int]:
        return children_of(self.child.pid)

    def pids(self) -> list[int]:
        return [self.child.pid, *self.worker_pids()]


@dataclass
class Workers:
    """A pool of RQ workers, parent and children: `flask worker --processes N`, or the naive `rq worker-pool`."""

    pool: Child
    argv: list[str]

    def worker_pids(self) -> list[int]:
        return children_of(self.pool.pid)

    def pids(self) -> list[int]:
        return [self.pool.pid, *self.worker_pids()]

    def memory(self) -> dict[str, Any]:
        """Each worker's peak RSS, and the whole pool's PSS: read while the pool still runs, once its work is done.

        The workers share most pages with their parent, so their RSS values overlap; the sum of
        PSS (each shared page split among its sharers) is what the pool really occupies.
        """
        pids = self.pids()
        return {
            "workers_mib": [round(kb / 1024, 1) for pid in pids[1:] if (kb := peak_rss_kb(pid)) is not None],
            "pool_processes": len(pids),
            "workers_pss_mib": round(sum(pss_kb(pid) or 0 for pid in pids) / 1024, 1),
        }


@dataclass
class Stack:
    """The measured processes of one bench run, all started under one Supervisor."""

    supervisor: Supervisor
    procfile: str

    def env(self, database_url: str, redis_url: str, stub_port: int | None = None) -> dict[str, str]:
        """What Hookflow's processes get: the bench's database and Redis, its tokens, and the stub.

        The BigChange request budget is raised far above what the run sends: it is a politeness
        limit for the real API (10/s by default), not a guarantee, and at 10/s it would be all
        the bench measured. Its Redis round trip per call stays in the measured path.
        """
        overrides = {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "WORKFLOWS_DIR": str(PROJECT_ROOT / "workflows"),
            "WEBFORM_TOKEN": infra.WEBFORM_TOKEN,
            "ACCOUNTS_SECRET": "bench-accounts-secret",
            "ADMIN_TOKEN": "bench-admin-token",
            "BIGCHANGE_API_KEY": infra.API_KEY,
            "BIGCHANGE_REQUESTS_PER_SECOND": "1000000",
            "BIGCHANGE_BURST": "1000000",
            # Likewise the inbound limit per source (50/s by default): raised, not switched off, so its
            # Redis call stays in the measured ack path.
            "INBOUND_RATE_LIMIT_PER_SECOND": "1000000",
            "INBOUND_RATE_LIMIT_BURST": "1000000",
        }
        if stub_port is not None:
            overrides["BIGCHANGE_BASE_URL"] = f"http://127.0.0.1:{stub_port}/bigchange"
        return infra.process_env(overrides)

    def web(self, name: str, env: dict[str, str], app: str = "app:app") -> Web:
        """gunicorn with the Procfile's web settings, serving `app` on a free loopback port."""
        port = free_port()
        argv = infra.procfile_command(self.procfile, "web", port)
        argv = [app if arg == "app:app" else arg for arg in argv]
        child = self.supervisor.start(name, argv, env, PROJECT_ROOT)
        wait_until(lambda: port_answers(port), child, BOOT_TIMEOUT, f"answer on port {port}")
        wait_until(lambda: len(children_of(child.pid)) >= 1, child, BOOT_TIMEOUT, "gunicorn workers")
        return Web(child, port, argv)

    def workers(
        self, name: str, pool: Pool, env: dict[str, str], redis: Redis, argv: list[str] | None = None
    ) -> Workers:
        """A pool of RQ workers, ready once all `pool.workers` have registered with RQ.

        By default the Procfile's worker command with `--processes` and `--threads`; `argv` starts another
        pool (the naive reference's `rq worker-pool`).
        """
        if argv is None:
            argv = [*infra.procfile_command(self.procfile, "worker"), "--processes", str(pool.processes)]
            argv += ["--threads", str(pool.threads)] if pool.threads > 1 else []
        count = pool.workers
        before = Worker.count(connection=redis)
        pool = self.supervisor.start(name, argv, env, PROJECT_ROOT)
        wait_until(
            lambda: Worker.count(connection=redis) >= before + count,
            pool,
            BOOT_TIMEOUT,
            f"{count} workers registered with RQ",
        )
        return Workers(pool, argv)

    def stub(self) -> tuple[Child, int, list[str]]:
        port = free_port()
        argv = [sys.executable, "-m", "bench.stub", "--port", str(port), "--api-key", infra.API_KEY]
        child = self.supervisor.start("stub", argv, infra.process_env({}), PROJECT_ROOT)
        wait_until(lambda: port_answers(port), child, BOOT_TIMEOUT, f"answer on port {port}")
        return child, port, argv
