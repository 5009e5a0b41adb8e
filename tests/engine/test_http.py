"""ApiClient: the one place outbound HTTP happens, and what each call leaves in the CallLog.

The log is what the ledger and the UI show, so it must hold enough to debug a
call (method, URL, params, body, status, response) and never a credential.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from engine.errors import PermanentStepError, StepError, TransientStepError
from engine.http import MAX_LOGGED_BODY, ApiClient, CallLog

SECRET = "sk-live-0123456789abcdef"
HEADERS = {"X-API-Key": SECRET, "Authorization": f"Bearer {SECRET}"}

Handler = Callable[[httpx.Request], httpx.Response]


def read_message(response: httpx.Response) -> str:
    """A connector's error reader, reduced to the `message` field."""
    try:
        return response.json()["message"]
    except (ValueError, KeyError, TypeError):
        return response.text


def make_client(handler: Handler, calls: CallLog | None = None) -> ApiClient:
    return ApiClient(
        httpx.Client(transport=httpx.MockTransport(handler)),
        "https://api.test/v1/",
        HEADERS,
        calls if calls is not None else CallLog(),
        read_error=read_message,
        auth_hint="check THE_KEY",
    )


def answer(response: httpx.Response) -> Handler:
    return lambda request: response


def fail_with(exc_type: type[httpx.TransportError]) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc_type("simulated", request=request)

    return handler


# --- Requests ---------------------------------------------------------------------------------


def test_a_request_goes_to_the_base_url_with_the_connectors_headers() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    make_client(handler).request("POST", "/contacts/create", params={"a": 1}, json_body={"name": "Acme"})

    (request,) = seen
    assert str(request.url) == "https://api.test/v1/contacts/create?a=1"
    assert request.headers["X-API-Key"] == SECRET
    assert json.loads(request.content) == {"name": "Acme"}


def test_a_json_response_is_returned_decoded() -> None:
    assert make_client(answer(httpx.Response(200, json={"id": 5}))).request("GET", "/x") == {"id": 5}


@pytest.mark.parametrize(
    "response", [httpx.Response(204), httpx.Response(200), httpx.Response(201, content=b"")], ids=["204", "200", "201"]
)
def test_an_empty_body_is_none(response: httpx.Response) -> None:
    calls = CallLog()

    assert make_client(answer(response), calls).request("POST", "/x") is None
    assert calls.calls[0]["response"] is None


@pytest.mark.parametrize("text", ["OK", "<html><body>Accepted</body></html>", "{not json"])
def test_a_body_that_is_not_json_is_returned_and_logged_as_text(text: str) -> None:
    calls = CallLog()

    assert make_client(answer(httpx.Response(200, text=text)), calls).request("GET", "/x") == text
    assert calls.calls[0]["response"] == text


def test_a_body_that_is_not_utf8_is_returned_as_text_not_a_crash() -> None:
    response = httpx.Response(200, content=b"caf\xe9", headers={"Content-Type": "text/plain; charset=latin-1"})

    assert make_client(answer(response)).request("GET", "/x") == "café"


# --- The call log -----------------------------------------------------------------------------


def test_the_log_records_what_was_sent_and_what_came_back() -> None:
    calls = CallLog()

    make_client(answer(httpx.Response(201, json={"id": 5})), calls).request(
        "POST", "/contacts/create", params={"dryRun": "no"}, json_body={"name": "Acme"}
    )

    (call,) = calls.calls
    assert {key: call[key] for key in ("method", "url", "params", "body", "status", "response")} == {
        "method": "POST",
        "url": "https://api.test/v1/contacts/create",
        "params": {"dryRun": "no"},
        "body": {"name": "Acme"},
        "status": 201,
        "response": {"id": 5},
    }
    assert isinstance(call["ms"], float)
    assert call["ms"] >= 0
    assert "headers" not in call


def test_each_call_of_an_attempt_is_appended_in_order() -> None:
    calls = CallLog()
    client = make_client(answer(httpx.Response(200, json={})), calls)

    client.request("POST", "/contacts/list")
    client.request("POST", "/contacts/create")

    assert [call["url"].rsplit("/", 1)[-1] for call in calls.calls] == ["list", "create"]


def test_a_call_without_params_logs_an_empty_mapping() -> None:
    calls = CallLog()

    make_client(answer(httpx.Response(200, json={})), calls).request("GET", "/x")

    assert calls.calls[0]["params"] == {}
    assert calls.calls[0]["body"] is None


def test_a_failed_call_is_logged_before_the_error_is_raised() -> None:
    calls = CallLog()

    with pytest.raises(TransientStepError):
        make_client(answer(httpx.Response(503, json={"message": "down"})), calls).request("GET", "/x")

    assert calls.calls[0]["status"] == 503
    assert calls.calls[0]["response"] == {"message": "down"}


