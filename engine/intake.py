"""Receiving one webhook: verify, parse, key, match, store, then enqueue.

The ack path does only that: no step runs before the answer. The event and the
runs it starts are committed in one transaction *before* the answer; the first
step of each run is enqueued after the commit. If Redis is down at that moment
the sender still gets its 202 — the event is durable and the reconciler will
enqueue the runs (nothing accepted is lost).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import RedisError

from engine import ingest, store
from engine.conductor import RunStatus, first_step
from engine.errors import RenderError, VerificationError
from engine.loader import Catalog, LoadedWorkflow
from engine.models import Event, Run
from engine.render import Renderer
from engine.runner import event_context
from engine.services import Services
from engine.verify import verify_request
from schemas.sources import SourceSpec

log = logging.getLogger(__name__)


@dataclass
class Receipt:
    """The answer to the sender: HTTP status and JSON body."""

    status: int
    body: dict[str, Any]
    runs: list[Run] = field(default_factory=list)


@dataclass(frozen=True)
class InboundRequest:
    source: str
    body: bytes
    content_type: str | None
    headers: Mapping[str, str]  # lower-cased names
    query: Mapping[str, str]


class EventKeyError(Exception):
    """The source's event_type or event_id template cannot be applied to this request."""


def identify(
    renderer: Renderer, source: SourceSpec, data: Any, headers: Mapping[str, str], query: Mapping[str, str]
) -> tuple[str | None, str | None]:
    """The event's type and dedupe key, as the source's templates give them (key None: use the body digest).

    Raises:
        EventKeyError: a template failed, or the key came out empty.
    """
    context = {"body": data, "headers": dict(headers), "query": dict(query)}
    try:
        event_type = renderer.render_str(source.event_type, context) if source.event_type else None
        key = renderer.render_str(source.event_id, context) if source.event_id else None
    except RenderError as exc:
        raise EventKeyError(f"cannot key or type this event: {exc}") from exc
    if source.event_id and (key is None or key == ""):
        raise EventKeyError(f"event_id template {source.event_id!r} gave an empty key")
    return (None if event_type is None else str(event_type)), (None if key is None else str(key))


def _error(status: int, message: str, **extra: Any) -> Receipt:
    return Receipt(status, {"error": message, **extra})


class Intake:
    def __init__(self, services: Services) -> None:
        self.services = services

    def body_limit(self, source_name: str) -> int:
        source = self.services.catalog.current().sources.get(source_name)
        if source is not None and source.max_body_bytes:
            return source.max_body_bytes
        return self.services.settings.max_body_bytes

    def receive(self, request: InboundRequest) -> Receipt:
        catalog = self.services.catalog.current()
        source = catalog.sources.get(request.source)
        if source is None:
            if request.source in catalog.unconfigured:
                return _error(503, f"source {request.source!r} is not configured on this server yet; retry later")
            return _error(404, f"unknown source {request.source!r}; sources are defined in sources.yaml")
        if len(request.body) > self.body_limit(request.source):
            return _error(413, f"body is larger than this source's limit of {self.body_limit(request.source)} bytes")
        try:
            verify_request(source, request.body, request.headers, request.query)
        except VerificationError as exc:
            return _error(401, str(exc))
        try:
            data = ingest.parse_body(request.content_type, request.body)
        except ingest.BodyError as exc:
            if exc.status == 415:
                return _error(415, exc.message)
            return self._reject(request, source, exc.message)
        return self._accept(request, source, catalog, data)

    def _accept(self, request: InboundRequest, source: SourceSpec, catalog: Catalog, data: Any) -> Receipt:
        try:
            event_type, key = identify(self.services.renderer, source, data, request.headers, request.query)
        except EventKeyError as exc:
            return self._reject(request, source, str(exc), data)
        event = self._event(request, source, data, "accepted")
        event.type = event_type
        event.dedupe_key = ingest.body_digest(request.body) if key is None else key
        runs = [run for wf in catalog.triggered_by(request.source) if (run := self._match(wf, event)) is not None]
        with self.services.db.session() as session:
            try:
                store.insert_event(session, event, runs)
            except store.DuplicateEvent as dup:
                return Receipt(200, {"event_id": dup.event_id, "duplicate": True})
        self._enqueue(runs)
        return Receipt(202, {"event_id": event.id, "runs": [run.id for run in runs]}, runs)

    def _match(self, workflow: LoadedWorkflow, event: Event) -> Run | None:
        """A new run if the workflow's trigger matches; a failed run if its `if` cannot be evaluated."""
        trigger = workflow.spec.on
        types = trigger.event_types()
        if types is not None and event.type not in types:
            return None
        now = store.utcnow()
        nxt = first_step(workflow.spec)
        run = Run(
            id=store.new_id("run"),
            workflow=workflow.spec.name,
            workflow_hash=workflow.hash,
            definition=workflow.definition,
            event_id=event.id,
            status=nxt.status.value,
            current_step=nxt.step_id,
            step_index=0,
            attempt=1,
            budget_start=1,
            due_at=now,
            created_at=now,
            updated_at=now,
        )
        context = {"event": event_context(event), "vars": workflow.spec.vars}
        renderer = self.services.renderer
        where = "on.if"
        try:
            if not renderer.is_true(trigger.if_, context):
                return None
            where = "concurrency"
            if workflow.spec.concurrency is not None:
                # An empty key (e.g. a blank email) puts the run in no lane rather than one shared lane.
                run.concurrency_key = str(renderer.render_str(workflow.spec.concurrency, context))[:255] or None
        except RenderError as exc:
            # Visible beats silent: the ops person sees a failed run with the reason.
            run.status, run.error, run.finished_at, run.due_at = RunStatus.FAILED.value, f"{where}: {exc}", now, None
        return run

    def _event(self, request: InboundRequest, source: SourceSpec, data: Any, status: str) -> Event:
        return Event(
            id=store.new_id("evt"),
            source=request.source,
            status=status,
            received_at=store.utcnow(),
            content_type=request.content_type,
            raw_body=request.body,
            data=data,
            headers=ingest.redact_headers(request.headers, source.secret_headers),
            query=ingest.redact_query(request.query),
        )

    def _reject(self, request: InboundRequest, source: SourceSpec, reason: str, data: Any = None) -> Receipt:
        """Keep an authenticated request we could not accept, so it can be inspected (and later replayed)."""
        event = self._event(request, source, data, "rejected")
        event.reason = reason
        with self.services.db.session() as session:
            session.add(event)
            session.commit()
        return _error(400, reason, event_id=event.id)

    def _enqueue(self, runs: list[Run]) -> None:
        for run in runs:
            if run.status != RunStatus.QUEUED.value:
                continue
            try:
                self.services.queue.enqueue(run.id, run.current_step, run.attempt)
            except RedisError as exc:
                log.warning("event accepted but run %s not enqueued (%s); the reconciler will enqueue it", run.id, exc)
