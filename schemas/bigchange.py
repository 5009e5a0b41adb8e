"""Input models for BigChange vh3 operations, field names exactly as the docs spell them.

Source: shared/api-docs/bigchange-vh3-contacts.txt, bigchange-vh3-jobs.txt, and
the field lists in shared/reference/bigchange-api.md §2.8 (VH3's own client).
Unknown fields are refused so a misspelt `contactID` fails validation instead of
being dropped on the way to the API.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, model_validator

Id = Annotated[int, Field(ge=1)]
PageSize = Annotated[int, Field(ge=1, le=1000, description="Items per page; BigChange's maximum is 1000.")]
PageNumber = Annotated[int, Field(ge=1, description="1-based page index.")]
Direction = Literal["ascending", "descending"]
StopStatus = Literal["contactOnStop", "creditLimitOnStop"]
AppliesTo = Literal["contactOnly", "contactAndChildren"]
# Job status values, from VH3's tool guide §5 (shared/reference/bigchange-api.md §2.8).
JobStatus = Literal[
    "new",
    "read",
    "accepted",
    "refused",
    "scheduled",
    "unscheduled",
    "rescheduled",
    "onTheWay",
    "started",
    "lateStart",
    "lateFinish",
    "completedOk",
    "completedWithIssues",
    "cancelled",
    "suspended",
    "sent",
]
ConstraintType = Literal[
    "jobMustStartAfter",
    "jobMustStartBefore",
    "jobMustCompleteBefore",
    "jobMustStartInAvailableHours",
    "jobMustCompleteInAvailableHours",
    "jobResource",
    "jobResourceGroup",
    "jobVehicle",
    "jobVehicleGroup",
    "jobRequiresResourceSkill",
    "jobRequiresVehicleAttribute",
]
DATED_CONSTRAINTS = {"jobMustStartAfter", "jobMustStartBefore", "jobMustCompleteBefore"}
ENTITY_CONSTRAINTS = {
    "jobResource",
    "jobResourceGroup",
    "jobVehicle",
    "jobVehicleGroup",
    "jobRequiresResourceSkill",
    "jobRequiresVehicleAttribute",
}


def parse_utc(value: Any) -> datetime:
    """ISO 8601 with an explicit offset, converted to UTC. Naive times are refused: whose clock?"""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO 8601 date-time such as 2026-04-20T09:00:00Z") from None
    if not isinstance(value, datetime):
        raise ValueError("expected an ISO 8601 UTC date-time such as 2026-04-20T09:00:00Z")
    if value.tzinfo is None:
        raise ValueError(f"{value.isoformat()} has no timezone; BigChange wants UTC, e.g. append Z")
    return value.astimezone(timezone.utc)


UtcDateTime = Annotated[
    datetime,
    BeforeValidator(parse_utc),
    # BigChange's strict format: seconds precision, Z suffix (reference notes §2.5).
    PlainSerializer(lambda v: v.strftime("%Y-%m-%dT%H:%M:%SZ"), return_type=str),
]


def months_apart(start: datetime, end: datetime) -> bool:
    """True when `end` is more than twelve calendar months after `start`."""
    try:
        limit = start.replace(year=start.year + 1)
    except ValueError:  # 29 February: a year later has no such day
        limit = start.replace(year=start.year + 1, day=28)
    return end > limit


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Location(_In):
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)


class CustomField(_In):
    definitionId: Id
    value: Any


class ContactGet(_In):
    contactId: Id


class _ContactFields(_In):
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
    name: str = Field(min_length=1, max_length=100)


class ContactEdit(_ContactFields):
    contactId: Id
    name: str | None = Field(None, min_length=1, max_length=100)


class _Window(_In):
    createdAtFrom: UtcDateTime | None = None
    createdAtTo: UtcDateTime | None = None

    @model_validator(mode="after")
    def _twelve_months(self) -> _Window:
        if self.createdAtFrom and self.createdAtTo:
            if self.createdAtTo < self.createdAtFrom:
                raise ValueError("createdAtTo is before createdAtFrom")
            if months_apart(self.createdAtFrom, self.createdAtTo):
                raise ValueError("createdAtFrom and createdAtTo are more than 12 months apart; BigChange allows 12")
        return self


class ContactList(_Window):
    pageNumber: PageNumber | None = None
    pageSize: PageSize | None = None
    sortBy: Literal["createdAt", "name"] | None = None
    direction: Direction | None = None
    name: str | None = Field(None, description="Starts-with match.")
    reference: list[str] | None = Field(None, max_length=50)
    id: list[Id] | None = Field(None, max_length=50)
    parentId: list[Id] | None = Field(None, max_length=50)
    groupId: list[Id] | None = Field(None, max_length=50)
    status: Literal["normal", "contactOnStop", "creditLimitOnStop"] | None = None


class ContactOnStop(_In):
    contactId: Id
    status: StopStatus
    stopReason: str | None = None
    appliesTo: AppliesTo | None = None


class ContactUnstop(_In):
    contactId: Id
    appliesTo: AppliesTo = "contactOnly"


class JobGet(_In):
    jobId: Id


class JobCreate(_In):
    typeId: Id
    contactId: Id
    description: str | None = None
    reference: str | None = Field(None, max_length=100, description="Natural key used to reconcile creates.")
    plannedDuration: int | None = Field(None, ge=0, description="Minutes.")
    personId: str | None = Field(None, pattern=r"^[0-9a-fA-F-]{36}$")
    orderNumber: str | None = None
    jobGroupId: Id | None = None
    customFields: list[CustomField] | None = None


class JobList(_Window):
    createdAtFrom: UtcDateTime  # type: ignore[assignment]  # required here, optional for contacts
    createdAtTo: UtcDateTime  # type: ignore[assignment]
    pageNumber: PageNumber | None = None
    pageSize: PageSize | None = None
    direction: Direction | None = None
    contactId: list[Id] | None = Field(None, max_length=50)
    resourceId: list[Id] | None = Field(None, max_length=50)
    vehicleId: list[Id] | None = Field(None, max_length=50)
    typeId: list[Id] | None = Field(None, max_length=50)
    reference: list[str] | None = Field(None, max_length=50)
    status: list[JobStatus] | None = None


class JobScheduling(_In):
    jobId: Id
    resourceId: Id | None = None
    vehicleId: Id | None = None
    plannedStartAt: UtcDateTime | None = None


class ConstraintCreate(_In):
    """`type` is required although the docs' example omits it: a typeless constraint means nothing
    and the reference notes expect the real API to refuse it (decision recorded in docs/connectors/README.md)."""

    jobId: Id
    type: ConstraintType
    constraintAt: UtcDateTime | None = None
    entityId: Id | None = None

    @model_validator(mode="after")
    def _type_needs(self) -> ConstraintCreate:
        if self.type in DATED_CONSTRAINTS and self.constraintAt is None:
            raise ValueError(f"constraint type {self.type} needs constraintAt")
        if self.type in ENTITY_CONSTRAINTS and self.entityId is None:
            raise ValueError(f"constraint type {self.type} needs entityId")
        return self


class ConstraintList(_In):
    jobId: Id
    pageNumber: PageNumber | None = None
    pageSize: PageSize | None = None
