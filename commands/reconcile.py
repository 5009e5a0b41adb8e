"""`flask reconcile`: one reconciler pass by hand (workers also run it every RECONCILE_INTERVAL_SECONDS)."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from engine.recovery import reconcile as reconcile_pass
from engine.services import current_services


@click.command("reconcile")
@with_appcontext
def reconcile() -> None:
    """Re-enqueue runs whose step job Redis lost; fail over attempts lost with their worker."""
    report = reconcile_pass(current_services())
    click.echo(f"re-enqueued {report.requeued} step job(s); recovered {report.lost_attempts} lost attempt(s)")
