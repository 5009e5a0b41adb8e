"""`flask connectors docs`: regenerate (or --check) docs/connectors/<connector>.md from the models."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask.cli import with_appcontext

from engine.opdocs import connector_page
from engine.services import current_services
from handlers import CONNECTOR_MODULES
from schemas.settings import PROJECT_ROOT

DOCS_DIR = PROJECT_ROOT / "docs" / "connectors"


def expected_pages() -> dict[Path, str]:
    """Every connector page as the current code would render it."""
    operations = list(current_services().operations)
    pages = {}
    for module in CONNECTOR_MODULES:
        name = module.__name__.rsplit(".", 1)[-1]
        pages[DOCS_DIR / f"{name}.md"] = connector_page(module, [op for op in operations if op.module == name])
    return pages


@click.group("connectors")
def connectors_cli() -> None:
    """Connector reference."""


@connectors_cli.command("docs")
@click.option("--check", is_flag=True, help="Exit 1 if a committed page differs from the models instead of writing.")
@with_appcontext
def docs(check: bool) -> None:
    """Write docs/connectors/<connector>.md for every connector."""
    stale = []
    for path, text in expected_pages().items():
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(path)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        click.echo(f"wrote {path.relative_to(PROJECT_ROOT)}")
    if stale:
        for path in stale:
            click.echo(
                f"{path.relative_to(PROJECT_ROOT)} is out of date; run: flask --app app connectors docs", err=True
            )
        sys.exit(1)
