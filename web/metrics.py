"""/metrics, the inbound counters, and the wiring of the ledger observer (metrics, logs, failure notifier).

Inbound webhooks are counted from the answer each one got, in an app-level
`after_request` hook: /hooks stays a thin adapter over engine.intake, and the
counts cannot drift from what senders were told. The same hook writes the one
log line per delivery, and counts a duplicate delivery on its original event
(the duplicate itself is not stored: its body is the original's).
"""

from __future__ import annotations

import hmac
import logging
import os
import time
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry
from sqlalchemy import update
from sqlalchemy.exc import SQLAlchemyError

from engine import logs, observe
from engine.metrics import LiveCollector, Metrics, exposition, multiprocess_dir
from engine.models import Event
from engine.notify import FailureNotifier
from engine.observe import Fact, RunFinished, RunStarted, StepFinished
from engine.services import EXTENSION, Services, current_services
from engine.store import utcnow

bp = Blueprint("metrics", __name__)
METRICS = "hookflow.metrics"
log = logging.getLogger("hookflow.inbound")

# Why a webhook was refused, by the status it was answered with (labels stay few and stable).
REASONS = {
    400: "unparseable",
    401: "verification",
    404: "unknown_source",
    405: "method",
    413: "too_large",
    415: "content_type",
    429: "rate_limited",
    503: "not_configured",
}


def init_app(app: Flask) -> Metrics:
    """Create this app's instruments; count /hooks answers; send ledger facts to metrics, logs and the notifier."""
    services: Services = app.extensions[EXTENSION]
    directory = multiprocess_dir()
    if directory is not None:  # prometheus-client writes each process's values there, and wants it to exist
        os.makedirs(directory, exist_ok=True)
    metrics = Metrics(CollectorRegistry())
    app.extensions[METRICS] = metrics
    notifier = FailureNotifier(services)

    def sink(fact: Fact) -> None:
        if isinstance(fact, StepFinished):
            metrics.step_finished(fact)
        elif isinstance(fact, RunFinished):
            metrics.run_finished(fact)
        elif isinstance(fact, RunStarted):
            metrics.run_started(fact)
        logs.log_fact(fact)
        notifier(fact)

    observe.attach(services.db.engine, sink)
    app.before_request(_start_clock)
    app.after_request(record_delivery)
    app.register_blueprint(bp)
    return metrics


def _start_clock() -> None:
    g.hookflow_started = time.perf_counter()


def _source_label(source: str, services: Services) -> str:
    """The source name, or `unknown` for one not in sources.yaml (callers must not mint label values)."""
    catalog = services.catalog.current()
    return source if source in catalog.sources or source in catalog.unconfigured else "unknown"


def record_delivery(response: Response) -> Response:
    """Count and log one /hooks answer; note a duplicate on its original event."""
    if not request.path.startswith("/hooks/") or request.method != "POST":
        return response
    services = current_services()
    metrics: Metrics = current_app.extensions[METRICS]
    source = _source_label(request.path.removeprefix("/hooks/").split("/", 1)[0], services)
    seconds = time.perf_counter() - g.get("hookflow_started", time.perf_counter())
    body: dict[str, Any] = response.get_json(silent=True) if response.is_json else None
    body = body if isinstance(body, dict) else {}
    metrics.webhooks_received.labels(source).inc()
    metrics.ack_seconds.labels(source).observe(seconds)
    status = response.status_code
    if status < 300 and body.get("duplicate") is True:
        outcome, reason = "duplicate", None
        metrics.webhooks_duplicate.labels(source).inc()
        _count_duplicate(services, body.get("event_id"))
    elif status < 300:
        outcome, reason = "accepted", None
        metrics.webhooks_accepted.labels(source).inc()
    else:
        outcome, reason = "rejected", REASONS.get(status, f"http_{status}")
        metrics.webhooks_rejected.labels(source, reason).inc()
    log.log(
        logging.INFO if status < 400 else logging.WARNING,
        "webhook %s",
        outcome,
        extra={
            "source": source,
            "http_status": status,
            "reason": reason,
            "error": body.get("error"),
            "event_id": body.get("event_id"),
            "runs": body.get("runs"),
            "duration_ms": round(seconds * 1000, 2),
        },
    )
    return response


def _count_duplicate(services: Services, event_id: Any) -> None:
    if not isinstance(event_id, str):
        return
    try:
        with services.db.session() as session:
            session.execute(
                update(Event)
                .where(Event.id == event_id)
                .values(duplicates=Event.duplicates + 1, last_duplicate_at=utcnow())
            )
            session.commit()
    except SQLAlchemyError as exc:  # the sender already has its answer; a lost count is only a lost count
        log.warning("could not count a duplicate delivery of %s (%s)", event_id, exc)


@bp.get("/metrics")
def scrape() -> Response | tuple[Response, int]:
    services = current_services()
    token = services.settings.metrics_token
    if token is not None:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token.get_secret_value().encode()):
            return jsonify(error="send Authorization: Bearer <METRICS_TOKEN>"), 401
    text = exposition(current_app.extensions[METRICS], LiveCollector(services))
    return Response(text, mimetype=CONTENT_TYPE_LATEST.split(";")[0], content_type=CONTENT_TYPE_LATEST)
