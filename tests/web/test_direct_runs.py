"""POST /api/workflows/<name>/run: Zapier-style direct runs, their tokens, Idempotency-Key and ?wait."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from flask.testing import FlaskClient
from pydantic import SecretStr
from werkzeug.test import TestResponse

from engine.services import Services
from tests.conftest import Drain
from tests.web.inbound_setup import (  # noqa: F401  (inbound_app, inbound_workflows_dir: fixtures)
    events,
    inbound_app,
    inbound_workflows_dir,
    runs,
)

DIRECT = {"Authorization": "Bearer direct-token"}
ZAP = {"X-Hook-Token": "zap-token"}  # the zapier source lists log-anything under run_workflows
BODY = {"name": "Ray Brown", "email": "ray@example.com"}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"direct_run_token": SecretStr("direct-token")}


def run(
    client: FlaskClient, headers: dict[str, str], body: Any = BODY, path: str = "log-anything", query: str = ""
) -> TestResponse:
    return client.post(
        f"/api/workflows/{path}/run{query}",
        data=json.dumps(body),
        headers={**headers, "Content-Type": "application/json"},
    )


class TestStarting:
    def test_the_body_becomes_event_data_and_the_answer_is_202_with_the_run(
        self, client: FlaskClient, services: Services, drain: Drain
    ) -> None:
        response = run(client, DIRECT)
        assert response.status_code == 202
        answer = response.get_json()
        (event,) = events(services)
        (started,) = runs(services)
        assert (answer["id"], answer["event_id"], answer["workflow"], answer["status"]) == (
            started.id,
            event.id,
            "log-anything",
            "queued",
        )
        assert [step["status"] for step in answer["steps"]] == ["pending"] and "attempts" not in answer["steps"][0]
        assert (event.source, event.type, event.data) == ("@api", "api.run", BODY)
        assert event.headers["authorization"] == "[redacted]"
        assert response.headers["Location"] == f"/api/runs/{started.id}"
        drain()
        assert runs(services)[0].status == "succeeded"

    def test_the_admin_token_works_too(self, client: FlaskClient, admin: dict[str, str]) -> None:
        assert run(client, admin).status_code == 202

    def test_a_source_listing_the_workflow_may_run_it_with_its_own_credentials(
        self, client: FlaskClient, services: Services
    ) -> None:
        assert run(client, ZAP).status_code == 202
        assert events(services)[0].source == "zapier"

    def test_a_sources_own_credential_header_is_never_stored(self, client: FlaskClient, services: Services) -> None:
        assert run(client, {"X-Zap-Key": "zap-token"}).status_code == 202
        (event,) = events(services)
        assert (event.source, event.headers["x-zap-key"]) == ("zap-key", "[redacted]")

    def test_a_workflow_runs_whatever_its_trigger_says(self, client: FlaskClient, services: Services) -> None:
        # form-enquiry is triggered by the forms source and event form.submitted; a direct run ignores both
        assert run(client, DIRECT, path="form-enquiry").status_code == 202

    def test_without_a_key_every_call_is_a_new_run(self, client: FlaskClient, services: Services) -> None:
        run(client, DIRECT)
        run(client, DIRECT)
        assert len(runs(services)) == 2

    def test_an_empty_body_is_empty_data(self, client: FlaskClient, services: Services) -> None:
        assert client.post("/api/workflows/log-anything/run", headers=DIRECT).status_code == 202
        assert events(services)[0].data == {}


class TestIdempotencyKey:
    def test_the_same_key_and_body_answer_with_the_first_run(self, client: FlaskClient, services: Services) -> None:
        first = run(client, {**DIRECT, "Idempotency-Key": "zap-42"})
        again = run(client, {**DIRECT, "Idempotency-Key": "zap-42"})
        assert again.status_code == 202 and again.get_json()["id"] == first.get_json()["id"]
        assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
        assert len(events(services)) == 1 and len(runs(services)) == 1

    def test_the_same_key_with_another_body_is_422(self, client: FlaskClient, services: Services) -> None:
        run(client, {**DIRECT, "Idempotency-Key": "zap-42"})
        response = run(client, {**DIRECT, "Idempotency-Key": "zap-42"}, {**BODY, "name": "Someone Else"})
        assert response.status_code == 422
        assert "already used with a different body" in response.get_json()["error"]
        assert len(runs(services)) == 1

    def test_keys_are_per_workflow(self, client: FlaskClient, services: Services) -> None:
        run(client, {**DIRECT, "Idempotency-Key": "k"})
        assert run(client, {**DIRECT, "Idempotency-Key": "k"}, path="form-enquiry").status_code == 202
        assert len(runs(services)) == 2

    def test_a_very_long_key_still_deduplicates(self, client: FlaskClient, services: Services) -> None:
        key = "k" * 250
        run(client, {**DIRECT, "Idempotency-Key": key})
        assert run(client, {**DIRECT, "Idempotency-Key": key}).headers.get("Idempotent-Replayed") == "true"
        too_long = run(client, {**DIRECT, "Idempotency-Key": "k" * 256})
        assert too_long.status_code == 400 and "Idempotency-Key" in too_long.get_json()["error"]


class TestWait:
    def test_wait_answers_200_with_the_finished_run_and_its_outputs(
        self, client: FlaskClient, services: Services, drain: Drain
    ) -> None:
        # Given a caller waiting for the outcome (in its own thread, as a real caller would be)
        answers: list[TestResponse] = []

        def call() -> None:
            answers.append(run(client, DIRECT, query="?wait=30"))

        caller = threading.Thread(target=call)
        caller.start()
        # When a worker runs the step
        _until(lambda: services.queue.queue.count > 0)
        drain()
        caller.join(timeout=30)
        # Then the answer is the finished run with the step's output
        (response,) = answers
        assert response.status_code == 200
        answer = response.get_json()
        assert answer["status"] == "succeeded"
        assert answer["steps"][0]["output"] == {"message": f"called with {BODY}", "level": "info"}

    def test_a_finished_run_is_answered_at_once_to_a_repeated_key(
        self, client: FlaskClient, services: Services, drain: Drain
    ) -> None:
        run(client, {**DIRECT, "Idempotency-Key": "done"})
        drain()
        again = run(client, {**DIRECT, "Idempotency-Key": "done"}, query="?wait=30")
        assert again.status_code == 200 and again.get_json()["status"] == "succeeded"

    def test_when_the_wait_runs_out_the_answer_is_202_with_the_run_as_it_is(
        self, client: FlaskClient, services: Services
    ) -> None:
        response = run(client, DIRECT, query="?wait=0.2")  # no worker is running
        assert response.status_code == 202 and response.get_json()["status"] == "queued"

    def test_the_wait_is_capped(self, client: FlaskClient, services: Services) -> None:
        services.settings = services.settings.model_copy(update={"direct_run_max_wait_seconds": 0.1})
        assert run(client, DIRECT, query="?wait=3600").status_code == 202

    @pytest.mark.parametrize("wait", ["soon", "-1", "nan"])
    def test_a_wait_that_is_not_seconds_is_400(self, client: FlaskClient, services: Services, wait: str) -> None:
        response = run(client, DIRECT, query=f"?wait={wait}")
        assert response.status_code == 400 and "wait must be a number" in response.get_json()["error"]
        assert events(services) == []


def _until(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.01)


class TestRefusals:
    @pytest.mark.parametrize(
        "headers",
        [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic ZGlyZWN0LXRva2Vu"}, {"X-Hook-Token": "no"}],
    )
    def test_without_valid_credentials_it_is_401(self, client: FlaskClient, services: Services, headers: dict) -> None:
        response = run(client, headers)
        assert response.status_code == 401 and "DIRECT_RUN_TOKEN" in response.get_json()["error"]
        assert events(services) == []

    def test_a_sources_credentials_only_run_the_workflows_it_lists(self, client: FlaskClient) -> None:
        assert run(client, ZAP, path="form-enquiry").status_code == 401

    def test_an_unknown_workflow_is_404_after_authentication(self, client: FlaskClient) -> None:
        assert run(client, DIRECT, path="nosuch").status_code == 404
        assert run(client, {}, path="nosuch").status_code == 401

    def test_nothing_configured_is_503(self, client: FlaskClient, services: Services) -> None:
        services.settings = services.settings.model_copy(update={"admin_token": None, "direct_run_token": None})
        response = run(client, {"Authorization": "Bearer x"}, path="form-enquiry")
        assert response.status_code == 503 and "direct runs are not enabled" in response.get_json()["error"]

    @pytest.mark.parametrize(
        ("body", "content_type", "message"),
        [
            (b"[1, 2]", "application/json", "must be a JSON object"),
            (b"{oops", "application/json", "not valid JSON"),
            (b"<a/>", "application/xml", "unsupported content type"),
        ],
    )
    def test_a_body_that_is_not_a_json_object_is_refused(
        self, client: FlaskClient, services: Services, body: bytes, content_type: str, message: str
    ) -> None:
        response = client.post(
            "/api/workflows/log-anything/run", data=body, headers={**DIRECT, "Content-Type": content_type}
        )
        assert response.status_code in (400, 415) and message in response.get_json()["error"]
        assert events(services) == []

    def test_a_body_over_the_limit_is_413(self, client: FlaskClient, services: Services) -> None:
        services.settings = services.settings.model_copy(update={"max_body_bytes": 10})
        assert run(client, DIRECT).status_code == 413

    def test_a_source_over_its_rate_limit_is_429(self, client: FlaskClient, services: Services) -> None:
        from schemas.sources import RateLimitSpec

        catalog = services.catalog.current()
        limited = catalog.sources["zapier"].model_copy(update={"rate_limit": RateLimitSpec(per_second=0.01, burst=1)})
        catalog.sources["zapier"] = limited
        assert run(client, ZAP).status_code == 202
        refused = run(client, ZAP)
        assert refused.status_code == 429 and refused.headers["Retry-After"]
