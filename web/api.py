"""The operators' JSON API under /api, behind `Authorization: Bearer <ADMIN_TOKEN>`."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request
from pydantic import BaseModel
from sqlalchemy import select

from engine import control, report, store
from engine.models import Event, Run
from engine.services import current_services
from schemas.api import RunList
from web.auth import require_admin_token

bp = Blueprint("api", __name__, url_prefix="/api")
MAX_PAGE = 200


def _json(model: BaseModel, status: int = 200) -> tuple[Response, int]:
    return Response(model.model_dump_json(), mimetype="application/json"), status


def _error(status: int, message: str) -> tuple[Response, int]:
    return jsonify(error=message), status


bp.before_request(require_admin_token)


@bp.get("/runs")
def list_runs() -> tuple[Response, int]:
    """Newest first; `before=<run id>` pages backwards (ids are time-ordered)."""
    try:
        limit = min(int(request.args.get("limit", 50)), MAX_PAGE)
    except ValueError:
        return _error(400, "limit must be an integer")
    if limit < 1:
        return _error(400, "limit must be at least 1")
    query = select(Run).order_by(Run.id.desc()).limit(limit + 1)
    for arg, column in (("status", Run.status), ("workflow", Run.workflow), ("event_id", Run.event_id)):
        if request.args.get(arg):
            query = query.where(column == request.args[arg])
    if request.args.get("before"):
        query = query.where(Run.id < request.args["before"])
    with current_services().db.session() as session:
        runs = list(session.scalars(query))
    page = runs[:limit]
    more = page[-1].id if len(runs) > limit else None
    return _json(RunList(runs=[report.summarize(run) for run in page], next_before=more))


def _run_view(run_id: str, status: int = 200) -> tuple[Response, int]:
    with current_services().db.session() as session:
        run = session.get(Run, run_id)
        if run is None:
            return _error(404, f"no run {run_id}")
        return _json(report.describe(run, store.attempts_of(session, run_id), store.items_of(session, run_id)), status)


@bp.get("/runs/<run_id>")
def get_run(run_id: str) -> tuple[Response, int]:
    return _run_view(run_id)


@bp.post("/runs/<run_id>/retry")
def retry_run(run_id: str) -> tuple[Response, int]:
    services = current_services()
    try:
        control.retry_run(services, run_id)
    except control.RunNotFound:
        return _error(404, f"no run {run_id}")
    except control.RunConflict as exc:
        return _error(409, str(exc))
    return _run_view(run_id, 202)


@bp.get("/events/<event_id>")
def get_event(event_id: str) -> tuple[Response, int]:
    with current_services().db.session() as session:
        event = session.get(Event, event_id)
        if event is None:
            return _error(404, f"no event {event_id}")
        run_ids = list(session.scalars(select(Run.id).where(Run.event_id == event_id).order_by(Run.id)))
        return _json(report.describe_event(event, run_ids))
