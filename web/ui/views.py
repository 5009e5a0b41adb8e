"""Console pages: runs, a run, events, an event (and its raw body), workflows; and the POST actions.

Every page reads through engine.queries / engine.report and acts through
engine.control, exactly as /api does, so the two cannot disagree.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response, abort, flash, redirect, render_template, request, url_for
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import HTTPException

from engine import control, queries, report, store
from engine.conductor import ACTIVE_RUN
from engine.logs import Scrubber, configured_secrets
from engine.models import Event, Run
from engine.replay import EventNotFound, ReplayConflict, StillRejected, replay_event
from engine.services import Services, current_services
from schemas.api import BulkRetryIn, EventQuery, RunQuery
from web.api import OUR_ID, validation_message
from web.ui import bp

ACTIVE = {status.value for status in ACTIVE_RUN}
RUN_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")


@bp.errorhandler(HTTPException)
def _error_page(exc: HTTPException) -> tuple[str, int]:
    return render_template("console/error.html", error=exc), exc.code or 500


@bp.url_value_preprocessor
def _our_ids_only(endpoint: str | None, values: dict[str, Any] | None) -> None:
    """A run or event id that cannot be ours is a 404 before any query (PostgreSQL refuses NUL in text)."""
    for key in ("run_id", "event_id"):
        if values and key in values and not OUR_ID.match(values[key]):
            abort(404, description=f"no {key.removesuffix('_id')} {values[key]}")


def _query(model: type[BaseModel], args: dict[str, str]) -> tuple[Any, str | None]:
    """The page's filters, or the defaults and what was wrong with them (shown above the list)."""
    wanted = {key: value for key, value in args.items() if value != ""}
    try:
        return model.model_validate(wanted), None
    except ValidationError as exc:
        return model(), validation_message(exc)


@bp.get("/")
def home() -> Response:
    return redirect(url_for("ui.runs"))


@bp.get("/runs")
def runs() -> str:
    wanted, problem = _query(RunQuery, request.args.to_dict(flat=True))
    services = current_services()
    with services.db.session() as session:
        rows, more = queries.run_page(session, wanted)
    summaries = [report.summarize(row.run, row.source) for row in rows]
    return render_template(
        "console/runs.html",
        runs=summaries,
        next_before=more,
        wanted=wanted,
        problem=problem,
        statuses=RUN_STATUSES,
        workflows=sorted(services.catalog.current().workflows),
        live=any(run.status in ACTIVE for run in summaries),
        refresh=services.settings.console_refresh_seconds,
    )


@bp.get("/runs/<run_id>")
def run(run_id: str) -> str:
    services = current_services()
    with services.db.session() as session:
        found = session.get(Run, run_id)
        if found is None:
            abort(404, description=f"no run {run_id}")
        attempts, items = store.attempts_of(session, run_id), store.items_of(session, run_id)
        event = session.get(Event, found.event_id)
        described = report.describe(found, attempts, items, event.source if event else None)
    return render_template(
        "console/run.html",
        run=described,
        event=report.describe_event(event, []) if event else None,
        live=described.status in ACTIVE,
        refresh=services.settings.console_refresh_seconds,
    )


def _act(action: Callable[[Services, str], Any], run_id: str, done: str) -> Response:
    try:
        action(current_services(), run_id)
    except control.RunNotFound:
        abort(404, description=f"no run {run_id}")
    except control.RunConflict as exc:
        flash(str(exc), "error")
    else:
        flash(done, "ok")
    return redirect(url_for("ui.run", run_id=run_id))


@bp.post("/runs/<run_id>/retry")
def retry(run_id: str) -> Response:
    return _act(control.retry_run, run_id, "Retrying from the failed step.")


@bp.post("/runs/<run_id>/cancel")
def cancel(run_id: str) -> Response:
    return _act(control.cancel_run, run_id, "Cancelled.")


