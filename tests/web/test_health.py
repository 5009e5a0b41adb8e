"""Liveness and readiness."""

from __future__ import annotations

from flask.testing import FlaskClient
from redis import Redis

from engine.db import Database
from engine.services import Services


def test_healthz_answers_while_the_process_is_up(client: FlaskClient) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_readyz_checks_database_and_redis(client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ready", "checks": {"database": "ok", "redis": "ok"}}


def test_readyz_is_503_and_names_what_is_down(client: FlaskClient, services: Services) -> None:
    services.redis = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    services.db = Database("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1")
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "unavailable"
    assert body["checks"]["redis"] == "error: ConnectionError"
    assert body["checks"]["database"] == "error: OperationalError"
