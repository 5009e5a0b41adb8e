"""POST /hooks/<source>: every answer a sender can get, and what is stored for each."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from engine.models import Event, Run
from engine.ratelimit import RateLimit, RequestBudget
from engine.services import Services
from engine.verify import sign_hmac
from tests.conftest import SECRETS, post_hook

EXAMPLE = (Path(__file__).parents[2] / "examples" / "web-enquiry.json").read_bytes()
TOKEN = {"X-Hook-Token": SECRETS["WEBFORM_TOKEN"]}


def events(services: Services) -> list[Event]:
    with services.db.session() as session:
        return list(session.scalars(sa.select(Event).order_by(Event.id)))


def runs(services: Services) -> list[Run]:
    with services.db.session() as session:
        return list(session.scalars(sa.select(Run).order_by(Run.id)))


def test_an_accepted_event_is_stored_before_the_answer_with_its_runs(client: FlaskClient, services: Services) -> None:
    response = post_hook(client, "webform", EXAMPLE, **TOKEN)
    assert response.status_code == 202
    body = response.get_json()
    (event,) = events(services)
    (run,) = runs(services)
    assert body == {"event_id": event.id, "runs": [run.id]}
    assert (event.status, event.type, event.dedupe_key) == ("accepted", "form.submitted", "sub-20261122-0001")
    assert event.raw_body == EXAMPLE and event.data["name"] == "Mrs Jane Jones"
    assert (run.workflow, run.status, run.current_step) == ("web-enquiry", "queued", "contact")
    # and the first step job is on the queue
    assert services.queue.queue.job_ids == [f"{run.id}-contact-1"]


def test_the_token_header_is_never_stored(client: FlaskClient, services: Services) -> None:
    post_hook(client, "webform", EXAMPLE, **TOKEN)
    (event,) = events(services)
    assert event.headers["x-hook-token"] == "[redacted]"
    assert SECRETS["WEBFORM_TOKEN"] not in json.dumps(event.headers)


def test_the_token_may_come_as_a_query_parameter_and_is_not_stored(client: FlaskClient, services: Services) -> None:
    response = client.post(
        f"/hooks/webform?token={SECRETS['WEBFORM_TOKEN']}", data=EXAMPLE, content_type="application/json"
    )
    assert response.status_code == 202
    assert events(services)[0].query == {"token": "[redacted]"}


def test_any_configured_secret_is_masked_whatever_header_or_parameter_carries_it(
    client: FlaskClient, services: Services
) -> None:
    # Another source's secret, under names that do not look like credentials
    other = SECRETS["ACCOUNTS_SECRET"]
    response = client.post(
        f"/hooks/webform?note=copy-{other}",
        data=EXAMPLE,
        content_type="application/json",
        headers={**TOKEN, "X-Other": other, "X-Forwarded-Note": f"was {other}"},
    )
    assert response.status_code == 202
    (event,) = events(services)
    assert (event.headers["x-other"], event.headers["x-forwarded-note"]) == ("[redacted]", "was [redacted]")
    assert event.query == {"note": "copy-[redacted]"}
    assert other not in json.dumps([event.headers, event.query])


def test_a_second_delivery_is_a_duplicate_with_no_new_run(client: FlaskClient, services: Services) -> None:
    first = post_hook(client, "webform", EXAMPLE, **TOKEN).get_json()
    again = post_hook(client, "webform", EXAMPLE, **TOKEN)
    assert again.status_code == 200
    assert again.get_json() == {"event_id": first["event_id"], "duplicate": True}
    assert len(events(services)) == 1 and len(runs(services)) == 1


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/x-www-form-urlencoded", b"submission_id=s-9&name=Jane+Jones&message=Leak"),
        (
            "multipart/form-data; boundary=B",
            b'--B\r\nContent-Disposition: form-data; name="submission_id"\r\n\r\n'
            b's-9\r\n--B\r\nContent-Disposition: form-data; name="name"\r\n\r\nJane Jones\r\n--B--\r\n',
        ),
        ("text/plain", b'{"submission_id": "s-9", "name": "Jane Jones"}'),
    ],
)
def test_forms_multipart_and_json_as_text_are_accepted(
    client: FlaskClient, services: Services, content_type: str, body: bytes
) -> None:
    response = post_hook(client, "webform", body, **TOKEN, **{"Content-Type": content_type})
    assert response.status_code == 202, response.get_json()
    (event,) = events(services)
    assert event.dedupe_key == "s-9" and event.data["name"] == "Jane Jones"


def test_unknown_source_is_404(client: FlaskClient, services: Services) -> None:
    response = post_hook(client, "nosuch", EXAMPLE)
    assert response.status_code == 404
    assert response.get_json() == {"error": "unknown source 'nosuch'; sources are defined in sources.yaml"}
    assert events(services) == []


@pytest.mark.parametrize(
    ("headers", "error"),
    [({}, "missing token"), ({"X-Hook-Token": "wrong"}, "invalid token")],
)
def test_bad_or_missing_token_is_401_and_nothing_is_stored(
    client: FlaskClient, services: Services, headers: dict[str, str], error: str
) -> None:
    response = post_hook(client, "webform", EXAMPLE, **headers)
    assert response.status_code == 401
    assert error in response.get_json()["error"]
    assert events(services) == []  # unauthenticated bodies are never stored


def test_hmac_source_accepts_a_signed_body_and_refuses_a_tampered_one(client: FlaskClient, services: Services) -> None:
    body = json.dumps({"id": "a-1", "event": "credit_limit.exceeded", "account_ref": "ACME-01"}).encode()
    source = services.catalog.current().sources["accounts"]
    signature = sign_hmac(source.verify, body, SECRETS["ACCOUNTS_SECRET"])  # type: ignore[arg-type]
    assert post_hook(client, "accounts", body, **{"X-Signature": signature}).status_code == 202
    tampered = post_hook(client, "accounts", body.replace(b"ACME", b"EVIL"), **{"X-Signature": signature})
    assert tampered.status_code == 401
    assert tampered.get_json() == {"error": "signature does not match the body"}


def test_a_body_over_the_limit_is_413(client: FlaskClient, services: Services) -> None:
    too_big = b'{"pad": "' + b"x" * services.settings.max_body_bytes + b'"}'
    response = post_hook(client, "webform", too_big, **TOKEN)
    assert response.status_code == 413
    assert "larger than this source's limit of 1048576 bytes" in response.get_json()["error"]
    assert events(services) == []


def test_a_chunked_body_over_the_limit_is_413(client: FlaskClient, services: Services) -> None:
    # Given a chunked request: no Content-Length, the server says the input is terminated
    body = io.BytesIO(b'{"pad": "' + b"x" * services.settings.max_body_bytes + b'"}')
    response = client.post(
        "/hooks/webform",
        input_stream=body,
        headers={**TOKEN, "Content-Type": "application/json"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 413
    assert events(services) == []


def test_an_unsupported_content_type_is_415_and_kept_as_a_rejected_event(
    client: FlaskClient, services: Services
) -> None:
    response = post_hook(client, "webform", b"<enquiry/>", **TOKEN, **{"Content-Type": "application/xml"})
    assert response.status_code == 415
    assert "unsupported content type application/xml" in response.get_json()["error"]
    (event,) = events(services)
    assert (event.id, event.status, event.raw_body) == (response.get_json()["event_id"], "rejected", b"<enquiry/>")
    assert event.reason == response.get_json()["error"] and runs(services) == []


def test_an_unparseable_body_is_400_and_kept_as_a_rejected_event(client: FlaskClient, services: Services) -> None:
    response = post_hook(client, "webform", b'{"name": "Jane"', **TOKEN)
    assert response.status_code == 400
    body = response.get_json()
    assert "body is not valid JSON" in body["error"]
    (event,) = events(services)
    assert (event.id, event.status, event.raw_body) == (body["event_id"], "rejected", b'{"name": "Jane"')
    assert "not valid JSON" in event.reason and event.dedupe_key is None
    assert runs(services) == []


def test_a_body_without_the_dedupe_field_is_400_and_kept(client: FlaskClient, services: Services) -> None:
    response = post_hook(client, "webform", b'{"name": "Jane"}', **TOKEN)
    assert response.status_code == 400
    assert "cannot key or type this event" in response.get_json()["error"]
    assert "submission_id" in response.get_json()["error"]
    (event,) = events(services)
    assert event.status == "rejected" and event.data == {"name": "Jane"}


def test_a_source_whose_secret_is_not_configured_answers_503_so_senders_retry(
    client: FlaskClient, services: Services
) -> None:
    services.catalog.environ = {}  # as if WEBFORM_TOKEN were missing from the server's environment
    services.catalog._fingerprint = ()  # force a reload
    response = post_hook(client, "webform", EXAMPLE, **TOKEN)
    assert response.status_code == 503
    assert response.get_json() == {"error": "source 'webform' is not configured on this server yet; retry later"}


def test_the_shipped_sources_are_rate_limited_by_default(client: FlaskClient, services: Services) -> None:
    # Given the default settings and the shipped sources.yaml, whose sources set no rate_limit: of their own
    assert services.catalog.current().sources["webform"].rate_limit is None
    assert (services.settings.inbound_rate_limit_per_second, services.settings.inbound_rate_limit_burst) == (50, 500)
    # When the web form posts
    assert post_hook(client, "webform", EXAMPLE, **TOKEN).status_code == 202
    # Then the request was charged to the webform's own budget in Redis
    budget = RequestBudget(services.redis, "inbound", "webform", RateLimit(rate=50, burst=500))
    assert services.redis.exists(budget.key)


def test_redis_down_still_accepts_and_the_run_waits_for_the_reconciler(
    client: FlaskClient, services: Services, redis_url: str
) -> None:
    # Given Redis refuses connections at the moment of enqueueing
    from redis import Redis

    services.queue.redis = services.queue.queue.connection = Redis.from_url("redis://127.0.0.1:1/0")
    # When the event arrives
    response = post_hook(client, "webform", EXAMPLE, **TOKEN)
    # Then it is accepted (durably stored) and its run is queued in the ledger
    assert response.status_code == 202
    (run,) = runs(services)
    assert run.status == "queued" and run.current_step == "contact"
