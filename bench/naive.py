"""Issue #8's reference pipeline, measured here rather than quoted: Flask + RQ, no ledger, no durability.

`POST /hooks/webform` checks the token, enqueues the body as an RQ job and
answers 202; the job makes the web-enquiry workflow's four calls against the
stub (same paths and bodies as workflows/web-enquiry.yaml sends), one after
another. Nothing else: no event stored before the answer, no attempt
records, no natural-key reconciling, no retries, no rate budget, no logs or
metrics per step. A lost Redis or a killed worker loses the work.

It runs with the same gunicorn settings as Hookflow's web, and its workers
are RQ's own non-forking SimpleWorker in a WorkerPool of the same size, so the
difference between the two is what Hookflow's guarantees and features cost.
"""

from __future__ import annotations

import hmac
import os
from typing import Any

import httpx
from flask import Flask, Response, jsonify, request
from redis import Redis
from rq import Queue

QUEUE = "naive"

app = Flask(__name__)
_queue: Queue | None = None
_http: httpx.Client | None = None


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
    queue().enqueue(run_enquiry, request.get_json(), result_ttl=0)
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


def run_enquiry(data: dict[str, Any]) -> None:
    """The workflow's four calls (job type 42, engineer 100: the workflow's vars)."""
    reference = f"WEB-{data['submission_id']}"
    contact = _post(
        "/contacts/create",
        {
            "name": data["name"],
            "reference": reference,
            "postalCode": data["postcode"],
            "extraInformation": f"Email: {data['email']} / Phone: {data['phone']}",
        },
    )
    job = _post(
        "/jobs/create",
        {"typeId": 42, "contactId": contact["id"], "description": data["message"], "reference": reference},
    )
    _post("/jobs/constraints/create", {"jobId": job["id"], "type": "jobMustStartInAvailableHours"})
    _post("/jobs/scheduling", {"jobId": job["id"], "resourceId": 100, "plannedStartAt": data["preferred_date"]})
