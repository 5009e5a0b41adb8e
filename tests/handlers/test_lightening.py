"""The Lightening connector, specified against a fake API at the transport.

Requests are observed exactly as they leave the process (`httpx.MockTransport`);
responses are the envelopes of shared/api-docs/lightening-contacts.txt, HTTP 200
for failures included.
"""

from __future__ import annotations

import json
from collections.abc import Callable
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
from handlers.lightening import OPERATIONS, LighteningApi, connect, find_contact, find_deleted, read_error
from schemas import lightening as m
from schemas.settings import Settings

TOKEN = "lt-secret-token-42"
SETTINGS = Settings(lightening_base_url="https://lt.test/api", lightening_token=SecretStr(TOKEN))
OPS = {op.name: op for op in OPERATIONS}
CREATED = {"msg": "Successfully created entity.", "id": "17", "result": True}
UPDATED = {"msg": "Successfully updated entity.", "result": True}
DELETED = {"msg": "Entity has been successfully deleted.", "result": False}
NOT_FOUND = {"msg": "Entity not found.", "result": False}
NOTHING_SENT = {"error": "Nothing sent for request.", "result": False}


class FakeApi:
    """A MockTransport handler answering canned responses in turn; remembers every request."""

    def __init__(self, *responses: httpx.Response | dict[str, Any] | Callable[[httpx.Request], httpx.Response]):
        self.requests: list[httpx.Request] = []
        self._responses = list(responses) or [httpx.Response(200, json={"result": True})]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self._responses[min(len(self.requests), len(self._responses)) - 1]
        if isinstance(answer, dict):
            return httpx.Response(200, json=answer)
        return answer if isinstance(answer, httpx.Response) else answer(request)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    def query(self, index: int = -1) -> list[tuple[str, str]]:
        return parse_qsl(self.requests[index].url.query.decode())


def client_for(fake: FakeApi, settings: Settings = SETTINGS) -> LighteningApi:
    http = httpx.Client(transport=httpx.MockTransport(fake))
    return connect(ConnectorContext(settings, http, CallLog(), Redis.from_url("redis://127.0.0.1:1/0")))


def run(name: str, payload: dict[str, Any], fake: FakeApi, settings: Settings = SETTINGS) -> dict[str, Any]:
    """Run one operation the way the runner does: validate the input, then call."""
    op = OPS[name]
    return op.call(client_for(fake, settings), op.input.model_validate(payload))


def permanent(name: str, payload: dict[str, Any], *answers: Any) -> PermanentStepError:
    with pytest.raises(PermanentStepError) as caught:
        run(name, payload, FakeApi(*answers))
    return caught.value


# --- Operations: names, methods, paths, payloads ------------------------------------------------------

CATALOGUE: dict[str, tuple[str, str, dict[str, Any], dict[str, Any]]] = {
    "lightening.contacts.list": ("GET", "/api/contact", {"customer_id": [3]}, {"entities": [], "result": True}),
    "lightening.contacts.get": ("GET", "/api/contact/17", {"id": 17}, {"entity": {"id": "17"}, "result": True}),
    "lightening.contacts.create": ("POST", "/api/contact", {"name": "Priya", "tel": None}, CREATED),
    "lightening.contacts.update": ("POST", "/api/contact/17", {"id": 17, "name": "Priya", "fax": None}, UPDATED),
    "lightening.contacts.delete": ("GET", "/api/contact/17/delete", {"id": 17}, DELETED),
}


def test_the_catalogue_is_every_operation_and_the_registry_has_them() -> None:
    assert sorted(OPS) == sorted(CATALOGUE)
    assert set(CATALOGUE) <= {op.name for op in build_registry()}


@pytest.mark.parametrize("name", CATALOGUE)
def test_each_operation_calls_its_method_and_path_with_the_token_as_authorization(name: str) -> None:
    method, path, payload, answer = CATALOGUE[name]
    fake = FakeApi(answer)
    run(name, payload, fake)
    assert (len(fake.requests), fake.last.method, fake.last.url.host, fake.last.url.path) == (
        1,
        method,
        "lt.test",
        path,
    )
    assert fake.last.headers["Authorization"] == TOKEN


def test_a_configured_scheme_goes_before_the_token() -> None:
    fake = FakeApi(CATALOGUE["lightening.contacts.get"][3])
    run("lightening.contacts.get", {"id": 1}, fake, SETTINGS.model_copy(update={"lightening_auth_scheme": "Bearer"}))
    assert fake.last.headers["Authorization"] == f"Bearer {TOKEN}"


