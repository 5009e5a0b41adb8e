"""Each sender preset on a delivery shaped as that sender sends it: items, flat data, type, dedupe key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from engine.ingest import derive, items_of, parse_body
from engine.intake import EventKeyError, identify
from engine.presets import PRESETS, PayloadError
from engine.render import Renderer
from schemas.sources import SourceSpec

EXAMPLES = Path(__file__).parents[2] / "examples" / "inbound"
JOTFORM_TYPE = "multipart/form-data; boundary=------------------------5b6e1a0c3f2d7a91"


def example(name: str) -> Any:
    return json.loads((EXAMPLES / name).read_text())


def events_of(preset: str, parsed: Any, headers: dict[str, str] | None = None) -> list[tuple[Any, Any, Any]]:
    """(type, key, data) per event, as the intake derives them."""
    source = SourceSpec.model_validate({"preset": preset, "secret": "s"})
    found = []
    for item in items_of(source, parsed):
        derived = derive(Renderer(), source, item, headers or {}, {})
        found.append((derived.type, derived.key, derived.data))
    return found


class TestTypeform:
    def test_answers_become_fields_by_ref_with_hidden_fields(self) -> None:
        ((event_type, key, data),) = events_of("typeform", example("typeform.json"))
        assert (event_type, key) == ("form.submitted", "01HZX4P7Q8TYPEFORM0001")
        assert data == {
            "utm_source": "google",
            "branch": "north",
            "name": "Jane Jones",
            "email": "jane.jones@example.com",
            "phone": "+447700900123",
            "postcode": "SW1A 1AA",
            "service": "Leak",
            "extras": ["Gutters", "Drains", "Roof tiles"],
            "preferred_date": "2026-12-01",
            "message": "Water coming through the kitchen ceiling {{ not a template }}",
            "bedrooms": 3,
            "consent": True,
        }

    def test_a_partial_response_has_its_own_type(self) -> None:
        body = {**example("typeform.json"), "event_type": "form_response_partial"}
        assert events_of("typeform", body)[0][0] == "form.partial"

    def test_an_answer_type_not_known_yet_keeps_its_value_and_a_field_without_ref_uses_its_id(self) -> None:
        body = example("typeform.json")
        body["form_response"]["answers"] = [
            {"type": "payment", "payment": {"amount": "10.00"}, "field": {"id": "pay1", "type": "payment"}},
            {"type": "ranking", "rank": [1, 2], "field": {"id": "r1", "ref": "ranked"}},
        ]
        assert events_of("typeform", body)[0][2] == {
            "utm_source": "google",
            "branch": "north",
            "pay1": {"amount": "10.00"},
            "ranked": {"rank": [1, 2]},
        }

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            ({"event_id": "e"}, "form_response is not a JSON object"),
            ({"event_id": "e", "form_response": {"answers": [{"type": "text"}]}}, "an answer has no field"),
            ({"event_id": "e", "form_response": {"answers": [{"type": "text", "field": {}}]}}, "neither ref nor id"),
            (["not", "an", "object"], "the body is not a JSON object"),
        ],
    )
    def test_a_body_not_shaped_like_typeforms_is_refused(self, body: Any, message: str) -> None:
        with pytest.raises((PayloadError, EventKeyError), match=message):
            events_of("typeform", body)

    def test_a_delivery_without_event_id_cannot_be_keyed(self) -> None:
        body = example("typeform.json")
        del body["event_id"]
        with pytest.raises(EventKeyError, match="typeform delivery has no event_id"):
            events_of("typeform", body)


class TestJotform:
    def parsed(self) -> Any:
        return parse_body(JOTFORM_TYPE, (EXAMPLES / "jotform.multipart").read_bytes())

    def test_raw_request_questions_become_fields_by_unique_name(self) -> None:
        ((event_type, key, data),) = events_of("jotform", self.parsed())
        assert (event_type, key) == ("form.submitted", "6012345678901234567")
        assert data == {
            "fullName": {"first": "Jane", "last": "Jones"},
            "email": "jane.jones@example.com",
            "phoneNumber": {"full": "(020) 7946 0018"},
            "address": {
                "addr_line1": "1 Acacia Avenue",
                "addr_line2": "",
                "city": "London",
                "state": "",
                "postal": "SW1A 1AA",
                "country": "United Kingdom",
            },
            "preferredDate": {"month": "12", "day": "01", "year": "2026"},
            "whatDo": ["Boiler service", "Leak"],
            "tellUs": "Drip from the ceiling — since Tuesday",
        }

    def test_the_item_keeps_the_parts_with_raw_request_decoded(self) -> None:
        (item,) = PRESETS["jotform"].items(self.parsed())
        assert item["formTitle"] == "Book an engineer"
        assert item["rawRequest"]["slug"] == "submit/243261234567890/"

    def test_a_preview_submission_is_typed_apart(self) -> None:
        parsed = self.parsed()
        raw = json.loads(parsed["rawRequest"])
        parsed["rawRequest"] = json.dumps({**raw, "preview": "true"})
        assert events_of("jotform", parsed)[0][0] == "form.preview"

    @pytest.mark.parametrize(
        ("parts", "message"),
        [
            ({"submissionID": "1"}, "no rawRequest part"),
            ({"submissionID": "1", "rawRequest": "{not json"}, "rawRequest is not JSON"),
            ({"submissionID": "1", "rawRequest": "[1]"}, "rawRequest is not a JSON object"),
        ],
    )
    def test_a_form_without_a_usable_raw_request_is_refused(self, parts: dict[str, str], message: str) -> None:
        with pytest.raises(EventKeyError, match=message):
            events_of("jotform", parts)


class TestWebflow:
    def test_form_data_is_already_fields_by_name(self) -> None:
        ((event_type, key, data),) = events_of("webflow", example("webflow.json"))
        assert (event_type, key) == ("form.submitted", "6321ca84df3949bfc6752327")
        assert data["First Name"] == "Zaphod" and data["Bedrooms"] == 2

    def test_other_triggers_keep_their_type_and_payload(self) -> None:
        body = {"triggerType": "site_publish", "payload": {"domains": ["example.webflow.io"]}}
        ((event_type, key, data),) = events_of("webflow", body)
        assert (event_type, key, data) == ("site_publish", None, {"domains": ["example.webflow.io"]})

    def test_a_body_without_payload_is_refused(self) -> None:
        with pytest.raises(EventKeyError, match="payload is not a JSON object"):
            events_of("webflow", {"triggerType": "form_submission"})


class TestGravityForms:
    def test_an_entry_loses_its_meta_keys_and_keeps_field_ids(self) -> None:
        ((event_type, key, data),) = events_of("gravityforms", example("gravityforms-entry.json"))
        assert (event_type, key) == ("form.submitted", "3:1842")
        assert data["1.3"] == "Mary" and data["4.5"] == "LS1 4AP" and data["6"] == "Please call after 5pm"
        assert not {"id", "form_id", "ip", "user_agent", "status"} & set(data)

    def test_select_fields_keeps_the_authors_keys_and_has_no_id(self) -> None:
        ((_, key, data),) = events_of("gravityforms", {"email": "a@b.c", "id": "not-an-entry"})
        assert (key, data) == (None, {"email": "a@b.c", "id": "not-an-entry"})


class TestZapier:
    def test_form_values_arrive_flat_and_an_id_field_keys_the_event(self) -> None:
        parsed = parse_body("application/x-www-form-urlencoded", (EXAMPLES / "zapier-form.txt").read_bytes())
        ((event_type, key, data),) = events_of("zapier", parsed)
        assert (event_type, key) == ("zapier.request", "zap-7741")
        assert data["bedrooms"] == "4" and data["email"] == "ray.brown@example.com"

    def test_every_request_is_a_zapier_request_whatever_its_fields_say(self) -> None:
        assert [t for t, _, _ in events_of("zapier", {"type": "residential", "event": "x"})] == ["zapier.request"]

    def test_the_sources_own_event_type_wins(self) -> None:
        source = SourceSpec.model_validate({"preset": "zapier", "secret": "s", "event_type": "{{ body.event }}"})
        assert derive(Renderer(), source, {"event": "lead.created"}, {}, {}).type == "lead.created"

    def test_an_idempotency_key_header_wins_and_nothing_means_the_body_digest(self) -> None:
        assert events_of("zapier", {"id": 1}, {"idempotency-key": "k-1"})[0][1] == "k-1"
        assert events_of("zapier", {"name": "x"})[0][1] is None


class TestXero:
    def test_a_batch_is_one_event_per_change_keyed_by_its_identity(self) -> None:
        found = events_of("xero", example("xero.json"))
        assert [(t, k) for t, k, _ in found] == [
            (
                "xero.contact.update",
                "c2cc9b6e-9458-4c7d-93cc-f02b81b0594f:CONTACT:717f2bfc-c6d4-41fd-b238-3f2f0c0cf777:UPDATE:"
                "2026-11-22T06:58:40.713",
            ),
            (
                "xero.invoice.create",
                "c2cc9b6e-9458-4c7d-93cc-f02b81b0594f:INVOICE:1b7a1f45-6e5c-4c0c-a1a0-0b5f1d3a4e21:CREATE:"
                "2026-11-22T06:58:41.102",
            ),
        ]
        assert found[1][2]["eventType"] == "CREATE"  # "Create" in the delivery: one spelling for workflows

    def test_intent_to_receive_carries_no_event(self) -> None:
        assert PRESETS["xero"].items(example("xero-intent-to-receive.json")) == []

    def test_wrap_makes_one_element_a_delivery_of_its_own(self) -> None:
        first = example("xero.json")["events"][0]
        assert PRESETS["xero"].items(PRESETS["xero"].wrap(first)) == [first]

    @pytest.mark.parametrize(("body", "message"), [({}, "no events list"), ({"events": [1]}, "an event is not")])
    def test_malformed(self, body: Any, message: str) -> None:
        with pytest.raises(PayloadError, match=message):
            PRESETS["xero"].items(body)


class TestQuickBooks:
    def test_legacy_notifications_split_per_entity_with_their_realm(self) -> None:
        found = events_of("quickbooks", example("quickbooks-legacy.json"))
        assert [t for t, _, _ in found] == [
            "qbo.customer.created",
            "qbo.customer.updated",
            "qbo.invoice.voided",
            "qbo.customer.merged",
        ]
        assert found[0][1] == "1185883450:Customer:1:Create:2026-11-22T14:42:19-0800"
        assert found[3][2] == {
            "realm_id": "4620816365179024940",
            "entity": "customer",
            "entity_id": "7",
            "operation": "merged",
            "occurred_at": "2026-11-22T14:45:00-0800",
            "deleted_id": "9",
        }

    def test_cloudevents_normalise_to_the_same_shape(self) -> None:
        found = events_of("quickbooks", example("quickbooks-cloudevents.json"))
        assert [(t, k) for t, k, _ in found] == [
            ("qbo.customer.updated", "88cd52a2-7ed9-4c4e-9d5f-d1ce1b5b1a2f"),
            ("qbo.invoice.created", "2c1f6a2e-37a4-4f7e-8d49-0f0a7a3a9b11"),
        ]
        assert found[0][2] == {
            "realm_id": "1185883450",
            "entity": "customer",
            "entity_id": "58",
            "operation": "updated",
            "occurred_at": "2026-11-22T22:43:01.000Z",
        }

    @pytest.mark.parametrize("name", ["quickbooks-legacy.json", "quickbooks-cloudevents.json"])
    def test_wrap_makes_each_element_a_delivery_of_its_own_format(self, name: str) -> None:
        preset = PRESETS["quickbooks"]
        for item in preset.items(example(name)):
            assert preset.items(preset.wrap(item)) == [item]

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            ({"something": "else"}, "neither a CloudEvents array nor has eventNotifications"),
            ({"eventNotifications": [{"realmId": "1"}]}, "dataChangeEvent is not a JSON object"),
            ({"eventNotifications": [{"realmId": "1", "dataChangeEvent": {}}]}, "has no entities list"),
            ({"eventNotifications": [{"dataChangeEvent": {"entities": []}}]}, "has no realmId"),
            ([1], "a CloudEvent is not a JSON object"),
        ],
    )
    def test_malformed_deliveries(self, body: Any, message: str) -> None:
        with pytest.raises(PayloadError, match=message):
            PRESETS["quickbooks"].items(body)

    def test_an_element_missing_its_fields_cannot_be_keyed(self) -> None:
        with pytest.raises(EventKeyError, match="quickbooks delivery has no operation"):
            events_of("quickbooks", {"eventNotifications": [{"realmId": "1", "dataChangeEvent": {"entities": [{}]}}]})
        with pytest.raises(EventKeyError, match=r"is not qbo\.<entity>\.<operation>"):
            events_of("quickbooks", [{"specversion": "1.0", "id": "x", "type": "ping"}])


def test_templates_in_sources_yaml_win_over_the_presets_defaults() -> None:
    source = SourceSpec.model_validate(
        {"preset": "typeform", "secret": "s", "event_type": "enquiry", "event_id": "{{ body.form_response.token }}"}
    )
    assert identify(Renderer(), source, example("typeform.json"), {}, {}) == (
        "enquiry",
        "a3a12ec67a1365927098a606107fac15",
    )
