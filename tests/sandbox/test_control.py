"""Every simulator offers the same operator's side (sandbox/control.py): tests and drills rely on it.

One contract, checked against all four simulators through Flask's test client:
API calls are logged and control calls are not, an injected fault answers and is
logged with the status it sent, the log can be cleared, and a reset forgets calls
and faults alike.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask

from sandbox import additiv, bigchange, bigchange_webservice, lightening

SIMULATORS: dict[str, Callable[[], Flask]] = {
    "bigchange": bigchange.create_app,
    "bigchange_webservice": bigchange_webservice.create_app,
    "lightening": lightening.create_app,
    "additiv": additiv.create_app,
}


@pytest.fixture(params=sorted(SIMULATORS))
def app(request: pytest.FixtureRequest) -> Flask:
    return SIMULATORS[request.param]()


def test_state_is_a_json_object(app: Flask) -> None:
    answer = app.test_client().get("/__sandbox__/state")

    assert answer.status_code == 200
    assert isinstance(answer.get_json(), dict)


def test_api_calls_are_logged_and_control_calls_are_not(app: Flask) -> None:
    client = app.test_client()
    client.get("/__sandbox__/state")
    client.get("/no-such-api-path")

    calls = client.get("/__sandbox__/calls").get_json()

    assert [call["path"] for call in calls] == ["/no-such-api-path"]


def test_clearing_the_log_keeps_the_faults(app: Flask) -> None:
    client = app.test_client()
    assert client.post("/__sandbox__/faults", json={"path": "/elsewhere", "status": 503}).status_code == 201
    client.get("/no-such-api-path")

    assert client.delete("/__sandbox__/calls").status_code == 204

    assert client.get("/__sandbox__/calls").get_json() == []
    assert len(client.get("/__sandbox__/faults").get_json()) == 1


def test_reset_forgets_calls_and_faults(app: Flask) -> None:
    client = app.test_client()
    assert client.post("/__sandbox__/faults", json={"path": "/elsewhere", "status": 503}).status_code == 201
    client.get("/no-such-api-path")

    assert client.post("/__sandbox__/reset").status_code == 204

    assert client.get("/__sandbox__/calls").get_json() == []
    assert client.get("/__sandbox__/faults").get_json() == []


def test_an_injected_fault_answers_and_the_log_records_the_status_sent(app: Flask) -> None:
    client = app.test_client()
    assert client.post("/__sandbox__/faults", json={"path": "/no-such-api-path", "status": 503}).status_code == 201

    answer = client.get("/no-such-api-path")

    assert answer.status_code == 503
    assert [call["status"] for call in client.get("/__sandbox__/calls").get_json()] == [503]
    assert client.get("/__sandbox__/faults").get_json() == []  # used up: `times` defaults to 1
