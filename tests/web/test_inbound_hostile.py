"""POST /hooks/<source> with hostile or odd input: what is refused, with which answer, and what is kept.

The storage cases run on SQLite and on PostgreSQL: PostgreSQL refuses text
SQLite takes (NUL, lone surrogates), so a body that is stored on one must be
refused, not 503ed forever, on the other.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from engine.bodylimits import MAX_JSON_DEPTH
from engine.ingest import MAX_FORM_FIELDS
from engine.services import Services
from engine.verify import sign_body_base64
from tests.web.inbound_setup import (  # noqa: F401  (inbound_app, inbound_workflows_dir: fixtures)
    INBOUND_SECRETS,
    events,
    example_bytes,
    inbound_app,
    inbound_workflows_dir,
    reload,
    runs,
)

# `zap-key` in tests/web/inbound_setup.py: a plain token source with no preset and no body limit of its own.
KEY = {"X-Zap-Key": INBOUND_SECRETS["ZAPIER_TOKEN"]}
FORM = "application/x-www-form-urlencoded"


def post(client: FlaskClient, body: bytes, content_type: str, source: str = "zap-key", **headers: str) -> TestResponse:
    return client.post(f"/hooks/{source}", data=body, headers={**KEY, "Content-Type": content_type, **headers})


def signed_xero(client: FlaskClient, body: bytes) -> TestResponse:
    signature = sign_body_base64(body, INBOUND_SECRETS["XERO_WEBHOOK_KEY"])
    return client.post(
        "/hooks/xero", data=body, headers={"Content-Type": "application/json", "x-xero-signature": signature}
    )


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


class TestTextTheLedgerCannotStore:
    """Refused with 400 naming the field, kept as a rejected event (raw bytes, no data), on both databases."""

    @pytest.fixture
    def database_url(self, any_db_url: str) -> str:
        return any_db_url

    def assert_kept(self, services: Services, response: TestResponse, body: bytes) -> None:
        (event,) = events(services)
        assert (event.id, event.status, event.raw_body, event.data) == (
            response.get_json()["event_id"],
            "rejected",
            body,
            None,
        )
        assert event.reason == response.get_json()["error"]
        assert runs(services) == []

    def test_a_nul_in_a_form_field_is_400_naming_the_field(self, client: FlaskClient, services: Services) -> None:
        body = b"id=z-1&name=Zo%00e"
        response = post(client, body, FORM)
        assert response.status_code == 400
        assert response.get_json()["error"] == (
            "field 'name' contains a NUL character (U+0000), which cannot be stored; remove it"
        )
        self.assert_kept(services, response, body)

    def test_a_nul_in_a_json_string_is_400_naming_its_path(self, client: FlaskClient, services: Services) -> None:
        body = b'{"id": "z-2", "contact": {"names": ["Zo\\u0000e"]}}'
        response = post(client, body, "application/json")
        assert response.status_code == 400
        assert response.get_json()["error"].startswith("field 'contact.names[0]' contains a NUL character")
        self.assert_kept(services, response, body)

    def test_a_lone_surrogate_in_a_xero_batch_is_400_not_a_crash(self, client: FlaskClient, services: Services) -> None:
        delivery = json.loads(example_bytes("xero.json"))
        delivery["events"][1]["resourceId"] = "\ud800"
        body = json.dumps(delivery).encode()  # ASCII: the surrogate travels as the escape \ud800
        response = signed_xero(client, body)
        assert response.status_code == 400
        assert response.get_json()["error"] == (
            "field 'events[1].resourceId' contains a lone surrogate (U+D800), which is not valid Unicode"
        )
        self.assert_kept(services, response, body)

    def test_a_lone_surrogate_in_a_quickbooks_batch_is_400(self, client: FlaskClient, services: Services) -> None:
        body = example_bytes("quickbooks-legacy.json").replace(b'"Customer"', b'"Cust\\udfffomer"', 1)
        assert body != example_bytes("quickbooks-legacy.json")
        signature = sign_body_base64(body, INBOUND_SECRETS["INTUIT_VERIFIER_TOKEN"])
        response = client.post(
            "/hooks/quickbooks", data=body, headers={"Content-Type": "application/json", "intuit-signature": signature}
        )
        assert response.status_code == 400 and "lone surrogate (U+DFFF)" in response.get_json()["error"]
        self.assert_kept(services, response, body)

    def test_a_content_type_too_long_to_store_is_415_before_anything_is_read(
        self, client: FlaskClient, services: Services
    ) -> None:
        response = post(client, b'{"id": "z-6"}', "application/json; note=" + "x" * 200)
        assert response.status_code == 415
        assert response.get_json() == {"error": "Content-Type header is longer than 200 characters"}
        assert events(services) == []

    def test_a_nul_in_the_query_string_is_stored_as_a_replacement_character(
        self, client: FlaskClient, services: Services
    ) -> None:
        response = client.post(
            "/hooks/zap-key?campaign=spring%00sale",
            data=b'{"id": "z-3"}',
            headers={**KEY, "Content-Type": "text/plain"},
        )
        assert response.status_code == 202, response.get_json()
        (event,) = events(services)
        assert event.query == {"campaign": "spring\ufffdsale"} and event.data == {"id": "z-3"}


class TestNestingAndFieldCounts:
    def test_json_nested_to_the_limit_is_accepted(self, client: FlaskClient, services: Services) -> None:
        response = post(client, nested(MAX_JSON_DEPTH), "application/json")
        assert response.status_code == 202, response.get_json()

    @pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 950, 100_000])
    def test_json_nested_deeper_is_400_and_kept(self, client: FlaskClient, services: Services, depth: int) -> None:
        response = post(client, nested(depth), "application/json")
        assert response.status_code == 400
        assert response.get_json()["error"] == f"body nests deeper than {MAX_JSON_DEPTH} levels; flatten it"
        (event,) = events(services)
        assert event.status == "rejected" and event.raw_body == nested(depth)

    def test_a_form_with_the_most_fields_allowed_is_accepted(self, client: FlaskClient, services: Services) -> None:
        body = "&".join(f"f{i}=v" for i in range(MAX_FORM_FIELDS)).encode()
        response = post(client, body, FORM)
        assert response.status_code == 202, response.get_json()
        assert len(events(services)[0].data) == MAX_FORM_FIELDS

    def test_a_form_flooded_with_fields_is_413_and_kept(self, client: FlaskClient, services: Services) -> None:
        body = b"a=&" * 349_525  # the whole 1 MiB limit spent on empty fields
        response = post(client, body, FORM)
        assert response.status_code == 413
        assert response.get_json()["error"] == f"form body has more than {MAX_FORM_FIELDS} fields"
        (event,) = events(services)
        assert (event.status, event.reason, event.data) == ("rejected", response.get_json()["error"], None)


class TestContentTypes:
    @pytest.mark.parametrize("content_type", ["application/vnd.api+json", "application/cloudevents+json"])
    def test_structured_json_types_are_json(self, client: FlaskClient, services: Services, content_type: str) -> None:
        response = post(client, b'{"id": "z-4", "name": "Ray"}', content_type)
        assert response.status_code == 202, response.get_json()
        assert events(services)[0].data == {"id": "z-4", "name": "Ray"}

    def test_a_cloudevents_batch_from_quickbooks_is_split(self, client: FlaskClient, services: Services) -> None:
        body = example_bytes("quickbooks-cloudevents.json")
        signature = sign_body_base64(body, INBOUND_SECRETS["INTUIT_VERIFIER_TOKEN"])
        response = client.post(
            "/hooks/quickbooks",
            data=body,
            headers={"Content-Type": "application/cloudevents-batch+json", "intuit-signature": signature},
        )
        assert response.status_code == 200, response.get_json()
        assert len(events(services)) == len(json.loads(body))

    def test_a_verified_sender_with_an_unsupported_type_is_415_and_kept_with_the_reason(
        self, client: FlaskClient, services: Services
    ) -> None:
        response = post(client, b"<lead id='z-5'/>", "application/xml")
        assert response.status_code == 415
        answer = response.get_json()
        assert answer["error"].startswith("unsupported content type application/xml; send one of: application/json")
        (event,) = events(services)
        assert (event.id, event.status, event.reason) == (answer["event_id"], "rejected", answer["error"])
        assert (event.raw_body, event.content_type, event.data) == (b"<lead id='z-5'/>", "application/xml", None)

    def test_a_kept_415_is_accepted_on_replay_once_the_source_reads_its_body(
        self, client: FlaskClient, services: Services, workflows_dir: Path, admin: dict[str, str]
    ) -> None:
        # Given a sender that labels its JSON as octet-stream: 415, kept
        refused = post(client, b'{"id": "z-7"}', "application/octet-stream").get_json()
        # When the source is told to sniff JSON, and the event replayed
        sources = (workflows_dir / "sources.yaml").read_text()
        fixed = sources.replace(
            "run_workflows: [log-anything]\n", "run_workflows: [log-anything]\n    sniff_json: true\n", 1
        )
        (workflows_dir / "sources.yaml").write_text(fixed)
        reload(services)
        response = client.post(f"/api/events/{refused['event_id']}/replay", headers=admin)
        # Then its raw body becomes an accepted event
        assert response.status_code == 202, response.get_json()
        new = events(services, status="accepted")[0]
        assert (new.replay_of, new.data) == (refused["event_id"], {"id": "z-7"})

    def test_an_unverified_caller_with_an_unsupported_type_is_401_and_nothing_is_kept(
        self, client: FlaskClient, services: Services
    ) -> None:
        response = post(client, b"<lead/>", "application/xml", **{"X-Zap-Key": "wrong"})
        assert response.status_code == 401
        assert events(services) == []
