"""The operators' JSON API under /api, behind `Authorization: Bearer <ADMIN_TOKEN>`.

Everything the console does is here too. Inputs are validated by the pydantic
models in schemas/api.py, the same ones /api/openapi.json is generated from
(engine.openapi); a bad input is a 400 naming the parameter, never a 500.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any, TypeVar

from flask import Blueprint, Response, jsonify, request
from pydantic import BaseModel, ValidationError
from ruamel.yaml.reader import ReaderError

from engine import control, openapi, queries, report, store
from engine.issues import Issue
from engine.loader import load_workflow
from engine.models import Event, Run
from engine.services import current_services
from schemas.api import (
    BulkRetryIn,
    BulkRetryOut,
    EventList,
    EventQuery,
    RunList,
    RunQuery,
    SkippedRun,
    ValidateIn,
    ValidateOut,
    WorkflowList,
)
from web.auth import require_admin_token

bp = Blueprint("api", __name__, url_prefix="/api")
# Ids are ours (`run_<ULID>`, `evt_<ULID>`); anything else cannot exist, and must not reach the database as is.
OUR_ID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
YAML_TYPES = ("text/yaml", "application/yaml", "application/x-yaml", "text/x-yaml", "text/plain")
Model = TypeVar("Model", bound=BaseModel)


class BadInput(Exception):
    """A request parameter or body failed validation; the message names what and why."""


def model_response(model: BaseModel, status: int = 200) -> tuple[Response, int]:
    """A response model as JSON, under its field aliases (what the OpenAPI document shows)."""
    return Response(model.model_dump_json(by_alias=True), mimetype="application/json"), status


def _error(status: int, message: str) -> tuple[Response, int]:
    return jsonify(error=message), status


def validation_message(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or "body"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


def parse(model: type[Model], data: Any) -> Model:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise BadInput(validation_message(exc)) from None


@bp.errorhandler(BadInput)
def _bad_input(exc: BadInput) -> tuple[Response, int]:
    return _error(400, str(exc))


@bp.before_request
def _authenticate() -> tuple[Response, int] | None:
    if request.endpoint == "api.openapi_document":  # the API's description is public; what it serves is not
        return None
    return require_admin_token()


@bp.get("/openapi.json")
def openapi_document() -> Response:
    return jsonify(openapi.document())


# --- Runs -------------------------------------------------------------------------------------


@bp.get("/runs")
def list_runs() -> tuple[Response, int]:
    """Newest first; `before=<run id>` pages backwards (ids are time-ordered)."""
    wanted = parse(RunQuery, request.args.to_dict(flat=True))
    with current_services().db.session() as session:
        rows, more = queries.run_page(session, wanted)
    return model_response(RunList(runs=[report.summarize(row.run, row.source) for row in rows], next_before=more))


def run_view(run_id: str, status: int = 200) -> tuple[Response, int]:
    if not OUR_ID.match(run_id):
        return _error(404, f"no run {run_id}")
    with current_services().db.session() as session:
        run = session.get(Run, run_id)
        if run is None:
            return _error(404, f"no run {run_id}")
        attempts, items = store.attempts_of(session, run_id), store.items_of(session, run_id)
        return model_response(report.describe(run, attempts, items, queries.source_of(session, run)), status)


@bp.get("/runs/<run_id>")
def get_run(run_id: str) -> tuple[Response, int]:
    return run_view(run_id)


@bp.post("/runs/<run_id>/retry")
def retry_run(run_id: str) -> tuple[Response, int]:
    """Resume a failed run at its failed step (same run id)."""
    return _act(control.retry_run, run_id)


@bp.post("/runs/<run_id>/cancel")
def cancel_run(run_id: str) -> tuple[Response, int]:
    """Stop a queued or running run; its lane passes to the next run waiting."""
    return _act(control.cancel_run, run_id, ok=200)


def _act(action: Any, run_id: str, ok: int = 202) -> tuple[Response, int]:
    if not OUR_ID.match(run_id):
        return _error(404, f"no run {run_id}")
    try:
        action(current_services(), run_id)
    except control.RunNotFound:
        return _error(404, f"no run {run_id}")
    except control.RunConflict as exc:
        return _error(409, str(exc))
    return run_view(run_id, ok)


@bp.post("/runs/retry")
def retry_runs() -> tuple[Response, int]:
    """Retry the failed runs matching a filter (JSON body), oldest first, up to `limit`."""
    body = request.get_json(silent=True) if request.content_length else {}
    if not isinstance(body, dict):
        raise BadInput('send a JSON object, e.g. {"workflow": "web-enquiry", "since": "2026-01-01"}')
    wanted = parse(BulkRetryIn, body)
    outcome = control.retry_runs(current_services(), wanted)
    skipped = [SkippedRun(id=run_id, error=why) for run_id, why in outcome.skipped.items()]
    result = BulkRetryOut(
        dry_run=wanted.dry_run, matched=len(outcome.matched), retried=outcome.retried, skipped=skipped
    )
    return model_response(result, 200 if wanted.dry_run else 202)


# --- Events -----------------------------------------------------------------------------------


@bp.get("/events")
def list_events() -> tuple[Response, int]:
    """Accepted and rejected events, newest first, with duplicate-delivery counts."""
    wanted = parse(EventQuery, request.args.to_dict(flat=True))
    with current_services().db.session() as session:
        events, more = queries.event_page(session, wanted)
    return model_response(EventList(events=[report.summarize_event(event) for event in events], next_before=more))


@bp.get("/events/<event_id>")
def get_event(event_id: str) -> tuple[Response, int]:
    if not OUR_ID.match(event_id):
        return _error(404, f"no event {event_id}")
    with current_services().db.session() as session:
        event = session.get(Event, event_id)
        if event is None:
            return _error(404, f"no event {event_id}")
        return model_response(report.describe_event(event, queries.run_ids_of_event(session, event_id)))


# --- Workflows --------------------------------------------------------------------------------


@bp.get("/workflows")
def list_workflows() -> tuple[Response, int]:
    """Every loaded workflow with its recent record, and every load problem as file:line:col."""
    services = current_services()
    catalog = services.catalog.current()
    now = store.utcnow()
    with services.db.session() as session:
        summaries = [report.workflow_overview(session, wf, now) for _, wf in sorted(catalog.workflows.items())]
    return model_response(WorkflowList(workflows=summaries, issues=[report.issue_out(i) for i in catalog.issues]))


@bp.get("/workflows/<name>")
def get_workflow(name: str) -> tuple[Response, int]:
    services = current_services()
    catalog = services.catalog.current()
    workflow = catalog.workflows.get(name)
    if workflow is None:
        return _error(404, f"no workflow {name!r}; loaded: {', '.join(sorted(catalog.workflows)) or 'none'}")
    with services.db.session() as session:
        summary = report.workflow_overview(session, workflow, store.utcnow())
    return model_response(report.describe_workflow(summary, workflow, catalog.issues))


@bp.post("/workflows/validate")
def validate_workflow() -> tuple[Response, int]:
    """Check a workflow file before deploying it: the same checks as `flask workflows check`."""
    mimetype = request.mimetype or ""
    if mimetype in YAML_TYPES:
        if (request.content_length or 0) > 256 * 1024:
            raise BadInput("the file is larger than 256 KiB")
        wanted = parse(ValidateIn, {"yaml": request.get_data(as_text=True)})
    else:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise BadInput('send the file as text/yaml, or JSON {"yaml": "<the file>", "filename": "x.yaml"}')
        wanted = parse(ValidateIn, body)
    return model_response(validate_text(wanted))


def _reader_issue(wanted: ValidateIn, exc: ReaderError) -> Issue:
    before = wanted.yaml[: exc.position]
    line, col = before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1
    char = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "\0")
    message = f"YAML syntax error: character U+{char:04X} is not allowed in YAML"
    return Issue(wanted.filename, line, col, "", message, "remove the control character")


def validate_text(wanted: ValidateIn) -> ValidateOut:
    services = current_services()
    catalog = services.catalog.current()
    sources = set(catalog.sources) | set(catalog.unconfigured)
    with tempfile.TemporaryDirectory(prefix="hookflow-validate-") as directory:
        path = Path(directory) / wanted.filename
        path.write_text(wanted.yaml, encoding="utf-8")
        try:
            loaded, issues = load_workflow(
                path, services.operations, services.renderer, sources, catalog.broken_sources
            )
        except ReaderError as exc:  # characters YAML forbids; engine.loader does not map this one (yet)
            loaded, issues = None, [_reader_issue(wanted, exc)]
    shown = [report.issue_out(issue).model_copy(update={"file": wanted.filename}) for issue in issues]
    valid = loaded is not None and not any(issue.severity == "error" for issue in shown)
    return ValidateOut(valid=valid, name=loaded.spec.name if loaded else None, issues=shown)
