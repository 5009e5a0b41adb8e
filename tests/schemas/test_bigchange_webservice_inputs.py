"""ContactSave's input: the documented parameters, limits and rules (bigchange-webservice-contactsave.txt)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from schemas.bigchange_webservice import ContactSave

STREET = {"ContactName": "Lucy Margetts", "ContactStreet": "23 Maple Avenue"}


def refused(**data: Any) -> str:
    with pytest.raises(ValidationError) as raised:
        ContactSave.model_validate(data)
    return str(raised.value)


def query(**data: Any) -> dict[str, str]:
    return ContactSave.model_validate(data).query()


def test_the_docs_example_becomes_the_docs_query() -> None:
    sent = query(
        ContactName="Lucy Margetts",
        ContactGroup="Customer",
        ContactReference="IH-04",
        ContactStreet="23 Maple Avenue",
        ContactTown="Leicester",
        ContactPostcode="LE47QP",
        ContactPhone="+447932883112",
        ContactEmail="lucymargetts@outlook.com",
    )

    assert sent == {
        "ContactName": "Lucy Margetts",
        "ContactGroup": "Customer",
        "ContactReference": "IH-04",
        "ContactStreet": "23 Maple Avenue",
        "ContactPostcode": "LE47QP",
        "ContactTown": "Leicester",
        "ContactPhone": "+447932883112",
        "ContactEmail": "lucymargetts@outlook.com",
    }


@pytest.mark.parametrize(
    ("field", "limit"),
    [
        ("ContactName", 50),
        ("ContactGroup", 50),
        ("ContactParentReference", 40),
        ("ContactReference", 40),
        ("ContactStreet", 100),
        ("ContactPostcode", 10),
        ("ContactTown", 100),
        ("ContactCountry", 50),
        ("ContactPerson", 30),
        ("ContactEmail", 100),
        ("ContactExtra", 255),
    ],
)
def test_each_string_n_limit_is_enforced(field: str, limit: int) -> None:
    at_limit = "a@b.co".rjust(limit, "x") if field == "ContactEmail" else "x" * limit
    ContactSave.model_validate({**STREET, field: at_limit})

    message = refused(**{**STREET, field: at_limit + "x"})

    assert field in message and f"at most {limit} characters" in message


def test_contact_name_is_required() -> None:
    assert "ContactName\n  Field required" in refused(ContactStreet="23 Maple Avenue")


@pytest.mark.parametrize(
    "location",
    [{"ContactStreet": "1 High St"}, {"ContactLat": 52.6, "ContactLng": -1.1}, {"ContactLat": 0, "ContactLng": 0}],
)
def test_a_street_or_a_latitude_and_longitude_is_enough(location: dict[str, Any]) -> None:
    ContactSave.model_validate({"ContactName": "Acme", **location})


def test_without_street_or_coordinates_the_rule_is_quoted() -> None:
    assert "give ContactStreet, or ContactLat and ContactLng" in refused(ContactName="Acme", ContactTown="Leeds")


@pytest.mark.parametrize("half", [{"ContactLat": 52.6}, {"ContactLng": -1.1}])
def test_latitude_and_longitude_go_together(half: dict[str, Any]) -> None:
    assert "ContactLat and ContactLng go together" in refused(**STREET, **half)


@pytest.mark.parametrize(
    ("given", "region", "sent"),
    [
        ("07932 883112", "GB", "+447932883112"),
        ("+44 7932 883112", "GB", "+447932883112"),
        ("0044 (0)7932-883112", "GB", "+447932883112"),
        ("+447954012012", "GB", "+447954012012"),
        ("087 123 4567", "IE", "+353871234567"),
    ],
)
def test_phone_numbers_are_sent_international_without_spaces(given: str, region: str, sent: str) -> None:
    assert query(**STREET, ContactPhone=given, phone_region=region)["ContactPhone"] == sent


@pytest.mark.parametrize("bad", ["12", "not a number", "07932 88311"])
def test_a_phone_number_that_is_not_valid_is_refused_saying_what_to_send(bad: str) -> None:
    message = refused(**STREET, ContactPhone=bad)

    assert f"ContactPhone {bad!r} is not a valid phone number" in message
    assert "+447932883112" in message


def test_the_phone_region_must_be_a_region() -> None:
    assert "phone_region" in refused(**STREET, ContactPhone="07932 883112", phone_region="XX")


def test_custom_fields_by_caption_or_cust_prefix_are_sent_as_cust_caption() -> None:
    sent = query(**STREET, ContactGroup="Customer", custom={"Source": "web"}, **{"cust_Account manager": "Sam"})

    assert sent["cust_Source"] == "web"
    assert sent["cust_Account manager"] == "Sam"
    assert "custom" not in sent


def test_custom_fields_need_a_contact_group() -> None:
    assert "custom fields need ContactGroup" in refused(**STREET, cust_Source="web")


@pytest.mark.parametrize("value", [0, 1, 2])
def test_contact_on_stop_is_0_1_or_2(value: int) -> None:
    assert query(**STREET, ContactOnStop=value)["ContactOnStop"] == str(value)


def test_contact_on_stop_3_is_refused_naming_the_values() -> None:
    assert "Input should be 0, 1 or 2" in refused(**STREET, ContactOnStop=3)


@pytest.mark.parametrize(
    ("field", "bad"),
    [
        ("ContactRadiusMeter", "wide"),
        ("CreditLimit", "lots"),
        ("ContactExtraDelay2Pay", 40000),
        ("ContactWhat3Words", "not three words"),
        ("ContactEmail", "lucy at example"),
        ("ContactReplaceSameRef", 2),
        ("CreditLimitCurrency", "pounds"),
    ],
)
def test_typed_parameters_are_checked_before_sending(field: str, bad: Any) -> None:
    assert field in refused(**STREET, **{field: bad})


def test_booleans_and_numbers_are_written_as_the_web_service_reads_them() -> None:
    sent = query(
        **STREET,
        ContactOnStopDescendant=True,
        ContactPolygonUpdate=False,
        CreditLimit=5000,
        ContactLat=1.5,
        ContactLng=-1,
    )

    assert (sent["ContactOnStopDescendant"], sent["ContactPolygonUpdate"]) == ("true", "false")
    assert (sent["CreditLimit"], sent["ContactLat"], sent["ContactLng"]) == ("5000", "1.5", "-1")


def test_unknown_parameters_are_refused() -> None:
    assert "Extra inputs are not permitted" in refused(**STREET, ContactNmae="typo")
