"""Every documented constraint of every BigChange operation refuses bad input with a message that says why.

The operations' valid inputs come from the connector's catalogue (tests/handlers/test_bigchange.py),
so a new operation is covered here as soon as it is catalogued.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from handlers.bigchange import OPERATIONS
from schemas import bigchange as m
from tests.handlers.test_bigchange import CATALOGUE

OPS = {op.name: op for op in OPERATIONS}
LISTS = [name for name, op in OPS.items() if issubclass(op.input, m.Paged)]
REQUIRED = [(name, field) for name, op in OPS.items() for field in op.input.model_json_schema().get("required", [])]


def errors(model: type[BaseModel], data: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as raised:
        model.model_validate(data)
    return str(raised.value)


def valid(name: str) -> dict[str, Any]:
    return {key: value for key, value in CATALOGUE[name][2].items() if value is not None}


@pytest.mark.parametrize(("name", "field"), REQUIRED, ids=[f"{n}-{f}" for n, f in REQUIRED])
def test_each_required_field_is_required(name: str, field: str) -> None:
    data = valid(name)
    data.pop(field, None)

    exc = pytest.raises(ValidationError, OPS[name].input.model_validate, data).value

    assert [(e["type"], e["loc"]) for e in exc.errors()] == [("missing", (field,))]


@pytest.mark.parametrize("name", LISTS)
def test_every_list_caps_page_size_at_1000(name: str) -> None:
    assert m.api_payload(OPS[name].input.model_validate({**valid(name), "pageSize": 1000}))["pageSize"] == 1000

    message = errors(OPS[name].input, {**valid(name), "pageSize": 1001})

    assert "pageSize" in message and "less than or equal to 1000" in message


ENUMS = [
    ("bigchange.contacts.on_stop", "status", "onHold", "'contactOnStop' or 'creditLimitOnStop'"),
    ("bigchange.contacts.on_stop", "appliesTo", "everyone", "'contactOnly' or 'contactAndChildren'"),
    ("bigchange.contacts.unstop", "appliesTo", "all", "'contactOnly' or 'contactAndChildren'"),
    ("bigchange.contacts.list", "direction", "up", "'ascending' or 'descending'"),
    ("bigchange.contacts.list", "sortBy", "town", "'createdAt' or 'name'"),
    ("bigchange.contacts.list", "status", "stopped", "'normal', 'contactOnStop' or 'creditLimitOnStop'"),
    ("bigchange.jobs.list", "direction", "newest", "'ascending' or 'descending'"),
    ("bigchange.jobs.list", "status", ["completedOK"], "'completedOk'"),
    ("bigchange.jobs.result", "status", "done", "'completedOk' or 'completedWithIssues'"),
    ("bigchange.jobs.constraints.create", "type", "jobMustBeFun", "'jobMustStartAfter'"),
    ("bigchange.job_groups.list", "direction", "sideways", "'ascending' or 'descending'"),
    ("bigchange.contacts.list", "paginate", "everything", "'page' or 'all'"),
]


@pytest.mark.parametrize(("name", "field", "bad", "allowed"), ENUMS, ids=[f"{n}-{f}" for n, f, *_ in ENUMS])
def test_a_value_outside_its_enum_is_refused_naming_the_allowed_values(
    name: str, field: str, bad: Any, allowed: str
) -> None:
    message = errors(OPS[name].input, {**valid(name), field: bad})

    assert field in message and allowed in message


@pytest.mark.parametrize("name", ["bigchange.contacts.list", "bigchange.jobs.list"])
def test_a_window_over_12_months_is_refused_with_the_rule_and_the_way_out(name: str) -> None:
    window = {"createdAtFrom": "2025-01-01T00:00:00Z", "createdAtTo": "2026-01-01T00:00:01Z"}

    message = errors(OPS[name].input, window)

    assert "more than 12 months apart; BigChange allows 12" in message
    assert "split_windows: true" in message


@pytest.mark.parametrize("name", ["bigchange.contacts.list", "bigchange.jobs.list"])
def test_split_windows_accepts_a_longer_window_but_not_a_backwards_one(name: str) -> None:
    long = {"createdAtFrom": "2020-01-01T00:00:00Z", "createdAtTo": "2026-01-01T00:00:00Z", "split_windows": True}
    OPS[name].input.model_validate(long)

    backwards = {**long, "createdAtFrom": "2026-02-01T00:00:00Z"}
    assert "createdAtTo is before createdAtFrom" in errors(OPS[name].input, backwards)


# --- site access hours ------------------------------------------------------------------------------


def hours(*periods: tuple[str, str, str]) -> dict[str, Any]:
    return {"contactId": 5, "body": [{"dayOfWeek": d, "startTime": s, "endTime": e} for d, s, e in periods]}


@pytest.mark.parametrize("day", ["monday", "Monday", " SUNDAY "])
def test_a_day_of_week_is_a_lower_case_english_day(day: str) -> None:
    sent = m.api_payload(m.SiteAccessHoursUpdate.model_validate(hours((day, "08:00", "17:00"))))

    assert sent["body"][0]["dayOfWeek"] == day.strip().lower()


def test_an_unknown_day_is_refused_with_the_days() -> None:
    assert "'monday', 'tuesday'" in errors(m.SiteAccessHoursUpdate, hours(("mon", "08:00", "17:00")))


@pytest.mark.parametrize("time", ["8:00", "08:60", "24:00", "0800", "08:00:00", ""])
def test_times_are_24_hour_hh_mm(time: str) -> None:
    message = errors(m.SiteAccessHoursUpdate, hours(("monday", time, "17:00")))

    assert "is not a 24-hour HH:MM time such as 08:00" in message


def test_access_hours_end_after_they_start() -> None:
    message = errors(m.SiteAccessHoursUpdate, hours(("friday", "17:00", "08:00")))

    assert "friday: endTime 08:00 is not after startTime 17:00" in message


def test_access_hours_on_one_day_do_not_overlap_but_may_touch() -> None:
    m.SiteAccessHoursUpdate.model_validate(hours(("monday", "08:00", "12:00"), ("monday", "12:00", "17:00")))

    message = errors(m.SiteAccessHoursUpdate, hours(("monday", "08:00", "12:30"), ("monday", "12:00", "17:00")))

    assert "monday: 08:00-12:30 overlaps 12:00-17:00" in message


def test_an_empty_list_clears_the_hours() -> None:
    assert m.api_payload(m.SiteAccessHoursUpdate.model_validate({"contactId": 5, "body": []})) == {
        "contactId": 5,
        "body": [],
    }


# --- stock, results and options ---------------------------------------------------------------------


@pytest.mark.parametrize(("given", "sent"), [(1, 1), (2.0, 2), ("1.5", 1.5)])
def test_a_stock_quantity_is_positive_and_whole_numbers_stay_whole(given: Any, sent: Any) -> None:
    data = {"jobId": 9, "stockDetailsId": 10, "quantityPlanned": given}

    assert m.api_payload(m.StockCreate.model_validate(data))["quantityPlanned"] == sent


@pytest.mark.parametrize("bad", [0, -1, "lots"])
def test_a_stock_quantity_must_be_a_positive_number(bad: Any) -> None:
    assert "quantityPlanned" in errors(m.StockCreate, {"jobId": 9, "stockDetailsId": 10, "quantityPlanned": bad})


def test_upsert_needs_a_reference_to_look_up() -> None:
    assert "upsert: true needs a reference" in errors(m.ContactCreate, {"name": "Acme", "upsert": True})


def test_options_are_documented_as_options_and_never_sent() -> None:
    inp = m.JobList.model_validate(
        {**CATALOGUE["bigchange.jobs.list"][2], "paginate": "all", "max_items": 50, "split_windows": True}
    )

    assert m.option_names(m.JobList) == {"paginate", "max_items", "split_windows"}
    assert set(m.api_payload(inp)) == {"createdAtFrom", "createdAtTo"}
    schema = m.JobList.model_json_schema()["properties"]
    assert all(
        schema[name]["description"].startswith("Hookflow option, not sent") for name in m.option_names(m.JobList)
    )


@pytest.mark.parametrize("bad", [0, 100_001])
def test_max_items_is_bounded(bad: int) -> None:
    assert "max_items" in errors(m.ContactList, {"paginate": "all", "max_items": bad})


def test_max_items_has_a_sensible_default() -> None:
    assert m.ContactList().max_items == m.DEFAULT_MAX_ITEMS == 10_000
