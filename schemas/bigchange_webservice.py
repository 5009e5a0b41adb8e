"""Input model for the legacy BigChange web service's ContactSave (services.ashx?action=ContactSave).

Source: shared/api-docs/bigchange-webservice-contactsave.txt (parameter names,
String(n) limits) and shared/reference/bigchange-api.md §5. Field names are the
docs' own (`ContactName`), so a workflow's `with` reads like the docs' table.
Limits the docs give as String(n) are enforced here, so an over-long value is a
validation error naming the field rather than a truncation on BigChange's side.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import phonenumbers
from pydantic import BaseModel, ConfigDict, Field, model_validator

CUSTOM_PREFIX = "cust_"
_WHAT3WORDS = re.compile(r"^(///)?[^\W\d_]+\.[^\W\d_]+\.[^\W\d_]+$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

Id = Annotated[int, Field(ge=1)]
Flag = Literal[0, 1]


def text(limit: int | None = None, description: str | None = None) -> Any:
    """An optional String(limit) parameter."""
    return Field(None, min_length=1, max_length=limit, description=description)


def international_phone(value: str, region: str) -> str:
    """`value` as BigChange wants it: international format, no spaces ("07932 883112" -> "+447932883112").

    A number without + or 00 is read as a national number of `region` (ISO 3166
    two letters, e.g. GB).

    Raises:
        ValueError: the region is unknown, or the value is not a valid phone number.
    """
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"phone_region {region!r} is not a region code; use two letters such as GB or IE")
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        raise ValueError(
            f"ContactPhone {value!r} is not a valid phone number; give it in international format such as "
            f"+447932883112 (a number without +country code is read as a {region} number)"
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


class ContactSave(BaseModel):
    """Adds a contact, or updates one (by `ContactId`, or by `ContactReference` with
    `ContactReplaceSameRef: 1`). Output: `{id}` of the saved contact. Custom fields are given
    as `custom: {Caption: value}` or as `cust_Caption: value`; both are sent as `cust_Caption`."""

    # `cust_<caption>` keys are gathered into `custom` (below); the pattern tells editors they are allowed.
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={"patternProperties": {f"^{CUSTOM_PREFIX}": {"type": ["string", "number", "boolean"]}}},
    )

    ContactName: str = Field(min_length=1, max_length=50)
    ContactGroup: str | None = text(50, "Created if it does not exist; default 'Imported Contacts'.")
    ContactParentReference: str | None = text(40)
    ContactParentId: Id | None = None
    ContactReference: str | None = text(40, "Natural key used to reconcile saves.")
    ContactId: Id | None = Field(None, description="Updates this contact instead of adding one.")
    ContactStreet: str | None = text(100, "Required unless ContactLat and ContactLng are given.")
    ContactPostcode: str | None = text(10)
    ContactTown: str | None = text(100)
    ContactCountry: str | None = text(50)
    ContactLat: float | None = Field(None, ge=-90, le=90, description="Required (with ContactLng) without a street.")
    ContactLng: float | None = Field(None, ge=-180, le=180, description="Required (with ContactLat) without a street.")
    ContactRadiusMeter: int | None = Field(None, ge=0, description="Radius of the circular geofence, metres.")
    ContactPerson: str | None = text(30)
    ContactPhone: str | None = text(30, "Sent in international format without spaces, e.g. +447954012012.")
    ContactEmail: str | None = Field(None, max_length=100, pattern=_EMAIL.pattern)
    ContactExtra: str | None = text(255)
    ContactReplaceSameRef: Flag | None = Field(None, description="1: replace the contact with the same reference.")
    ContactFirstName: str | None = text()
    ContactLastName: str | None = text()
    ContactAccountReference: str | None = text()
    ContactAccountType: int | None = None
    ContactExtraUpdate: Flag | None = None
    CreditLimit: float | None = Field(None, ge=0)
    CreditLimitCurrency: str | None = Field(None, pattern=r"^[A-Za-z]{3}$", description="ISO 4217, e.g. GBP.")
    ContactExtraDelay2Pay: int | None = Field(None, ge=-32768, le=32767, description="A short integer.")
    ContactOnStop: Literal[0, 1, 2] | None = Field(None, description="0 none, 1 on stop, 2 credit limit on stop.")
    ContactOnStopDescendant: bool | None = Field(None, description="true applies the stop to child contacts.")
    ContactOnStopReason: str | None = text()
    ContactWhat3Words: str | None = Field(None, pattern=_WHAT3WORDS.pattern, description="e.g. ///filled.count.soap")
    ContactPolygonUpdate: bool | None = None
    custom: dict[str, str | int | float | bool] | None = Field(
        None, description="Custom fields by caption (each must exist in BigChange); sent as cust_<caption>."
    )
    phone_region: str = Field(
        "GB",
        pattern=r"^[A-Z]{2}$",
        description="Hookflow option, not sent: the country of a ContactPhone written without +country code.",
    )

    @model_validator(mode="before")
    @classmethod
    def _gather_custom_fields(cls, data: Any) -> Any:
        """Accept the docs' own `cust_<caption>` spelling alongside `custom:`."""
        if not isinstance(data, dict) or not any(str(key).startswith(CUSTOM_PREFIX) for key in data):
            return data
        rest = {key: value for key, value in data.items() if not str(key).startswith(CUSTOM_PREFIX)}
        custom = dict(rest.get("custom") or {})
        for key, value in data.items():
            if str(key).startswith(CUSTOM_PREFIX):
                custom[str(key)[len(CUSTOM_PREFIX) :]] = value
        return {**rest, "custom": custom}

    @model_validator(mode="after")
    def _documented_rules(self) -> ContactSave:
        has_lat, has_lng = self.ContactLat is not None, self.ContactLng is not None
        if has_lat != has_lng:
            raise ValueError("ContactLat and ContactLng go together: give both or neither")
        if not self.ContactStreet and not has_lat:
            raise ValueError("give ContactStreet, or ContactLat and ContactLng (BigChange needs one or the other)")
        if self.custom:
            if not self.ContactGroup:
                raise ValueError("custom fields need ContactGroup (BigChange requires it with custom fields)")
            blank = [caption for caption in self.custom if not caption.strip()]
            if blank:
                raise ValueError("a custom field needs its caption: write cust_<Caption> or custom: {Caption: value}")
        if self.ContactPhone is not None:
            international_phone(self.ContactPhone, self.phone_region)
        return self

    def query(self) -> dict[str, str]:
        """The query parameters ContactSave receives (after `action`), as the docs spell them."""
        values = self.model_dump(exclude_none=True, exclude={"custom", "phone_region"})
        if "ContactPhone" in values:
            values["ContactPhone"] = international_phone(values["ContactPhone"], self.phone_region)
        params = {name: _wire(value) for name, value in values.items()}
        for caption, value in (self.custom or {}).items():
            params[CUSTOM_PREFIX + caption] = _wire(value)
        return params


def _wire(value: Any) -> str:
    """Query-string text: booleans as true/false (.NET's reading), integral numbers without a .0."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