def test_a_call_that_got_no_response_is_logged_with_its_error() -> None:
    calls = CallLog()

    with pytest.raises(TransientStepError):
        make_client(fail_with(httpx.ReadTimeout), calls).request("POST", "/x", json_body={"a": 1})

    (call,) = calls.calls
    assert call["status"] is None
    assert call["response"] is None
    assert call["error"] == "ReadTimeout: simulated"
    assert call["body"] == {"a": 1}


def test_a_huge_response_is_truncated_in_the_log_but_returned_whole() -> None:
    # Given: a response body well past the log's limit
    body = {"items": [{"id": i, "name": "x" * 100} for i in range(2000)]}
    calls = CallLog()

    # When
    returned = make_client(answer(httpx.Response(200, json=body)), calls).request("POST", "/contacts/list")

    # Then: the caller gets everything, the log a bounded head and the size
    assert returned == body
    logged = calls.calls[0]["response"]
    size = len(json.dumps(body))
    assert logged == {"truncated": True, "chars": size, "head": json.dumps(body)[:MAX_LOGGED_BODY]}


def test_a_huge_text_response_is_truncated_in_the_log() -> None:
    text = "y" * (MAX_LOGGED_BODY + 1)
    calls = CallLog()

    make_client(answer(httpx.Response(200, text=text)), calls).request("GET", "/x")

    assert calls.calls[0]["response"] == {"truncated": True, "chars": MAX_LOGGED_BODY + 1, "head": text[:-1]}


def test_a_response_exactly_at_the_limit_is_logged_whole() -> None:
    text = "z" * MAX_LOGGED_BODY
    calls = CallLog()

    make_client(answer(httpx.Response(200, text=text)), calls).request("GET", "/x")

    assert calls.calls[0]["response"] == text


# --- Secrets ----------------------------------------------------------------------------------

OUTCOMES: dict[str, Handler] = {
    "200": answer(httpx.Response(200, json={"id": 1})),
    "401": answer(httpx.Response(401, json={"message": "Invalid key"})),
    "429": answer(httpx.Response(429, json={"message": "slow"}, headers={"Retry-After": "3"})),
    "500": answer(httpx.Response(500, text="boom")),
    "connect-error": fail_with(httpx.ConnectError),
    "read-timeout": fail_with(httpx.ReadTimeout),
}


@pytest.mark.parametrize("outcome", OUTCOMES.values(), ids=OUTCOMES.keys())
def test_the_log_and_the_error_never_contain_the_credentials(outcome: Handler) -> None:
    calls = CallLog()

    try:
        make_client(outcome, calls).request("POST", "/contacts/create", params={"p": 1}, json_body={"name": "Acme"})
    except StepError as error:
        assert SECRET not in error.message
        assert SECRET not in str(error)

    # Then: serialised as the ledger stores it, the log has the call but no trace of the key
    stored = json.dumps(calls.calls, default=str)
    assert "/contacts/create" in stored
    assert SECRET not in stored
    assert "X-API-Key" not in stored
    assert "Bearer" not in stored


# --- Errors -----------------------------------------------------------------------------------


def test_a_4xx_raises_a_permanent_error_with_the_connectors_reading_of_the_body() -> None:
    with pytest.raises(PermanentStepError) as raised:
        make_client(answer(httpx.Response(422, json={"message": "name is required"}))).request("POST", "/x")

    assert raised.value.message == "HTTP 422: name is required"
    assert raised.value.status == 422


def test_a_401_raises_with_the_connectors_auth_hint() -> None:
    with pytest.raises(PermanentStepError) as raised:
        make_client(answer(httpx.Response(401, json={"message": "Invalid key"}))).request("GET", "/x")

    assert raised.value.message == "HTTP 401: Invalid key (check THE_KEY)"


def test_a_429_raises_a_transient_error_with_retry_after() -> None:
    response = httpx.Response(429, json={"message": "slow"}, headers={"Retry-After": "7"})

    with pytest.raises(TransientStepError) as raised:
        make_client(answer(response)).request("GET", "/x")

    assert raised.value.retry_after == 7.0
    assert raised.value.outcome_unknown is False


def test_a_5xx_raises_a_transient_error_whose_outcome_is_unknown() -> None:
    with pytest.raises(TransientStepError) as raised:
        make_client(answer(httpx.Response(500, json={"message": "oops"}))).request("POST", "/x")

    assert raised.value.outcome_unknown is True
    assert raised.value.retry_after is None


