"""Each endpoint's request contract: a tuple of `Field`s, checked one field at a time
and answered in the gateway's own words (see sandbox.validation)."""

from __future__ import annotations

from sandbox.validation import (
    Boolean,
    Field,
    HhMm,
    Integer,
    ListOf,
    Number,
    Object,
    OneOf,
    OneOrMany,
    PositiveNumber,
    Scalar,
    Text,
    UtcDateTime,
    Uuid,
)

CONTACT_STATUSES = ("normal", "contactOnStop", "creditLimitOnStop")
APPLIES_TO = ("contactOnly", "contactAndChildren")
DIRECTIONS = ("ascending", "descending")
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
JOB_STATUSES = (
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
)
RESULT_STATUSES = ("completedOk", "completedWithIssues")
DATE_CONSTRAINTS = ("jobMustStartAfter", "jobMustStartBefore", "jobMustCompleteBefore")
ENTITY_CONSTRAINTS = (
    "jobResource",
    "jobResourceGroup",
    "jobVehicle",
    "jobVehicleGroup",
    "jobRequiresResourceSkill",
    "jobRequiresVehicleAttribute",
)
CONSTRAINT_TYPES = (
    *DATE_CONSTRAINTS,
    "jobMustStartInAvailableHours",
    "jobMustCompleteInAvailableHours",
    *ENTITY_CONSTRAINTS,
)

ID = Integer(minimum=1)
PAGING = (
    Field("pageNumber", Integer(minimum=1), default=1),
    Field("pageSize", Integer(minimum=1, maximum=1000), default=100),
)
DIRECTION = Field("direction", OneOf(DIRECTIONS), default="ascending")
NAME = Text(max_length=100, non_empty=True)
LOCATION = Object(
    (Field("latitude", Number(-90, 90), required=True), Field("longitude", Number(-180, 180), required=True))
)
CONTACT_DETAILS = (
    Field("reference", Text()),
    Field("groupId", ID),
    Field("parentId", ID),
    Field("location", LOCATION),
    Field("street", Text()),
    Field("town", Text()),
    Field("postalCode", Text()),
    Field("country", Text()),
    Field("extraInformation", Text()),
    Field("customFields", ListOf(Object((Field("definitionId", ID, required=True), Field("value", Scalar()))))),
)
CONTACT_ID = Field("contactId", ID, required=True)
JOB_ID = Field("jobId", ID, required=True)
JOB_GROUP_ID = Field("jobGroupId", ID, required=True)
APPLIES = Field("appliesTo", OneOf(APPLIES_TO), default="contactOnly")

# --- contacts -------------------------------------------------------------------------------------

CONTACT_GET = (CONTACT_ID,)
CONTACT_CREATE = (Field("name", NAME, required=True), *CONTACT_DETAILS)
CONTACT_EDIT = (CONTACT_ID, Field("name", NAME), *CONTACT_DETAILS)
CONTACT_LIST = (
    *PAGING,
    Field("createdAtFrom", UtcDateTime()),
    Field("createdAtTo", UtcDateTime()),
    Field("sortBy", OneOf(("createdAt", "name")), default="createdAt"),
    DIRECTION,
    Field("name", Text()),
    Field("reference", ListOf(Text(), 50)),
    Field("id", ListOf(ID, 50)),
    Field("parentId", ListOf(ID, 50)),
    Field("groupId", ListOf(ID, 50)),
    Field("status", OneOf(CONTACT_STATUSES)),
)
CONTACT_ON_STOP = (
    CONTACT_ID,
    Field("status", OneOf(CONTACT_STATUSES[1:]), required=True),
    Field("stopReason", Text()),
    APPLIES,
)
CONTACT_UNSTOP = (CONTACT_ID, APPLIES)
ACCESS_HOURS_LIST = (CONTACT_ID, *PAGING)
ACCESS_HOURS = Object(
    (
        Field("dayOfWeek", OneOf(DAYS), required=True),
        Field("startTime", HhMm(), required=True),
        Field("endTime", HhMm(), required=True),
    )
)
ACCESS_HOURS_UPDATE = (CONTACT_ID, Field("body", ListOf(ACCESS_HOURS, 70), required=True))

