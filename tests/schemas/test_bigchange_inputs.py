"""Input models for BigChange operations: what a step's rendered `with` must satisfy.

Rules come from shared/reference/bigchange-api.md §2.4-2.8: field names exactly as
the API spells them, enums, page and filter limits, the 12-month window and the
strict UTC format `YYYY-MM-DDTHH:MM:SSZ`.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from schemas import bigchange as m

EVERY_MODEL = [
    value
    for value in vars(m).values()
    if isinstance(value, type) and issubclass(value, BaseModel) and value.__module__.startswith("schemas.bigchange")
]
WINDOW = {"createdAtFrom": "2026-01-01T00:00:00Z", "createdAtTo": "2026-02-01T00:00:00Z"}


def refused(model: type[BaseModel], data: dict[str, Any]) -> str:
    """Validate data that must be refused; return the error text for further asserts."""
    with pytest.raises(ValidationError) as raised:
        model.model_validate(data)
    return str(raised.value)


def sent(model: type[BaseModel], data: dict[str, Any]) -> dict[str, Any]:
    """What the connector would send for this input."""
    return m.api_payload(model.model_validate(data))


# --- Required fields and names ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "data", "missing"),
    [
        (m.ContactGet, {}, "contactId"),
        (m.ContactCreate, {"reference": "ACC-1"}, "name"),
        (m.ContactEdit, {"name": "Acme"}, "contactId"),
        (m.ContactOnStop, {"contactId": 5}, "status"),
        (m.ContactOnStop, {"status": "contactOnStop"}, "contactId"),
        (m.ContactUnstop, {}, "contactId"),
        (m.JobGet, {}, "jobId"),
        (m.JobCreate, {"contactId": 5}, "typeId"),
        (m.JobCreate, {"typeId": 3}, "contactId"),
        (m.JobList, {"createdAtTo": "2026-02-01T00:00:00Z"}, "createdAtFrom"),
        (m.JobList, {"createdAtFrom": "2026-01-01T00:00:00Z"}, "createdAtTo"),
        (m.JobScheduling, {"resourceId": 100}, "jobId"),
        (m.ConstraintCreate, {"jobId": 9}, "type"),
        (m.ConstraintCreate, {"type": "jobMustStartInAvailableHours"}, "jobId"),
        (m.ConstraintList, {}, "jobId"),
    ],
)
def test_a_required_field_is_required(model: type[BaseModel], data: dict[str, Any], missing: str) -> None:
    errors = pytest.raises(ValidationError, model.model_validate, data).value.errors()

    assert [(e["type"], e["loc"]) for e in errors] == [("missing", (missing,))]


@pytest.mark.parametrize(
    ("model", "data"),
    [
        (m.ContactCreate, {"name": "Acme"}),
        (m.ContactList, {}),
        (m.ContactUnstop, {"contactId": 5}),
        (m.JobCreate, {"typeId": 3, "contactId": 5}),
        (m.JobScheduling, {"jobId": 9}),
        (m.ConstraintCreate, {"jobId": 9, "type": "jobMustStartInAvailableHours"}),
    ],
)
def test_the_minimal_input_is_enough(model: type[BaseModel], data: dict[str, Any]) -> None:
    model.model_validate(data)


@pytest.mark.parametrize(
    ("model", "data"),
    [
        (m.ContactGet, {"contactID": 5}),
        (m.ContactCreate, {"name": "Acme", "Reference": "ACC-1"}),
        (m.ContactOnStop, {"contactId": 5, "status": "contactOnStop", "reason": "over limit"}),
        (m.JobCreate, {"typeId": 3, "contactId": 5, "company_id": 1}),
        (m.JobList, {**WINDOW, "createdFrom": "2026-01-01T00:00:00Z"}),
    ],
)
def test_an_unknown_or_misspelt_field_is_refused_not_dropped(model: type[BaseModel], data: dict[str, Any]) -> None:
    assert "Extra inputs are not permitted" in refused(model, data)


def test_unknown_fields_are_refused_in_nested_models_too() -> None:
    data = {"name": "Acme", "location": {"latitude": 51.5, "longitude": -0.1, "altitude": 3}}

    assert "altitude" in refused(m.ContactCreate, data)


@pytest.mark.parametrize("model", EVERY_MODEL)
def test_every_model_forbids_extra_fields_and_is_frozen(model: type[BaseModel]) -> None:
    assert model.model_config.get("extra") == "forbid"
    assert model.model_config.get("frozen") is True


@pytest.mark.parametrize(("model", "field"), [(m.ContactGet, "contactId"), (m.JobGet, "jobId")])
@pytest.mark.parametrize("bad", [0, -1, "abc"])
def test_ids_are_positive_integers(model: type[BaseModel], field: str, bad: Any) -> None:
    refused(model, {field: bad})


def test_an_id_rendered_from_a_template_as_text_is_accepted_as_a_number() -> None:
    # Templates render strings: "{{ steps.contact.output.id }}" arrives as "42".
    assert sent(m.JobCreate, {"typeId": "3", "contactId": "42"}) == {"typeId": 3, "contactId": 42}


@pytest.mark.parametrize("name", ["", "x" * 101])
def test_a_contact_name_has_1_to_100_characters(name: str) -> None:
    refused(m.ContactCreate, {"name": name})


@pytest.mark.parametrize(("latitude", "longitude"), [(91, 0), (-91, 0), (0, 181), (0, -181)])
def test_a_location_must_be_on_earth(latitude: float, longitude: float) -> None:
    refused(m.ContactCreate, {"name": "Acme", "location": {"latitude": latitude, "longitude": longitude}})


def test_a_person_id_is_a_uuid() -> None:
    sent(m.JobCreate, {"typeId": 3, "contactId": 5, "personId": "3f2504e0-4f89-11d3-9a0c-0305e82c3301"})
    refused(m.JobCreate, {"typeId": 3, "contactId": 5, "personId": "Jane"})


# --- Enums ------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["contactOnStop", "creditLimitOnStop"])
def test_on_stop_accepts_both_stop_flavours(status: str) -> None:
    assert sent(m.ContactOnStop, {"contactId": 5, "status": status})["status"] == status


@pytest.mark.parametrize(
    ("model", "data"),
    [
        (m.ContactOnStop, {"contactId": 5, "status": "onStop"}),
        (m.ContactOnStop, {"contactId": 5, "status": "normal"}),
        (m.ContactOnStop, {"contactId": 5, "status": "contactOnStop", "appliesTo": "children"}),
        (m.ContactUnstop, {"contactId": 5, "appliesTo": "everything"}),
        (m.ContactList, {"status": "onStop"}),
        (m.ContactList, {"direction": "asc"}),
        (m.ContactList, {"sortBy": "id"}),
        (m.JobList, {**WINDOW, "direction": "desc"}),
        (m.ConstraintCreate, {"jobId": 9, "type": "jobMustStartOn"}),
    ],
)
def test_a_value_outside_its_enum_is_refused(model: type[BaseModel], data: dict[str, Any]) -> None:
    refused(model, data)


@pytest.mark.parametrize("status", ["normal", "contactOnStop", "creditLimitOnStop"])
def test_contacts_can_be_listed_by_each_status(status: str) -> None:
    assert sent(m.ContactList, {"status": status}) == {"status": status}


@pytest.mark.parametrize("applies_to", ["contactOnly", "contactAndChildren"])
def test_stop_and_unstop_accept_both_scopes(applies_to: str) -> None:
    sent(m.ContactOnStop, {"contactId": 5, "status": "contactOnStop", "appliesTo": applies_to})
    sent(m.ContactUnstop, {"contactId": 5, "appliesTo": applies_to})


def test_unstop_applies_to_the_contact_only_unless_told_otherwise() -> None:
    assert sent(m.ContactUnstop, {"contactId": 5}) == {"contactId": 5, "appliesTo": "contactOnly"}


@pytest.mark.parametrize("direction", ["ascending", "descending"])
def test_lists_sort_ascending_or_descending(direction: str) -> None:
    assert sent(m.ContactList, {"direction": direction})["direction"] == direction
    assert sent(m.JobList, {**WINDOW, "direction": direction})["direction"] == direction


# --- Paging and filter limits -----------------------------------------------------------------


@pytest.mark.parametrize("model", [m.ContactList, m.JobList, m.ConstraintList])
def test_page_size_is_1_to_1000(model: type[BaseModel]) -> None:
    base = {"ContactList": {}, "JobList": WINDOW, "ConstraintList": {"jobId": 9}}[model.__name__]

    assert sent(model, {**base, "pageSize": 1000})["pageSize"] == 1000
    refused(model, {**base, "pageSize": 1001})
    refused(model, {**base, "pageSize": 0})


@pytest.mark.parametrize("model", [m.ContactList, m.JobList, m.ConstraintList])
def test_page_number_is_1_based(model: type[BaseModel]) -> None:
    base = {"ContactList": {}, "JobList": WINDOW, "ConstraintList": {"jobId": 9}}[model.__name__]

    refused(model, {**base, "pageNumber": 0})


@pytest.mark.parametrize(
    ("model", "field", "value"),
    [
        (m.ContactList, "reference", "ACC"),
        (m.ContactList, "id", 1),
        (m.ContactList, "parentId", 1),
        (m.ContactList, "groupId", 1),
        (m.JobList, "reference", "JOB"),
    ],
)
def test_a_list_filter_takes_at_most_50_values(model: type[BaseModel], field: str, value: Any) -> None:
    base = WINDOW if model is m.JobList else {}

    assert len(sent(model, {**base, field: [value] * 50})[field]) == 50
    assert "at most 50" in refused(model, {**base, field: [value] * 51})


# --- UTC date-times ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "normalised"),
    [
        ("2026-04-20T09:00:00Z", "2026-04-20T09:00:00Z"),
        ("2026-04-20T09:00:00z", "2026-04-20T09:00:00Z"),
        ("2026-04-20T10:00:00+01:00", "2026-04-20T09:00:00Z"),
        ("2026-04-20T01:30:00-08:00", "2026-04-20T09:30:00Z"),
        ("2026-04-20T09:00:00.987654Z", "2026-04-20T09:00:00Z"),
        ("2026-04-20T09:00:00+00:00", "2026-04-20T09:00:00Z"),
        (" 2026-04-20T09:00:00Z ", "2026-04-20T09:00:00Z"),
        ("2026-04-21T00:30:00+01:00", "2026-04-20T23:30:00Z"),
        (datetime(2026, 4, 20, 9, 0, 0, 500, tzinfo=timezone.utc), "2026-04-20T09:00:00Z"),
    ],
)
def test_date_times_are_sent_in_utc_with_seconds_and_z(given: Any, normalised: str) -> None:
    assert sent(m.JobScheduling, {"jobId": 9, "plannedStartAt": given})["plannedStartAt"] == normalised


@pytest.mark.parametrize("naive", ["2026-04-20T09:00:00", "2026-04-20", datetime(2026, 4, 20, 9)])
def test_a_naive_date_time_is_refused_with_a_hint_to_add_z(naive: Any) -> None:
    message = refused(m.JobScheduling, {"jobId": 9, "plannedStartAt": naive})

    assert "no timezone" in message
    assert "append Z" in message


@pytest.mark.parametrize("garbage", ["tomorrow", "20/04/2026 09:00", "", 1776675600, True])
def test_something_that_is_not_an_iso_date_time_is_refused(garbage: Any) -> None:
    message = refused(m.JobScheduling, {"jobId": 9, "plannedStartAt": garbage})

    assert "2026-04-20T09:00:00Z" in message  # the error shows the expected shape


def test_every_date_time_field_is_normalised() -> None:
    dumped = sent(m.ContactList, {"createdAtFrom": "2026-01-01T01:00:00+01:00", "createdAtTo": "2026-02-01T00:00Z"})

    assert dumped == {"createdAtFrom": "2026-01-01T00:00:00Z", "createdAtTo": "2026-02-01T00:00:00Z"}


# --- The 12-month window ----------------------------------------------------------------------


@pytest.mark.parametrize("model", [m.ContactList, m.JobList])
@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2025-03-15T08:00:00Z", "2026-03-15T08:00:00Z"),  # exactly 12 months
        ("2024-02-29T00:00:00Z", "2025-02-28T00:00:00Z"),  # from 29 February to the last day of next February
        ("2025-01-01T00:00:00Z", "2025-01-01T00:00:00Z"),  # an empty window
        ("2025-03-15T09:00:00+01:00", "2026-03-15T08:00:00Z"),  # compared in UTC
    ],
    ids=["exactly-12-months", "29-feb", "empty", "offsets"],
)
def test_a_window_of_up_to_12_months_is_accepted(model: type[BaseModel], start: str, end: str) -> None:
    model.model_validate({"createdAtFrom": start, "createdAtTo": end})


@pytest.mark.parametrize("model", [m.ContactList, m.JobList])
@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2025-03-15T08:00:00Z", "2026-03-15T08:00:01Z"),  # 12 months and 1 second
        ("2024-02-29T00:00:00Z", "2025-03-01T00:00:00Z"),  # 29 February: 1 March is a day too far
        ("2024-02-29T00:00:00Z", "2025-02-28T00:00:01Z"),
        ("2025-03-15T08:00:00Z", "2026-03-15T09:00:00+00:30"),  # 30 minutes over once in UTC
    ],
    ids=["plus-1s", "29-feb-to-1-mar", "29-feb-plus-1s", "offsets"],
)
def test_a_window_longer_than_12_months_is_refused(model: type[BaseModel], start: str, end: str) -> None:
    assert "12 months" in refused(model, {"createdAtFrom": start, "createdAtTo": end})


@pytest.mark.parametrize("model", [m.ContactList, m.JobList])
def test_a_window_that_ends_before_it_starts_is_refused(model: type[BaseModel]) -> None:
    message = refused(model, {"createdAtFrom": "2026-02-01T00:00:00Z", "createdAtTo": "2026-01-01T00:00:00Z"})

    assert "createdAtTo is before createdAtFrom" in message


def test_a_contact_list_may_have_an_open_window() -> None:
    assert sent(m.ContactList, {"createdAtFrom": "2020-01-01T00:00:00Z"}) == {"createdAtFrom": "2020-01-01T00:00:00Z"}


@pytest.mark.parametrize(
    ("start", "end", "too_far"),
    [
        (datetime(2025, 3, 15, tzinfo=timezone.utc), datetime(2026, 3, 15, tzinfo=timezone.utc), False),
        (datetime(2025, 3, 15, tzinfo=timezone.utc), datetime(2026, 3, 15, 0, 0, 1, tzinfo=timezone.utc), True),
        (datetime(2024, 2, 29, tzinfo=timezone.utc), datetime(2025, 2, 28, tzinfo=timezone.utc), False),
        (datetime(2024, 2, 29, tzinfo=timezone.utc), datetime(2025, 3, 1, tzinfo=timezone.utc), True),
        (datetime(2025, 12, 31, tzinfo=timezone.utc), datetime(2026, 12, 31, tzinfo=timezone.utc), False),
        (datetime(2025, 1, 31, tzinfo=timezone.utc), datetime(2025, 2, 28, tzinfo=timezone.utc), False),
    ],
)
def test_months_apart_means_more_than_twelve_calendar_months(start: datetime, end: datetime, too_far: bool) -> None:
    assert m.months_apart(start, end) is too_far


# --- Constraints ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(m.DATED_CONSTRAINTS))
def test_a_dated_constraint_needs_constraint_at(kind: str) -> None:
    assert f"constraint type {kind} needs constraintAt" in refused(m.ConstraintCreate, {"jobId": 9, "type": kind})
    sent(m.ConstraintCreate, {"jobId": 9, "type": kind, "constraintAt": "2026-04-20T09:00:00Z"})


@pytest.mark.parametrize("kind", sorted(m.ENTITY_CONSTRAINTS))
def test_an_entity_constraint_needs_entity_id(kind: str) -> None:
    assert f"constraint type {kind} needs entityId" in refused(m.ConstraintCreate, {"jobId": 9, "type": kind})
    sent(m.ConstraintCreate, {"jobId": 9, "type": kind, "entityId": 100})


@pytest.mark.parametrize("kind", ["jobMustStartInAvailableHours", "jobMustCompleteInAvailableHours"])
def test_an_available_hours_constraint_needs_only_its_type(kind: str) -> None:
    assert sent(m.ConstraintCreate, {"jobId": 9, "type": kind}) == {"jobId": 9, "type": kind}


def test_a_constraint_date_is_normalised_to_utc() -> None:
    data = {"jobId": 9, "type": "jobMustCompleteBefore", "constraintAt": "2026-04-20T18:00:00+02:00"}

    assert sent(m.ConstraintCreate, data)["constraintAt"] == "2026-04-20T16:00:00Z"


def test_every_constraint_type_is_either_dated_entity_or_available_hours() -> None:
    kinds = set(m.ConstraintCreate.model_fields["type"].annotation.__args__)

    assert kinds > m.DATED_CONSTRAINTS | m.ENTITY_CONSTRAINTS
    assert m.DATED_CONSTRAINTS.isdisjoint(m.ENTITY_CONSTRAINTS)
    assert kinds - m.DATED_CONSTRAINTS - m.ENTITY_CONSTRAINTS == {
        "jobMustStartInAvailableHours",
        "jobMustCompleteInAvailableHours",
    }


def test_job_list_filters_by_vehicle_and_known_statuses_only() -> None:
    window = {"createdAtFrom": "2026-01-01T00:00:00Z", "createdAtTo": "2026-02-01T00:00:00Z"}
    assert m.JobList(**window, vehicleId=[50], status=["scheduled", "completedOk"]).vehicleId == [50]
    with pytest.raises(ValidationError, match="completedOK"):
        m.JobList(**window, status=["completedOK"])


# --- List filters: the docs' comma-separated strings and JSON lists ----------------------------


@pytest.mark.parametrize(
    ("field", "given", "wire"),
    [
        ("contactId", "12345", "12345"),
        ("contactId", "12345,678", "12345,678"),
        ("contactId", " 12345 , 678 ", "12345,678"),
        ("contactId", 12345, "12345"),
        ("contactId", [12345, 678], "12345,678"),
        ("resourceId", "100", "100"),
        ("resourceId", [100, 101], "100,101"),
        ("status", "scheduled", "scheduled"),
        ("status", "scheduled,completedOk", "scheduled,completedOk"),
        ("status", ["scheduled", "completedOk"], "scheduled,completedOk"),
    ],
)
def test_job_list_filters_the_docs_type_as_strings_are_sent_as_comma_separated_text(
    field: str, given: Any, wire: str
) -> None:
    # The vh3 jobs doc: contactId "string, Filter by contact IDs (comma-separated)"; resourceId and status strings.
    assert sent(m.JobList, {**WINDOW, field: given})[field] == wire


@pytest.mark.parametrize(
    ("field", "given", "wire"),
    [
        ("vehicleId", "50,51", [50, 51]),
        ("vehicleId", 50, [50]),
        ("typeId", "42", [42]),
        ("typeId", [42, 7], [42, 7]),
        ("reference", "JOB-1", ["JOB-1"]),
        ("reference", "SMITH, J", ["SMITH, J"]),
    ],
)
def test_job_list_filters_known_only_as_arrays_are_sent_as_arrays(field: str, given: Any, wire: list[Any]) -> None:
    assert sent(m.JobList, {**WINDOW, field: given})[field] == wire


@pytest.mark.parametrize(
    ("field", "given", "wire"),
    [("id", "3,4", [3, 4]), ("parentId", 3, [3]), ("groupId", "1", [1]), ("reference", "ACC, 1", ["ACC, 1"])],
)
def test_contact_list_filters_take_one_value_or_comma_text_and_are_sent_as_arrays(
    field: str, given: Any, wire: list[Any]
) -> None:
    assert sent(m.ContactList, {field: given})[field] == wire


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"contactId": ""}, "is empty"),
        ({"contactId": "12345,,678"}, "empty value between commas"),
        ({"contactId": "12345,abc"}, "valid integer"),
        ({"resourceId": "0"}, "greater than or equal to 1"),
        ({"status": "Scheduled"}, "'scheduled'"),
        ({"contactId": ",".join(["1"] * 51)}, "at most 50"),
    ],
)
def test_job_list_refuses_malformed_filter_text(data: dict[str, Any], words: str) -> None:
    assert words in refused(m.JobList, {**WINDOW, **data})


def test_a_sent_job_list_is_itself_a_valid_job_list() -> None:
    # find_job re-reads what it sent; the comma text must round-trip.
    payload = sent(m.JobList, {**WINDOW, "contactId": [1, 2], "status": "new", "typeId": 42})

    assert m.JobList.model_validate(payload).contactId == [1, 2]
