"""Direct runs: `POST /api/workflows/<name>/run` starts one workflow with a JSON body as `event.data`.

For Zapier-style callers that want "run this" rather than "here is an event".
The request is still an event (stored first, like every delivery, so the run
has its `event`, can be replayed, and nothing is lost), but it matches no
trigger: the named workflow runs, whatever its `on:` says.

Who may call (checked in this order, each constant-time):
1. `Authorization: Bearer <ADMIN_TOKEN or DIRECT_RUN_TOKEN>`: any workflow; the
   event's source is `@api` (a name no sources.yaml key should take).
2. The credentials of a source whose `run_workflows` lists the workflow, checked
   by that source's own verify (token, basic, hmac…) and counted against its rate
   limit: per-workflow access without a new kind of secret. The event's source is
   that source's name.

Idempotency-Key: the event's dedupe key is `run:<workflow>:<key>` (without a
header, `run:<workflow>:<event id>`: never a duplicate). The same key again with
the same body answers with the first request's run; with a different body it
is refused (IdempotencyConflict -> 422), as the IETF Idempotency-Key draft says.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import select

from engine import ingest, ledger, store
from engine.conductor import RunStatus
from engine.intake import InboundRequest, Intake, stored_metadata
from engine.models import Event, Run
from engine.replay import DIRECT_TYPE
from engine.services import Services

DIRECT_SOURCE = "@api"
FINISHED = {RunStatus.SUCCEEDED.value, RunStatus.FAILED.value, RunStatus.CANCELLED.value}
MAX_IDEMPOTENCY_KEY = 255


class WorkflowNotFound(LookupError):
    pass


class DirectRunRefused(Exception):
    """The request cannot start a run; `status` is the HTTP answer (400, 401, 429, 503)."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


class IdempotencyConflict(Exception):
    """The Idempotency-Key was already used for a request with a different body."""


@dataclass
class DirectRun:
    run: Run
    event_id: str
    repeated: bool = False  # answered from an earlier request with the same Idempotency-Key


def authorize(services: Services, workflow: str, request: InboundRequest) -> str:
    """The source the caller speaks for (`@api` for a bearer token).

    Raises:
        DirectRunRefused: 401 for missing or wrong credentials, 429 for a caller over its
            source's rate limit, 503 when no way of calling is configured at all.
    """
    settings = services.settings
    tokens = [t.get_secret_value().encode() for t in (settings.admin_token, settings.direct_run_token) if t]
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and given:
        matched = False
        for token in tokens:  # no early exit: timing says nothing about which token matched
            matched |= hmac.compare_digest(given.encode(), token)
        if matched:
            return DIRECT_SOURCE
    callers = {
        name: spec for name, spec in services.catalog.current().sources.items() if workflow in spec.run_workflows
    }
    if not tokens and not callers:
        raise DirectRunRefused(
            503,
            "direct runs are not enabled: set DIRECT_RUN_TOKEN or list the workflow under a source's run_workflows",
        )
    intake = Intake(services)
    for name, spec in callers.items():
        refused = intake.authenticate(replace(request, source=name), spec)
        if refused is None:
            return name
        if refused.status != 401:  # authenticated, but over the source's rate limit
            raise DirectRunRefused(refused.status, str((refused.body or {}).get("error")), refused.headers)
    raise DirectRunRefused(
        401,
        "send Authorization: Bearer <DIRECT_RUN_TOKEN>, or the credentials of a source that lists this workflow "
        "under run_workflows",
    )


def _dedupe_key(workflow: str, idempotency_key: str | None, event_id: str) -> str:
    key = f"run:{workflow}:{idempotency_key or event_id}"
    if len(key) > 255:
        return "run:sha256:" + hashlib.sha256(key.encode()).hexdigest()
    return key


def _data(request: InboundRequest) -> dict[str, Any]:
    if not request.body.strip():
        return {}
    try:
        data = ingest.parse_body(request.content_type or "application/json", request.body)
    except ingest.BodyError as exc:
        raise DirectRunRefused(exc.status, exc.message) from None
    if not isinstance(data, dict):
        raise DirectRunRefused(400, "the body must be a JSON object; it becomes event.data")
    return data


def start(
    services: Services, workflow: str, request: InboundRequest, caller: str, idempotency_key: str | None
) -> DirectRun:
    """Store the event and the workflow's run in one transaction, then enqueue it.

    Raises:
        WorkflowNotFound: no such workflow is loaded.
        DirectRunRefused: 400 for a body that is not a JSON object or an unusable Idempotency-Key.
        IdempotencyConflict: the key was used before with another body.
    """
    loaded = services.catalog.current().workflows.get(workflow)
    if loaded is None:
        raise WorkflowNotFound(workflow)
    if idempotency_key is not None and not (0 < len(idempotency_key) <= MAX_IDEMPOTENCY_KEY):
        raise DirectRunRefused(400, f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} characters")
    data = _data(request)
    intake = Intake(services)
    spec = services.catalog.current().sources.get(caller)
    never_stored = spec.secret_headers if spec is not None else set()
    event = Event(
        id=store.new_id("evt"),
        source=caller,
        type=DIRECT_TYPE,
        status="accepted",
        received_at=store.utcnow(),
        content_type=request.content_type,
        raw_body=request.body,
        data=data,
        headers=stored_metadata(ingest.redact_headers(request.headers, never_stored)),
        query=stored_metadata(ingest.redact_query(request.query)),
    )
    event.dedupe_key = _dedupe_key(workflow, idempotency_key, event.id)
    run = intake.run_for(loaded, event)
    try:
        ledger.insert_event(services.db, event, [run])
    except store.DuplicateEvent as dup:
        return _repeat(services, dup.event_id, workflow, data)
    intake.enqueue([run])
    return DirectRun(run, event.id)


def _repeat(services: Services, event_id: str, workflow: str, data: dict[str, Any]) -> DirectRun:
    """The answer to a repeated Idempotency-Key: the first request's run, if the body is the same."""
    with services.db.session() as session:
        original = session.get(Event, event_id)
        run = session.scalar(select(Run).where(Run.event_id == event_id, Run.workflow == workflow).order_by(Run.id))
    if original is None or run is None or original.data != data:
        raise IdempotencyConflict(
            f"this Idempotency-Key was already used with a different body (event {event_id}); "
            "send a new key for a new request"
        )
    return DirectRun(run, event_id, repeated=True)


def wait_for(services: Services, run: Run, timeout: float) -> Run:
    """The run once it has finished, or as it is when `timeout` seconds have passed.

    Polls the ledger (the source of truth, whichever worker runs the steps),
    backing off from 50 ms to 500 ms, so a wait costs a few queries a second.
    """
    deadline = time.monotonic() + timeout
    interval = 0.05
    while run.status not in FINISHED and (left := deadline - time.monotonic()) > 0:
        time.sleep(min(interval, left))
        interval = min(interval * 1.5, 0.5)
        with services.db.session() as session:
            run = session.get(Run, run.id) or run
    return run
