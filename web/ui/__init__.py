"""The ops console: server-rendered pages over the same engine functions as the JSON API.

No build step and no SPA: Jinja templates, one stylesheet, and a few lines of
JavaScript that re-fetch a page while it shows active runs. Login is
ADMIN_TOKEN, kept as a signed session cookie; every POST carries a CSRF token.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from datetime import timedelta
from typing import Any

from flask import Blueprint, Flask, Response

from engine.services import EXTENSION, Services
from schemas.api import last_day

bp = Blueprint("ui", __name__, template_folder="templates", static_folder="static", static_url_path="/console-static")

# Content-Security-Policy: nothing but this origin's own files; no inline script, no framing.
CSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'"


def session_secret(services: Services) -> bytes:
    """SECRET_KEY if configured, else derived from ADMIN_TOKEN (the same in every process; rotates with it)."""
    settings = services.settings
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value().encode()
    if settings.admin_token is not None:
        token = settings.admin_token.get_secret_value().encode()
        return hmac.new(token, b"hookflow console session v1", hashlib.sha256).digest()
    return secrets.token_bytes(32)  # nobody can log in anyway; sessions need some key


def pretty(value: Any) -> str:
    """JSON for people: indented, non-ASCII kept; autoescaping makes it safe in HTML."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str, sort_keys=False)


def init_app(app: Flask) -> None:
    services: Services = app.extensions[EXTENSION]
    app.secret_key = session_secret(services)
    app.config.update(
        SESSION_COOKIE_NAME="hookflow_console",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=services.settings.session_cookie_secure,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=services.settings.session_hours),
    )
    app.jinja_env.filters["pretty"] = pretty
    app.jinja_env.filters["last_day"] = last_day  # an exclusive `until` shown as the last day it includes
    from web.ui import auth, views  # noqa: F401  (registers the routes on bp)

    app.register_blueprint(bp)


@bp.after_request
def _mask_secrets(response: Response) -> Response:
    """The last line of defence: no known secret value leaves in a console page, whatever put it there.

    (An event's body or data may carry one, e.g. a sender that echoes its token in the payload.)
    """
    if response.direct_passthrough or response.mimetype not in ("text/html", "text/plain"):
        return response
    from web.ui.views import scrubber

    text = response.get_data(as_text=True)
    masked = scrubber().html(text)
    if masked != text:
        response.set_data(masked)
    return response


@bp.after_request
def _harden(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if response.mimetype == "text/html":
        response.headers.setdefault("Cache-Control", "no-store")
    return response