def test_writes_send_json_without_nulls_or_the_id_and_with_the_default_locale_on_create_only() -> None:
    create, update = FakeApi(CREATED), FakeApi(UPDATED)
    run("lightening.contacts.create", {"name": "Priya", "is_active": True, "tel": None}, create)
    run("lightening.contacts.update", {"id": 17, "name": "Priya", "milestone": "0"}, update)
    assert json.loads(create.last.content) == {"name": "Priya", "is_active": 1, "locale": "en_US"}
    assert json.loads(update.last.content) == {"name": "Priya", "milestone": 0}
    assert create.last.headers["Content-Type"] == "application/json"


def test_reads_send_no_body() -> None:
    fake = FakeApi(CATALOGUE["lightening.contacts.get"][3])
    run("lightening.contacts.get", {"id": 17}, fake)
    assert fake.last.content == b""


@pytest.mark.parametrize(
    ("encoding", "query"),
    [
        ("brackets", [("customer_id[]", "3"), ("customer_id[]", "5")]),
        ("repeat", [("customer_id", "3"), ("customer_id", "5")]),
        ("comma", [("customer_id", "3,5")]),
    ],
)
def test_the_customer_id_array_is_encoded_as_configured(encoding: str, query: list[tuple[str, str]]) -> None:
    fake = FakeApi({"entities": [], "result": True})
    settings = SETTINGS.model_copy(update={"lightening_array_encoding": encoding})
    run("lightening.contacts.list", {"customer_id": [3, 5]}, fake, settings)
    assert fake.query() == query


def test_an_unknown_array_encoding_is_refused_at_startup() -> None:
    with pytest.raises(ValueError, match="lightening_array_encoding"):
        Settings(lightening_array_encoding="json")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"lightening_base_url": None}, "LIGHTENING_BASE_URL is not set"),
        ({"lightening_token": None}, "LIGHTENING_TOKEN is not set"),
        ({"lightening_token": SecretStr("")}, "LIGHTENING_TOKEN is not set"),
    ],
)
def test_connect_without_configuration_is_a_permanent_error_naming_the_variable(
    settings: dict[str, Any], message: str
) -> None:
    fake = FakeApi()
    with pytest.raises(PermanentStepError, match=message):
        client_for(fake, SETTINGS.model_copy(update=settings))
    assert fake.requests == []


# --- Outputs -----------------------------------------------------------------------------------------


def test_a_list_outputs_the_entities_and_their_count() -> None:
    entities = [{"id": "1", "name": "A"}, {"id": "2", "name": "B"}]
    out = run("lightening.contacts.list", {"customer_id": 3}, FakeApi({"entities": entities, "result": True}))
    assert out == {"entities": entities, "count": 2}


def test_a_list_without_entities_is_empty() -> None:
    assert run("lightening.contacts.list", {"customer_id": 3}, FakeApi({"result": True})) == {
        "entities": [],
        "count": 0,
    }


@pytest.mark.parametrize(
    "answer",
    [
        {"entity": {"id": "17", "name": "Priya"}, "result": True},
        {"data": {"id": "17", "name": "Priya"}, "result": True},
        {"entities": [{"id": "17", "name": "Priya"}], "result": True},
        {"id": "17", "name": "Priya", "result": True},
    ],
)
def test_get_reads_the_contact_from_any_envelope(answer: dict[str, Any]) -> None:
    assert run("lightening.contacts.get", {"id": 17}, FakeApi(answer)) == {"id": "17", "name": "Priya"}


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (NOT_FOUND, "Lightening could not read contact 17: not found (Entity not found.)"),
        ({"entities": [], "result": True}, "Lightening could not read contact 17: not found (no entities)"),
    ],
)
def test_get_of_a_missing_contact_is_not_found(answer: dict[str, Any], message: str) -> None:
    error = permanent("lightening.contacts.get", {"id": 17}, answer)
    assert (error.message, error.status) == (message, 404)


def test_a_get_answer_without_a_contact_is_permanent() -> None:
    error = permanent("lightening.contacts.get", {"id": 17}, {"result": True})
    assert error.message.startswith("Lightening answered read contact 17 without a contact")


def test_create_outputs_the_string_id_as_an_integer() -> None:
    assert run("lightening.contacts.create", {"name": "Priya"}, FakeApi(CREATED)) == {
        "id": 17,
        "msg": "Successfully created entity.",
    }


