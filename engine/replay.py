"""Replaying an event: `POST /api/events/<id>/replay`.

Two cases, and how each is keyed so a replay is never a duplicate of itself:

- An **accepted** event keeps its id (DESIGN: the event id is stable across
  replays) and gets *new runs* of the workflows that match it now — after a
  workflow was fixed, say. No event is inserted, so dedupe keys are not involved.
  `workflow` narrows the replay to one workflow, so the others (which may have
  succeeded and created things) do not run twice. A direct run's event replays
  into the workflow it ran.
- A **rejected** event (it never had a dedupe key: NULL) is re-read from its raw
  body through the source's *current* parsing, preset, keys and matching, as if
  it had just been delivered, and becomes one new accepted event (several for a
  batching sender) with `replay_of` naming it; the rejected row stays as the
  record of what happened. The new events are keyed exactly like deliveries, so
  replaying the same rejected event twice, or replaying one whose sender has
  since redelivered successfully, answers "duplicate" and starts nothing. It is
  not verified again: bad signatures are never stored, so it was authentic.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select

from engine import ingest
from engine.intake import EventKeyError, InboundRequest, Intake, Stored
from engine.models import Event, Run
from engine.services import Services

# The event type of a direct run (engine/direct.py imports it from here, to avoid a cycle).
DIRECT_TYPE = "api.run"


class EventNotFound(LookupError):
    pass


class ReplayConflict(Exception):
    """The replay cannot start: the source is gone, or the named workflow does not match."""


class StillRejected(Exception):
    """A rejected event still cannot be accepted; the message is the reason, as a delivery would get it."""


@dataclass
class Replayed:
    """What a replay started: new runs on the same event, or the events a rejected one became."""

    event_id: str
    replay_of: str | None = None
    stored: list[Stored] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)


def replay_event(services: Services, event_id: str, workflow: str | None = None) -> Replayed:
    """Replay `event_id` (see the module docstring for what that means for each status).

    Raises:
        EventNotFound: no such event.
        ReplayConflict: its source is no longer defined, or `workflow` does not match it.
        StillRejected: a rejected event fails again; nothing is stored.
    """
    with services.db.session() as session:
        event = session.get(Event, event_id)
        if event is None:
            raise EventNotFound(event_id)
        previous = list(session.scalars(select(Run.workflow).where(Run.event_id == event_id).order_by(Run.id)))
    if event.status == "accepted":
        return _rerun(services, event, workflow, previous)
    return _reingest(services, event, workflow)


def _rerun(services: Services, event: Event, workflow: str | None, previous: list[str]) -> Replayed:
    intake = Intake(services)
    catalog = services.catalog.current()
    if event.type == DIRECT_TYPE:  # a direct run matched no trigger: run what it ran
        wanted = workflow or (previous[0] if previous else None)
        loaded = catalog.workflows.get(wanted) if wanted else None
        if loaded is None:
            raise ReplayConflict(f"workflow {wanted!r} is not loaded; name one with {{'workflow': …}}")
        runs = [intake.run_for(loaded, event)]
    else:
        runs = intake.match(catalog, event, workflow)
        if workflow is not None and not runs:
            raise ReplayConflict(f"workflow {workflow!r} does not match event {event.id} (source, event type or on.if)")
    with services.db.session() as session:
        session.add_all(runs)
        session.commit()
    intake.enqueue(runs)
    return Replayed(event.id, runs=runs)


def _reingest(services: Services, event: Event, workflow: str | None) -> Replayed:
    catalog = services.catalog.current()
    source = catalog.sources.get(event.source)
    if source is None:
        state = "not configured on this server" if event.source in catalog.unconfigured else "no longer defined"
        raise ReplayConflict(f"source {event.source!r} is {state}; fix sources.yaml and replay again")
    request = InboundRequest(event.source, event.raw_body, event.content_type, event.headers, event.query)
    intake = Intake(services)
    try:
        data = ingest.parse_body(request.content_type, request.body, sniff_json=source.sniff_json)
        events = intake.prepare(request, source, data)
    except ingest.BodyError as exc:
        raise StillRejected(exc.message) from exc
    except EventKeyError as exc:
        raise StillRejected(str(exc)) from exc
    for new in events:
        new.replay_of = event.id
    stored = intake.commit(catalog, event.source, events, workflow)
    runs = [run for item in stored for run in item.runs]
    intake.enqueue(runs)
    if not stored:  # a delivery that carries no event (e.g. Xero's handshake)
        return Replayed(event.id, event.id)
    return Replayed(stored[0].duplicate_of or stored[0].event.id, event.id, stored, runs)
