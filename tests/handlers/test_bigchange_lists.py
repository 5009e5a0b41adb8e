"""Beyond one request: pagination, 12-month windows, upserts, and errors for every operation.

Fakes at the transport (httpx.MockTransport), as in test_bigchange.py; a fake that
pages is a small class here, so each test states exactly what BigChange answers.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest

from engine.errors import PermanentStepError
from handlers.bigchange.lists import Collected, windows
from schemas import bigchange as m
from tests.handlers.test_bigchange import CATALOGUE, OPS, FakeApi, client_for, run


class PagedApi:
    """Answers list requests page by page from `records`, in the given envelope; records every request body."""

    def __init__(self, records: list[dict[str, Any]], envelope: str = "bare", ignore_page_number: bool = False):
        self.records, self.envelope, self.ignore_page_number = records, envelope, ignore_page_number
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.bodies.append(body)
        number = 1 if self.ignore_page_number else body.get("pageNumber", 1)
        size = body.get("pageSize", 100)  # BigChange's defaults
        chosen = [r for r in self.records if _within(r, body)]
        chosen = chosen[(number - 1) * size : number * size]
        page = {"items": chosen, "pageItemCount": len(chosen)}
        wrapped = {"bare": page, "result": {"result": page}, "response": {"response": {"result": page}}}
        return httpx.Response(200, json=wrapped[self.envelope])


def _within(record: dict[str, Any], body: dict[str, Any]) -> bool:
    if "createdAt" not in record or "createdAtFrom" not in body:
        return True
    return body["createdAtFrom"] <= record["createdAt"] <= body.get("createdAtTo", "9999")


def records(count: int) -> list[dict[str, Any]]:
    return [{"id": n, "name": f"Contact {n}"} for n in range(1, count + 1)]


# --- paginate: all ------------------------------------------------------------------------------


@pytest.mark.parametrize("envelope", ["bare", "result", "response"])
def test_paginate_all_follows_three_pages_until_a_short_one(envelope: str) -> None:
    # Given 7 contacts and pages of 3, in any of the proxy's envelopes
    api = PagedApi(records(7), envelope)

    # When every page is asked for
    output = run("bigchange.contacts.list", {"paginate": "all", "pageSize": 3}, FakeApi(api))

    # Then three requests, pages 1-3, and every item once
    assert [(b["pageNumber"], b["pageSize"]) for b in api.bodies] == [(1, 3), (2, 3), (3, 3)]
    assert [item["id"] for item in output["items"]] == list(range(1, 8))
    assert (output["pageItemCount"], output["pages"], output["truncated"]) == (7, 3, False)


def test_paginate_all_asks_for_a_last_empty_page_when_the_data_fills_pages_exactly() -> None:
    api = PagedApi(records(6))

    output = run("bigchange.jobs.stock.list", {"jobId": 9, "paginate": "all", "pageSize": 3}, FakeApi(api))

    assert len(api.bodies) == 3
    assert (output["pageItemCount"], output["truncated"]) == (6, False)


def test_paginate_all_uses_the_largest_page_by_default_and_never_sends_its_options() -> None:
    api = PagedApi(records(2))

    run("bigchange.job_types.list", {"paginate": "all", "max_items": 50}, FakeApi(api))

    assert api.bodies == [{"pageNumber": 1, "pageSize": 1000}]


def test_paginate_all_starts_at_the_page_asked_for() -> None:
    api = PagedApi(records(7))

    output = run("bigchange.contact_groups.list", {"paginate": "all", "pageSize": 3, "pageNumber": 2}, FakeApi(api))

    assert [item["id"] for item in output["items"]] == [4, 5, 6, 7]


@pytest.mark.parametrize(("max_items", "truncated"), [(5, True), (6, True), (7, False), (100, False)])
def test_max_items_bounds_the_list_and_says_when_it_cut_it_short(max_items: int, truncated: bool) -> None:
    api = PagedApi(records(7))

    output = run("bigchange.contacts.list", {"paginate": "all", "pageSize": 3, "max_items": max_items}, FakeApi(api))

    assert len(output["items"]) == min(max_items, 7)
    assert output["truncated"] is truncated


def test_items_seen_on_an_earlier_page_are_not_repeated() -> None:
    # Given a record created mid-way shifts contact 3 onto the next page too
    shifted = [*records(3), {"id": 3, "name": "Contact 3"}, {"id": 4, "name": "Contact 4"}]

    output = run("bigchange.contacts.list", {"paginate": "all", "pageSize": 3}, FakeApi(PagedApi(shifted)))

    assert [item["id"] for item in output["items"]] == [1, 2, 3, 4]


def test_an_api_that_ignores_page_numbers_cannot_loop_forever() -> None:
    api = PagedApi(records(3), ignore_page_number=True)

    output = run("bigchange.contacts.list", {"paginate": "all", "pageSize": 3}, FakeApi(api))

    assert len(api.bodies) == 2  # the second page repeated the first: stop
    assert len(output["items"]) == 3


def test_a_single_page_keeps_the_plain_list_output() -> None:
    output = run("bigchange.contacts.list", {"pageSize": 3}, FakeApi(PagedApi(records(7))))

    assert output == {"items": records(7)[:3], "pageItemCount": 3}


def test_collected_keeps_items_without_ids() -> None:
    collected = Collected(limit=10)

    assert collected.add([{"name": "a"}, {"name": "a"}, {"id": 1}, {"id": 1}]) == 3


# --- split_windows ------------------------------------------------------------------------------


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (utc(2025, 1, 1), utc(2025, 6, 1), [(utc(2025, 1, 1), utc(2025, 6, 1))]),
        (utc(2025, 1, 1), utc(2026, 1, 1), [(utc(2025, 1, 1), utc(2026, 1, 1))]),
        (
            utc(2023, 3, 15),
            utc(2025, 7, 1),
            [
                (utc(2023, 3, 15), utc(2024, 3, 15)),
                (utc(2024, 3, 15), utc(2025, 3, 15)),
                (utc(2025, 3, 15), utc(2025, 7, 1)),
            ],
        ),
        (
            utc(2024, 2, 29),
            utc(2026, 3, 1),
            [
                (utc(2024, 2, 29), utc(2025, 2, 28)),
                (utc(2025, 2, 28), utc(2026, 2, 28)),
                (utc(2026, 2, 28), utc(2026, 3, 1)),
            ],
        ),
    ],
    ids=["short", "exactly-12-months", "three-windows", "29-february"],
)
def test_windows_cover_the_range_in_consecutive_compliant_spans(
    start: datetime, end: datetime, expected: list[tuple[datetime, datetime]]
) -> None:
    spans = windows(start, end)

    assert spans == expected
    assert all(not m.months_apart(low, high) for low, high in spans)


def dated(*dates: str) -> list[dict[str, Any]]:
    return [{"id": n, "createdAt": date} for n, date in enumerate(dates, start=1)]


def test_split_windows_queries_each_window_to_its_last_page_and_merges() -> None:
    # Given jobs across three years, three of them in 2024
    api = PagedApi(
        dated(
            "2023-05-01T00:00:00Z",
            "2024-02-01T00:00:00Z",
            "2024-06-01T00:00:00Z",
            "2024-09-01T00:00:00Z",
            "2025-03-01T00:00:00Z",
        )
    )
    window = {"createdAtFrom": "2023-01-01T00:00:00Z", "createdAtTo": "2025-12-31T00:00:00Z"}

    # When a 3-year range is listed with split_windows
    output = run("bigchange.jobs.list", {**window, "split_windows": True, "pageSize": 2}, FakeApi(api))

    # Then each request is a compliant window, each window is paged through, and the items merge in order
    asked = [(b["createdAtFrom"], b["createdAtTo"], b["pageNumber"]) for b in api.bodies]
    assert asked == [
        ("2023-01-01T00:00:00Z", "2024-01-01T00:00:00Z", 1),
        ("2024-01-01T00:00:00Z", "2025-01-01T00:00:00Z", 1),
        ("2024-01-01T00:00:00Z", "2025-01-01T00:00:00Z", 2),
        ("2025-01-01T00:00:00Z", "2025-12-31T00:00:00Z", 1),
    ]
    assert [item["id"] for item in output["items"]] == [1, 2, 3, 4, 5]
    assert (output["windows"], output["pages"], output["truncated"]) == (3, 4, False)
    assert "split_windows" not in api.bodies[0]


def test_a_record_on_a_window_boundary_is_listed_once() -> None:
    api = PagedApi(dated("2024-01-01T00:00:00Z"))
    window = {"createdAtFrom": "2023-01-01T00:00:00Z", "createdAtTo": "2025-01-01T00:00:00Z", "split_windows": True}

    output = run("bigchange.contacts.list", window, FakeApi(api))

    assert len(api.bodies) == 2 and [item["id"] for item in output["items"]] == [1]


def test_descending_lists_query_the_newest_window_first() -> None:
    api = PagedApi([])
    window = {"createdAtFrom": "2023-01-01T00:00:00Z", "createdAtTo": "2025-01-01T00:00:00Z"}

    run("bigchange.jobs.list", {**window, "split_windows": True, "direction": "descending"}, FakeApi(api))

    assert [b["createdAtFrom"] for b in api.bodies] == ["2024-01-01T00:00:00Z", "2023-01-01T00:00:00Z"]


def test_max_items_stops_the_windows_too() -> None:
    api = PagedApi(dated("2023-05-01T00:00:00Z", "2024-05-01T00:00:00Z"))
    window = {"createdAtFrom": "2023-01-01T00:00:00Z", "createdAtTo": "2025-01-01T00:00:00Z"}

    output = run("bigchange.jobs.list", {**window, "split_windows": True, "max_items": 1}, FakeApi(api))

    assert len(api.bodies) == 1
    assert (len(output["items"]), output["truncated"]) == (1, True)


def test_an_open_contacts_window_needs_no_split() -> None:
    api = PagedApi(records(2))

    output = run(
        "bigchange.contacts.list", {"createdAtFrom": "2020-01-01T00:00:00Z", "split_windows": True}, FakeApi(api)
    )

    assert api.bodies == [{"createdAtFrom": "2020-01-01T00:00:00Z", "pageNumber": 1, "pageSize": 1000}]
    assert output["windows"] == 1


# --- upsert -----------------------------------------------------------------------------------------


class UpsertApi:
    """A list endpoint with `existing` and a create endpoint answering id 500."""

    def __init__(self, existing: list[dict[str, Any]]) -> None:
        self.existing = existing
        self.paths: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        if request.url.path.endswith("/create"):
            return httpx.Response(201, json={"id": 500})
        return httpx.Response(200, json={"items": self.existing, "pageItemCount": len(self.existing)})


UPSERTS = [
    ("bigchange.contacts.create", {"name": "Acme", "reference": "ACC-1"}, {"reference": "ACC-1", "name": "Old"}),
    ("bigchange.contact_groups.create", {"name": "Retail"}, {"name": " retail "}),
    ("bigchange.job_groups.create", {"name": "Refurb phase 1"}, {"name": "REFURB PHASE 1"}),
]


@pytest.mark.parametrize(("name", "payload", "match"), UPSERTS, ids=[u[0] for u in UPSERTS])
def test_upsert_returns_the_existing_record_without_creating(
    name: str, payload: dict[str, Any], match: dict[str, Any]
) -> None:
    # Given two matching records (BigChange does not enforce uniqueness) and one that does not match
    api = UpsertApi([{"id": 9, **match}, {"id": 4, **match}, {"id": 1, "reference": "X", "name": "Other"}])

    output = run(name, {**payload, "upsert": True}, FakeApi(api))

    assert (output["id"], output["created"]) == (4, False)  # the oldest match
    assert not any(path.endswith("/create") for path in api.paths)


@pytest.mark.parametrize(("name", "payload", "match"), UPSERTS, ids=[u[0] for u in UPSERTS])
def test_upsert_creates_when_nothing_matches(name: str, payload: dict[str, Any], match: dict[str, Any]) -> None:
    api = UpsertApi([{"id": 1, "reference": "ACC-10", "name": "Retailers"}])

    output = run(name, {**payload, "upsert": True}, FakeApi(api))

    assert (output["id"], output["created"]) == (500, True)
    assert api.paths[-1].endswith("/create")


def test_an_upsert_leaves_reconciliation_to_its_own_look_up() -> None:
    op = OPS["bigchange.contacts.create"]
    api = UpsertApi([{"id": 4, "reference": "ACC-1", "name": "Acme"}])

    assert op.find_existing(client_for(FakeApi(api)), op.input(name="Acme", reference="ACC-1", upsert=True)) is None
    assert api.paths == []


def test_a_reconciled_create_says_it_was_created_by_this_step() -> None:
    op = OPS["bigchange.contact_groups.create"]
    api = UpsertApi([{"id": 4, "name": "Retail"}])

    assert op.find_existing(client_for(FakeApi(api)), op.input(name="Retail")) == {
        "id": 4,
        "name": "Retail",
        "created": True,
    }


def test_contact_reconciliation_stays_strict_about_the_name_while_upsert_is_not() -> None:
    op = OPS["bigchange.contacts.create"]
    renamed = UpsertApi([{"id": 4, "reference": "ACC-1", "name": "Acme Renamed"}])

    assert op.find_existing(client_for(FakeApi(renamed)), op.input(name="Acme", reference="ACC-1")) is None
    assert (
        run("bigchange.contacts.create", {"name": "Acme", "reference": "ACC-1", "upsert": True}, FakeApi(renamed))["id"]
        == 4
    )


# --- errors for every operation -----------------------------------------------------------------


@pytest.mark.parametrize("name", CATALOGUE)
def test_every_operation_carries_the_apis_400_message(name: str) -> None:
    fake = FakeApi(httpx.Response(400, json={"code": "ERROR_CODE_INPUT_ERROR", "message": f"Bad input for {name}"}))

    with pytest.raises(PermanentStepError) as raised:
        run(name, CATALOGUE[name][2], fake)

    assert raised.value.status == 400
    assert raised.value.message == f"HTTP 400: Bad input for {name}"


@pytest.mark.parametrize(
    "name", [n for n, (_, _, payload) in CATALOGUE.items() if any(k.endswith("Id") for k in payload)]
)
def test_every_operation_names_what_a_bare_404_did_not_find(name: str) -> None:
    # Given BigChange answers 404 without saying what is missing
    with pytest.raises(PermanentStepError) as raised:
        run(name, CATALOGUE[name][2], FakeApi(httpx.Response(404, json={"title": "Not Found"})))

    # Then the error names each id the request looked up
    ids = {key: value for key, value in CATALOGUE[name][2].items() if key.endswith("Id") and value is not None}
    assert raised.value.status == 404
    assert raised.value.message.startswith("HTTP 404: Not Found (looked up ")
    for key, value in ids.items():
        assert f"{key} {value}" in raised.value.message


def test_a_404_that_names_the_record_is_left_as_it_is() -> None:
    detail = {"title": "Not Found", "detail": "Job 9 was not found"}

    with pytest.raises(PermanentStepError) as raised:
        run("bigchange.jobs.job", {"jobId": 9}, FakeApi(httpx.Response(404, json=detail)))

    assert raised.value.message == "HTTP 404: Job 9 was not found"