# --- contact groups -----------------------------------------------------------------------------

CONTACT_GROUP_ID = Field("contactGroupId", ID, required=True)
CONTACT_GROUP_GET = (CONTACT_GROUP_ID,)
CONTACT_GROUP_CREATE = (Field("name", NAME, required=True),)
CONTACT_GROUP_LIST = (*PAGING, DIRECTION)
CONTACT_GROUP_UPDATE = (CONTACT_GROUP_ID, Field("name", NAME, required=True))

# --- jobs ---------------------------------------------------------------------------------------

JOB_GET = (Field("jobId", ID, required=True, aliases=("id",)),)
JOB_DETAILS = (
    Field("description", Text()),
    Field("reference", Text()),
    Field("plannedDuration", Integer(minimum=0)),
    Field("personId", Uuid()),
    Field("orderNumber", Text()),
    Field("jobGroupId", ID),
    Field("customFields", ListOf(Object((Field("definitionId", ID, required=True), Field("value", Scalar()))))),
)
JOB_CREATE = (Field("typeId", ID, required=True), CONTACT_ID, *JOB_DETAILS)
JOB_EDIT = (
    JOB_ID,
    Field("typeId", ID),
    Field("contactId", ID),
    *JOB_DETAILS,
    Field("isFinanciallyComplete", Boolean()),
    Field("isActioned", Boolean()),
    Field("officeNotes", Text()),
)
JOB_LIST = (
    *PAGING,
    Field("createdAtFrom", UtcDateTime(), required=True),
    Field("createdAtTo", UtcDateTime(), required=True),
    DIRECTION,
    # The docs type these three as (comma-separated) strings; VH3's client sends arrays.
    Field("contactId", OneOrMany(ID, comma_text=True)),
    Field("resourceId", OneOrMany(ID, comma_text=True)),
    Field("status", OneOrMany(OneOf(JOB_STATUSES), comma_text=True)),
    Field("vehicleId", OneOrMany(ID)),
    Field("typeId", OneOrMany(ID)),
    Field("reference", ListOf(Text(), 50)),
)
JOB_CANCEL = (JOB_ID, Field("reason", Text()))
JOB_START = (JOB_ID, Field("comment", Text()))
JOB_RESULT = (JOB_ID, Field("status", OneOf(RESULT_STATUSES), required=True), Field("result", Text()))
JOB_SCHEDULING = (JOB_ID, Field("resourceId", ID), Field("vehicleId", ID), Field("plannedStartAt", UtcDateTime()))
JOB_STATUS_HISTORY = (JOB_ID, *PAGING)

# --- constraints and stock ------------------------------------------------------------------------

CONSTRAINT_CREATE = (
    JOB_ID,
    Field("type", OneOf(CONSTRAINT_TYPES), required=True),
    Field("constraintAt", UtcDateTime()),
    Field("entityId", ID),
)
CONSTRAINT_LIST = (JOB_ID, *PAGING)
CONSTRAINT_DELETE = (Field("jobId", ID), Field("constraintId", ID, required=True))
STOCK_CREATE = (
    JOB_ID,
    Field("stockDetailsId", ID, required=True),
    Field("quantityPlanned", PositiveNumber(), required=True),
)
STOCK_LINE = (JOB_ID, Field("jobStockId", ID, required=True))
STOCK_LIST = (JOB_ID, *PAGING)

# --- job groups and types -------------------------------------------------------------------------

JOB_GROUP_CREATE = (Field("name", NAME, required=True),)
JOB_GROUP_EDIT = (JOB_GROUP_ID, Field("name", NAME, required=True))
JOB_GROUP_REF = (JOB_GROUP_ID,)
JOB_GROUP_LIST = (*PAGING, DIRECTION)
JOB_GROUP_HISTORY = (JOB_GROUP_ID, *PAGING)
JOB_TYPE_GET = (Field("jobTypeId", ID, required=True),)
JOB_TYPE_LIST = (*PAGING,)
