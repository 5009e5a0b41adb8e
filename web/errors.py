"""Every HTTP error answers JSON `{"error": ...}`, including routes that do not exist.

A database that cannot take a write (locked, restarting, unreachable) is a 503
with Retry-After, never a 500: the sender must retry, and since nothing was
stored nothing was acknowledged. Senders retry 503s (the reference notes list
it as retryable for every one of them).
"""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException, MethodNotAllowed

log = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = 5


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[Response, int]:
        message = exc.description or exc.name
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
            message = f"method not allowed here; use {', '.join(sorted(exc.valid_methods))}"
        return jsonify(error=message), exc.code or 500

    @app.errorhandler(SQLAlchemyError)
    def database_unavailable(exc: SQLAlchemyError) -> tuple[Response, int]:
        log.error("database unavailable: %s", type(exc).__name__, exc_info=exc)
        response = jsonify(error="the database is unavailable; nothing was stored, retry shortly")
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response, 503
