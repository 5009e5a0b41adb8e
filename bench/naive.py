"""Issue #8's reference pipeline, measured here rather than quoted: Flask + RQ, no ledger, no durability.

`POST /hooks/webform` checks the token, enqueues the body as an RQ job and
answers 202; the job makes the web-enquiry workflow's four calls against the
stub (same paths and bodies as workflows/web-enquiry.yaml sends), one after
another. Nothing else: no event stored before the answer, no attempt
records, no natural-key reconciling, no retries, no rate budget, no logs or
metrics per step. A lost Redis or a killed worker loses the work.

With NAIVE_LEDGER_URL set it becomes the *durable minimum*
(bench/minimal_ledger.py): the body is committed before the 202 and each
step's result after its call, and nothing more, the floor any pipeline that
keeps what it acknowledged stands on.

It runs with the same gunicorn settings as Hookflow's web, and its workers
are RQ's own non-forking SimpleWorker in a WorkerPool of the same size, so the
difference between the two is what Hookflow's guarantees and features cost.
"""

from __future__ import annotations

import hmac
import json
import os
from typing import Any

import httpx
from flask import Flask, Response, jsonify, request
from redis import Redis
from rq import Queue

from bench.minimal_ledger import MinimalLedger

QUEUE = "naive"
LEDGER_ENV = "NAIVE_LEDGER_URL"

app = Flask(__name__)
_queue: Queue | None = None
_http: httpx.Client | None = None
_ledger: MinimalLedger | None = None


def ledger() -> MinimalLedger | None:
    """The durable minimum's ledger, or None for the plain naive pipeline."""
    global _ledger
    if _ledger is None and os.environ.get(LEDGER_ENV):
        _ledger = MinimalLedger(os.environ[LEDGER_ENV])
    return _ledger


def queue() -> Queue:
    """The queue, connected on first use: gunicorn imports this module before it forks."""
    global _queue
    if _queue is None:  # after gunicorn's fork
        _queue = Queue(QUEUE, connection=Redis.from_url(os.environ["REDIS_URL"]))
    return _queue


@app.post("/hooks/webform")
def receive() -> tuple[Response, int]:
    if not hmac.compare_digest(request.headers.get("X-Hook-Token", ""), os.environ["WEBFORM_TOKEN"]):
        return jsonify(error="bad token"), 401
    kept = ledger()
    event_id = kept.store_event(request.get_data()) if kept is not None else None
    queue().enqueue(run_enquiry, request.get_json(), event_id, result_ttl=0)
    return jsonify(accepted=True), 202


def _post(path: str, body: dict[str, Any]) -> Any:
    """One API call; any error status fails the job, as nothing here would retry it."""
    global _http
    if _http is None:
        _http = httpx.Client(
            base_url=os.environ["BIGCHANGE_BASE_URL"],
            headers={"X-API-Key": os.environ["BIGCHANGE_API_KEY"]},
            timeout=30,
        )
    response = _http.post(path, json=body)
    response.raise_for_status()
    return response.json() if response.content else None


def _recorded(event_id: str | None, step: int, result: Any) -> Any:
    """`result`, once the durable minimum has recorded it as the event's `step`th step."""
    kept = ledger()
    if kept is not None and event_id is not None:
        kept.record_step(event_id, step, json.dumps(result))
    return result


def run_enquiry(data: dict[str, Any], event_id: str | None = None) -> None:
    """The workflow's four calls (job type 42, engineer 100: the workflow's vars)."""
    reference = f"WEB-{data['submission_id']}"
    contact_body = {
        "name": data["name"],
        "reference": reference,
        "postalCode": data["postcode"],
        "extraInformation": f"Email: {data['email']} / Phone: {data['phone']}",
    }
    contact = _recorded(event_id, 1, _post("/contacts/create", contact_body))
    job_body = {"typeId": 42, "contactId": contact["id"], "description": data["message"], "reference": reference}
    job = _recorded(event_id, 2, _post("/jobs/create", job_body))
    constraint = {"jobId": job["id"], "type": "jobMustStartInAvailableHours"}
    _recorded(event_id, 3, _post("/jobs/constraints/create", constraint))
    scheduling = {"jobId": job["id"], "resourceId": 100, "plannedStartAt": data["preferred_date"]}
    _recorded(event_id, 4, _post("/jobs/scheduling", scheduling))
