"""`flask worker`: a non-forking RQ worker with the scheduler and the reconciler.

Why not `rq worker`: RQ's default worker forks per job, which on a 2-core
machine caps a 4-call workflow at ~13/s against ~105/s without forking
(DESIGN.md). SimpleWorker runs jobs in this process, inside the app context
this command pushes, so each job reuses the process's DB pool and HTTP client.
`--processes N` forks N such workers with RQ's WorkerPool (shared pages, one
command to supervise); `rq worker-pool -w commands.worker.PoolWorker -n N`
does the same from RQ's own CLI.
"""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import with_appcontext

from engine.services import current_services
from engine.worker import PooledStepWorker, run_pool, run_worker

# A step worker holds at most one database connection at a time, and a process's pool has 30
# (engine.db: 10 kept, 20 more on demand); the reconciler thread takes one, so this leaves headroom.
# Beyond it, add processes: 2 x 24 was already slower than 4 x 12 (docs/running.md).
MAX_THREADS = 24


@click.command("worker")
@click.option("--burst", is_flag=True, help="Drain the queue, then exit (for tests and one-off catch-up).")
@click.option("--no-reconciler", is_flag=True, help="Do not look for lost runs from this process.")
@click.option(
    "--processes",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Processes to fork (RQ's WorkerPool), each with --threads step workers.",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1, max=MAX_THREADS),
    default=1,
    show_default=True,
    help=f"Step workers per process, one per thread; each runs one step at a time (at most {MAX_THREADS}).",
)
@with_appcontext
def worker(burst: bool, no_reconciler: bool, processes: int, threads: int) -> None:
    """Run step jobs (and delayed retries) until stopped."""
    if processes == 1:
        run_worker(current_services(), threads=threads, burst=burst, reconciler=not no_reconciler)
    else:
        run_pool(current_services(), processes, threads=threads, burst=burst, reconciler=not no_reconciler)


def _app_from_environment() -> Flask:
    from app import create_app  # imported here: app.py imports this module to register the command

    return create_app()


class PoolWorker(PooledStepWorker):
    """For RQ's CLI: `rq worker-pool hookflow -w commands.worker.PoolWorker -n 8` (builds the app from the env)."""

    app_factory = staticmethod(_app_from_environment)
