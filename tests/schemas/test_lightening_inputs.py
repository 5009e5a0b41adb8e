"""Lightening input models carry every documented limit (shared/api-docs/lightening-contacts.txt).

A value outside a limit fails validation naming the field, before any request is sent.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from schemas import lightening as m

WRITES = [m.ContactCreate, m.ContactUpdate]


def valid(model: type[BaseModel], **fields: Any) -> dict[str, Any]:
    base = {"name": "Priya Patel"} | ({"id": 7} if model is m.ContactUpdate else {})
    return model.model_validate(base | fields).model_dump(exclude_none=True)


def refused(model: type[BaseModel], **fields: Any) -> str:
    base = {"name": "Priya Patel"} | ({"id": 7} if model is m.ContactUpdate else {})
    with pytest.raises(ValidationError) as caught:
        model.model_validate(base | fields)
    return ".".join(str(part) for part in caught.value.errors()[0]["loc"]) + ": " + caught.value.errors()[0]["msg"]


@pytest.mark.parametrize("model", WRITES)
def test_name_is_required_and_at_most_64_characters(model: type[BaseModel]) -> None:
    assert valid(model, name="x" * 64)["name"] == "x" * 64
    assert refused(model, name="x" * 65).startswith("name:")
    assert refused(model, name="").startswith("name:")
    with pytest.raises(ValidationError, match="name"):
        model.model_validate({"id": 7})


@pytest.mark.parametrize("model", WRITES)
@pytest.mark.parametrize(
    ("field", "limit"),
    [("email", 191), ("tel", 32), ("tel1", 32), ("fax", 32), ("mobile", 32), ("role", 32), ("department", 64)],
)
def test_text_fields_have_their_documented_maximum(model: type[BaseModel], field: str, limit: int) -> None:
    text = "a" * (limit - len("@b.co")) + "@b.co" if field == "email" else "a" * limit
    assert valid(model, **{field: text})[field] == text
    assert refused(model, **{field: text + "a"}).startswith(f"{field}:")


@pytest.mark.parametrize("model", WRITES)
def test_customer_custom_identifier_is_at_most_16_characters(model: type[BaseModel]) -> None:
    assert valid(model, customer_custom_identifier="x" * 16)
    assert refused(model, customer_custom_identifier="x" * 17).startswith("customer_custom_identifier:")


@pytest.mark.parametrize("email", ["priya@acme.example", "p.p+tag@sub.acme.co.uk", ""])
def test_email_accepts_addresses_and_an_empty_value(email: str) -> None:
    assert valid(m.ContactCreate, email=email)["email"] == email


@pytest.mark.parametrize("email", ["priya", "priya@acme", "pri ya@acme.example", "@acme.example"])
def test_email_must_look_like_an_address(email: str) -> None:
    assert refused(m.ContactCreate, email=email).startswith("email:")


@pytest.mark.parametrize("model", WRITES)
def test_portal_password_is_8_to_32_characters(model: type[BaseModel]) -> None:
    assert valid(model, portal_password="x" * 8) and valid(model, portal_password="x" * 32)
    assert refused(model, portal_password="x" * 7).startswith("portal_password:")
    assert refused(model, portal_password="x" * 33).startswith("portal_password:")


@pytest.mark.parametrize("field", ["is_active", "portal_active", "milestone"])
@pytest.mark.parametrize(("given", "sent"), [(1, 1), (0, 0), (True, 1), (False, 0), ("1", 1), ("0", 0), (" 1 ", 1)])
def test_booleans_are_sent_as_1_or_0(field: str, given: Any, sent: int) -> None:
    assert valid(m.ContactCreate, **{field: given})[field] == sent


@pytest.mark.parametrize("field", ["is_active", "portal_active", "milestone"])
@pytest.mark.parametrize("given", [2, -1, "yes", "true", 0.5])
def test_other_boolean_values_are_refused(field: str, given: Any) -> None:
    assert refused(m.ContactCreate, **{field: given}).startswith(f"{field}:")


@pytest.mark.parametrize("model", WRITES)
def test_customer_portal_profile_id_is_an_unsigned_32_bit_integer(model: type[BaseModel]) -> None:
    assert valid(model, customer_portal_profile_id=0) and valid(model, customer_portal_profile_id=4_294_967_295)
    assert refused(model, customer_portal_profile_id=-1).startswith("customer_portal_profile_id:")
    assert refused(model, customer_portal_profile_id=4_294_967_296).startswith("customer_portal_profile_id:")


def test_cost_center_id_is_an_integer() -> None:
    assert valid(m.ContactCreate, cost_center_id="12")["cost_center_id"] == 12
    assert refused(m.ContactCreate, cost_center_id="twelve").startswith("cost_center_id:")


def test_locale_defaults_to_en_us_on_create_but_not_on_update() -> None:
    assert valid(m.ContactCreate)["locale"] == "en_US"
    assert "locale" not in valid(m.ContactUpdate)


@pytest.mark.parametrize("model", WRITES)
@pytest.mark.parametrize("locale", ["en_GB", "de", "fil_PH"])
def test_locale_takes_language_and_territory(model: type[BaseModel], locale: str) -> None:
    assert valid(model, locale=locale)["locale"] == locale


@pytest.mark.parametrize("locale", ["english", "en-GB", "EN_gb", ""])
def test_an_invalid_locale_is_refused(locale: str) -> None:
    assert refused(m.ContactCreate, locale=locale).startswith("locale:")


@pytest.mark.parametrize("model", WRITES)
def test_create_method_is_not_allowed_and_the_message_says_so(model: type[BaseModel]) -> None:
    assert "create_method is not allowed: Lightening sets it itself" in refused(model, create_method="api")


@pytest.mark.parametrize("model", [*WRITES, m.ContactGet, m.ContactDelete, m.ContactList])
def test_unknown_fields_are_refused(model: type[BaseModel]) -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        model.model_validate({"name": "P", "id": 1, "customer_id": [1], "nmae": "typo"})


@pytest.mark.parametrize("model", [m.ContactUpdate, m.ContactGet, m.ContactDelete])
@pytest.mark.parametrize("ident", [0, -3, "abc"])
def test_contact_ids_are_positive_integers(model: type[BaseModel], ident: Any) -> None:
    with pytest.raises(ValidationError, match="id"):
        model.model_validate({"id": ident, "name": "P"} if model is m.ContactUpdate else {"id": ident})


def test_a_string_id_from_an_earlier_answer_chains() -> None:
    assert m.ContactGet.model_validate({"id": "17"}).id == 17


def test_customer_id_on_create_is_optional_and_positive() -> None:
    assert "customer_id" not in valid(m.ContactCreate)
    assert valid(m.ContactCreate, customer_id="3")["customer_id"] == 3
    assert refused(m.ContactCreate, customer_id=0).startswith("customer_id:")


def test_list_needs_at_least_one_customer_id_and_takes_one_or_many() -> None:
    assert m.ContactList.model_validate({"customer_id": 3}).customer_id == [3]
    assert m.ContactList.model_validate({"customer_id": ["3", 4]}).customer_id == [3, 4]
    for bad in ([], [0], None):
        with pytest.raises(ValidationError, match="customer_id"):
            m.ContactList.model_validate({"customer_id": bad})
    with pytest.raises(ValidationError, match="customer_id"):
        m.ContactList.model_validate({})


@pytest.mark.parametrize("model", [m.ContactCreate, m.ContactUpdate])
def test_the_generated_docs_say_create_method_is_not_allowed(model: type[BaseModel]) -> None:
    # docs/connectors/lightening.md is rendered from these docstrings (flask connectors docs).
    assert "`create_method` is not allowed" in (model.__doc__ or "")
