"""Who may use the operators' API: the holder of ADMIN_TOKEN, as a Bearer token."""

from __future__ import annotations

import hmac

from flask import Response, jsonify, request

from engine.services import current_services


def require_admin_token() -> tuple[Response, int] | None:
    """A `before_request` hook: None lets the request through, anything else is the refusal."""
    token = current_services().settings.admin_token
    if token is None:
        return jsonify(error="ADMIN_TOKEN is not set on this server; the API stays closed until it is"), 503
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        return jsonify(error="send Authorization: Bearer <ADMIN_TOKEN>"), 401
    if not hmac.compare_digest(given.encode(), token.get_secret_value().encode()):
        return jsonify(error="invalid admin token"), 401
    return None
