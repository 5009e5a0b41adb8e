"""Every HTTP error answers JSON `{"error": ...}`, including routes that do not exist."""

from __future__ import annotations

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException, MethodNotAllowed


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[Response, int]:
        message = exc.description or exc.name
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
            message = f"method not allowed here; use {', '.join(sorted(exc.valid_methods))}"
        return jsonify(error=message), exc.code or 500
