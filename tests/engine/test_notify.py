"""The global failure notifier: a failed run reaches a person; nothing about it can hold up or break a run."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask, jsonify, request
from flask.testing import FlaskClient

from engine.notify import FailureNotifier, NotificationFailed, deliver, summary
from engine.observe import RunFinished
from engine.services import Services
from sandbox.server import serve_in_thread
from schemas.settings import PROJECT_ROOT
from tests.conftest import SECRETS, Drain, Sandbox, post_hook

EXAMPLE = (PROJECT_ROOT / "examples" / "web-enquiry.json").read_bytes()
TOKEN = {"X-Hook-Token": SECRETS["WEBFORM_TOKEN"]}


class Receiver:
    """A chat-webhook stand-in on a real socket: records what it is sent, answers `status`."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.status = 200
        app = Flask("receiver")

        @app.post("/hook")
        def hook() -> Any:
            self.received.append(request.get_json())
            return jsonify(ok=True), self.status

        self.server = serve_in_thread(app)
        self.url = f"{self.server.url}/hook"


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.server.stop()


@pytest.fixture
def settings_overrides(receiver: Receiver) -> dict[str, Any]:
    receiver.received.clear()
    receiver.status = 200
    return {"failure_webhook_url": receiver.url, "public_url": "https://hookflow.example.com/"}


def test_a_failed_run_is_posted_to_the_failure_webhook(
    client: FlaskClient, drain: Drain, sandbox: Sandbox, receiver: Receiver
) -> None:
    # Given a run that fails on a permanent error, and one that succeeds
    sandbox.fault("/contacts/create", status=400, times=1)
    failed = post_hook(client, "webform", EXAMPLE, **TOKEN).get_json()
    ok_body = json.loads(EXAMPLE) | {"submission_id": "other"}
    post_hook(client, "webform", json.dumps(ok_body).encode(), **TOKEN)

    drain()

    # Then exactly the failed one is announced, readable in a chat and parseable by a machine
    (message,) = receiver.received
    run_id = failed["runs"][0]
    assert message["run_id"] == run_id and message["event_id"] == failed["event_id"]
    assert (message["workflow"], message["status"], message["step"]) == ("web-enquiry", "failed", "contact")
    assert message["text"].startswith(f"Hookflow: run {run_id} of workflow web-enquiry failed at step contact: ")
    assert message["url"] == f"https://hookflow.example.com/runs/{run_id}"


def test_an_endpoint_that_refuses_makes_the_job_fail_so_rq_retries_it(app: Flask, receiver: Receiver) -> None:
    receiver.status = 500
    with app.app_context(), pytest.raises(NotificationFailed, match="HTTP 500"):
        deliver({"run_id": "run_x", "text": "t"})


@pytest.mark.parametrize("settings_overrides", [{"failure_webhook_url": "http://127.0.0.1:9/nothing"}])
def test_an_unreachable_endpoint_is_a_notification_failure(app: Flask, settings_overrides: dict) -> None:
    with app.app_context(), pytest.raises(NotificationFailed, match="run_x"):
        deliver({"run_id": "run_x"})


def test_when_redis_cannot_take_the_job_the_failure_is_logged_not_raised(
    services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    # Given Redis is unreachable
    from redis import Redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    from engine.queue import StepQueue

    unreachable = Redis(port=9, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    services.queue = StepQueue(unreachable, "hookflow", 60)
    fact = RunFinished("run_x", "evt_x", "web-enquiry", "failed", "step contact: HTTP 400", "contact", 12.0)

    # When the notifier sees a failure, it does not raise
    with caplog.at_level(logging.ERROR, logger="engine.notify"):
        FailureNotifier(services)(fact)

    assert "run_x failed and its notification could not be queued" in caplog.text


def test_the_summary_without_a_public_url_has_no_link() -> None:
    fact = RunFinished("run_x", "evt_x", "w", "failed", None, None, None)
    body = summary(fact, None)
    assert body["url"] is None and body["text"] == "Hookflow: run run_x of workflow w failed: no reason given"