@pytest.mark.parametrize(
    "answer", [{"msg": "Successfully created entity.", "result": True}, {"id": "", "result": True}]
)
def test_a_create_answered_without_an_id_is_permanent_with_outcome_unknown(answer: dict[str, Any]) -> None:
    error = permanent("lightening.contacts.create", {"name": "Priya"}, answer)
    assert error.outcome_unknown is True and "without an id" in error.message


def test_a_non_numeric_id_is_kept_as_sent() -> None:
    out = run("lightening.contacts.create", {"name": "P"}, FakeApi({"id": "c-17", "result": True}))
    assert out["id"] == "c-17"


def test_update_outputs_the_id_and_message() -> None:
    out = run("lightening.contacts.update", {"id": 17, "name": "Priya"}, FakeApi(UPDATED))
    assert out == {"id": 17, "msg": "Successfully updated entity."}


# --- The envelope: HTTP 200 failures -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["lightening.contacts.create", "lightening.contacts.update"])
def test_a_validation_failure_names_each_field(name: str) -> None:
    errors = {"name": "Field is required.", "email": "Field must be a valid email address."}
    error = permanent(name, {"id": 17, "name": "P"} if "update" in name else {"name": "P"}, {"errors": errors})
    assert error.message.endswith("name: Field is required.; email: Field must be a valid email address.")
    assert error.outcome_unknown is False


def test_errors_given_as_lists_or_a_list_are_all_named() -> None:
    nested = permanent("lightening.contacts.create", {"name": "P"}, {"errors": {"tel": ["too long", "bad"]}})
    flat = permanent("lightening.contacts.create", {"name": "P"}, {"errors": ["first", "second"], "result": False})
    text = permanent("lightening.contacts.create", {"name": "P"}, {"errors": "Everything is wrong."})
    assert nested.message.endswith("tel: too long; bad") and flat.message.endswith("first; second")
    assert text.message.endswith("Everything is wrong.")


def test_nothing_sent_for_request_is_a_permanent_failure() -> None:
    error = permanent("lightening.contacts.update", {"id": 17, "name": "P"}, NOTHING_SENT)
    assert error.message == "Lightening refused to update contact 17: Nothing sent for request."


def test_result_false_with_another_message_is_a_permanent_failure_quoting_it() -> None:
    error = permanent("lightening.contacts.update", {"id": 17, "name": "P"}, {"msg": "Locked.", "result": False})
    assert error.message == "Lightening could not update contact 17 (result False): Locked."


def test_an_update_of_a_missing_contact_is_not_found() -> None:
    assert permanent("lightening.contacts.update", {"id": 17, "name": "P"}, NOT_FOUND).status == 404


def test_an_answer_that_is_not_a_json_object_is_permanent() -> None:
    html = httpx.Response(200, text="<html>Login</html>")
    error = permanent("lightening.contacts.list", {"customer_id": 1}, html)
    assert error.message == "Lightening did not answer with a JSON object to list contacts: <html>Login</html>"


# --- Delete: success says result false ----------------------------------------------------------------


@pytest.mark.parametrize("answer", [DELETED, {"msg": "Entity has been successfully deleted.", "result": True}])
def test_delete_reports_success_whatever_result_says(answer: dict[str, Any]) -> None:
    out = run("lightening.contacts.delete", {"id": 17}, FakeApi(answer))
    assert out == {"id": 17, "deleted": True, "msg": "Entity has been successfully deleted."}


def test_delete_with_result_true_and_another_message_is_success() -> None:
    out = run("lightening.contacts.delete", {"id": 17}, FakeApi({"msg": "Gone.", "result": True}))
    assert out == {"id": 17, "deleted": True, "msg": "Gone."}


def test_delete_of_a_missing_contact_is_not_found() -> None:
    error = permanent("lightening.contacts.delete", {"id": 17}, NOT_FOUND)
    assert (error.status, error.message) == (
        404,
        "Lightening could not delete contact 17: not found (Entity not found.)",
    )


def test_a_delete_message_with_errors_is_not_success() -> None:
    answer = {"msg": "Entity has been successfully deleted.", "errors": {"id": "Locked."}, "result": False}
    assert permanent("lightening.contacts.delete", {"id": 17}, answer).message.endswith("id: Locked.")


