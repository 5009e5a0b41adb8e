"""The Lightening simulator over HTTP: documented routes, limits and envelopes (quirks included).

Everything is answered HTTP 200 with the outcome in the body, as the docs print it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import SANDBOX_KEY, Sandbox


@pytest.fixture(scope="module")
def control(sandbox_server: str) -> Iterator[httpx.Client]:
    # One client per module: building an httpx.Client costs ~50 ms (its TLS context), per test that adds up.
    with httpx.Client(base_url=f"{sandbox_server}/lightening", timeout=10) as client:
        yield client


@pytest.fixture
def lt(control: httpx.Client) -> Sandbox:
    """The simulator as mounted by `flask sandbox`, reset."""
    control.post("/__sandbox__/reset").raise_for_status()
    return Sandbox(str(control.base_url).rstrip("/"), control)


@pytest.fixture
def api(lt: Sandbox, control: httpx.Client) -> httpx.Client:
    """Authenticated requests to the reset simulator (the same pooled connection)."""
    control.headers["Authorization"] = SANDBOX_KEY
    return control


def create(api: httpx.Client, **fields: Any) -> str:
    body = api.post("/contact", json={"name": "Priya Patel", "customer_id": 1} | fields).json()
    assert body["result"] is True, body
    return body["id"]


# --- Auth ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("header", [SANDBOX_KEY, f"Bearer {SANDBOX_KEY}", f"Token {SANDBOX_KEY}"])
def test_the_key_is_accepted_bare_or_after_any_scheme(lt: Sandbox, header: str) -> None:
    response = httpx.get(f"{lt.url}/contact", params={"customer_id[]": 1}, headers={"Authorization": header})
    assert response.json() == {"entities": [], "result": True}


@pytest.mark.parametrize("headers", [{}, {"Authorization": "wrong"}, {"Authorization": f"{SANDBOX_KEY} extra"}])
def test_without_the_key_the_answer_is_401(lt: Sandbox, headers: dict[str, str]) -> None:
    response = httpx.get(f"{lt.url}/contact/1", headers=headers)
    assert response.status_code == 401 and response.json()["result"] is False


# --- Create, list, get, update, delete ------------------------------------------------------------------


def test_a_created_contact_is_listed_under_its_customer_with_string_ids(api: httpx.Client) -> None:
    assert api.post("/contact", json={"name": "Priya Patel", "customer_id": 1}).json() == {
        "msg": "Successfully created entity.",
        "id": "101",
        "result": True,
    }
    listed = api.get("/contact", params={"customer_id[]": [1, 2]}).json()
    (contact,) = listed["entities"]
    assert (contact["id"], contact["customer_id"], contact["customer_name"], contact["locale"]) == (
        "101",
        1,
        "Acme Property Ltd",
        "en_US",
    )
    assert api.get("/contact", params={"customer_id[]": 2}).json() == {"entities": [], "result": True}


@pytest.mark.parametrize("params", [{"customer_id[]": [1]}, {"customer_id": [1]}, {"customer_id": "1,2"}])
def test_customer_id_is_understood_in_each_encoding(api: httpx.Client, params: dict[str, Any]) -> None:
    create(api)
    assert len(api.get("/contact", params=params).json()["entities"]) == 1


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "Field is required."),
        ({"customer_id[]": "x"}, "Field must be an array of customer ids."),
        ({"customer_id[]": [1, 9]}, "Customer 9 is not associated with your account."),
    ],
)
def test_list_needs_known_customer_ids(api: httpx.Client, params: dict[str, Any], message: str) -> None:
    response = api.get("/contact", params=params)
    assert response.status_code == 200
    assert response.json() == {"errors": {"customer_id": message}, "result": False}


def test_get_answers_the_entity_and_a_missing_one_is_not_found(api: httpx.Client) -> None:
    ident = create(api, email="priya@acme.example", portal_password="secret-pass")
    body = api.get(f"/contact/{ident}").json()
    assert body["result"] is True and body["entity"]["email"] == "priya@acme.example"
    assert "portal_password" not in body["entity"]
    assert api.get("/contact/999").json() == {"msg": "Entity not found.", "result": False}


def test_update_changes_the_given_fields(api: httpx.Client) -> None:
    ident = create(api)
    answer = api.post(f"/contact/{ident}", json={"name": "Priya P.", "is_active": 0, "milestone": "1"}).json()
    assert answer == {"msg": "Successfully updated entity.", "result": True}
    contact = api.get(f"/contact/{ident}").json()["entity"]
    assert (contact["name"], contact["is_active"], contact["milestone"]) == ("Priya P.", "0", "1")


def test_update_needs_a_name_and_an_existing_contact(api: httpx.Client) -> None:
    ident = create(api)
    assert api.post(f"/contact/{ident}", json={}).json() == {"error": "Nothing sent for request.", "result": False}
    assert api.post(f"/contact/{ident}", json={"tel": "1"}).json() == {
        "errors": {"name": "Field is required."},
        "result": False,
    }
    assert api.post("/contact/999", json={"name": "X"}).json() == {"msg": "Entity not found.", "result": False}


def test_delete_says_result_false_on_success_as_the_docs_print_it(api: httpx.Client) -> None:
    ident = create(api)
    assert api.get(f"/contact/{ident}/delete").json() == {
        "msg": "Entity has been successfully deleted.",
        "result": False,
    }
    assert api.get(f"/contact/{ident}/delete").json() == {"msg": "Entity not found.", "result": False}
    assert api.get(f"/contact/{ident}").json()["msg"] == "Entity not found."


def test_form_encoded_bodies_are_accepted_too(api: httpx.Client) -> None:
    answer = api.post("/contact", data={"name": "Form Person", "customer_id": "2", "is_active": "1"}).json()
    assert answer["result"] is True
    assert api.get(f"/contact/{answer['id']}").json()["entity"]["customer_id"] == 2


# --- The documented limits --------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [{}, None])
def test_an_empty_request_is_nothing_sent(api: httpx.Client, body: Any) -> None:
    response = api.post("/contact", json=body) if body is not None else api.post("/contact")
    assert response.json() == {"error": "Nothing sent for request.", "result": False}


def test_every_failing_field_is_named_at_once(api: httpx.Client) -> None:
    body = {
        "create_method": "api",
        "name": "x" * 65,
        "email": "not-an-email",
        "tel": "1" * 33,
        "department": "d" * 65,
        "is_active": 2,
        "portal_active": "yes",
        "customer_portal_profile_id": 4_294_967_296,
        "portal_password": "short",
        "cost_center_id": "abc",
        "customer_custom_identifier": "c" * 17,
        "locale": "english",
        "customer_id": 9,
    }
    answer = api.post("/contact", json=body).json()
    assert answer["result"] is False
    assert set(answer["errors"]) == set(body)
    assert answer["errors"]["create_method"] == "Field is not allowed."
    assert answer["errors"]["email"] == "Field must be a valid email address."
    assert answer["errors"]["is_active"] == "Field must be 1 or 0."


def test_a_missing_name_is_field_is_required(api: httpx.Client) -> None:
    assert api.post("/contact", json={"email": "a@b.co"}).json() == {
        "errors": {"name": "Field is required."},
        "result": False,
    }


@pytest.mark.parametrize(
    ("field", "ok", "bad"),
    [
        ("email", "a@b.co", "a@b"),
        ("mobile", "1" * 32, "1" * 33),
        ("role", "r" * 32, "r" * 33),
        ("fax", "", "f" * 33),
        ("milestone", 0, 3),
        ("portal_active", "1", True),
        ("customer_portal_profile_id", 4_294_967_295, -1),
        ("portal_password", "p" * 32, "p" * 33),
        ("cost_center_id", "7", "7.5"),
        ("locale", "fr_FR", "fr-FR"),
    ],
)
def test_each_limit_separates_good_from_bad(api: httpx.Client, field: str, ok: Any, bad: Any) -> None:
    assert api.post("/contact", json={"name": "P", field: ok}).json()["result"] is True
    assert list(api.post("/contact", json={"name": "P", field: bad}).json()["errors"]) == [field]


# --- Operator side: state, calls, faults, reset --------------------------------------------------------------


def test_calls_are_logged_with_query_and_body_but_never_the_password(lt: Sandbox, api: httpx.Client) -> None:
    create(api, portal_password="secret-pass")
    api.get("/contact", params={"customer_id[]": [1, 2]})
    post, listing = lt.calls()
    assert post == {
        "method": "POST",
        "path": "/contact",
        "query": {},
        "json": {"name": "Priya Patel", "customer_id": 1, "portal_password": "***"},
        "status": 200,
    }
    assert (listing["query"], listing["json"]) == ({"customer_id[]": ["1", "2"]}, None)
    lt.control.delete("/__sandbox__/calls")
    assert lt.calls() == []


def test_a_fault_before_answers_without_touching_state(lt: Sandbox, api: httpx.Client) -> None:
    lt.fault("/contact", method="POST", status=500)
    response = api.post("/contact", json={"name": "P"})
    assert (response.status_code, response.json()) == (500, {"error": "Injected fault", "result": False})
    assert lt.state()["contacts"] == []


def test_a_fault_after_carries_the_request_out_and_loses_the_answer(lt: Sandbox, api: httpx.Client) -> None:
    lt.fault("/contact", method="POST", status=503, when="after", retry_after=2)
    response = api.post("/contact", json={"name": "P"})
    assert (response.status_code, response.headers["Retry-After"]) == (503, "2")
    assert len(lt.state()["contacts"]) == 1 and lt.calls()[0]["status"] == 503


def test_reset_forgets_contacts_calls_and_faults(lt: Sandbox, api: httpx.Client) -> None:
    create(api)
    lt.fault("*", status=500, times=5)
    lt.control.post("/__sandbox__/reset").raise_for_status()
    assert lt.state()["contacts"] == [] and lt.calls() == []
    assert create(api) == "101"


def test_unknown_routes_and_methods_answer_in_the_envelope(api: httpx.Client) -> None:
    assert api.get("/customers").json()["result"] is False
    response = api.put("/contact/1", json={"name": "P"})
    assert response.status_code == 405 and response.json()["result"] is False
