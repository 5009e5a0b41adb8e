"""The API stub answers like BigChange for the four web-enquiry paths, and counts what it was asked."""

from __future__ import annotations

import asyncio

from bench.stub import StubServer, StubState, api_call, control_call


def test_a_workflow_s_four_calls_chain_by_id() -> None:
    state = StubState("key")
    status, contact = api_call(state, "/contacts/create", {"name": "Jane", "reference": "WEB-1"})
    assert status == 201 and contact is not None
    status, job = api_call(state, "/jobs/create", {"typeId": 42, "contactId": contact["id"]})
    assert status == 201 and job is not None
    assert api_call(state, "/jobs/constraints/create", {"jobId": job["id"], "type": "x"})[0] == 201
    assert api_call(state, "/jobs/scheduling", {"jobId": job["id"], "resourceId": 100}) == (204, None)
    counts = state.counts()
    assert counts["first_contact_at"] <= counts["last_scheduled_at"]
    assert counts | {"requests": {}, "first_contact_at": None, "last_scheduled_at": None} == {
        "requests": {},
        "first_contact_at": None,
        "last_scheduled_at": None,
        "errors": {},
        "contacts": 1,
        "jobs": 1,
        "constraints": 1,
        "scheduled": 1,
        "duplicate_references": 0,
        "latency_ms": 0.0,
    }


def test_unknown_references_are_404_and_a_repeated_contact_reference_is_counted() -> None:
    state = StubState("key")
    assert api_call(state, "/jobs/create", {"contactId": 5})[0] == 404
    assert api_call(state, "/jobs/scheduling", {"jobId": 5})[0] == 404
    api_call(state, "/contacts/create", {"name": "a", "reference": "WEB-1"})
    api_call(state, "/contacts/create", {"name": "a", "reference": "WEB-1"})
    assert state.duplicate_references == 1
    assert api_call(state, "/contacts/list", {})[0] == 404


def test_latency_and_reset_are_control_routes() -> None:
    state = StubState("key")
    api_call(state, "/contacts/create", {"name": "a", "reference": "R"})
    assert control_call(state, "POST", "/latency", {"ms": 50}) == (204, None)
    assert state.latency_ms == 50
    control_call(state, "POST", "/reset", {})
    assert (state.latency_ms, state.contacts, state.api_key) == (0.0, {}, "key")


def test_the_api_key_is_checked_and_every_api_request_counted() -> None:
    server = StubServer(StubState("key"))

    async def calls() -> list[int]:
        wrong = await server.dispatch("POST", "/bigchange/contacts/create", {"x-api-key": "nope"}, b'{"name": "a"}')
        right = await server.dispatch("POST", "/bigchange/contacts/create", {"x-api-key": "key"}, b'{"name": "a"}')
        counts = await server.dispatch("GET", "/bigchange/__sandbox__/counts", {}, b"")
        return [wrong[0], right[0], counts[0]]

    assert asyncio.run(calls()) == [401, 201, 200]
    assert server.state.requests == {"/contacts/create": 2}
    assert server.state.errors == {"401 /contacts/create": 1}
