"""The additiv connector, specified against a fake API at the transport.

Requests are observed as they leave the process (`httpx.MockTransport`); responses
use additiv's ApiError envelope and the shapes of shared/api-docs/additiv-client-contacts.txt.
The contact create's notes live in Redis; the tests of them use the real one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from pydantic import SecretStr
from redis import Redis

from engine.errors import PermanentStepError, TransientStepError
from engine.http import CallLog
from engine.operations import ConnectorContext
from handlers import build_registry
from handlers.additiv import OPERATIONS
from handlers.additiv.client import CONFIRMED, ROUTES, AdditivApi, connect, read_error
from handlers.additiv.contacts import find_created
from handlers.additiv.links import LinkNotes
from sandbox.mounts import sandbox_settings
from schemas import additiv as m
from schemas.settings import Settings
from tests.conftest import SANDBOX_KEY

TOKEN = "dfs-access-token-0001"
SETTINGS = Settings(additiv_base_url="https://dfs.test/gw", additiv_token=SecretStr(TOKEN))
OPS = {op.name: op for op in OPERATIONS}
JOB = "8a16feed-2e0d-4228-8fbb-a05bb4aba530"
UID = "497f6eca-6276-4993-bfeb-53cbbbba6f08"
LINK = {"system": "CRM", "externalId": "CRM-1"}
NO_REDIS = Redis.from_url("redis://127.0.0.1:1/0")

Answer = httpx.Response | dict[str, Any] | str | None | Callable[[httpx.Request], httpx.Response]


def api_error(status: int, message: str, sub_code: str = "NA", code: str = "BadRequest") -> httpx.Response:
    body = {"code": code, "subCode": sub_code, "message": message, "correlationId": "30d3ebc0b5cb"}
    return httpx.Response(status, json=body)


class FakeApi:
    """Answers canned responses in turn (the last one repeats); remembers every request."""

    def __init__(self, *answers: Answer) -> None:
        self.requests: list[httpx.Request] = []
        self._answers = list(answers) or [{}]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self._answers[min(len(self.requests), len(self._answers)) - 1]
        if answer is None:
            return httpx.Response(204)
        if isinstance(answer, dict):
            return httpx.Response(200, json=answer)
        if isinstance(answer, str):
            return httpx.Response(200, text=answer, headers={"Content-Type": "text/csv"})
        return answer if isinstance(answer, httpx.Response) else answer(request)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    def calls(self) -> list[str]:
        return [f"{r.method} {r.url.path}" for r in self.requests]


def client_for(fake: FakeApi, settings: Settings = SETTINGS, redis: Redis = NO_REDIS, run_id: str = "") -> AdditivApi:
    http = httpx.Client(transport=httpx.MockTransport(fake))
    return connect(
        ConnectorContext(settings, http, CallLog(), redis, run_id=run_id, step_id="client" if run_id else "")
    )


def run(name: str, payload: dict[str, Any], fake: FakeApi, settings: Settings = SETTINGS, **kw: Any) -> Any:
    op = OPS[name]
    return op.call(client_for(fake, settings, **kw), op.input.model_validate(payload))


def failure(name: str, payload: dict[str, Any], *answers: Answer) -> PermanentStepError:
    with pytest.raises(PermanentStepError) as caught:
        run(name, payload, FakeApi(*answers))
    return caught.value


# --- Operations: names, methods, paths, payloads --------------------------------------------------------

CATALOGUE: dict[str, tuple[str, str, dict[str, Any], dict[str, Any] | None]] = {
    # name: (method, path after the base, input, what goes out: query (GET) or JSON body)
    "additiv.contacts.create": ("POST", "/v1.0/contacts", {"contactTypeId": 1, "details": {}}, None),
    "additiv.contacts.details.get": ("GET", "/v1.0/contacts/5/details", {"contactId": 5}, {}),
    "additiv.contacts.details.patch": (
        "PATCH",
        "/v1.0/contacts/5/details",
        {"contactId": 5, "details": {"a": 1}, "comment": None},
        {"details": {"a": 1}},
    ),
    "additiv.contacts.details.put": (
        "PUT",
        "/v1.0/contacts/5/details",
        {"contactId": 5, "details": {}, "comment": "c"},
        {"details": {}, "comment": "c"},
    ),
    "additiv.contacts.details.change_history.search": (
        "GET",
        "/v1.1/contacts/5/details/change-history/search",
        {"contactId": 5, "page": 2, "executionDateFrom": "2026-01-01T01:00:00+01:00"},
        {"page": 2, "executionDateFrom": "2026-01-01T00:00:00Z"},
    ),
    "additiv.contacts.external_connections.list": (
        "GET",
        "/v1.0/contacts/5/external-connections",
        {"contactId": 5},
        {},
    ),
    "additiv.contacts.external_connections.add": (
        "POST",
        "/v1.0/contacts/5/external-connections",
        {"contactId": 5, **LINK},
        LINK,
    ),
    "additiv.contacts.external_connections.find": ("GET", "/v1.0/contacts/external-connections", LINK, LINK),
    "additiv.contacts.username.get": ("GET", "/v1.0/contacts/5/username", {"contactId": 5}, {}),
    "additiv.contacts.username.put": (
        "PUT",
        "/v1.0/contacts/5/username",
        {"contactId": 5, "username": "u"},
        {"username": "u"},
    ),
    "additiv.contacts.change_requests.search": (
        "POST",
        "/v1.0/contacts/change-requests/search",
        {"statusId": 1, "contactIds": [5], "initiatorMemberUids": [UID]},
        {"statusId": 1, "contactIds": [5], "initiatorMemberUids": [UID]},
    ),
    "additiv.contacts.change_requests.statuses": ("GET", "/v1.0/contacts/change-requests/statuses", {}, {}),
    "additiv.contacts.change_requests.get": (
        "GET",
        "/v1.1/contacts/5/change-requests/9",
        {"contactId": 5, "changeRequestId": 9},
        {},
    ),
    "additiv.contacts.change_requests.review": (
        "POST",
        "/v1.0/contacts/5/change-requests/9/review",
        {"contactId": 5, "changeRequestId": 9, "isApproved": False, "comment": "no"},
        {"isApproved": False, "comment": "no"},
    ),
    "additiv.contacts.pending_change_request.check": (
        "GET",
        "/v1.1/contacts/5/pending-change-request/check",
        {"contactId": 5},
        {},
    ),
    "additiv.contacts.export": ("POST", "/v1.0/contacts/export", {}, None),
    "additiv.contacts.export.get": ("GET", f"/v1.0/contacts/export/{JOB}", {"exportJobId": JOB}, {}),
    "additiv.legalentities.create": (
        "POST",
        "/v1.1/legalentities",
        {"contacts": [{"contactId": 5, "accessPolicyKeys": ["Owner"]}], "details": {"name": "Keller AG"}},
        {"contacts": [{"contactId": 5, "accessPolicyKeys": ["Owner"]}], "details": {"name": "Keller AG"}},
    ),
    "additiv.legalentities.details.get": ("GET", "/v1.0/legalentities/7/details", {"legalEntityId": 7}, {}),
    "additiv.legalentities.details.put": (
        "PUT",
        "/v1.0/legalentities/7/details",
        {"legalEntityId": 7, "details": {"name": "K"}},
        {"details": {"name": "K"}},
    ),
}


def ok_answer(name: str) -> Answer:
    return {
        "additiv.contacts.create": {"id": 1, "uId": UID},
        "additiv.contacts.export": {"exportJobId": JOB},
        "additiv.contacts.export.get": "id\n1\n",
        "additiv.legalentities.create": {"id": 7, "details": {}},
    }.get(name, {})


def test_the_catalogue_is_every_operation_and_the_registry_has_them() -> None:
    assert sorted(OPS) == sorted(CATALOGUE) == sorted(ROUTES)
    assert set(CATALOGUE) <= {op.name for op in build_registry()}


@pytest.mark.parametrize("name", CATALOGUE)
def test_each_operation_calls_its_route_with_the_bearer_token(name: str) -> None:
    method, path, payload, _ = CATALOGUE[name]
    fake = FakeApi(ok_answer(name))
    run(name, payload, fake)
    assert (len(fake.requests), fake.last.method, fake.last.url.path) == (1, method, "/gw" + path)
    assert fake.last.headers["Authorization"] == f"Bearer {TOKEN}"
    assert "Accept-Language" not in fake.last.headers


@pytest.mark.parametrize("name", [n for n, spec in CATALOGUE.items() if spec[3] is not None])
def test_the_remaining_fields_go_in_the_query_for_reads_and_the_json_body_for_writes(name: str) -> None:
    method, _, payload, sent = CATALOGUE[name]
    fake = FakeApi(ok_answer(name))
    run(name, payload, fake)
    in_body = method != "GET" or name.endswith("change_history.search")  # documented as GET with a JSON body
    if in_body:
        assert json.loads(fake.last.content) == sent
    else:
        assert dict(parse_qsl(fake.last.url.query.decode())) == sent and fake.last.content == b""


def test_the_docs_say_which_routes_are_confirmed() -> None:
    assert OPS["additiv.legalentities.create"].summary == "POST /v1.1/legalentities (confirmed)"
    assert OPS["additiv.contacts.create"].summary == "POST /v1.0/contacts (inferred)"
    assert set(ROUTES) >= CONFIRMED


def test_accept_language_is_sent_when_configured() -> None:
    fake = FakeApi()
    run(
        "additiv.contacts.change_requests.statuses",
        {},
        fake,
        SETTINGS.model_copy(update={"additiv_accept_language": "de"}),
    )
    assert fake.last.headers["Accept-Language"] == "de"


def test_a_malformed_language_is_refused_at_startup() -> None:
    with pytest.raises(ValueError, match="additiv_accept_language"):
        Settings(additiv_accept_language="not a language")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"additiv_base_url": None}, "ADDITIV_BASE_URL is not set"),
        ({"additiv_token": None}, "ADDITIV_TOKEN is not set"),
        ({"additiv_token": SecretStr("")}, "ADDITIV_TOKEN is not set"),
    ],
)
def test_connect_without_configuration_is_a_permanent_error_naming_the_variable(
    settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(PermanentStepError, match=message):
        client_for(FakeApi(), SETTINGS.model_copy(update=settings))


# --- ADDITIV_ROUTES -----------------------------------------------------------------------------------------


def with_routes(routes: dict[str, str]) -> Settings:
    return SETTINGS.model_copy(update={"additiv_routes": routes})


def test_a_route_override_changes_method_and_path() -> None:
    name = "additiv.contacts.details.change_history.search"
    fake = FakeApi()
    settings = with_routes({name: "POST /v2/contacts/{contactId}/history"})
    run(name, {"contactId": 5, "pageSize": 3}, fake, settings)
    assert (fake.last.method, fake.last.url.path, json.loads(fake.last.content)) == (
        "POST",
        "/gw/v2/contacts/5/history",
        {"pageSize": 3},
    )


def test_routes_can_be_given_as_json_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "ADDITIV_ROUTES", '{"additiv.legalentities.details.put": "PATCH /v1.0/legalentities/{legalEntityId}/details"}'
    )
    assert Settings().additiv_routes == {
        "additiv.legalentities.details.put": "PATCH /v1.0/legalentities/{legalEntityId}/details"
    }


@pytest.mark.parametrize(
    ("routes", "message"),
    [
        ({"additiv.contacts.nope": "GET /x"}, "ADDITIV_ROUTES names 'additiv.contacts.nope', which is not"),
        ({"additiv.contacts.username.get": "FETCH /x"}, 'must look like "PUT /v1.0/..."'),
        ({"additiv.contacts.username.get": "GET /v1.0/contacts/{id}/username"}, "must use exactly {contactId}"),
        ({"additiv.contacts.change_requests.statuses": "GET /s/{contactId}"}, "must use exactly no placeholders"),
        (
            {"additiv.contacts.external_connections.find": "GET /v1.0/contacts/{contactId}/external-connections"},
            "may use {externalId}, {system}, and no other placeholder",
        ),
        (
            {"additiv.contacts.username.get": "GET /v1.0/contacts/{contactId}/username/{system}"},
            "must use exactly {contactId}",
        ),
    ],
)
def test_a_bad_route_override_fails_every_step_naming_it(routes: dict[str, str], message: str) -> None:
    with pytest.raises(PermanentStepError, match=message):
        client_for(FakeApi(), with_routes(routes))


@pytest.mark.parametrize(
    ("route", "path", "query"),
    [
        (
            "GET /v1.0/contacts/external-connections/{system}/{externalId}",
            "/gw/v1.0/contacts/external-connections/CRM/C%2F1%201",
            {},
        ),
        (
            "GET /v1.0/contacts/external-connections/{externalId}",
            "/gw/v1.0/contacts/external-connections/C%2F1%201",
            {"system": "CRM"},
        ),
        ("GET /v1.0/systems/{system}/contacts", "/gw/v1.0/systems/CRM/contacts", {"externalId": "C/1 1"}),
    ],
)
def test_the_lookup_by_external_connection_may_take_system_and_external_id_in_its_path(
    route: str, path: str, query: dict[str, str]
) -> None:
    # The docs mark both required without saying query or path (reference notes §3.2): ADDITIV_ROUTES decides.
    fake = FakeApi({"id": 44, "uid": UID})
    settings = with_routes({"additiv.contacts.external_connections.find": route})
    out = run("additiv.contacts.external_connections.find", {"system": "CRM", "externalId": "C/1 1"}, fake, settings)
    assert out == {"id": 44, "uid": UID}
    assert fake.last.url.raw_path.decode().split("?")[0] == path  # one segment each, "/" and " " encoded
    assert dict(parse_qsl(fake.last.url.query.decode())) == query


def test_a_create_looks_its_contact_up_along_the_overridden_route() -> None:
    fake = FakeApi({"id": 44, "uid": UID})
    settings = with_routes(
        {"additiv.contacts.external_connections.find": "GET /v1.0/contacts/external-connections/{system}/{externalId}"}
    )
    assert run("additiv.contacts.create", CREATE, fake, settings)["id"] == 44
    assert fake.calls() == ["GET /gw/v1.0/contacts/external-connections/CRM/CRM-1"]


# --- Errors -------------------------------------------------------------------------------------------------


def test_the_api_error_envelope_becomes_the_message_with_the_correlation_id() -> None:
    error = failure(
        "additiv.contacts.details.get", {"contactId": 5}, api_error(404, "Contact 5 was not found", code="NotFound")
    )
    assert error.message == "HTTP 404: NotFound: Contact 5 was not found (additiv correlationId 30d3ebc0b5cb)"
    assert error.status == 404


def test_username_not_unique_is_permanent_with_a_clear_message() -> None:
    answer = api_error(400, "The provided username is not unique.", "UsernameNotUnique")
    error = failure("additiv.contacts.username.put", {"contactId": 5, "username": "taken"}, answer)
    assert error.message == (
        "HTTP 400: UsernameNotUnique: the username (or the email, where they are coupled) is already used by "
        "another contact; choose another (The provided username is not unique.) (additiv correlationId 30d3ebc0b5cb)"
    )


@pytest.mark.parametrize(
    ("response", "text"),
    [
        (
            api_error(400, "Bad", "KeyExpired", "General"),
            "General: KeyExpired: Bad (additiv correlationId 30d3ebc0b5cb)",
        ),
        (httpx.Response(400, json={"message": "Plain"}), "Plain"),
        (
            httpx.Response(400, json={"code": "General", "message": "x", "properties": {"f": "y"}}),
            "General: x {'f': 'y'}",
        ),
        (httpx.Response(400, json={"unexpected": True}), '{"unexpected":true}'),
        (httpx.Response(502, text="Bad gateway"), "Bad gateway"),
        (httpx.Response(502), "Bad Gateway"),
    ],
)
def test_read_error_decodes_the_envelope_or_falls_back_to_the_text(response: httpx.Response, text: str) -> None:
    assert read_error(response) == text


@pytest.mark.parametrize("status", [401, 403])
def test_an_auth_failure_points_at_the_token(status: int) -> None:
    error = failure("additiv.contacts.details.get", {"contactId": 5}, api_error(status, "Denied", code="Unauthorized"))
    assert error.message.endswith("(check ADDITIV_TOKEN (a DFS access token; they expire))")


@pytest.mark.parametrize("status", [429, 500, 503])
def test_rate_limits_and_server_errors_are_transient(status: int) -> None:
    with pytest.raises(TransientStepError):
        run("additiv.contacts.details.get", {"contactId": 5}, FakeApi(api_error(status, "busy")))


# --- Outputs ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["additiv.contacts.details.patch", "additiv.contacts.details.put"])
def test_detail_changes_surface_is_approval_required(name: str) -> None:
    answer = {"isApprovalRequired": True, "hasPendingEmail": False, "hasPendingMobile": False}
    assert run(name, {"contactId": 5, "details": {"a": 1}}, FakeApi(answer))["isApprovalRequired"] is True
    assert run(name, {"contactId": 5, "details": {"a": 1}}, FakeApi(None)) == {"isApprovalRequired": None}


def test_an_empty_answer_is_an_empty_output_and_a_non_object_is_wrapped() -> None:
    assert run("additiv.contacts.username.put", {"contactId": 5, "username": "u"}, FakeApi(None)) == {}
    assert run("additiv.contacts.username.get", {"contactId": 5}, FakeApi(httpx.Response(200, json=["x"]))) == {
        "result": ["x"]
    }


def test_a_legal_entity_created_without_an_id_is_permanent_with_outcome_unknown() -> None:
    error = failure("additiv.legalentities.create", {"details": {}}, {"details": {}})
    assert error.outcome_unknown is True and "legal entity" in error.message


# --- Exports ------------------------------------------------------------------------------------------------


def test_an_export_of_everything_sends_no_body() -> None:
    fake = FakeApi({"exportJobId": JOB})
    assert run("additiv.contacts.export", {}, fake) == {"exportJobId": JOB}
    assert fake.last.content == b""


def test_an_export_filter_is_sent_as_a_json_string() -> None:
    fake = FakeApi({"exportJobId": JOB})
    query = 'query { contacts( where: { personalInformation: { displayName: { contains: "Sh" } } } ) { items { } } }'
    run("additiv.contacts.export", {"query": query}, fake)
    assert json.loads(fake.last.content) == query and fake.last.headers["Content-Type"] == "application/json"


def test_an_export_filter_is_sent_as_text_when_configured() -> None:
    fake = FakeApi({"exportJobId": JOB})
    query = 'query { contacts( where: { personalInformation: { displayName: { contains: "Sh" } } } ) { items { } } }'
    settings = SETTINGS.model_copy(update={"additiv_export_query_encoding": "text"})
    run("additiv.contacts.export", {"query": query}, fake, settings)
    assert fake.last.content.decode() == query
    assert fake.last.headers["Content-Type"] == "text/plain; charset=utf-8"


def test_an_export_of_everything_sends_no_body_in_either_encoding() -> None:
    fake = FakeApi({"exportJobId": JOB})
    run("additiv.contacts.export", {}, fake, SETTINGS.model_copy(update={"additiv_export_query_encoding": "text"}))
    assert fake.last.content == b""


@pytest.mark.parametrize("encoding", ["graphql", "TEXT", ""])
def test_an_unknown_export_encoding_is_refused_at_startup(encoding: str) -> None:
    with pytest.raises(ValueError, match="additiv_export_query_encoding"):
        Settings(additiv_export_query_encoding=encoding)


def test_an_export_start_without_a_job_id_is_permanent() -> None:
    assert "no exportJobId" in failure("additiv.contacts.export", {}, {}).message


def test_a_ready_export_is_parsed_into_rows() -> None:
    out = run("additiv.contacts.export.get", {"exportJobId": JOB}, FakeApi("id,username\n1,a\n2,b\n"))
    assert out == {
        "exportJobId": JOB,
        "columns": ["id", "username"],
        "rowCount": 2,
        "rows": [{"id": "1", "username": "a"}, {"id": "2", "username": "b"}],
        "csv": "id,username\n1,a\n2,b\n",
    }


@pytest.mark.parametrize("answer", [None, httpx.Response(202), {"status": "InProgress"}])
def test_an_export_not_ready_yet_is_transient_so_the_step_retries(answer: Answer) -> None:
    with pytest.raises(TransientStepError, match=f"additiv export {JOB} is not ready yet") as caught:
        run("additiv.contacts.export.get", {"exportJobId": JOB}, FakeApi(answer))
    assert caught.value.outcome_unknown is False


def test_an_export_answered_with_something_else_is_permanent() -> None:
    error = failure("additiv.contacts.export.get", {"exportJobId": JOB}, httpx.Response(200, json=[1, 2]))
    assert "neither CSV nor a status" in error.message


# --- Creating a contact without ever making two ----------------------------------------------------------------

NOT_LINKED = api_error(404, "No contact has that external connection", code="NotFound")
CREATE = {"contactTypeId": 1, "username": "tk", "details": {"p": 1}, "externalConnection": LINK}


@pytest.fixture
def redis(redis_url: str) -> Iterator[Redis]:
    client = Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.close()


def test_a_create_without_an_external_connection_just_creates() -> None:
    fake = FakeApi({"id": 1001, "uId": UID, "details": {}})
    out = run("additiv.contacts.create", {"contactTypeId": 1, "details": {}, "correlationId": "evt"}, fake)
    assert out == {"id": 1001, "uId": UID, "details": {}, "created": True}
    assert json.loads(fake.last.content) == {"contactTypeId": 1, "details": {}, "correlationId": "evt"}


def test_a_create_finds_a_linked_contact_and_creates_nothing() -> None:
    fake = FakeApi({"id": 44, "uid": UID})
    out = run("additiv.contacts.create", CREATE, fake)
    assert out == {"id": 44, "uId": UID, "created": False, "externalConnection": LINK}
    assert fake.calls() == ["GET /gw/v1.0/contacts/external-connections"]
    assert dict(parse_qsl(fake.last.url.query.decode())) == LINK


def test_a_new_contact_is_created_without_the_connection_then_linked(redis: Redis) -> None:
    fake = FakeApi(NOT_LINKED, {"id": 1001, "uId": UID, "details": {"p": 1}}, None)
    out = run("additiv.contacts.create", CREATE, fake, redis=redis)
    assert out == {"id": 1001, "uId": UID, "details": {"p": 1}, "created": True, "externalConnection": LINK}
    assert fake.calls() == [
        "GET /gw/v1.0/contacts/external-connections",
        "POST /gw/v1.0/contacts",
        "POST /gw/v1.0/contacts/1001/external-connections",
    ]
    assert json.loads(fake.requests[1].content) == {"contactTypeId": 1, "username": "tk", "details": {"p": 1}}
    assert json.loads(fake.last.content) == LINK
    assert redis.keys("hookflow:additiv:*") == []  # the note is dropped once linked


def test_a_failed_link_is_transient_names_the_contact_and_leaves_a_note(redis: Redis) -> None:
    fake = FakeApi(NOT_LINKED, {"id": 1001, "uId": UID}, api_error(503, "down", code="General"))
    with pytest.raises(TransientStepError) as caught:
        run("additiv.contacts.create", CREATE, fake, redis=redis)
    assert caught.value.message.startswith("contact 1001 was created but not yet linked to CRM/CRM-1: HTTP 503")
    assert caught.value.outcome_unknown is True  # so the retry reconciles
    assert len(redis.keys("hookflow:additiv:unlinked:*")) == 1


def test_a_link_refused_for_good_is_permanent_and_names_the_contact(redis: Redis) -> None:
    fake = FakeApi(NOT_LINKED, {"id": 1001, "uId": UID}, api_error(400, "ExternalId is already used"))
    with pytest.raises(PermanentStepError, match="contact 1001 was created but not yet linked to CRM/CRM-1: HTTP 400"):
        run("additiv.contacts.create", CREATE, fake, redis=redis)


def test_the_retry_after_a_failed_link_links_the_noted_contact_instead_of_creating(redis: Redis) -> None:
    with pytest.raises(TransientStepError):
        run(
            "additiv.contacts.create",
            CREATE,
            FakeApi(NOT_LINKED, {"id": 1001, "uId": UID}, api_error(503, "x")),
            redis=redis,
        )
    retry = FakeApi(NOT_LINKED, {"id": 1001, "details": {}}, None)
    found = find_created(client_for(retry, redis=redis), m.ContactCreate.model_validate(CREATE))
    assert found == {"id": 1001, "uId": UID, "created": True, "externalConnection": LINK}
    assert retry.calls() == [
        "GET /gw/v1.0/contacts/external-connections",
        "GET /gw/v1.0/contacts/1001/details",
        "POST /gw/v1.0/contacts/1001/external-connections",
    ]
    assert redis.keys("hookflow:additiv:*") == []


def test_a_noted_contact_that_no_longer_exists_is_forgotten_and_created_afresh(redis: Redis) -> None:
    LinkNotes(redis, "https://dfs.test/gw").note(m.ExternalConnection(**LINK), {"id": 999})
    gone = api_error(404, "Contact 999 was not found", code="NotFound")
    fake = FakeApi(NOT_LINKED, gone, {"id": 1001, "uId": UID}, None)
    assert run("additiv.contacts.create", CREATE, fake, redis=redis)["id"] == 1001
    assert fake.calls()[1:3] == ["GET /gw/v1.0/contacts/999/details", "POST /gw/v1.0/contacts"]


def test_a_failure_reading_the_noted_contact_is_passed_on(redis: Redis) -> None:
    LinkNotes(redis, "https://dfs.test/gw").note(m.ExternalConnection(**LINK), {"id": 999})
    with pytest.raises(PermanentStepError, match="HTTP 403"):
        run("additiv.contacts.create", CREATE, FakeApi(NOT_LINKED, api_error(403, "no")), redis=redis)


def test_a_lookup_failure_other_than_404_stops_the_create() -> None:
    fake = FakeApi(api_error(400, "system is required"))
    with pytest.raises(PermanentStepError, match="system is required"):
        run("additiv.contacts.create", CREATE, fake)
    assert len(fake.requests) == 1


def test_a_lookup_answered_without_an_id_counts_as_not_found() -> None:
    fake = FakeApi({"id": None}, {"id": 1001}, None)
    assert run("additiv.contacts.create", CREATE, fake)["created"] is True


def test_a_create_answered_without_an_id_is_permanent_with_outcome_unknown() -> None:
    error = failure("additiv.contacts.create", CREATE, NOT_LINKED, {"details": {}})
    assert error.outcome_unknown is True and "without an id" in error.message


def test_without_redis_the_create_still_works_it_only_loses_the_note() -> None:
    fake = FakeApi(NOT_LINKED, {"id": 1001, "uId": UID}, None)
    assert run("additiv.contacts.create", CREATE, fake)["created"] is True  # NO_REDIS refuses connections


def test_find_created_without_an_external_connection_asks_nothing() -> None:
    fake = FakeApi()
    assert find_created(client_for(fake), m.ContactCreate(contactTypeId=1, details={})) is None
    assert fake.requests == []


def test_notes_are_per_tenant_and_connection(redis: Redis) -> None:
    link, other = m.ExternalConnection(**LINK), m.ExternalConnection(system="CRM", externalId="CRM-2")
    LinkNotes(redis, "https://a.test").note(link, {"id": 1})
    assert LinkNotes(redis, "https://a.test").noted(link) == {"id": 1}
    assert LinkNotes(redis, "https://b.test").noted(link) is None
    assert LinkNotes(redis, "https://a.test").noted(other) is None
    without_redis = LinkNotes(None, "https://a.test")
    without_redis.note(link, {"id": 2})
    without_redis.forget(link)
    assert without_redis.noted(link) is None


def test_a_garbled_note_is_ignored(redis: Redis) -> None:
    notes = LinkNotes(redis, "https://a.test")
    link = m.ExternalConnection(**LINK)
    for garbage in (b"not json", b'{"no": "id"}', b"[1]"):
        redis.set(notes.key(link), garbage)
        assert notes.noted(link) is None


def test_the_create_reconciles_by_its_external_connection() -> None:
    op = OPS["additiv.contacts.create"]
    assert (op.find_existing, op.natural_key) == (find_created, ("externalConnection",))


# --- A create whose own answer is lost -------------------------------------------------------------------------

TAKEN = api_error(400, "The provided username is not unique.", "UsernameNotUnique")
LOST = api_error(500, "upstream timeout", code="General")


def attempt(fake: FakeApi, redis: Redis, *, reconcile: bool, run_id: str = "run-1") -> Any:
    """One attempt as the runner makes it: find_existing first when an earlier outcome is unknown, then call."""
    client = client_for(fake, redis=redis, run_id=run_id)
    inp = m.ContactCreate.model_validate(CREATE)
    found = find_created(client, inp) if reconcile else None
    return found if found is not None else OPS["additiv.contacts.create"].call(client, inp)


def test_a_create_leaves_a_creating_note_until_its_outcome_is_known(redis: Redis) -> None:
    # Given a create that additiv carries out but whose answer is lost
    with pytest.raises(TransientStepError) as caught:
        attempt(FakeApi(NOT_LINKED, LOST), redis, reconcile=False)
    # Then the step knows the outcome is unknown, and the note says a create was under way, with its username
    assert caught.value.outcome_unknown is True
    note = LinkNotes(redis, "https://dfs.test/gw").pending(m.ExternalConnection(**LINK))
    assert note == {"creating": True, "username": "tk", "owner": "run-1:client"}


def test_the_retry_of_a_lost_create_says_the_contact_was_probably_made_by_the_earlier_attempt(redis: Redis) -> None:
    # Given an attempt whose create answer was lost
    with pytest.raises(TransientStepError):
        attempt(FakeApi(NOT_LINKED, LOST), redis, reconcile=False)
    # When the retry finds nothing by the connection and additiv refuses its create for the username
    retry = FakeApi(NOT_LINKED, NOT_LINKED, TAKEN)
    with pytest.raises(PermanentStepError) as caught:
        attempt(retry, redis, reconcile=True)
    # Then no second contact was made, and the error says why and what to do
    message = caught.value.message
    assert message.startswith("additiv refused the create because username 'tk' is taken, probably by the contact")
    assert "add the external connection CRM/CRM-1 to it, and retry the run" in message
    assert "UsernameNotUnique" in message and "(additiv correlationId 30d3ebc0b5cb)" in message
    assert retry.calls() == [
        "GET /gw/v1.0/contacts/external-connections",  # find_existing
        "GET /gw/v1.0/contacts/external-connections",  # the create's own look-up
        "POST /gw/v1.0/contacts",
    ]
    assert LinkNotes(redis, "https://dfs.test/gw").pending(m.ExternalConnection(**LINK)) is not None  # still unsure


def test_without_the_note_the_engines_word_that_the_outcome_is_unknown_is_enough() -> None:
    # Given Redis lost the note (NO_REDIS), the engine still says the earlier attempt's outcome is unknown
    with pytest.raises(PermanentStepError, match="probably by the contact an earlier attempt of this step created"):
        attempt(FakeApi(NOT_LINKED, NOT_LINKED, TAKEN), NO_REDIS, reconcile=True)


def test_a_taken_username_on_a_first_attempt_is_plainly_taken_and_leaves_no_note(redis: Redis) -> None:
    with pytest.raises(PermanentStepError) as caught:
        attempt(FakeApi(NOT_LINKED, TAKEN), redis, reconcile=False)
    assert caught.value.message.startswith("HTTP 400: UsernameNotUnique: the username")
    assert redis.keys("hookflow:additiv:*") == []


def test_a_create_refused_for_another_reason_keeps_an_earlier_attempts_note(redis: Redis) -> None:
    notes, link = LinkNotes(redis, "https://dfs.test/gw"), m.ExternalConnection(**LINK)
    # A fresh create refused outright made nothing: its note goes
    with pytest.raises(PermanentStepError, match="details are invalid"):
        attempt(FakeApi(NOT_LINKED, api_error(400, "details are invalid")), redis, reconcile=False)
    assert notes.read(link) is None
    # After a lost answer, a refusal now says nothing about what the earlier create made: the note stays
    with pytest.raises(TransientStepError):
        attempt(FakeApi(NOT_LINKED, LOST), redis, reconcile=False)
    with pytest.raises(PermanentStepError, match="details are invalid"):
        attempt(FakeApi(NOT_LINKED, NOT_LINKED, api_error(400, "details are invalid")), redis, reconcile=True)
    assert notes.pending(link) == {"creating": True, "username": "tk", "owner": "run-1:client"}


def test_once_linked_by_hand_the_retry_finds_the_contact_as_made_by_this_step(redis: Redis) -> None:
    # Given the lost create and the operator's link in additiv
    with pytest.raises(TransientStepError):
        attempt(FakeApi(NOT_LINKED, LOST), redis, reconcile=False)
    # When the run is retried
    out = attempt(FakeApi({"id": 1001, "uid": UID}), redis, reconcile=True)
    # Then the contact is this step's creation, and the note is gone
    assert out == {"id": 1001, "uId": UID, "created": True, "externalConnection": LINK}
    assert redis.keys("hookflow:additiv:*") == []


def test_another_runs_unfinished_create_does_not_make_a_found_contact_ours(redis: Redis) -> None:
    with pytest.raises(TransientStepError):
        attempt(FakeApi(NOT_LINKED, LOST), redis, reconcile=False, run_id="run-1")
    out = attempt(FakeApi({"id": 1001, "uid": UID}), redis, reconcile=False, run_id="run-2")
    assert out["created"] is False


def test_a_link_whose_answer_was_lost_is_found_by_its_connection_as_made_by_this_step(redis: Redis) -> None:
    # Given the create answered and the link landed, but its answer was lost
    with pytest.raises(TransientStepError):
        attempt(FakeApi(NOT_LINKED, {"id": 1001, "uId": UID}, LOST), redis, reconcile=False)
    # When the retry finds the contact by the connection
    out = attempt(FakeApi({"id": 1001, "uid": UID}), redis, reconcile=True)
    # Then it is the contact this step created, not somebody else's
    assert out == {"id": 1001, "uId": UID, "created": True, "externalConnection": LINK}
    assert redis.keys("hookflow:additiv:*") == []


# --- The same against the additiv simulator, its create landing and its answer lost ---------------------------


@pytest.fixture
def additiv(simulator: Callable[[str], Any]) -> Any:
    return simulator("/additiv")


def sandbox_client(http: httpx.Client, url: str, redis: Redis = NO_REDIS, **settings: Any) -> AdditivApi:
    values = {**sandbox_settings(url.removesuffix("/additiv"), SANDBOX_KEY), **settings}
    return connect(ConnectorContext(Settings(**values), http, CallLog(), redis, run_id="run-1", step_id="client"))


def sandbox_attempt(url: str, redis: Redis, *, reconcile: bool, **settings: Any) -> Any:
    with httpx.Client(timeout=10) as http:
        client = sandbox_client(http, url, redis, **settings)
        inp = m.ContactCreate.model_validate({**CREATE, "username": "tomas.keller@example.ch"})
        found = find_created(client, inp) if reconcile else None
        return found if found is not None else OPS["additiv.contacts.create"].call(client, inp)


def test_against_the_simulator_the_lookup_works_with_path_parameters(additiv: Any, redis: Redis) -> None:
    routes = {
        "additiv.contacts.external_connections.find": "GET /v1.0/contacts/external-connections/{system}/{externalId}"
    }
    # Given a contact created and linked with the look-up routed through the path
    first = sandbox_attempt(additiv.url, redis, reconcile=False, additiv_routes=routes)
    # When the same create comes again
    again = sandbox_attempt(additiv.url, redis, reconcile=False, additiv_routes=routes)
    # Then it is found along that route, and nothing new is made
    assert (first["created"], again["created"], again["id"]) == (True, False, first["id"])
    finds = [c["path"] for c in additiv.calls() if c["method"] == "GET"]
    assert finds == ["/v1.0/contacts/external-connections/CRM/CRM-1"] * 2


@pytest.mark.parametrize("encoding", ["json", "text"])
def test_against_the_simulator_an_export_filter_works_in_either_encoding(additiv: Any, encoding: str) -> None:
    query = (
        'query { contacts( where: { personalInformation: { displayName: { contains: "Shannon" } } } ) { items { } } }'
    )
    with httpx.Client(timeout=10) as http:
        client = sandbox_client(http, additiv.url, additiv_export_query_encoding=encoding)
        other = {"contactTypeId": 1, "details": {"personalInformation": {"displayName": "Tomas Keller"}}}
        OPS["additiv.contacts.create"].call(client, m.ContactCreate.model_validate(other))
        started = OPS["additiv.contacts.export"].call(client, m.ContactsExport(query=query))
        fetch = m.ContactsExportGet(exportJobId=started["exportJobId"])
        with pytest.raises(TransientStepError, match="not ready yet"):
            OPS["additiv.contacts.export.get"].call(client, fetch)
        ready = OPS["additiv.contacts.export.get"].call(client, fetch)
    # The simulator read the filter: only Shannon Crawford (contact 1) is exported
    assert [row["id"] for row in ready["rows"]] == ["1"]


def test_against_the_simulator_a_lost_create_answer_never_makes_a_second_contact(additiv: Any, redis: Redis) -> None:
    # Given additiv creates the contact but answers 500
    additiv.fault("/v1.0/contacts", method="POST", status=500, when="after")
    with pytest.raises(TransientStepError):
        sandbox_attempt(additiv.url, redis, reconcile=False)
    # When the step is retried
    with pytest.raises(PermanentStepError, match="probably by the contact an earlier attempt of this step created"):
        sandbox_attempt(additiv.url, redis, reconcile=True)
    # Then additiv holds one contact for the client, and after the operator links it the retry succeeds with it
    (made,) = [c for c in additiv.state()["contacts"] if c["username"] == "tomas.keller@example.ch"]
    additiv.control.post(
        f"/v1.0/contacts/{made['id']}/external-connections",
        json=LINK,
        headers={"Authorization": f"Bearer {SANDBOX_KEY}"},
    ).raise_for_status()
    out = sandbox_attempt(additiv.url, redis, reconcile=True)
    assert (out["id"], out["created"]) == (made["id"], True)
    assert len([c for c in additiv.state()["contacts"] if c["username"] == "tomas.keller@example.ch"]) == 1
