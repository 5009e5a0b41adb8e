"""Input models for jobs, their constraints and their stock lines (bigchange-vh3-jobs.txt)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, PlainSerializer, model_validator

from schemas.bigchange.common import CustomField, Id, In, Paged, UtcDateTime, Window
from schemas.bigchange.filters import comma_separated, id_list, text_list

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
ResultStatus = Literal["completedOk", "completedWithIssues"]
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
# 1 stays 1 on the wire (the docs' example), 1.5 metres of pipe stays 1.5.
Quantity = Annotated[float, Field(gt=0), PlainSerializer(lambda v: int(v) if v.is_integer() else v)]
DATED_CONSTRAINTS = {"jobMustStartAfter", "jobMustStartBefore", "jobMustCompleteBefore"}
ENTITY_CONSTRAINTS = {
    "jobResource",
    "jobResourceGroup",
    "jobVehicle",
    "jobVehicleGroup",
    "jobRequiresResourceSkill",
    "jobRequiresVehicleAttribute",
}


class JobGet(In):
    jobId: Id


class _JobFields(In):
    description: str | None = None
    reference: str | None = Field(None, max_length=100, description="Natural key used to reconcile creates.")
    plannedDuration: int | None = Field(None, ge=0, description="Minutes.")
    personId: str | None = Field(None, pattern=r"^[0-9a-fA-F-]{36}$")
    orderNumber: str | None = None
    jobGroupId: Id | None = None
    customFields: list[CustomField] | None = None


class JobCreate(_JobFields):
    typeId: Id
    contactId: Id


class JobEdit(_JobFields):
    jobId: Id
    typeId: Id | None = None
    contactId: Id | None = None
    isFinanciallyComplete: bool | None = None
    isActioned: bool | None = None
    officeNotes: str | None = None


# The docs type contactId, resourceId and status as (comma-separated) strings; see schemas.bigchange.filters.
CommaIds = comma_separated(Id)
CommaStatuses = comma_separated(JobStatus, example="scheduled,started", max_items=None)
Ids = id_list(Id)
References = text_list(str)


class JobList(Window):
    """`createdAtFrom` and `createdAtTo` are required and at most 12 months apart, unless
    `split_windows: true`. Filters take one value, a list or comma-separated text (`12345,678`);
    `contactId`, `resourceId` and `status` go to BigChange as the comma-separated text its docs
    describe, the others as arrays."""

    createdAtFrom: UtcDateTime  # type: ignore[assignment]  # required here, optional for contacts
    createdAtTo: UtcDateTime  # type: ignore[assignment]
    contactId: CommaIds | None = None
    resourceId: CommaIds | None = None
    vehicleId: Ids | None = None
    typeId: Ids | None = None
    reference: References | None = None
    status: CommaStatuses | None = None


class JobCancel(In):
    jobId: Id
    reason: str | None = None


class JobStart(In):
    jobId: Id
    comment: str | None = None


class JobResult(In):
    jobId: Id
    status: ResultStatus
    result: str | None = Field(None, description="Free-text outcome, e.g. Job complete.")


class JobScheduling(In):
    jobId: Id
    resourceId: Id | None = None
    vehicleId: Id | None = None
    plannedStartAt: UtcDateTime | None = None


class JobStatusHistory(Paged):
    jobId: Id


class ConstraintCreate(In):
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


class ConstraintDelete(In):
    jobId: Id
    constraintId: Id


class ConstraintList(Paged):
    jobId: Id


class StockCreate(In):
    """Adds a stock line (a part from the stock catalogue, `stockDetailsId`) to a job."""

    jobId: Id
    stockDetailsId: Id
    quantityPlanned: Quantity = Field(description="How many units the job is planned to use.")


class StockLine(In):
    jobId: Id
    jobStockId: Id


class StockList(Paged):
    jobId: Id
