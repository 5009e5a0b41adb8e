"""Hookflow's Flask application: assembles the parts, decides nothing.

`create_app()` is the factory; the module-level `app` is what gunicorn serves
(`gunicorn app:app`) and what `flask --app app …` commands run in. Building it
reads the environment once and opens no connection.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from flask import Flask

from commands.connectors import connectors_cli
from commands.db import db_cli
from commands.reconcile import reconcile
from commands.retention import retention_cli
from commands.sandbox import sandbox
from commands.worker import worker
from commands.workflows import workflows_cli
from engine import logs
from engine.services import EXTENSION, Services
from handlers import build_registry
from schemas.settings import Settings
from web import api, health, hooks, metrics, triggers, ui
from web.errors import register_error_handlers


def create_app(settings: Settings | None = None, environ: Mapping[str, str] | None = None) -> Flask:
    """Build the app.

    Args:
        settings: configuration; default read from the environment.
        environ: where sources.yaml `${VAR}` secrets are looked up; default os.environ.
    """
    settings = settings or Settings()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = None  # body limits are per source, enforced in web.hooks
    app.json.sort_keys = False
    app.extensions[EXTENSION] = Services(settings, os.environ if environ is None else environ, build_registry())
    app.register_blueprint(hooks.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(triggers.bp)  # replay and direct runs (issue 5)
    logs.configure(settings)
    metrics.init_app(app)
    ui.init_app(app)
    register_error_handlers(app)
    for command in (db_cli, worker, sandbox, reconcile, workflows_cli, connectors_cli, retention_cli):
        app.cli.add_command(command)
    return app


app = create_app()
