"""The legacy web service's ContactSave, specified against a fake services.ashx at the transport."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from redis import Redis

from engine.errors import PermanentStepError, TransientStepError
from engine.http import CallLog
from engine.operations import ConnectorContext
from handlers import build_registry
from handlers.bigchange_webservice import OPERATIONS, connect
from schemas.settings import Settings
from tests.handlers.test_bigchange import FakeApi

PASSWORD, KEY = "ws-password-123", "ws-key-456"
SETTINGS = Settings(
    bigchange_webservice_url="https://webservice.test/v01/services.ashx",
    bigchange_webservice_username="ops@example.com",
    bigchange_webservice_password=SecretStr(PASSWORD),
    bigchange_webservice_key=SecretStr(KEY),
    bigchange_requests_per_second=0,
)
OP = OPERATIONS[0]
SAVE = {"ContactName": "Lucy Margetts", "ContactStreet": "23 Maple Avenue", "ContactReference": "IH-04"}


def saved(code: int = 0, result: Any = 38759340, status: int = 200) -> httpx.Response:
    return httpx.Response(status, json={"Code": code, "Result": result})


def call(fake: FakeApi, payload: dict[str, Any] | None = None, calls: CallLog | None = None) -> dict[str, Any]:
    ctx = ConnectorContext(
        SETTINGS, httpx.Client(transport=httpx.MockTransport(fake)), calls or CallLog(), Redis.from_url("redis://:1")
    )
    return OP.call(connect(ctx), OP.input.model_validate(payload or SAVE))


def test_it_is_registered_under_the_design_name() -> None:
    assert build_registry().get("bigchange_webservice.contact_save") is OP
    assert OP.natural_key == ("ContactReference",)


def test_contact_save_is_a_get_with_the_action_and_the_documented_parameters() -> None:
    fake = FakeApi(saved())

    call(fake, {**SAVE, "ContactPhone": "07932 883112", "ContactGroup": "Customer", "cust_Source": "web"})

    request = fake.last
    assert (request.method, request.url.host, request.url.path) == ("GET", "webservice.test", "/v01/services.ashx")
    assert dict(request.url.params) == {
        "action": "ContactSave",
        "ContactName": "Lucy Margetts",
        "ContactGroup": "Customer",
        "ContactReference": "IH-04",
        "ContactStreet": "23 Maple Avenue",
        "ContactPhone": "+447932883112",
        "cust_Source": "web",
    }
    assert b"%2B447932883112" in request.url.raw_path  # the + is encoded, as the docs require


def test_credentials_travel_as_basic_auth_and_a_key_header_only() -> None:
    fake = FakeApi(saved())

    call(fake)

    expected = base64.b64encode(f"ops@example.com:{PASSWORD}".encode()).decode()
    assert fake.last.headers["Authorization"] == f"Basic {expected}"
    assert fake.last.headers["key"] == KEY
    assert PASSWORD not in str(fake.last.url) and KEY not in str(fake.last.url)


def test_the_call_log_holds_no_credential_even_when_the_service_echoes_one() -> None:
    calls = CallLog()

    call(FakeApi(saved(result=f"38759340 {KEY}".split()[0])), calls=calls)
    with pytest.raises(PermanentStepError) as raised:
        call(FakeApi(saved(code=2, result=f"bad key {KEY}")), calls=calls)

    logged = json.dumps(calls.calls)
    assert KEY not in logged and PASSWORD not in logged and KEY not in raised.value.message
    assert calls.calls[0]["params"]["action"] == "ContactSave"


def test_code_0_outputs_the_contact_id() -> None:
    assert call(FakeApi(saved(result=38759340))) == {"id": 38759340}
    assert call(FakeApi(saved(result="38759341"))) == {"id": 38759341}


@pytest.mark.parametrize(
    "message",
    [
        "Contact Radius is not a valid number",
        "Invalid Credit Limit",
        "Invalid Delay2Pay",
        "contactOnStopType - must be integer value 0 = None , 1 = OnStop , 2 = Credit Limit On Stop",
        "The specified contact group does not exist and cannot be created with the details passed",
        "Invalid parameter ContactWhat3Words",
    ],
)
def test_code_2_is_a_permanent_failure_carrying_the_message(message: str) -> None:
    with pytest.raises(PermanentStepError) as raised:
        call(FakeApi(saved(code=2, result=message)))

    assert not isinstance(raised.value, TransientStepError)
    assert raised.value.message == f"ContactSave failed (Code 2): {message}"
    assert raised.value.outcome_unknown is False


@pytest.mark.parametrize("code", [1, 3, 99])
def test_any_other_non_zero_code_is_permanent_too(code: int) -> None:
    with pytest.raises(PermanentStepError, match=f"Code {code}"):
        call(FakeApi(saved(code=code, result="Something went wrong")))


def test_no_right_says_it_is_a_permission_problem() -> None:
    with pytest.raises(PermanentStepError, match="lacks the right"):
        call(FakeApi(saved(code=2, result="misc_noRight")))


@pytest.mark.parametrize(
    "response",
    [httpx.Response(200, text="<html>Login</html>"), httpx.Response(200, json={"Result": 1}), saved(result=None)],
    ids=["html", "no-code", "no-id"],
)
def test_an_answer_that_is_not_the_envelope_leaves_the_outcome_unknown(response: httpx.Response) -> None:
    with pytest.raises(PermanentStepError) as raised:
        call(FakeApi(response))

    assert raised.value.outcome_unknown is True


def test_http_401_points_at_the_three_settings() -> None:
    with pytest.raises(PermanentStepError) as raised:
        call(FakeApi(saved(code=2, result="Authentication failed", status=401)))

    assert "Authentication failed" in raised.value.message
    assert "BIGCHANGE_WEBSERVICE_PASSWORD" in raised.value.message


def test_http_5xx_is_transient() -> None:
    with pytest.raises(TransientStepError):
        call(FakeApi(httpx.Response(503)))


@pytest.mark.parametrize(
    "missing",
    ["bigchange_webservice_username", "bigchange_webservice_password", "bigchange_webservice_key"],
)
def test_connect_names_each_missing_setting(missing: str) -> None:
    settings = SETTINGS.model_copy(update={missing: None})
    ctx = ConnectorContext(settings, httpx.Client(), CallLog(), Redis.from_url("redis://:1"))

    with pytest.raises(PermanentStepError, match=missing.upper()):
        connect(ctx)


def reconcile(fake: FakeApi, payload: dict[str, Any]) -> dict[str, Any] | None:
    ctx = ConnectorContext(
        SETTINGS, httpx.Client(transport=httpx.MockTransport(fake)), CallLog(), Redis.from_url("redis://:1")
    )
    return OP.find_existing(connect(ctx), OP.input.model_validate(payload))


def test_a_retry_after_an_unknown_outcome_replaces_the_contact_with_the_same_reference() -> None:
    fake = FakeApi(saved(result=38759340))

    assert reconcile(fake, SAVE) == {"id": 38759340}
    assert fake.last.url.params["ContactReplaceSameRef"] == "1"
    assert fake.last.url.params["ContactReference"] == "IH-04"


@pytest.mark.parametrize(
    "payload",
    [{"ContactName": "A", "ContactStreet": "1 St"}, {**SAVE, "ContactId": 12}],
    ids=["no-reference", "update-by-id"],
)
def test_without_a_reference_or_with_an_id_there_is_nothing_to_reconcile(payload: dict[str, Any]) -> None:
    fake = FakeApi()

    assert reconcile(fake, payload) is None
    assert fake.requests == []