@bp.post("/runs/retry-failed")
def retry_failed() -> Response:
    """Retry the failed runs matching the list's filters (at most 100 per click)."""
    fields = {k: v for k, v in request.form.items() if k in BulkRetryIn.model_fields and v != "" and k != "status"}
    try:
        wanted = BulkRetryIn.model_validate(fields)
    except ValidationError as exc:
        flash(validation_message(exc), "error")
        return redirect(url_for("ui.runs"))
    outcome = control.retry_runs(current_services(), wanted)
    flash(f"Retrying {len(outcome.retried)} failed run(s); {len(outcome.skipped)} could not be retried.", "ok")
    return redirect(url_for("ui.runs", **{k: v for k, v in fields.items() if k != "limit"}))


@bp.get("/events")
def events() -> str:
    wanted, problem = _query(EventQuery, request.args.to_dict(flat=True))
    services = current_services()
    with services.db.session() as session:
        page, more = queries.event_page(session, wanted)
    catalog = services.catalog.current()
    return render_template(
        "console/events.html",
        events=[report.summarize_event(event) for event in page],
        next_before=more,
        wanted=wanted,
        problem=problem,
        sources=sorted(set(catalog.sources) | set(catalog.unconfigured)),
    )


@bp.get("/events/<event_id>")
def event(event_id: str) -> str:
    with current_services().db.session() as session:
        found = session.get(Event, event_id)
        if found is None:
            abort(404, description=f"no event {event_id}")
        described = report.describe_event(found, queries.run_ids_of_event(session, event_id))
        runs_of = [report.summarize(r) for r in (session.get(Run, run_id) for run_id in described.runs) if r]
    return render_template("console/event.html", event=described, runs=runs_of)


def scrubber() -> Scrubber:
    """Masks every secret this server is configured with (engine.logs.configured_secrets, as the logs do)."""
    services = current_services()
    return Scrubber(configured_secrets(services.settings, services.catalog.current()))


@bp.get("/events/<event_id>/raw")
def raw_body(event_id: str) -> Response:
    """The body exactly as received (known secrets masked), as plain text: never interpreted by the browser."""
    with current_services().db.session() as session:
        found = session.get(Event, event_id)
        if found is None:
            abort(404, description=f"no event {event_id}")
        body = found.raw_body.decode("utf-8", errors="replace")
    response = Response(body, mimetype="text/plain")  # known secrets are masked on the way out (web.ui)
    response.headers["Content-Security-Policy"] = "sandbox; default-src 'none'"
    return response


@bp.post("/events/<event_id>/replay")
def replay(event_id: str) -> Response:
    """Start the event's workflows again (engine.replay): new runs, or a rejected event accepted at last."""
    try:
        done = replay_event(current_services(), event_id)
    except EventNotFound:
        abort(404, description=f"no event {event_id}")
    except (ReplayConflict, StillRejected) as exc:
        flash(f"Not replayed: {exc}", "error")
        return redirect(url_for("ui.event", event_id=event_id))
    flash(f"Replayed: {len(done.runs)} new run(s).", "ok")
    if len(done.runs) == 1:
        return redirect(url_for("ui.run", run_id=done.runs[0].id))
    return redirect(url_for("ui.runs", event_id=done.event_id))


@bp.get("/workflows")
def workflows() -> str:
    services = current_services()
    catalog = services.catalog.current()
    now = store.utcnow()
    with services.db.session() as session:
        overview = [report.workflow_overview(session, wf, now) for _, wf in sorted(catalog.workflows.items())]
    return render_template(
        "console/workflows.html",
        workflows=overview,
        issues=catalog.issues,
        unconfigured=catalog.unconfigured,
    )


@bp.get("/workflows/<name>")
def workflow(name: str) -> str:
    services = current_services()
    catalog = services.catalog.current()
    loaded = catalog.workflows.get(name)
    if loaded is None:
        abort(404, description=f"no workflow {name!r}")
    with services.db.session() as session:
        summary = report.workflow_overview(session, loaded, store.utcnow())
    described = report.describe_workflow(summary, loaded, catalog.issues)
    try:
        text = loaded.path.read_text(encoding="utf-8")
    except OSError as exc:
        text = f"(cannot read {loaded.path}: {exc})"
    return render_template("console/workflow.html", workflow=described, text=text)
