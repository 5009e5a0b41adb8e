"""`flask workflows check`: every load problem as file:line:col, before anything is deployed."""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import click
import httpx
from flask.cli import with_appcontext

from engine.editor_schema import schema_text
from engine.loader import load_catalog
from engine.rehearsal import Explanation, Rehearsal, Rehearser
from engine.services import current_services
from engine.workflow_tests import run_case
from sandbox import mounts
from sandbox.server import serve_in_thread

REHEARSAL_KEY = "rehearsal-key"


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
    # --strict: a warning is an error (and says so); every finding goes to stdout, in file order.
    issues = [dataclasses.replace(i, severity="error") if strict else i for i in catalog.issues]
    errors = sum(issue.severity == "error" for issue in issues)
    if fmt == "json":
        click.echo(json.dumps([vars(issue) for issue in issues], indent=2))
    else:
        for issue in issues:
            click.echo(str(issue))
        sources = len(catalog.sources) + len(catalog.unconfigured)
        click.echo(
            f"{len(catalog.workflows)} workflow(s), {sources} source(s), {errors} error(s), "
            f"{len(issues) - errors} warning(s)"
        )
    sys.exit(1 if errors else 0)


@workflows_cli.command("schema")
@with_appcontext
def schema() -> None:
    """Print the JSON Schema editors use for workflow files (committed as docs/workflow.schema.json)."""
    click.echo(schema_text(current_services().operations), nl=False)


@workflows_cli.command("test")
@click.argument("name", required=False)
@click.option(
    "--event",
    "event_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSON body of the event, as its source would POST it.",
)
@click.option("--plan", is_flag=True, help="Call nothing; show each step's request as far as it can be known.")
@click.option("--all", "run_all", is_flag=True, help="Run every workflows/tests/*.yaml.")
@click.option("--allow-http", is_flag=True, help="Let core.http steps really call their (allow-listed) hosts.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@with_appcontext
def test(name: str | None, event_file: Path | None, plan: bool, run_all: bool, allow_http: bool, fmt: str) -> None:
    """Dry-run workflow NAME with --event FILE against the API sandbox (or --plan); or --all test files."""
    services = current_services()
    # A dry run verifies no sender, so a source whose secret is not set here still types and keys its events.
    catalog = load_catalog(
        services.settings.workflows_dir, _AnySecret(services.catalog.environ), services.operations, services.renderer
    )
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the simulators' access log is noise here
    server = serve_in_thread(mounts.create_app(api_key=REHEARSAL_KEY))
    try:
        overrides: dict[str, Any] = mounts.sandbox_settings(server.url, REHEARSAL_KEY)
        if not allow_http:
            overrides["core_http_allowed_hosts"] = ""  # a dry run must not post to Slack for real
        with Rehearser(services, catalog, overrides) as rehearser:
            if run_all:
                sys.exit(_run_all(services.settings.workflows_dir / "tests", rehearser, server.url))
            if name is None or event_file is None:
                raise click.UsageError("give NAME and --event FILE, or --all")
            if name not in catalog.workflows:
                raise click.UsageError(f"no workflow {name!r}; loaded: {', '.join(sorted(catalog.workflows))}")
            report = _rehearse(rehearser, name, event_file, plan)
    finally:
        server.stop()
    click.echo(json.dumps(dataclasses.asdict(report), indent=2, default=str) if fmt == "json" else describe(report))
    sys.exit(0 if report.status in ("succeeded", "planned") else 1)


class _AnySecret(Mapping[str, str]):
    """The environment, with every unset `${VAR}` standing in as a placeholder."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def __getitem__(self, name: str) -> str:
        return self._environ.get(name) or "rehearsal-placeholder"

    def __contains__(self, name: object) -> bool:
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(self._environ)

    def __len__(self) -> int:
        return len(self._environ)


def _rehearse(rehearser: Rehearser, name: str, event_file: Path, plan: bool) -> Rehearsal:
    try:
        body = json.loads(event_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise click.ClickException(
            f"{event_file}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg} (the file is the body the source POSTs)"
        ) from None
    try:
        return rehearser.rehearse(name, body, plan=plan)
    except ValueError as exc:
        source = rehearser.catalog.workflows[name].spec.on.source
        raise click.ClickException(f"{event_file}: {exc} (is this a body that source {source!r} sends?)") from None


def _run_all(directory: Path, rehearser: Rehearser, sandbox_url: str) -> int:
    cases = sorted(directory.glob("*.yaml"))
    if not cases:
        click.echo(f"no test files in {directory}")
        return 0
    failed = 0
    for path in cases:
        for prefix in mounts.MOUNTS:  # every test file starts from the simulators' seed data
            httpx.post(f"{sandbox_url}{prefix}/__sandbox__/reset", timeout=10).raise_for_status()
        rehearser.start_over()
        outcome = run_case(path, rehearser)
        click.echo(f"{'PASS' if outcome.passed else 'FAIL'} {path.name}")
        for failure in outcome.failures:
            click.echo(f"    {failure}")
        failed += not outcome.passed
    click.echo(f"{len(cases) - failed} passed, {failed} failed")
    return 1 if failed else 0


def describe(report: Rehearsal) -> str:
    """The rehearsal as an ops person reads it: trigger, then each step with its why and its calls."""
    lines = [f"workflow {report.workflow}: {report.status}"]
    lines.append(f"  trigger: {report.trigger}")
    lines += _explained(report.condition, "  ")
    for step in report.steps:
        lines.append(f"  step {step.id} ({step.uses}): {step.status}")
        lines += _explained(step.condition, "    ")
        if step.input is not None:
            lines.append(f"    input: {json.dumps(step.input, default=str)}")
        for call in step.calls:
            lines.append(f"    {call['method']} {call['url']} -> {call.get('status')}")
            if call.get("body") is not None:
                lines.append(f"      sent: {json.dumps(call['body'], default=str)}")
            lines.append(f"      got:  {json.dumps(call.get('response'), default=str)}")
        if step.output is not None:
            lines.append(f"    output: {json.dumps(step.output, default=str)}")
        if step.error:
            lines.append(f"    error: {step.error}")
    return "\n".join(lines)


def _explained(explanation: Explanation | None, indent: str) -> list[str]:
    if explanation is None:
        return []
    result = {True: "true", False: "false", None: "unknown until the run"}[explanation.result]
    lines = [f"{indent}if {explanation.expression!r} -> {result}"]
    lines += [f"{indent}  {path} = {value!r}" for path, value in explanation.values.items()]
    if explanation.error:
        lines.append(f"{indent}  error: {explanation.error}")
    return lines
