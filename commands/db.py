"""`flask db upgrade|revision`: the ledger's schema."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from engine import migrate
from engine.services import current_services


@click.group("db")
def db_cli() -> None:
    """Database schema migrations."""


@db_cli.command("upgrade")
@click.argument("revision", default="head")
@with_appcontext
def upgrade(revision: str) -> None:
    """Migrate DATABASE_URL to REVISION (default: the latest)."""
    migrate.upgrade(current_services().settings.database_url, revision)
    click.echo(f"database at {revision}")


@db_cli.command("revision")
@click.option("-m", "--message", required=True, help="What the migration changes.")
@with_appcontext
def revision(message: str) -> None:
    """Autogenerate a migration from model changes (developers only)."""
    migrate.new_revision(current_services().settings.database_url, message)
