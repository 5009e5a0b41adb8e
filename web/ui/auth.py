"""Console login: ADMIN_TOKEN once, then a signed session cookie; a CSRF token for every POST.

The session remembers a fingerprint of the token it was opened with, so
changing ADMIN_TOKEN logs everyone out even when SECRET_KEY is configured.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from flask import Response, abort, redirect, render_template, request, session, url_for

from engine.services import current_services
from web.ui import bp

OPEN_ENDPOINTS = {"ui.login", "ui.static"}


def _fingerprint(token: str) -> str:
    return hashlib.sha256(b"hookflow-admin:" + token.encode()).hexdigest()[:32]


def csrf_token() -> str:
    """This session's CSRF token (created on first use)."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


@bp.app_context_processor
def _template_globals() -> dict[str, object]:
    return {"csrf_token": csrf_token}


def _safe_next(target: str | None) -> str:
    """Only a path on this site: `//evil.example` or a full URL would make the login an open redirect."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("ui.runs")


@bp.before_request
def _guard() -> Response | str | tuple[str, int] | None:
    if request.method == "POST":
        given = request.form.get("csrf_token", "")
        expected = session.get("csrf")
        if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
            abort(400, description="this form has expired or did not come from the console; reload and try again")
    if request.endpoint in OPEN_ENDPOINTS:
        return None
    token = current_services().settings.admin_token
    if token is None:
        return render_template("console/closed.html"), 503
    if not session.get("admin") or session.get("tfp") != _fingerprint(token.get_secret_value()):
        session.pop("admin", None)
        return redirect(url_for("ui.login", next=request.full_path.rstrip("?")))
    return None


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | str | tuple[str, int]:
    token = current_services().settings.admin_token
    if token is None:
        return render_template("console/closed.html"), 503
    target = _safe_next(request.values.get("next"))
    if request.method == "GET":
        return render_template("console/login.html", next=target)
    given = request.form.get("token", "")
    if not hmac.compare_digest(given.encode(), token.get_secret_value().encode()):
        return render_template("console/login.html", next=target, error="That is not the admin token."), 401
    session.clear()  # a fresh session (and CSRF token) on every login
    session.permanent = True
    session.update(admin=True, tfp=_fingerprint(token.get_secret_value()), csrf=secrets.token_urlsafe(32))
    return redirect(target)


@bp.post("/logout")
def logout() -> Response:
    session.clear()
    return redirect(url_for("ui.login"))
