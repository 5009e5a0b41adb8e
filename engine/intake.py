"""Receiving one webhook: verify, throttle, parse, key, match, store, then enqueue.

The ack path does only that: no step runs before the answer. The event and the
runs it starts are committed in one transaction *before* the answer; the first
step of each run is enqueued after the commit. If Redis is down at that moment
the sender still gets its 202 — the event is durable and the reconciler will
enqueue the runs (nothing accepted is lost). The per-source rate limit also
lives in Redis and lets requests through while Redis is down, for the same reason.

A delivery from a batching sender (Xero, QuickBooks) becomes one event per
element, each deduplicated on its own, all stored in one transaction.
Replays (engine/replay.py) and direct runs (engine/direct.py) reuse the
preparing, matching and storing steps here, so every way in follows one set of rules.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import RedisError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine import ingest, ledger, store
from engine.conductor import RunStatus, first_step
from engine.errors import RenderError, StepDeferred, VerificationError
from engine.ingest import EventKeyError, identify, preset_of
from engine.ledger import event_view
from engine.loader import Catalog, LoadedWorkflow
from engine.logs import AppSecrets, Scrubber
from engine.models import Event, Run
from engine.ratelimit import RateLimit, RequestBudget
from engine.services import Services
from engine.verify import verify_request
from schemas.sources import SourceSpec

log = logging.getLogger(__name__)

# identify and EventKeyError live in engine.ingest; engine/rehearsal.py imports them from here.
__all__ = ["EventKeyError", "InboundRequest", "Intake", "Receipt", "Stored", "event_view", "identify"]


@dataclass
class Receipt:
    """The answer to the sender: HTTP status, JSON body (None: an empty body) and extra headers."""

    status: int
    body: dict[str, Any] | None
    runs: list[Run] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class InboundRequest:
    source: str
    body: bytes
    content_type: str | None
    headers: Mapping[str, str]  # lower-cased names
    query: Mapping[str, str]


_CONFIGURED_SECRETS = Scrubber(also=AppSecrets())


def stored_metadata(values: dict[str, str]) -> dict[str, str]:
    """Headers or query as stored: besides credentials recognised by name, any configured secret value masked.

    A caller may send another source's token, or ours, under a header whose name says nothing
    (`X-Other: <WEBFORM_TOKEN>`); it must not reach the ledger or the console.
    """
    return _CONFIGURED_SECRETS.value(values)


@dataclass
class Stored:
    """What became of one event of a delivery."""

    event: Event
    runs: list[Run] = field(default_factory=list)
    duplicate_of: str | None = None

    def answer(self) -> dict[str, Any]:
        if self.duplicate_of is not None:
            return {"event_id": self.duplicate_of, "duplicate": True}
        if self.event.status == "rejected":
            return {"event_id": self.event.id, "error": self.event.reason}
        return {"event_id": self.event.id, "runs": [run.id for run in self.runs]}


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
        refused = self.authenticate(request, source)
        if refused is not None:
            return refused
        try:
            data = ingest.parse_body(request.content_type, request.body, sniff_json=source.sniff_json)
        except ingest.BodyError as exc:  # 400, 413 (too many fields) or 415: kept, the sender was verified
            return self._refuse(request, source, exc.message, status=exc.status)
        try:
            prepared = self.prepare(request, source, data)
        except EventKeyError as exc:
            return self._refuse(request, source, str(exc), data)
        stored = self.commit(catalog, request.source, prepared)
        self.enqueue(run for item in stored for run in item.runs)
        return self._ack(source, stored)

    def authenticate(self, request: InboundRequest, source: SourceSpec) -> Receipt | None:
        """Verify, then charge the source's rate limit (only authenticated requests count against it)."""
        try:
            verify_request(source, request.body, request.headers, request.query)
        except VerificationError as exc:
            receipt = _error(401, str(exc))
            if source.verify.type == "basic":
                receipt.headers["WWW-Authenticate"] = f'Basic realm="hookflow {request.source}"'
            return receipt
        return self._throttle(request.source, source)

    def _throttle(self, name: str, source: SourceSpec) -> Receipt | None:
        settings = self.services.settings
        rate, burst = settings.inbound_rate_limit_per_second, settings.inbound_rate_limit_burst
        if source.rate_limit is not None:
            rate, burst = source.rate_limit.per_second, source.rate_limit.burst
        if rate <= 0:
            return None
        budget = RequestBudget(self.services.redis, "inbound", name, RateLimit(rate, burst, max_wait=0))
        try:
            budget.acquire()  # max_wait=0: never sleeps; a spent budget raises StepDeferred with the wait
        except StepDeferred as spent:
            wait = max(1, math.ceil(spent.delay))
            receipt = _error(429, f"source {name!r} is over its limit of {rate:g} requests/s; retry in {wait} s")
            receipt.headers["Retry-After"] = str(wait)
            return receipt
        except RedisError as exc:
            log.warning("rate limit for source %s not checked (%s); letting the request through", name, exc)
        return None

    def prepare(self, request: InboundRequest, source: SourceSpec, data: Any) -> list[Event]:
        """The events a verified, parsed delivery carries (not yet stored, not yet matched).

        For a batching sender an element that cannot be keyed becomes a rejected event
        beside the others; otherwise any failure refuses the whole delivery.

        Raises:
            EventKeyError: the delivery is not shaped as its sender sends it, or cannot be keyed.
        """
        preset = preset_of(source)
        items = ingest.items_of(source, data)
        if preset is None or not preset.batched:
            return [self._event_for(request, source, item, request.body, request.content_type) for item in items]
        events = []
        for item in items:
            raw = json.dumps(preset.wrap(item), ensure_ascii=False).encode()  # this element's own delivery
            try:
                events.append(self._event_for(request, source, item, raw, "application/json"))
            except EventKeyError as exc:
                events.append(self.event(request, source, item, "rejected", raw, "application/json", str(exc)))
        return events

    def _event_for(
        self, request: InboundRequest, source: SourceSpec, item: Any, raw: bytes, content_type: str | None
    ) -> Event:
        found = ingest.derive(self.services.renderer, source, item, request.headers, request.query)
        event = self.event(request, source, found.data, "accepted", raw, content_type)
        event.type = found.type
        event.dedupe_key = ingest.body_digest(raw) if found.key is None else found.key[:255]
        event.raw_data = None if found.data == item else item
        return event

    def event(
        self,
        request: InboundRequest,
        source: SourceSpec,
        data: Any,
        status: str,
        raw: bytes | None = None,
        content_type: str | None = None,
        reason: str | None = None,
    ) -> Event:
        return Event(
            id=store.new_id("evt"),
            source=request.source,
            status=status,
            reason=reason,
            received_at=store.utcnow(),
            content_type=request.content_type if raw is None else content_type,
            raw_body=request.body if raw is None else raw,
            data=data,
            headers=stored_metadata(ingest.redact_headers(request.headers, source.secret_headers)),
            query=stored_metadata(ingest.redact_query(request.query)),
        )

    def commit(self, catalog: Catalog, source_name: str, events: list[Event], only: str | None = None) -> list[Stored]:
        """Match and store the events with their runs, in one transaction; duplicates start nothing.

        Args:
            only: match this workflow alone (a direct run or a targeted replay).
        """
        stored = [
            Stored(event, self.match(catalog, event, only) if event.status == "accepted" else []) for event in events
        ]
        if not stored:  # e.g. Xero's intent-to-receive: a delivery that carries no event
            return stored
        if len(stored) == 1 and stored[0].event.status == "accepted":
            try:
                ledger.insert_event(self.services.db, stored[0].event, stored[0].runs)
            except store.DuplicateEvent as dup:
                stored[0].duplicate_of, stored[0].runs = dup.event_id, []
        else:
            with self.services.db.session() as session:
                _insert_batch(session, source_name, stored)
        return stored

    def match(self, catalog: Catalog, event: Event, only: str | None = None) -> list[Run]:
        workflows = catalog.triggered_by(event.source)
        if only is not None:
            workflows = [wf for wf in workflows if wf.spec.name == only]
        return [run for wf in workflows if (run := self._match(wf, event)) is not None]

    def _match(self, workflow: LoadedWorkflow, event: Event) -> Run | None:
        """A new run if the workflow's trigger matches; a failed run if its `if` cannot be evaluated."""
        trigger = workflow.spec.on
        types = trigger.event_types()
        if types is not None and event.type not in types:
            return None
        return self.new_run(workflow, event, trigger.if_)

    def new_run(self, workflow: LoadedWorkflow, event: Event, condition: str | bool | None = None) -> Run | None:
        """A run of `workflow` for `event` if `condition` (the trigger's `if`) holds.

        A condition that cannot be evaluated gives a failed run with the reason:
        visible beats silent.
        """
        run = _blank_run(workflow, event)
        try:
            if not self.services.renderer.is_true(condition, self._context(workflow, event)):
                return None
        except RenderError as exc:
            return _failed(run, f"on.if: {exc}")
        return self._with_lane(run, workflow, event)

    def run_for(self, workflow: LoadedWorkflow, event: Event) -> Run:
        """A run that starts whatever the workflow's trigger says (direct runs and their replays)."""
        return self._with_lane(_blank_run(workflow, event), workflow, event)

    def _context(self, workflow: LoadedWorkflow, event: Event) -> dict[str, Any]:
        return {"event": event_view(event), "vars": workflow.spec.vars}

    def _with_lane(self, run: Run, workflow: LoadedWorkflow, event: Event) -> Run:
        if workflow.spec.concurrency is None:
            return run
        try:
            key = self.services.renderer.render_str(workflow.spec.concurrency, self._context(workflow, event))
        except RenderError as exc:
            return _failed(run, f"concurrency: {exc}")
        # An empty key (e.g. a blank email) puts the run in no lane rather than one shared lane.
        run.concurrency_key = str(key)[:255] or None
        return run

    def _refuse(
        self, request: InboundRequest, source: SourceSpec, reason: str, data: Any = None, status: int = 400
    ) -> Receipt:
        """Keep an authenticated request we could not accept, so it can be inspected (and later replayed)."""
        event = self.event(request, source, data, "rejected", reason=reason)
        with self.services.db.session() as session:
            session.add(event)
            session.commit()
        return _error(status, reason, event_id=event.id)

    def _ack(self, source: SourceSpec, stored: list[Stored]) -> Receipt:
        runs = [run for item in stored for run in item.runs]
        preset = preset_of(source)
        if preset is not None and preset.batched:
            body: dict[str, Any] | None = {"events": [item.answer() for item in stored]}
            status = source.ack.status
        else:
            body = stored[0].answer()
            status = 200 if stored[0].duplicate_of is not None else source.ack.status
        return Receipt(status, None if source.ack.body == "empty" else body, runs)

    def enqueue(self, runs: Iterable[Run]) -> None:
        for run in runs:
            if run.status != RunStatus.QUEUED.value:
                continue
            try:
                self.services.queue.enqueue(run.id, run.current_step, run.attempt)
            except RedisError as exc:
                log.warning("event accepted but run %s not enqueued (%s); the reconciler will enqueue it", run.id, exc)


