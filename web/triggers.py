"""Starting work by hand or by API: replay an event, run a workflow directly.

- `POST /api/events/<id>/replay` (ADMIN_TOKEN): engine/replay.py.
- `POST /api/workflows/<name>/run` (ADMIN_TOKEN, DIRECT_RUN_TOKEN, or a source
  listing the workflow under `run_workflows`): engine/direct.py. `?wait=N`
  holds the answer up to N seconds (at most DIRECT_RUN_MAX_WAIT_SECONDS) for
  the run to finish: 200 with the finished run, else 202 with the run as it is.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request
from pydantic import ValidationError

from engine import direct, report, store
from engine.intake import InboundRequest
from engine.models import Run
from engine.replay import EventNotFound, ReplayConflict, Replayed, StillRejected, replay_event
from engine.services import Services, current_services
from schemas.api import ReplayedEvent, ReplayIn, ReplayOut, RunWorkflowQuery
from web.api import OUR_ID, validation_message
from web.auth import require_admin_token

bp = Blueprint("triggers", __name__, url_prefix="/api")
_admin = Blueprint("admin", __name__)
_admin.before_request(require_admin_token)


def _error(status: int, message: str) -> tuple[Response, int]:
    return jsonify(error=message), status


@_admin.post("/events/<event_id>/replay")
def replay(event_id: str) -> tuple[Response, int]:
    if not OUR_ID.match(event_id):  # cannot exist; and PostgreSQL refuses NUL in a query, which would be a 500
        return _error(404, f"no event {event_id}")
    given = request.get_json(silent=True) if request.data else {}
    if not isinstance(given, dict):
        return _error(400, 'the body is optional; if sent, it is a JSON object such as {"workflow": "<name>"}')
    try:
        wanted = ReplayIn.model_validate(given)
    except ValidationError as exc:
        return _error(400, validation_message(exc))
    try:
        done = replay_event(current_services(), event_id, wanted.workflow)
    except EventNotFound:
        return _error(404, f"no event {event_id}")
    except ReplayConflict as exc:
        return _error(409, str(exc))
    except StillRejected as exc:
        return _error(422, f"event {event_id} still cannot be accepted: {exc}")
    return _replay_answer(done)


def _replay_answer(done: Replayed) -> tuple[Response, int]:
    """202 with what started; 200 when the event a rejected one became was already stored (nothing started)."""
    if done.replay_of is None:
        answer = ReplayOut(event_id=done.event_id, runs=[run.id for run in done.runs])
    elif len(done.stored) == 1:
        answer = ReplayOut(replay_of=done.replay_of, **done.stored[0].answer())
    else:
        answer = ReplayOut(replay_of=done.replay_of, events=[ReplayedEvent(**item.answer()) for item in done.stored])
    status = 200 if answer.duplicate else 202
    return Response(answer.model_dump_json(exclude_none=True), mimetype="application/json"), status


bp.register_blueprint(_admin)


def _wait_seconds(services: Services) -> float | None:
    """The `?wait=` asked for, capped; None when absent.

    Raises:
        ValueError: not a number of seconds (NaN and negatives included).
    """
    given = {"wait": request.args["wait"]} if "wait" in request.args else {}
    try:
        wait = RunWorkflowQuery.model_validate(given).wait
    except ValidationError as exc:
        raise ValueError(validation_message(exc)) from None
    return None if wait is None else min(wait, services.settings.direct_run_max_wait_seconds)


def _run_answer(services: Services, run: Run, repeated: bool) -> tuple[Response, int]:
    """The run as GET /api/runs/<id> shows it (RunOut), without the attempts and items (callers need outputs)."""
    with services.db.session() as session:
        view = report.describe(run, store.attempts_of(session, run.id), store.items_of(session, run.id))
    body = view.model_dump_json(by_alias=True, exclude={"steps": {"__all__": {"attempts", "items"}}})
    response = Response(body, mimetype="application/json")
    response.headers["Location"] = f"/api/runs/{run.id}"
    if repeated:
        response.headers["Idempotent-Replayed"] = "true"
    return response, 200 if run.status in direct.FINISHED else 202


@bp.post("/workflows/<name>/run")
def run_workflow(name: str) -> tuple[Response, int]:
    services = current_services()
    limit = services.settings.max_body_bytes
    body = request.stream.read(limit + 1)
    if len(body) > limit:
        return _error(413, f"body is larger than the limit of {limit} bytes")
    try:
        wait = _wait_seconds(services)
    except ValueError:
        return _error(400, "wait must be a number of seconds, e.g. ?wait=30")
    inbound = InboundRequest(
        source=name,
        body=body,
        content_type=request.headers.get("Content-Type"),
        headers={key.lower(): value for key, value in request.headers.items()},
        query=request.args.to_dict(flat=True),
    )
    try:
        caller = direct.authorize(services, name, inbound)
        started = direct.start(services, name, inbound, caller, request.headers.get("Idempotency-Key"))
    except direct.DirectRunRefused as exc:
        response, status = _error(exc.status, exc.message)
        response.headers.update(exc.headers)
        return response, status
    except direct.WorkflowNotFound:
        return _error(404, f"no workflow {name!r} is loaded")
    except direct.IdempotencyConflict as exc:
        return _error(422, str(exc))
    run = started.run
    if wait:
        run = direct.wait_for(services, run, wait)
    return _run_answer(services, run, started.repeated)
