"""Input models for Lightening contact operations, field names exactly as the docs spell them.

Source: shared/api-docs/lightening-contacts.txt ("Data requirements & limitations"),
with what it leaves open in shared/reference/lightening-api.md. Every documented limit
is enforced here, before a request is sent, so a bad value fails the step with the
field's name instead of an HTTP 200 that says `"result": false`.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

UINT32_MAX = 4_294_967_295
# Deliberately loose (local@domain.tld): the API's own rule is unpublished, and a stricter
# check here could refuse an address Lightening accepts. Empty means "no email".
EMAIL_PATTERN = r"^([^@\s]+@[^@\s]+\.[^@\s]+)?$"
# en_US, fr_FR, de, pt_BR ...: language, optionally _TERRITORY, as PHP/ICU locales are written.
LOCALE_PATTERN = r"^[a-z]{2,3}(_[A-Z]{2})?$"


def _flag(value: Any) -> Any:
    """Lightening booleans are 1 or 0; accept true/false and "1"/"0" (form posts) as those."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, str) and value.strip() in ("0", "1"):
        return int(value.strip())
    return value


Flag = Annotated[int, BeforeValidator(_flag), Field(ge=0, le=1, description="1 or 0 (true/false accepted).")]
ContactId = Annotated[int, Field(ge=1, description="The contact's internal id (`id` in list and create answers).")]
CustomerId = Annotated[int, Field(ge=1)]


def _one_or_many(value: Any) -> Any:
    """A single customer id is a list of one (a form or template often yields just one)."""
    return value if isinstance(value, list) else [value]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _ContactFields(_In):
    """The writable fields shared by create and update; `name` is required on both (per the docs)."""

    name: str = Field(min_length=1, max_length=64)
    is_active: Flag | None = None
    email: str | None = Field(None, max_length=191, pattern=EMAIL_PATTERN)
    tel: str | None = Field(None, max_length=32)
    tel1: str | None = Field(None, max_length=32)
    fax: str | None = Field(None, max_length=32)
    mobile: str | None = Field(None, max_length=32)
    role: str | None = Field(None, max_length=32)
    department: str | None = Field(None, max_length=64)
    customer_portal_profile_id: int | None = Field(None, ge=0, le=UINT32_MAX)
    portal_password: str | None = Field(None, min_length=8, max_length=32)
    portal_active: Flag | None = None
    milestone: Flag | None = None
    cost_center_id: int | None = None
    customer_custom_identifier: str | None = Field(None, max_length=16)

    @model_validator(mode="before")
    @classmethod
    def _no_create_method(cls, data: Any) -> Any:
        # Named explicitly: "extra inputs are not permitted" would not say that the API forbids it.
        if isinstance(data, dict) and "create_method" in data:
            raise ValueError("create_method is not allowed: Lightening sets it itself")
        return data


class _Customer(_In):
    customer_id: CustomerId | None = Field(
        None, description="UNCONFIRMED: the customer to file the contact under; needed to reconcile a retried create."
    )


class _Id(_In):
    id: ContactId


class ContactCreate(_ContactFields, _Customer):  # bases in this order put customer_id first in the docs
    """Adds a contact. `customer_id` is not in the documented create fields (UNCONFIRMED): it is sent
    only when given, and it is what lets a retried create find the contact an earlier attempt made.
    `create_method` is not allowed (the docs list it as "Not allowed"); giving it is a validation
    error."""

    locale: str = Field("en_US", pattern=LOCALE_PATTERN)


class ContactUpdate(_ContactFields, _Id):  # id first in the docs
    """Updates a contact (POST, not PUT). `locale` has no default here: sending en_US on every
    update would overwrite the locale the contact already has. `create_method` is not allowed, as
    on create; giving it is a validation error."""

    locale: str | None = Field(None, pattern=LOCALE_PATTERN)


class ContactGet(_Id):
    """Reads one contact by its internal id."""


class ContactDelete(_Id):
    """Deletes a contact. A retry after an unknown outcome first checks whether it is already gone."""


class ContactList(_In):
    """Lists the contacts of one or more customers; `customer_id` is required by the API."""

    customer_id: Annotated[list[CustomerId], BeforeValidator(_one_or_many)] = Field(
        min_length=1, description="One id or a list; encoded as LIGHTENING_ARRAY_ENCODING says."
    )