def _blank_run(workflow: LoadedWorkflow, event: Event) -> Run:
    now = store.utcnow()
    nxt = first_step(workflow.spec)
    return Run(
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


def _failed(run: Run, error: str) -> Run:
    run.status, run.error, run.finished_at, run.due_at = RunStatus.FAILED.value, error, run.created_at, None
    return run


def _insert_batch(session: Session, source: str, stored: list[Stored]) -> None:
    """Insert many events in one transaction, each deduplicated on its own.

    Keys already stored are found with one query, so a redelivered batch inserts nothing.
    """
    keys = [item.event.dedupe_key for item in stored if item.event.dedupe_key is not None]
    known: dict[str, str] = {}
    if keys:
        found = session.execute(
            select(Event.dedupe_key, Event.id).where(Event.source == source, Event.dedupe_key.in_(keys))
        )
        known = {key: event_id for key, event_id in found if key is not None}
    insert_new(session, source, stored, known)
    session.commit()


def insert_new(session: Session, source: str, stored: list[Stored], known: dict[str, str]) -> None:
    """Add the events whose keys are not `known` (key -> event id), each in a savepoint.

    A key another transaction took after `known` was read is caught by the
    unique constraint inside that event's savepoint: it costs only that event
    (now a duplicate), never the batch. The caller commits.
    """
    for item in stored:
        key = item.event.dedupe_key
        if key is not None and key in known:
            item.duplicate_of, item.runs = known[key], []
            continue
        try:
            with session.begin_nested():
                session.add(item.event)
                session.add_all(item.runs)
        except IntegrityError:
            original = session.scalar(select(Event.id).where(Event.source == source, Event.dedupe_key == key))
            if original is None:  # the constraint that failed was not the dedupe key
                raise
            item.duplicate_of, item.runs = original, []
            continue
        if key is not None:
            known[key] = item.event.id
