"""When the database cannot take an event, the sender hears 503 + Retry-After, never 2xx or 500."""

from __future__ import annotations

from pathlib import Path

from flask.testing import FlaskClient

from engine.db import Database
from engine.services import Services
from tests.conftest import SECRETS, post_hook

EXAMPLE = (Path(__file__).parents[2] / "examples" / "web-enquiry.json").read_bytes()


def test_a_database_that_cannot_store_the_event_answers_503_with_retry_after(
    client: FlaskClient, services: Services
) -> None:
    services.db = Database("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1")
    response = post_hook(client, "webform", EXAMPLE, **{"X-Hook-Token": SECRETS["WEBFORM_TOKEN"]})
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.get_json() == {"error": "the database is unavailable; nothing was stored, retry shortly"}


def test_a_locked_sqlite_database_answers_503_once_the_busy_timeout_passes(
    client: FlaskClient, services: Services, tmp_path: Path
) -> None:
    import sqlite3

    from engine.migrate import upgrade

    path = tmp_path / "locked.db"
    upgrade(f"sqlite:///{path}")
    services.db = Database(f"sqlite:///{path}", sqlite_busy_timeout_ms=200)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process holding the write lock
    try:
        response = post_hook(client, "webform", EXAMPLE, **{"X-Hook-Token": SECRETS["WEBFORM_TOKEN"]})
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
