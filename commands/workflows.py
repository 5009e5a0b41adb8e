"""`flask workflows check`: every load problem as file:line:col, before anything is deployed."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from flask.cli import with_appcontext

from engine.loader import load_catalog
from engine.services import current_services


@click.group("workflows")
def workflows_cli() -> None:
    """Inspect the workflow files."""


@workflows_cli.command("check")
@click.argument("directory", required=False, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@with_appcontext
def check(directory: Path | None, strict: bool, fmt: str) -> None:
    """Load DIRECTORY (default WORKFLOWS_DIR) and report every problem; exit 1 on any error."""
    services = current_services()
    directory = directory or services.settings.workflows_dir
    catalog = load_catalog(directory, services.catalog.environ, services.operations, services.renderer)
    failing = [i for i in catalog.issues if i.severity == "error" or strict]
    if fmt == "json":
        click.echo(json.dumps([vars(issue) for issue in catalog.issues], indent=2))
    else:
        for issue in catalog.issues:
            click.echo(str(issue), err=issue in failing)
        click.echo(
            f"{len(catalog.workflows)} workflow(s), {len(catalog.sources) + len(catalog.unconfigured)} "
            f"source(s), {len(failing)} error(s), {len(catalog.issues) - len(failing)} warning(s)"
        )
    sys.exit(1 if failing else 0)
