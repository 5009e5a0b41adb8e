"""The BigChange vh3 connector, specified against a fake API at the transport.

Each test builds the connector's client with `connect(...)` over an
`httpx.MockTransport`, so requests are observed exactly as they would leave the
process and responses are whatever envelope the real proxy might send
(shared/reference/bigchange-api.md §2).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from redis import Redis

from engine.errors import PermanentStepError, SpecError, StepError, TransientStepError
from engine.http import ApiClient, CallLog
from engine.operations import ConnectorContext, Operation, OperationRegistry
from handlers import build_registry
from handlers.bigchange import (
    OPERATIONS,
    as_list,
    connect,
    find_constraint,
    find_contact,
    find_job,
    find_stock,
    read_error,
)
from schemas import bigchange as m
from schemas.settings import Settings

KEY = "bc-secret-key-123"
# The shared request budget lives in Redis and has its own specs (tests/engine/test_ratelimit.py).
SETTINGS = Settings(
    bigchange_base_url="https://bc.test", bigchange_api_key=SecretStr(KEY), bigchange_requests_per_second=0
)
OPS = {op.name: op for op in OPERATIONS}

Handler = Callable[[httpx.Request], httpx.Response]


class FakeApi:
    """A MockTransport handler that answers one canned response and remembers every request."""

    def __init__(self, respond: Handler | httpx.Response | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self._respond = respond if respond is not None else httpx.Response(200, json={})

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if isinstance(self._respond, httpx.Response):
            return self._respond
        return self._respond(request)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    def last_json(self) -> Any:
        return json.loads(self.last.content)


def context(settings: Settings, fake: FakeApi) -> ConnectorContext:
    """A connector context over the fake transport; Redis is not touched by these tests."""
    http = httpx.Client(transport=httpx.MockTransport(fake))
    return ConnectorContext(settings, http, CallLog(), Redis.from_url("redis://127.0.0.1:1/0"))


def client_for(fake: FakeApi, settings: Settings = SETTINGS) -> ApiClient:
    return connect(context(settings, fake))


def run(name: str, payload: dict[str, Any], fake: FakeApi) -> dict[str, Any]:
    """Run one operation the way the runner does: validate the input, then call."""
    op = OPS[name]
    return op.call(client_for(fake), op.input.model_validate(payload))


def problem(status: int, detail: str) -> httpx.Response:
    """An RFC 7807 body as BigChange REST sends it."""
    body = {"type": "https://bigchange/errors", "title": "Request failed", "status": status, "detail": detail}
    return httpx.Response(status, json=body, headers={"Content-Type": "application/problem+json"})


# --- Operations: names, methods, paths, payloads ----------------------------------------------

# Every operation with a valid input; optional fields set to None must not be sent.
WINDOW = {"createdAtFrom": "2026-01-01T00:00:00Z", "createdAtTo": "2026-02-01T00:00:00Z"}
HOURS = [{"dayOfWeek": "monday", "startTime": "08:00", "endTime": "17:00"}]
CATALOGUE: dict[str, tuple[str, str, dict[str, Any]]] = {
    "bigchange.contacts.contact": ("GET", "/contacts/contact", {"contactId": 5}),
    "bigchange.contacts.create": ("POST", "/contacts/create", {"name": "Acme", "reference": "ACC-1", "town": None}),
    "bigchange.contacts.edit": ("POST", "/contacts/edit", {"contactId": 5, "name": "Acme Ltd", "street": None}),
    "bigchange.contacts.list": ("POST", "/contacts/list", {"reference": ["ACC-1"], "status": None}),
    "bigchange.contacts.on_stop": (
        "POST",
        "/contacts/on_stop",
        {"contactId": 5, "status": "creditLimitOnStop", "stopReason": None},
    ),
    "bigchange.contacts.unstop": ("POST", "/contacts/unstop", {"contactId": 5, "appliesTo": "contactAndChildren"}),
    "bigchange.contacts.site_access_hours_list": (
        "POST",
        "/contacts/site_access_hours_list",
        {"contactId": 5, "pageSize": None},
    ),
    "bigchange.contacts.site_access_hours_update": (
        "POST",
        "/contacts/site_access_hours_update",
        {"contactId": 5, "body": HOURS},
    ),
    "bigchange.contact_groups.contact_group": ("GET", "/contact_groups/contact_group", {"contactGroupId": 99}),
    "bigchange.contact_groups.create": ("POST", "/contact_groups/create", {"name": "Retail"}),
    "bigchange.contact_groups.list": ("POST", "/contact_groups/list", {"pageNumber": 1, "pageSize": 50}),
    "bigchange.contact_groups.update": ("POST", "/contact_groups/update", {"contactGroupId": 99, "name": "Retail UK"}),
    "bigchange.jobs.job": ("GET", "/jobs/job", {"jobId": 9}),
    "bigchange.jobs.create": ("POST", "/jobs/create", {"typeId": 3, "contactId": 5, "description": None}),
    "bigchange.jobs.edit": ("POST", "/jobs/edit", {"jobId": 9, "description": "Updated", "officeNotes": None}),
    "bigchange.jobs.list": ("POST", "/jobs/list", {**WINDOW, "status": None}),
    "bigchange.jobs.cancel": ("POST", "/jobs/cancel", {"jobId": 9, "reason": "Customer cancelled"}),
    "bigchange.jobs.start": ("POST", "/jobs/start", {"jobId": 9, "comment": None}),
    "bigchange.jobs.result": ("POST", "/jobs/result", {"jobId": 9, "status": "completedOk", "result": "Job complete"}),
    "bigchange.jobs.scheduling": ("POST", "/jobs/scheduling", {"jobId": 9, "resourceId": 100, "vehicleId": None}),
    "bigchange.jobs.status.history": ("POST", "/jobs/status/history", {"jobId": 9, "pageNumber": 1}),
    "bigchange.jobs.constraints.create": (
        "POST",
        "/jobs/constraints/create",
        {"jobId": 9, "type": "jobMustStartAfter", "constraintAt": "2026-04-20T09:00:00Z", "entityId": None},
    ),
    "bigchange.jobs.constraints.delete": ("POST", "/jobs/constraints/delete", {"jobId": 9, "constraintId": 1}),
    "bigchange.jobs.constraints.list": ("POST", "/jobs/constraints/list", {"jobId": 9, "pageNumber": None}),
    "bigchange.jobs.stock.create": (
        "POST",
        "/jobs/stock/create",
        {"jobId": 9, "stockDetailsId": 10, "quantityPlanned": 1},
    ),
    "bigchange.jobs.stock.delete": ("POST", "/jobs/stock/delete", {"jobId": 9, "jobStockId": 5}),
    "bigchange.jobs.stock.get": ("POST", "/jobs/stock/get", {"jobId": 9, "jobStockId": 5}),
    "bigchange.jobs.stock.list": ("POST", "/jobs/stock/list", {"jobId": 9, "pageSize": 20}),
    "bigchange.job_groups.create": ("POST", "/job_groups/create", {"name": "Refurb phase 1"}),
    "bigchange.job_groups.edit": ("POST", "/job_groups/edit", {"jobGroupId": 10, "name": "Refurb phase 1"}),
    "bigchange.job_groups.job_group": ("POST", "/job_groups/job_group", {"jobGroupId": 10}),
    "bigchange.job_groups.list": ("POST", "/job_groups/list", {"pageNumber": 1, "pageSize": 20}),
    "bigchange.job_groups.status_history": ("POST", "/job_groups/status_history", {"jobGroupId": 10}),
    "bigchange.job_groups.job_group_results_as_complete": (
        "POST",
        "/job_groups/job_group_results_as_complete",
        {"jobGroupId": 10},
    ),
    "bigchange.job_groups.job_group_results_as_financially_complete": (
        "POST",
        "/job_groups/job_group_results_as_financially_complete",
        {"jobGroupId": 10},
    ),
    "bigchange.job_types.job_types": ("POST", "/job_types/job_types", {"jobTypeId": 42}),
    "bigchange.job_types.list": ("POST", "/job_types/list", {"pageNumber": 1, "pageSize": 100}),
}
GETS = [name for name, (method, _, _) in CATALOGUE.items() if method == "GET"]
POSTS = [name for name, (method, _, _) in CATALOGUE.items() if method == "POST"]


def ok_response_for(name: str) -> httpx.Response:
    # Creates must answer an id; everything else accepts any JSON object.
    return httpx.Response(201, json={"id": 1}) if name.endswith(".create") else httpx.Response(200, json={})


def test_the_catalogue_lists_every_operation_once() -> None:
    assert sorted(OPS) == sorted(CATALOGUE)
    assert len(OPERATIONS) == len(OPS)


@pytest.mark.parametrize("name", CATALOGUE)
def test_the_name_is_bigchange_plus_the_path_with_dots(name: str) -> None:
    _, path, _ = CATALOGUE[name]
    assert name == "bigchange" + path.replace("/", ".")


@pytest.mark.parametrize("name", CATALOGUE)
def test_each_operation_calls_its_method_and_path_with_the_api_key(name: str) -> None:
    method, path, payload = CATALOGUE[name]
    fake = FakeApi(ok_response_for(name))

    run(name, payload, fake)

    assert len(fake.requests) == 1
    assert fake.last.method == method
    assert fake.last.url.host == "bc.test"
    assert fake.last.url.path == path
    assert fake.last.headers["X-API-Key"] == KEY


@pytest.mark.parametrize("name", GETS)
def test_get_operations_send_the_input_as_query_parameters_and_no_body(name: str) -> None:
    _, _, payload = CATALOGUE[name]
    fake = FakeApi()

    run(name, payload, fake)

    assert dict(fake.last.url.params) == {key: str(value) for key, value in payload.items()}
    assert fake.last.content == b""


@pytest.mark.parametrize("name", POSTS)
def test_post_operations_send_the_input_as_json_without_nulls(name: str) -> None:
    _, _, payload = CATALOGUE[name]
    fake = FakeApi(ok_response_for(name))

    run(name, payload, fake)

    # Then: exactly the non-null fields (plus model defaults), as JSON, and no query string
    sent = fake.last_json()
    expected = m.api_payload(OPS[name].input.model_validate(payload))
    assert sent == expected
    assert m.option_names(OPS[name].input).isdisjoint(sent)  # paginate, max_items, upsert … stay here
    assert {key for key, value in payload.items() if value is None}.isdisjoint(sent)
    assert b"null" not in fake.last.content
    assert fake.last.headers["Content-Type"] == "application/json"
    assert fake.last.url.query == b""


def test_post_bodies_carry_datetimes_in_bigchange_utc_format() -> None:
    fake = FakeApi()

    run("bigchange.jobs.scheduling", {"jobId": 9, "plannedStartAt": "2026-04-20T10:30:00.250+01:00"}, fake)

    assert fake.last_json()["plannedStartAt"] == "2026-04-20T09:30:00Z"


def test_a_trailing_slash_on_the_base_url_does_not_double_the_slash() -> None:
    fake = FakeApi()
    settings = SETTINGS.model_copy(update={"bigchange_base_url": "https://bc.test/api:abc/"})
    op = OPS["bigchange.contacts.contact"]

    op.call(connect(context(settings, fake)), m.ContactGet(contactId=5))

    assert fake.last.url.path == "/api:abc/contacts/contact"


def test_connect_without_an_api_key_is_a_permanent_error_naming_the_variable() -> None:
    settings = Settings(bigchange_base_url="https://bc.test", bigchange_api_key=None)

    with pytest.raises(PermanentStepError, match="BIGCHANGE_API_KEY"):
        connect(context(settings, FakeApi()))


# --- Registry ---------------------------------------------------------------------------------


def test_the_registry_holds_every_bigchange_operation() -> None:
    registry = build_registry()

    assert all(name in registry for name in CATALOGUE)
    assert registry.get("bigchange.jobs.constraints.create") is OPS["bigchange.jobs.constraints.create"]


def test_the_registry_refuses_a_duplicate_name() -> None:
    op = OPS["bigchange.contacts.create"]

    with pytest.raises(ValueError, match=r"bigchange\.contacts\.create"):
        OperationRegistry([op, Operation(name=op.name, input=op.input, call=op.call, connect=op.connect)])


@pytest.mark.parametrize(
    ("typo", "suggestion"),
    [
        ("bigchange.contacts.creat", "bigchange.contacts.create"),
        ("bigchange.contact.on_stop", "bigchange.contacts.on_stop"),
        ("bigchange.jobs.constraint.create", "bigchange.jobs.constraints.create"),
    ],
)
def test_an_unknown_name_is_a_spec_error_suggesting_the_nearest(typo: str, suggestion: str) -> None:
    with pytest.raises(SpecError, match=f"did you mean '{suggestion}'"):
        build_registry().get(typo)


def test_an_unknown_name_with_nothing_close_has_no_suggestion() -> None:
    with pytest.raises(SpecError) as raised:
        build_registry().get("nothing.like.this")

    assert "did you mean" not in str(raised.value)


# --- Create outputs ---------------------------------------------------------------------------

CREATES = [name for name in CATALOGUE if name.endswith(".create")]
ID_ENVELOPES = {
    "bare": {"id": 42},
    "result": {"result": {"id": 42}},
    "response.result": {"response": {"result": {"id": 42}}},
    "data": {"data": {"id": 42}},
}


@pytest.mark.parametrize("envelope", ID_ENVELOPES.values(), ids=ID_ENVELOPES.keys())
@pytest.mark.parametrize("name", CREATES)
def test_a_create_outputs_the_new_id_from_any_envelope(name: str, envelope: dict[str, Any]) -> None:
    output = run(name, CATALOGUE[name][2], FakeApi(httpx.Response(201, json=envelope)))

    assert output["id"] == 42


def test_a_create_output_keeps_the_other_fields_of_the_record() -> None:
    body = {"response": {"result": {"id": 42, "name": "Acme"}}}

    output = run("bigchange.contacts.create", {"name": "Acme"}, FakeApi(httpx.Response(201, json=body)))

    assert output == {"id": 42, "name": "Acme", "created": True}


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(201, json={}),
        httpx.Response(200, json={"result": {"name": "Acme"}}),
        httpx.Response(201, json={"id": None}),
        httpx.Response(201),
        httpx.Response(200, text="Created"),
    ],
    ids=["empty-object", "no-id-in-result", "null-id", "empty-body", "text"],
)
@pytest.mark.parametrize("name", CREATES)
def test_a_create_answered_without_an_id_is_permanent_with_outcome_unknown(name: str, response: httpx.Response) -> None:
    # Given: the API accepted the create (2xx) but told us no id
    # When/Then: the step cannot chain from it, and a retry must reconcile rather than create again
    with pytest.raises(PermanentStepError) as raised:
        run(name, CATALOGUE[name][2], FakeApi(response))

    assert raised.value.outcome_unknown is True
    assert "without an id" in raised.value.message


# --- List outputs -----------------------------------------------------------------------------

LISTS = [name for name, (_, path, _) in CATALOGUE.items() if path.endswith("list") or path.endswith("history")]
ITEMS = [{"id": 1}, {"id": 2}]
LIST_ENVELOPES = {
    "bare": {"items": ITEMS, "pageItemCount": 2},
    "result": {"result": {"items": ITEMS, "pageItemCount": 2}},
    "response.result": {"response": {"result": {"items": ITEMS, "pageItemCount": 2}}},
    "list": ITEMS,
}


@pytest.mark.parametrize("envelope", LIST_ENVELOPES.values(), ids=LIST_ENVELOPES.keys())
@pytest.mark.parametrize("name", LISTS)
def test_a_list_outputs_items_and_page_item_count_from_any_envelope(name: str, envelope: Any) -> None:
    output = run(name, CATALOGUE[name][2], FakeApi(httpx.Response(200, json=envelope)))

    assert output == {"items": ITEMS, "pageItemCount": 2}


@pytest.mark.parametrize(
    "envelope",
    [{"items": ITEMS}, {"result": {"items": ITEMS}}, {"response": {"result": {"items": ITEMS}}}],
    ids=["bare", "result", "response.result"],
)
def test_page_item_count_falls_back_to_the_number_of_items(envelope: dict[str, Any]) -> None:
    output = run("bigchange.contacts.list", {}, FakeApi(httpx.Response(200, json=envelope)))

    assert output == {"items": ITEMS, "pageItemCount": 2}


def test_page_item_count_from_the_api_is_kept_even_if_it_differs() -> None:
    body = {"items": ITEMS, "pageItemCount": 7}

    output = run("bigchange.contacts.list", {}, FakeApi(httpx.Response(200, json=body)))

    assert output["pageItemCount"] == 7


@pytest.mark.parametrize("response", [httpx.Response(200, json={}), httpx.Response(204)], ids=["no-items", "empty"])
def test_a_list_without_items_is_an_empty_page(response: httpx.Response) -> None:
    assert run("bigchange.contacts.list", {}, FakeApi(response)) == {"items": [], "pageItemCount": 0}


# --- Writes without a body --------------------------------------------------------------------

BODYLESS = [
    "bigchange.contacts.on_stop",
    "bigchange.contacts.unstop",
    "bigchange.contacts.site_access_hours_update",
    "bigchange.jobs.scheduling",
    "bigchange.jobs.cancel",
    "bigchange.jobs.start",
    "bigchange.jobs.result",
    "bigchange.jobs.stock.delete",
    "bigchange.job_groups.job_group_results_as_complete",
]


@pytest.mark.parametrize(
    "response",
    [httpx.Response(204), httpx.Response(200, content=b""), httpx.Response(200, json={})],
    ids=["204", "200-empty", "200-empty-object"],
)
@pytest.mark.parametrize("name", BODYLESS)
def test_a_write_answered_without_a_body_outputs_an_empty_object(name: str, response: httpx.Response) -> None:
    assert run(name, CATALOGUE[name][2], FakeApi(response)) == {}


def test_a_record_is_unwrapped_from_its_envelope() -> None:
    body = {"response": {"result": {"id": 5, "name": "Acme"}}}

    output = run("bigchange.contacts.contact", {"contactId": 5}, FakeApi(httpx.Response(200, json=body)))

    assert output == {"id": 5, "name": "Acme"}


# --- Errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (httpx.Response(400, json={"code": "ERROR_CODE_INPUT_ERROR", "message": "Missing: name"}), "Missing: name"),
        (httpx.Response(422, json={"title": "Validation failed", "detail": "name is required"}), "name is required"),
        (httpx.Response(422, json={"title": "Validation failed"}), "Validation failed"),
        (httpx.Response(422, json={"message": "", "detail": "from detail"}), "from detail"),
        (httpx.Response(502, text="<html>Bad gateway</html>"), "<html>Bad gateway</html>"),
        (httpx.Response(500, json="Internal error"), "Internal error"),
    ],
    ids=["message", "detail-over-title", "title", "empty-message-skipped", "raw-text", "json-string"],
)
def test_read_error_takes_message_then_detail_then_title_then_the_text(response: httpx.Response, message: str) -> None:
    assert read_error(response) == message


def test_read_error_of_an_empty_body_is_the_reason_phrase() -> None:
    assert read_error(httpx.Response(503)) == "Service Unavailable"


def test_read_error_of_a_json_object_without_a_message_is_the_raw_body_text() -> None:
    response = httpx.Response(400, json={"code": "ERROR_CODE_INPUT_ERROR", "payload": {"param": "name"}})

    assert read_error(response) == response.text


@pytest.mark.parametrize("status", [401, 403])
def test_an_auth_failure_is_permanent_and_points_at_the_api_key(status: int) -> None:
    fake = FakeApi(httpx.Response(status, json={"code": "ERROR_CODE_ACCESS_DENIED", "message": "Invalid key"}))

    with pytest.raises(PermanentStepError) as raised:
        run("bigchange.contacts.contact", {"contactId": 5}, fake)

    assert raised.value.status == status
    assert "Invalid key" in raised.value.message
    assert "check BIGCHANGE_API_KEY" in raised.value.message
    assert KEY not in raised.value.message


def test_a_404_keeps_the_apis_detail_naming_the_missing_record() -> None:
    fake = FakeApi(problem(404, "Contact 99 was not found"))

    with pytest.raises(PermanentStepError) as raised:
        run("bigchange.jobs.create", {"typeId": 3, "contactId": 99}, fake)

    assert raised.value.status == 404
    assert "Contact 99 was not found" in raised.value.message
    assert "BIGCHANGE_API_KEY" not in raised.value.message


@pytest.mark.parametrize("status", [400, 422])
def test_a_validation_failure_is_permanent_with_the_apis_message(status: int) -> None:
    fake = FakeApi(httpx.Response(status, json={"message": "description is required"}))

    with pytest.raises(PermanentStepError) as raised:
        run("bigchange.jobs.create", {"typeId": 3, "contactId": 5}, fake)

    assert raised.value.status == status
    assert "description is required" in raised.value.message
    assert not isinstance(raised.value, TransientStepError)


@pytest.mark.parametrize(
    ("status", "outcome_unknown"),
    [(408, False), (429, False), (500, True), (502, True), (503, True)],
)
def test_timeouts_rate_limits_and_server_errors_are_transient(status: int, outcome_unknown: bool) -> None:
    # A 5xx may follow a committed change; 408/429 mean the API did nothing.
    fake = FakeApi(httpx.Response(status, json={"message": "try later"}))

    with pytest.raises(TransientStepError) as raised:
        run("bigchange.contacts.create", {"name": "Acme", "reference": "ACC-1"}, fake)

    assert raised.value.status == status
    assert raised.value.outcome_unknown is outcome_unknown
    assert "try later" in raised.value.message


def test_a_429_honours_retry_after_in_seconds() -> None:
    fake = FakeApi(httpx.Response(429, json={"message": "slow down"}, headers={"Retry-After": "7"}))

    with pytest.raises(TransientStepError) as raised:
        run("bigchange.contacts.list", {}, fake)

    assert raised.value.retry_after == 7.0


def test_a_429_honours_retry_after_as_an_http_date() -> None:
    # An HTTP-date already past means "retry now"; the arithmetic itself is specified in test_errors.
    fake = FakeApi(httpx.Response(429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}))

    with pytest.raises(TransientStepError) as raised:
        run("bigchange.contacts.list", {}, fake)

    assert raised.value.retry_after == 0.0


def test_a_429_without_retry_after_leaves_the_delay_to_the_backoff() -> None:
    with pytest.raises(TransientStepError) as raised:
        run("bigchange.contacts.list", {}, FakeApi(httpx.Response(429)))

    assert raised.value.retry_after is None


def _raise(exc_type: type[httpx.TransportError]) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc_type("simulated", request=request)

    return handler


@pytest.mark.parametrize(
    ("exc_type", "outcome_unknown"),
    [(httpx.ConnectError, False), (httpx.ReadTimeout, True)],
    ids=["connect-error-never-sent", "read-timeout-maybe-done"],
)
def test_a_transport_failure_is_transient(exc_type: type[httpx.TransportError], outcome_unknown: bool) -> None:
    with pytest.raises(TransientStepError) as raised:
        run("bigchange.contacts.create", {"name": "Acme", "reference": "ACC-1"}, FakeApi(_raise(exc_type)))

    assert raised.value.outcome_unknown is outcome_unknown
    assert raised.value.status is None
    assert isinstance(raised.value.__cause__, exc_type)


@pytest.mark.parametrize("status", [301, 302, 307])
def test_a_redirect_is_not_mistaken_for_success(status: int) -> None:
    fake = FakeApi(httpx.Response(status, headers={"Location": "https://elsewhere.test/contacts/on_stop"}))

    with pytest.raises(StepError):
        run("bigchange.contacts.on_stop", {"contactId": 5, "status": "contactOnStop"}, fake)


# --- Reconciliation: find what an earlier attempt created -------------------------------------


def items(*records: dict[str, Any]) -> httpx.Response:
    return httpx.Response(200, json={"items": list(records), "pageItemCount": len(records)})


def test_find_contact_without_a_reference_finds_nothing_and_asks_nothing() -> None:
    fake = FakeApi()

    assert find_contact(client_for(fake), m.ContactCreate(name="Acme")) is None
    assert fake.requests == []


def test_find_contact_lists_contacts_by_reference() -> None:
    fake = FakeApi(items())

    find_contact(client_for(fake), m.ContactCreate(name="Acme", reference="ACC-1"))

    assert (fake.last.method, fake.last.url.path) == ("POST", "/contacts/list")
    assert fake.last_json()["reference"] == ["ACC-1"]


def test_find_contact_accepts_only_an_exact_reference_and_name_match() -> None:
    # Given: the API's reference filter is looser than ours (prefix, case) and a namesake exists
    fake = FakeApi(
        items(
            {"id": 1, "reference": "ACC-1", "name": "Other Ltd"},
            {"id": 2, "reference": "ACC-10", "name": "Acme"},
            {"id": 3, "reference": "acc-1", "name": "Acme"},
            {"id": 4, "reference": "ACC-1", "name": "Acme", "town": "Leeds"},
        )
    )

    # When
    found = find_contact(client_for(fake), m.ContactCreate(name="Acme", reference="ACC-1"))

    # Then: only the exact match, with its whole record
    assert found == {"id": 4, "reference": "ACC-1", "name": "Acme", "town": "Leeds"}


def test_find_contact_without_an_exact_match_is_none() -> None:
    fake = FakeApi(httpx.Response(200, json={"result": {"items": [{"id": 1, "reference": "ACC-1", "name": "Other"}]}}))

    assert find_contact(client_for(fake), m.ContactCreate(name="Acme", reference="ACC-1")) is None


def test_find_job_without_a_reference_finds_nothing_and_asks_nothing() -> None:
    fake = FakeApi()

    assert find_job(client_for(fake), m.JobCreate(typeId=3, contactId=5)) is None
    assert fake.requests == []


def test_find_job_asks_for_a_valid_window_of_at_most_12_months_that_includes_now() -> None:
    fake = FakeApi(items())
    before = datetime.now(timezone.utc).replace(microsecond=0)

    find_job(client_for(fake), m.JobCreate(typeId=3, contactId=5, reference="JOB-1"))

    after = datetime.now(timezone.utc)
    assert (fake.last.method, fake.last.url.path) == ("POST", "/jobs/list")
    sent = m.JobList.model_validate(fake.last_json())  # the request is itself a valid /jobs/list input
    assert not m.months_apart(sent.createdAtFrom, sent.createdAtTo)
    assert sent.createdAtFrom <= before
    assert sent.createdAtTo >= after


def test_find_job_filters_by_reference_and_contact() -> None:
    fake = FakeApi(items())

    find_job(client_for(fake), m.JobCreate(typeId=3, contactId=5, reference="JOB-1"))

    sent = fake.last_json()
    assert sent["reference"] == ["JOB-1"]
    assert sent["contactId"] == "5"  # the docs type contactId as comma-separated text


def test_find_job_matches_reference_contact_and_type() -> None:
    fake = FakeApi(
        items(
            {"id": 10, "reference": "JOB-1", "contactId": 5, "typeId": 4},
            {"id": 11, "reference": "JOB-1", "contactId": 6, "typeId": 3},
            {"id": 12, "reference": "JOB-1", "contactId": 5, "typeId": 3},
        )
    )

    found = find_job(client_for(fake), m.JobCreate(typeId=3, contactId=5, reference="JOB-1"))

    assert found is not None
    assert found["id"] == 12


def test_find_job_with_only_a_different_type_is_none() -> None:
    fake = FakeApi(items({"id": 10, "reference": "JOB-1", "contactId": 5, "typeId": 4}))

    assert find_job(client_for(fake), m.JobCreate(typeId=3, contactId=5, reference="JOB-1")) is None


CONSTRAINTS = [
    {"id": 1, "jobId": 9, "type": "jobMustStartBefore", "constraintAt": "2026-04-20T09:00:00Z"},
    {"id": 2, "jobId": 9, "type": "jobMustStartAfter", "constraintAt": "2026-04-19T09:00:00Z"},
    {"id": 3, "jobId": 9, "type": "jobMustStartAfter", "constraintAt": "2026-04-20T09:00:00Z"},
    {"id": 4, "jobId": 9, "type": "jobResource", "entityId": 100},
    {"id": 5, "jobId": 9, "type": "jobResource", "entityId": 101},
    {"id": 6, "jobId": 9, "type": "jobMustStartInAvailableHours"},
]


@pytest.mark.parametrize(
    ("wanted", "found_id"),
    [
        ({"type": "jobMustStartAfter", "constraintAt": "2026-04-20T10:00:00+01:00"}, 3),
        ({"type": "jobMustStartAfter", "constraintAt": "2026-04-21T09:00:00Z"}, None),
        ({"type": "jobResource", "entityId": 101}, 5),
        ({"type": "jobResource", "entityId": 102}, None),
        ({"type": "jobMustStartInAvailableHours"}, 6),
        ({"type": "jobMustCompleteInAvailableHours"}, None),
    ],
    ids=["same-instant", "other-date", "same-entity", "other-entity", "same-type", "other-type"],
)
def test_find_constraint_matches_type_date_and_entity(wanted: dict[str, Any], found_id: int | None) -> None:
    fake = FakeApi(items(*CONSTRAINTS))

    found = find_constraint(client_for(fake), m.ConstraintCreate(jobId=9, **wanted))

    assert (found or {}).get("id") == found_id
    assert (fake.last.url.path, fake.last_json()["jobId"]) == ("/jobs/constraints/list", 9)


@pytest.mark.parametrize("echoed", ["2026-04-20T09:00:00.000Z", "2026-04-20T09:00:00+00:00"])
def test_find_constraint_recognises_the_same_instant_in_another_iso_spelling(echoed: str) -> None:
    fake = FakeApi(items({"id": 3, "jobId": 9, "type": "jobMustStartAfter", "constraintAt": echoed}))

    found = find_constraint(
        client_for(fake), m.ConstraintCreate(jobId=9, type="jobMustStartAfter", constraintAt="2026-04-20T09:00:00Z")
    )

    assert found is not None
    assert found["id"] == 3


@pytest.mark.parametrize("name", CREATES)
def test_every_create_has_a_finder_and_a_natural_key(name: str) -> None:
    assert OPS[name].find_existing is not None
    assert OPS[name].natural_key
    assert set(OPS[name].natural_key) <= set(OPS[name].input.model_fields)


@pytest.mark.parametrize(
    ("name", "finder", "payload"),
    [
        ("bigchange.contacts.create", find_contact, {"name": "Acme", "reference": "ACC-1"}),
        ("bigchange.jobs.create", find_job, {"typeId": 3, "contactId": 5, "reference": "JOB-1"}),
        ("bigchange.jobs.constraints.create", find_constraint, {"jobId": 9, "type": "jobMustStartInAvailableHours"}),
        ("bigchange.jobs.stock.create", find_stock, {"jobId": 9, "stockDetailsId": 10, "quantityPlanned": 2}),
    ],
)
def test_reconciling_a_create_asks_its_finder(name: str, finder: Callable[..., Any], payload: dict[str, Any]) -> None:
    # Given: the record is there, as a lost attempt left it
    record = {"id": 77, **{key: value for key, value in payload.items() if key != "type"}}
    if "type" in payload:
        record["type"] = payload["type"]
    op, inp = OPS[name], OPS[name].input.model_validate(payload)

    # When the runner reconciles, the operation's finder and the declared finder agree
    found = op.find_existing(client_for(FakeApi(items(record))), inp)

    assert found is not None and found["id"] == 77
    assert finder(client_for(FakeApi(items(record))), inp)["id"] == 77


# --- Hardening ----------------------------------------------------------------------------------


def test_an_empty_api_key_counts_as_unset() -> None:
    with pytest.raises(PermanentStepError, match="BIGCHANGE_API_KEY is not set"):
        client_for(FakeApi(), Settings(bigchange_base_url="https://bc.test", bigchange_api_key=SecretStr("")))


def test_a_record_with_a_result_field_is_not_unwrapped() -> None:
    body = {"result": {"status": "completedOk", "comment": "done"}, "id": 7}
    output = run("bigchange.jobs.job", {"jobId": 7}, FakeApi(httpx.Response(200, json=body)))
    assert output == body


def test_a_null_page_item_count_falls_back_to_the_number_of_items() -> None:
    assert as_list({"items": [{"id": 1}, {"id": 2}], "pageItemCount": None}) == {
        "items": [{"id": 1}, {"id": 2}],
        "pageItemCount": 2,
    }
