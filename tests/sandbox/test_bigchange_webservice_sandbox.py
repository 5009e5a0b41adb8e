"""The legacy web service simulator (services.ashx?action=ContactSave), over real HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sandbox.bigchange_webservice import FIRST_ID, create_app
from sandbox.server import RunningServer, serve_in_thread

USER, PASSWORD, KEY = "ops", "pw-secret", "ws-key"
STREET = {"ContactName": "Lucy Margetts", "ContactStreet": "23 Maple Avenue"}


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with serve_in_thread(create_app(username=USER, password=PASSWORD, key=KEY)) as running:
        yield running


@pytest.fixture
def ws(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, auth=(USER, PASSWORD), headers={"key": KEY}, timeout=10) as client:
        client.post("/__sandbox__/reset").raise_for_status()
        yield client


def save(ws: httpx.Client, **params: Any) -> dict[str, Any]:
    response = ws.get("/services.ashx", params={"action": "ContactSave", **params})
    assert response.status_code == 200, response.text
    return response.json()


def refused(ws: httpx.Client, message: str, **params: Any) -> None:
    assert save(ws, **params) == {"Code": 2, "Result": message}
    assert ws.get("/__sandbox__/state").json()["contacts"] == []


def test_the_docs_example_saves_a_contact_and_answers_its_id(ws: httpx.Client) -> None:
    # The request URL from the docs, parameter names in lower case as it writes them
    query = (
        "action=ContactSave&contactname=Lucy+Margetts&contactgroup=Customer&contactreference=IH-04"
        "&contactstreet=23+Maple+Avenue&contacttown=Leicester&contactpostcode=LE47QP"
        "&contactphone=%2B447932883112&contactemail=lucymargetts%40outlook.com"
    )
    response = ws.get(f"/services.ashx?{query}")

    assert response.json() == {"Code": 0, "Result": FIRST_ID}
    (contact,) = ws.get("/__sandbox__/state").json()["contacts"]
    assert (contact["Name"], contact["Group"], contact["Phone"]) == ("Lucy Margetts", "Customer", "+447932883112")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"ContactRadiusMeter": "wide"}, "Contact Radius is not a valid number"),
        ({"CreditLimit": "lots"}, "Invalid Credit Limit"),
        ({"ContactExtraDelay2Pay": "70000"}, "Invalid Delay2Pay"),
        (
            {"ContactOnStop": "3"},
            "contactOnStopType - must be integer value 0 = None , 1 = OnStop , 2 = Credit Limit On Stop",
        ),
        (
            {"ContactGroup": "G" * 51},
            "The specified contact group does not exist and cannot be created with the details passed",
        ),
        ({"ContactWhat3Words": "not-three-words"}, "Invalid parameter ContactWhat3Words"),
    ],
    ids=["radius", "credit-limit", "delay2pay", "on-stop", "group", "what3words"],
)
def test_each_documented_code_2(ws: httpx.Client, params: dict[str, str], message: str) -> None:
    refused(ws, message, **STREET, **params)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"ContactStreet": "1 St"}, "ContactName is required"),
        ({"ContactName": "x" * 51, "ContactStreet": "1 St"}, "contactname must be at most 50 characters"),
        ({**STREET, "ContactPostcode": "LE4 7QP 1234"}, "contactpostcode must be at most 10 characters"),
        ({"ContactName": "A", "ContactLat": "52.6"}, "ContactStreet, or ContactLat and ContactLng, is required"),
        ({**STREET, "ContactPhone": "07932 883112"}, "ContactPhone must be in international format with no spaces"),
        ({**STREET, "cust_Source": "web"}, "ContactGroup must be provided when custom fields are supplied"),
        ({**STREET, "ContactGroup": "C", "cust_Nope": "x"}, "Custom field 'Nope' does not exist"),
        ({**STREET, "ContactId": "5"}, "Contact 5 not found"),
    ],
    ids=["name", "name-length", "postcode-length", "street-or-lat-lng", "phone", "custom-group", "custom", "id"],
)
def test_the_documented_rules_without_a_documented_message(
    ws: httpx.Client, params: dict[str, str], message: str
) -> None:
    body = save(ws, **params)
    assert body["Code"] == 2 and body["Result"].startswith(message)


def test_coordinates_instead_of_a_street_and_custom_fields_by_caption(ws: httpx.Client) -> None:
    body = save(
        ws, ContactName="Depot", ContactLat="52.6", ContactLng="-1.1", ContactGroup="Sites", **{"cust_source": "web"}
    )

    assert body["Code"] == 0
    (contact,) = ws.get("/__sandbox__/state").json()["contacts"]
    assert (contact["Lat"], contact["Lng"], contact["Custom"]) == (52.6, -1.1, {"Source": "web"})
    assert "Sites" in ws.get("/__sandbox__/state").json()["groups"]


def test_contact_id_updates_and_replace_same_ref_replaces_instead_of_adding(ws: httpx.Client) -> None:
    first = save(ws, **STREET, ContactReference="IH-04")["Result"]
    assert save(ws, **STREET, ContactReference="IH-04")["Result"] == first + 1  # references are not unique

    replaced = save(
        ws, ContactName="Lucy M", ContactStreet="1 New St", ContactReference="IH-04", ContactReplaceSameRef="1"
    )
    updated = save(ws, ContactName="Lucy Margetts-Smith", ContactStreet="1 New St", ContactId=str(first + 1))

    assert (replaced["Result"], updated["Result"]) == (first, first + 1)
    names = {c["Id"]: c["Name"] for c in ws.get("/__sandbox__/state").json()["contacts"]}
    assert names == {first: "Lucy M", first + 1: "Lucy Margetts-Smith"}


@pytest.mark.parametrize(
    ("auth", "headers"),
    [(None, {"key": KEY}), ((USER, "wrong"), {"key": KEY}), ((USER, PASSWORD), {}), ((USER, PASSWORD), {"key": "x"})],
    ids=["no-basic", "wrong-password", "no-key", "wrong-key"],
)
def test_basic_auth_and_the_key_header_are_both_required(
    server: RunningServer, auth: tuple[str, str] | None, headers: dict[str, str]
) -> None:
    response = httpx.get(
        f"{server.url}/services.ashx", params={"action": "ContactSave", **STREET}, auth=auth, headers=headers
    )

    assert response.status_code == 401
    assert response.json() == {"Code": 2, "Result": "Authentication failed"}


def test_unknown_actions_are_refused_and_ping_answers(ws: httpx.Client) -> None:
    assert ws.get("/services.ashx", params={"action": "JobSave"}).json() == {
        "Code": 2,
        "Result": "Unknown action: JobSave",
    }
    assert ws.get("/services.ashx", params={"Action": "ping"}).json() == {"Code": 0, "Result": "pong"}


def test_the_call_log_keeps_credentials_out(ws: httpx.Client) -> None:
    # Given a client that wrongly also puts credentials in the query string
    save(ws, **STREET, login=USER, pwd=PASSWORD, key=KEY)

    (call,) = ws.get("/__sandbox__/calls").json()

    assert call["query"]["ContactName"] == "Lucy Margetts" and call["query"]["pwd"] == "***"
    assert PASSWORD not in json.dumps(call) and KEY not in json.dumps(call)
    assert isinstance(call["at"], float)


def test_faults_can_answer_an_http_error_or_another_code(ws: httpx.Client) -> None:
    ws.post("/__sandbox__/faults", json={"path": "/services.ashx", "status": 500}).raise_for_status()
    ws.post(
        "/__sandbox__/faults", json={"path": "/services.ashx", "status": 200, "body": {"Code": 3, "Result": "Busy"}}
    )

    assert ws.get("/services.ashx", params={"action": "ContactSave", **STREET}).status_code == 500
    assert save(ws, **STREET) == {"Code": 3, "Result": "Busy"}
    assert save(ws, **STREET)["Code"] == 0