# --- HTTP errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 403])
def test_an_auth_failure_points_at_the_token_and_scheme(status: int) -> None:
    answer = httpx.Response(status, json={"error": "Unauthorized", "result": False})
    error = permanent("lightening.contacts.get", {"id": 1}, answer)
    assert error.message == f"HTTP {status}: Unauthorized (check LIGHTENING_TOKEN and LIGHTENING_AUTH_SCHEME)"


@pytest.mark.parametrize("status", [429, 500, 503])
def test_rate_limits_and_server_errors_are_transient(status: int) -> None:
    with pytest.raises(TransientStepError):
        run("lightening.contacts.list", {"customer_id": 1}, FakeApi(httpx.Response(status, json={})))


def test_the_token_never_reaches_the_call_log() -> None:
    calls = CallLog()
    echo = httpx.Response(200, json={"errors": {"name": f"bad token {TOKEN}"}, "result": False})
    http = httpx.Client(transport=httpx.MockTransport(FakeApi(echo)))
    client = connect(ConnectorContext(SETTINGS, http, calls, Redis.from_url("redis://127.0.0.1:1/0")))
    with pytest.raises(PermanentStepError):
        OPS["lightening.contacts.create"].call(client, m.ContactCreate(name="P"))
    assert TOKEN not in json.dumps(calls.calls)


@pytest.mark.parametrize(
    ("response", "text"),
    [
        (httpx.Response(422, json={"errors": {"name": "Field is required."}}), "name: Field is required."),
        (httpx.Response(400, json={"error": "Bad input"}), "Bad input"),
        (httpx.Response(404, json={"msg": "Entity not found."}), "Entity not found."),
        (httpx.Response(400, json={"message": "Nope"}), "Nope"),
        (httpx.Response(400, json=["odd"]), '["odd"]'),
        (httpx.Response(502, text="Bad gateway"), "Bad gateway"),
        (httpx.Response(502), "Bad Gateway"),
    ],
)
def test_read_error_uses_the_envelope_then_the_text(response: httpx.Response, text: str) -> None:
    assert read_error(response) == text


# --- Reconciliation --------------------------------------------------------------------------------------

ENTITIES = {
    "entities": [
        {"id": "5", "name": "Priya Patel", "email": "other@acme.example"},
        {"id": "6", "name": "P. Patel", "email": "priya@acme.example"},
        "not a contact",
        {"id": "7", "name": "Priya Patel", "email": "Priya@Acme.example"},
    ],
    "result": True,
}


def test_find_contact_takes_the_customers_contact_with_the_same_email_and_name() -> None:
    fake = FakeApi(ENTITIES)
    inp = m.ContactCreate(customer_id=3, name="Priya Patel", email="priya@acme.example")
    found = find_contact(client_for(fake), inp)
    assert found == {"id": 7, "name": "Priya Patel", "email": "Priya@Acme.example"}
    assert fake.query() == [("customer_id[]", "3")]


def test_find_contact_without_a_match_is_none() -> None:
    inp = m.ContactCreate(customer_id=3, name="Someone Else", email="priya@acme.example")
    assert find_contact(client_for(FakeApi(ENTITIES)), inp) is None


@pytest.mark.parametrize("payload", [{"name": "P", "email": "p@a.example"}, {"name": "P", "customer_id": 3}])
def test_find_contact_without_customer_and_email_asks_nothing(payload: dict[str, Any]) -> None:
    fake = FakeApi()
    assert find_contact(client_for(fake), m.ContactCreate(**payload)) is None
    assert fake.requests == []


def test_find_deleted_says_a_missing_contact_was_deleted_by_the_earlier_attempt() -> None:
    found = find_deleted(client_for(FakeApi(NOT_FOUND)), m.ContactDelete(id=17))
    assert found == {"id": 17, "deleted": True, "msg": "already deleted by an earlier attempt"}


def test_find_deleted_of_a_contact_that_still_exists_is_none() -> None:
    answer = {"entity": {"id": "17"}, "result": True}
    assert find_deleted(client_for(FakeApi(answer)), m.ContactDelete(id=17)) is None


def test_find_deleted_passes_other_failures_on() -> None:
    with pytest.raises(PermanentStepError, match="Locked"):
        find_deleted(client_for(FakeApi({"error": "Locked", "result": False})), m.ContactDelete(id=17))


def test_every_write_that_could_duplicate_has_a_finder_and_a_natural_key() -> None:
    assert OPS["lightening.contacts.create"].natural_key == ("customer_id", "email", "name")
    assert OPS["lightening.contacts.delete"].find_existing is find_deleted
