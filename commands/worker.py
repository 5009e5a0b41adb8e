"""`flask worker`: a non-forking RQ worker with the scheduler and the reconciler.

Why not `rq worker`: RQ's default worker forks per job, which on a 2-core
machine caps a 4-call workflow at ~13/s against ~105/s without forking
(DESIGN.md). SimpleWorker runs jobs in this process, inside the app context
this command pushes, so each job reuses the process's DB pool and HTTP client.
"""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from engine.services import current_services
from engine.worker import run_worker


@click.command("worker")
@click.option("--burst", is_flag=True, help="Drain the queue, then exit (for tests and one-off catch-up).")
@click.option("--no-reconciler", is_flag=True, help="Do not look for lost runs from this process.")
@with_appcontext
def worker(burst: bool, no_reconciler: bool) -> None:
    """Run step jobs (and delayed retries) until stopped."""
    run_worker(current_services(), burst=burst, reconciler=not no_reconciler)
