"""`flask retention prune`: delete history older than RETENTION_DAYS (cron-able; safe while everything runs)."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from engine.retention import prune as prune_history
from engine.services import current_services


@click.group("retention")
def retention_cli() -> None:
    """Keep the ledger to a bounded size."""


@retention_cli.command("prune")
@click.option("--days", type=click.IntRange(min=1), help="Keep this many days (default: RETENTION_DAYS, 90).")
@click.option(
    "--batch-size", type=click.IntRange(1, 10000), help="Rows per transaction (default: RETENTION_BATCH_SIZE)."
)
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; delete nothing.")
@with_appcontext
def prune(days: int | None, batch_size: int | None, dry_run: bool) -> None:
    """Delete finished runs and unreferenced events older than --days; runs in flight are never touched."""
    services = current_services()
    settings = services.settings
    report = prune_history(
        services.db,
        days or settings.retention_days,
        batch_size or settings.retention_batch_size,
        dry_run=dry_run,
    )
    click.echo(str(report))
