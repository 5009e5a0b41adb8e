"""Input models for contacts, site access hours and contact groups (bigchange-vh3-contacts.txt)."""

from __future__ import annotations

import re
from itertools import pairwise
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from schemas.bigchange.common import CustomField, Direction, Id, In, Location, Paged, Window, option
from schemas.bigchange.filters import id_list, text_list

StopStatus = Literal["contactOnStop", "creditLimitOnStop"]
AppliesTo = Literal["contactOnly", "contactAndChildren"]
ContactStatus = Literal["normal", "contactOnStop", "creditLimitOnStop"]
DayOfWeek = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
_HH_MM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def _lower(value: Any) -> Any:
    """Days arrive from forms as "Monday"; the API spells them "monday"."""
    return value.strip().lower() if isinstance(value, str) else value


def _hh_mm(value: Any) -> Any:
    if not isinstance(value, str) or not _HH_MM.match(value):
        raise ValueError(f"{value!r} is not a 24-hour HH:MM time such as 08:00 or 17:30")
    return value


HhMm = Annotated[str, BeforeValidator(_hh_mm), Field(description="24-hour HH:MM, e.g. 08:00.")]


class ContactGet(In):
    contactId: Id


class _ContactFields(In):
    reference: str | None = Field(None, max_length=100, description="Natural key used to reconcile creates.")
    groupId: Id | None = None
    parentId: Id | None = None
    location: Location | None = None
    street: str | None = None
    town: str | None = None
    postalCode: str | None = None
    country: str | None = None
    extraInformation: str | None = None
    customFields: list[CustomField] | None = None


class ContactCreate(_ContactFields):
    """With `upsert: true` the contact with the same `reference` is looked up first and returned
    (`created: false`) instead of adding another; otherwise the output has `created: true`."""

    name: str = Field(min_length=1, max_length=100)
    upsert: bool = option(False, "find the contact by reference first; create it only when there is none")

    @model_validator(mode="after")
    def _upsert_needs_a_reference(self) -> ContactCreate:
        if self.upsert and not self.reference:
            raise ValueError("upsert: true needs a reference to look the contact up by")
        return self


class ContactEdit(_ContactFields):
    contactId: Id
    name: str | None = Field(None, min_length=1, max_length=100)


# Filters documented only by VH3's client, as arrays; one value or (for ids) comma-separated text also do.
Ids = id_list(Id)
References = text_list(str)


class ContactList(Window):
    """`createdAtFrom` alone is an open window; with `createdAtTo` too the 12-month rule applies.
    The `reference`, `id`, `parentId` and `groupId` filters take one value or a list (ids also
    comma-separated text) and are sent as arrays."""

    sortBy: Literal["createdAt", "name"] | None = None
    direction: Direction | None = None
    name: str | None = Field(None, description="Starts-with match.")
    reference: References | None = None
    id: Ids | None = None
    parentId: Ids | None = None
    groupId: Ids | None = None
    status: ContactStatus | None = None


class ContactOnStop(In):
    contactId: Id
    status: StopStatus
    stopReason: str | None = None
    appliesTo: AppliesTo | None = None


class ContactUnstop(In):
    contactId: Id
    appliesTo: AppliesTo = "contactOnly"


class SiteAccessHoursList(Paged):
    contactId: Id


class AccessHours(In):
    dayOfWeek: Annotated[DayOfWeek, BeforeValidator(_lower)]
    startTime: HhMm
    endTime: HhMm

    @model_validator(mode="after")
    def _ends_after_it_starts(self) -> AccessHours:
        if self.endTime <= self.startTime:  # zero-padded HH:MM compares correctly as text
            raise ValueError(f"{self.dayOfWeek}: endTime {self.endTime} is not after startTime {self.startTime}")
        return self


class SiteAccessHoursUpdate(In):
    """Replaces the contact's access hours with `body` (an empty list clears them). Each period is
    `{dayOfWeek: monday…sunday (any case), startTime, endTime}` with 24-hour HH:MM times, ending
    after it starts; periods on the same day must not overlap; days left out have no access."""

    contactId: Id
    body: list[AccessHours] = Field(max_length=70)

    @model_validator(mode="after")
    def _no_overlaps(self) -> SiteAccessHoursUpdate:
        by_day = sorted(self.body, key=lambda hours: (hours.dayOfWeek, hours.startTime))
        for earlier, later in pairwise(by_day):
            if earlier.dayOfWeek == later.dayOfWeek and later.startTime < earlier.endTime:
                raise ValueError(
                    f"{later.dayOfWeek}: {earlier.startTime}-{earlier.endTime} overlaps "
                    f"{later.startTime}-{later.endTime}"
                )
        return self


class ContactGroupGet(In):
    contactGroupId: Id


class ContactGroupCreate(In):
    """With `upsert: true` a group with the same name (ignoring case and surrounding spaces) is
    returned (`created: false`) instead of adding another; otherwise the output has `created: true`."""

    name: str = Field(min_length=1, max_length=100)
    upsert: bool = option(False, "find the group by name first; create it only when there is none")


class ContactGroupList(Paged):
    pass


class ContactGroupUpdate(In):
    contactGroupId: Id
    name: str = Field(min_length=1, max_length=100)
