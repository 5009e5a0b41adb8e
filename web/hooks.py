"""POST /hooks/<source>: the inbound endpoint, a thin adapter over engine.intake."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from engine.ingest import MAX_CONTENT_TYPE_LENGTH
from engine.intake import InboundRequest, Intake, Receipt
from engine.services import current_services

bp = Blueprint("hooks", __name__)


def respond(receipt: Receipt) -> tuple[Response, int]:
    """JSON, or an empty body where the sender insists on one (Xero); plus any headers (Retry-After…)."""
    response = jsonify(receipt.body) if receipt.body is not None else Response(b"", mimetype=None)
    response.headers.update(receipt.headers)
    return response, receipt.status


@bp.post("/hooks/<source>")
def receive(source: str) -> tuple[Response, int]:
    intake = Intake(current_services())
    limit = intake.body_limit(source)
    if request.content_length is not None and request.content_length > limit:
        return jsonify(error=f"body is larger than this source's limit of {limit} bytes"), 413
    content_type = request.headers.get("Content-Type")
    if content_type is not None and len(content_type) > MAX_CONTENT_TYPE_LENGTH:
        # No real type is this long, and the ledger could not store it: refused before anything is read.
        return jsonify(error=f"Content-Type header is longer than {MAX_CONTENT_TYPE_LENGTH} characters"), 415
    body = request.stream.read(limit + 1)  # bounded read, also for chunked bodies without a length
    if len(body) > limit:
        return jsonify(error=f"body is larger than this source's limit of {limit} bytes"), 413
    receipt = intake.receive(
        InboundRequest(
            source=source,
            body=body,
            content_type=content_type,
            headers={name.lower(): value for name, value in request.headers.items()},
            query=request.args.to_dict(flat=True),
        )
    )
    return respond(receipt)