@pytest.mark.parametrize(("exc_type", "outcome_unknown"), [(httpx.ConnectError, False), (httpx.ReadTimeout, True)])
def test_a_transport_failure_raises_transient_from_the_httpx_error(
    exc_type: type[httpx.TransportError], outcome_unknown: bool
) -> None:
    with pytest.raises(TransientStepError) as raised:
        make_client(fail_with(exc_type)).request("POST", "/x")

    assert raised.value.outcome_unknown is outcome_unknown
    assert isinstance(raised.value.__cause__, exc_type)


def test_only_step_errors_leave_the_client_even_for_a_garbled_retry_after() -> None:
    response = httpx.Response(429, headers=[(b"Retry-After", b"\xb2")])

    with pytest.raises(TransientStepError) as raised:
        make_client(answer(response)).request("GET", "/x")

    assert raised.value.retry_after is None


def test_the_log_serialises_to_json() -> None:
    # The ledger stores the log as JSON: every value must be serialisable as is.
    calls = CallLog()
    client = make_client(answer(httpx.Response(200, json={"ok": True})), calls)
    client.request("GET", "/x", params={"id": 1})
    with pytest.raises(TransientStepError):
        make_client(fail_with(httpx.ConnectError), calls).request("GET", "/y")

    assert json.loads(json.dumps(calls.calls))[1]["error"] == "ConnectError: simulated"


def test_a_credential_echoed_by_the_api_is_scrubbed_from_the_log_and_the_error() -> None:
    # Given an API that echoes the key it was sent back in its error body
    def echo(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"message": f"bad key {request.headers['X-API-Key']}"})

    calls = CallLog()
    client = ApiClient(
        httpx.Client(transport=httpx.MockTransport(echo)),
        "https://api.test",
        {"X-API-Key": "sekrit-key-42"},
        calls,
        read_error=lambda r: r.json()["message"],
        auth_hint="check KEY",
    )
    with pytest.raises(PermanentStepError) as raised:
        client.request("POST", "/x", json_body={"echo": "sekrit-key-42"})
    # Then neither the stored call nor the error message carries it
    assert "sekrit-key-42" not in json.dumps(calls.calls) + raised.value.message
    assert raised.value.message == "HTTP 400: bad key [redacted]"


def test_a_redirect_names_where_it_pointed_and_blames_the_base_url() -> None:
    response = httpx.Response(301, headers={"Location": "https://new.test/x"})
    with pytest.raises(PermanentStepError, match=r"HTTP 301: unexpected redirect to https://new.test/x; check the"):
        make_client(answer(response)).request("GET", "/x")


def test_credentials_are_recognised_by_header_name_not_every_header_value() -> None:
    # Given a client that sends a language header alongside its key
    calls = CallLog()

    def echo(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"language": request.headers["Accept-Language"], "key": "s3cret-key"})

    client = ApiClient(
        httpx.Client(transport=httpx.MockTransport(echo)),
        "https://api.test",
        {"X-API-Key": "s3cret-key", "Accept-Language": "de-CH"},
        calls,
        read_error=lambda r: r.text,
        auth_hint="",
    )
    client.request("GET", "/x")
    # Then the language stays readable and the key does not
    assert calls.calls[0]["response"] == {"language": "de-CH", "key": "[redacted]"}


def test_credential_like_fields_in_bodies_are_redacted_in_the_log() -> None:
    calls = CallLog()
    client = make_client(answer(httpx.Response(200, json={"ok": True, "access_token": "abc123"})), calls)
    client.request("POST", "/x", json_body={"name": "Ann", "portal_password": "hunter22", "profile": {"api_key": "k"}})
    assert calls.calls[0]["body"] == {
        "name": "Ann",
        "portal_password": "[redacted]",
        "profile": {"api_key": "[redacted]"},
    }
    assert calls.calls[0]["response"] == {"ok": True, "access_token": "[redacted]"}


@pytest.mark.parametrize(
    ("kwargs", "content_type", "sent"),
    [
        ({"form": {"name": "Ann", "is_active": "1"}}, "application/x-www-form-urlencoded", b"name=Ann&is_active=1"),
        ({"text": "query { contacts }"}, "text/plain; charset=utf-8", b"query { contacts }"),
        ({"json_body": {"a": 1}}, "application/json", b'{"a":1}'),
    ],
)
def test_a_request_body_may_be_json_form_or_text(kwargs: dict, content_type: str, sent: bytes) -> None:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    make_client(record).request("POST", "/x", **kwargs)
    assert seen[0].headers["content-type"] == content_type
    assert seen[0].content.replace(b" ", b"") == sent.replace(b" ", b"")


def test_only_one_body_may_be_given() -> None:
    with pytest.raises(ValueError, match="give one request body, not json_body and form"):
        make_client(answer(httpx.Response(204))).request("POST", "/x", json_body={}, form={})
