"""The naive reference pipeline does the workflow's work and nothing more, so the comparison is fair."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from redis import Redis
from rq import Queue

from bench import minimal_ledger, naive
from bench.ingest import EXAMPLE
from bench.stub import StubState, api_call

TOKEN = "naive-token"


@pytest.fixture
def stub(monkeypatch: pytest.MonkeyPatch) -> Iterator[StubState]:
    """The stub's request handling behind an httpx transport, as the naive job's client."""
    state = StubState("key")

    def handle(request: httpx.Request) -> httpx.Response:
        assert request.headers["X-API-Key"] == "key"
        status, body = api_call(state, request.url.path.removeprefix("/bigchange"), json.loads(request.content))
        return httpx.Response(status, json=body) if body is not None else httpx.Response(status)

    client = httpx.Client(
        transport=httpx.MockTransport(handle), base_url="http://stub/bigchange", headers={"X-API-Key": "key"}
    )
    monkeypatch.setattr(naive, "_http", client)
    yield state
    client.close()


def test_one_job_makes_the_workflow_s_four_calls_that_the_stub_accepts(stub: StubState) -> None:
    naive.run_enquiry(EXAMPLE)
    assert (stub.counts()["contacts"], stub.counts()["jobs"], stub.constraints, stub.scheduled) == (1, 1, 1, 1)
    assert stub.references == {f"WEB-{EXAMPLE['submission_id']}"}


def test_a_call_the_stub_refuses_fails_the_job(stub: StubState) -> None:
    with pytest.raises(httpx.HTTPStatusError):
        naive.run_enquiry({**EXAMPLE, "name": ""})  # the stub requires a name, as BigChange does


@pytest.fixture
def naive_app(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FlaskClient, Queue]]:
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("WEBFORM_TOKEN", TOKEN)
    monkeypatch.setattr(naive, "_queue", None)
    redis = Redis.from_url(redis_url)
    redis.flushdb()
    yield naive.app.test_client(), Queue(naive.QUEUE, connection=redis)
    redis.flushdb()
    redis.close()


def test_the_endpoint_enqueues_the_body_and_answers_202(naive_app: tuple[FlaskClient, Queue]) -> None:
    http, queue = naive_app
    answer = http.post("/hooks/webform", json=EXAMPLE, headers={"X-Hook-Token": TOKEN})
    assert answer.status_code == 202
    (job,) = queue.get_jobs()
    assert job.func_name == "bench.naive.run_enquiry" and job.args == (EXAMPLE, None)


def test_a_wrong_token_is_refused_and_nothing_is_queued(naive_app: tuple[FlaskClient, Queue]) -> None:
    http, queue = naive_app
    answer = http.post("/hooks/webform", json=EXAMPLE, headers={"X-Hook-Token": "wrong"})
    assert answer.status_code == 401 and answer.get_json() == {"error": "bad token"}
    assert queue.count == 0


# --- The durable minimum (NAIVE_LEDGER_URL) ----------------------------------------------------


@pytest.fixture
def durable(any_db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The naive pipeline with its minimal ledger, on each database the bench runs on."""
    minimal_ledger.create(any_db_url)
    monkeypatch.setenv(naive.LEDGER_ENV, any_db_url)
    monkeypatch.setattr(naive, "_ledger", None)
    yield any_db_url
    engine = sa.create_engine(any_db_url)  # the session's PostgreSQL database holds Hookflow's tables alone
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE {minimal_ledger.TABLE}"))
    engine.dispose()


def test_the_durable_minimum_commits_the_body_before_answering(
    durable: str, naive_app: tuple[FlaskClient, Queue]
) -> None:
    http, queue = naive_app
    answer = http.post("/hooks/webform", json=EXAMPLE, headers={"X-Hook-Token": TOKEN})
    assert answer.status_code == 202
    (job,) = queue.get_jobs()
    event_id = job.args[1]
    assert isinstance(event_id, str) and minimal_ledger.count(durable) == (1, 0)


def test_the_durable_minimum_records_each_of_the_four_steps(durable: str, stub: StubState) -> None:
    event_id = naive.ledger().store_event(json.dumps(EXAMPLE).encode())  # type: ignore[union-attr]
    naive.run_enquiry(EXAMPLE, event_id)
    assert minimal_ledger.count(durable) == (1, 1)
    assert stub.counts()["contacts"] == 1


def test_a_refused_request_stores_nothing_in_the_durable_minimum(
    durable: str, naive_app: tuple[FlaskClient, Queue]
) -> None:
    http, _queue = naive_app
    http.post("/hooks/webform", json=EXAMPLE, headers={"X-Hook-Token": "wrong"})
    assert minimal_ledger.count(durable) == (0, 0)


def test_without_a_ledger_url_the_pipeline_keeps_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(naive.LEDGER_ENV, raising=False)
    monkeypatch.setattr(naive, "_ledger", None)
    assert naive.ledger() is None
