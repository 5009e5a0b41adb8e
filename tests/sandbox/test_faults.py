"""Faults: where a delay holds a request (before the simulator acts, or after), and what a fault answers.

The "worker killed after the API call, before recording it" drill depends on the
second: the contact must exist while the answer is still held. Each test holds a
request far longer than it needs (60 s), observes the simulator while it is held,
then lets it go with DELETE /faults, so nothing here depends on timing luck.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import httpx
import pytest

from sandbox.bigchange import create_app
from sandbox.server import RunningServer, serve_in_thread

KEY = "k"
HELD_MS = 60_000


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with serve_in_thread(create_app(api_key=KEY)) as running:
        yield running


@pytest.fixture
def api(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers={"X-API-Key": KEY}, timeout=HELD_MS / 1000 * 2) as client:
        client.post("/__sandbox__/reset").raise_for_status()
        yield client


@pytest.fixture
def background() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=1) as pool:
        yield pool


def contacts(api: httpx.Client) -> list[dict]:
    return api.get("/__sandbox__/state").json()["contacts"]


def wait_until(predicate: Callable[[], bool], what: str, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, f"{what}: not within {seconds}s"
        time.sleep(0.02)


def held_create(api: httpx.Client, background: ThreadPoolExecutor, reference: str) -> Future[httpx.Response]:
    return background.submit(api.post, "/contacts/create", json={"name": "Held", "reference": reference})


def test_an_after_fault_makes_the_change_then_holds_the_answer(
    api: httpx.Client, background: ThreadPoolExecutor
) -> None:
    # Given a create whose answer is delayed a minute, then lost to a 500
    api.post(
        "/__sandbox__/faults", json={"path": "/contacts/create", "status": 500, "delay_ms": HELD_MS, "when": "after"}
    ).raise_for_status()
    # When a contact is created
    answer = held_create(api, background, "R-AFTER")
    # Then the contact exists while the caller is still waiting for the answer
    wait_until(lambda: len(contacts(api)) == 1, "the contact to be created")
    assert not answer.done()
    # And once let go, the caller gets the fault, though the contact stays
    api.delete("/__sandbox__/faults").raise_for_status()
    assert answer.result(timeout=10).status_code == 500
    assert [c["reference"] for c in contacts(api)] == ["R-AFTER"]


def test_a_before_fault_holds_the_request_before_anything_changes(
    api: httpx.Client, background: ThreadPoolExecutor
) -> None:
    # Given a create delayed a minute before it is processed (no status: it then goes through)
    api.post("/__sandbox__/faults", json={"path": "/contacts/create", "delay_ms": HELD_MS}).raise_for_status()
    # When a contact is created, and the fault has picked the request up
    answer = held_create(api, background, "R-BEFORE")
    wait_until(lambda: api.get("/__sandbox__/faults").json() == [], "the fault to take the request")
    # Then nothing exists yet
    assert contacts(api) == [] and not answer.done()
    # And once let go, the request is processed normally
    api.delete("/__sandbox__/faults").raise_for_status()
    assert answer.result(timeout=10).status_code == 201
    assert [c["reference"] for c in contacts(api)] == ["R-BEFORE"]


def test_a_reset_also_lets_held_requests_go(api: httpx.Client, background: ThreadPoolExecutor) -> None:
    api.post(
        "/__sandbox__/faults", json={"path": "/contacts/create", "delay_ms": HELD_MS, "when": "after"}
    ).raise_for_status()
    answer = held_create(api, background, "R-RESET")
    wait_until(lambda: len(contacts(api)) == 1, "the contact to be created")
    api.post("/__sandbox__/reset").raise_for_status()
    assert answer.result(timeout=10).status_code == 201


def test_a_fault_can_answer_a_redirect_with_its_location(api: httpx.Client) -> None:
    location = "http://169.254.169.254/latest/meta-data/"
    fault = {"path": "/contacts/list", "status": 302, "headers": {"Location": location}, "body": {}}
    api.post("/__sandbox__/faults", json=fault).raise_for_status()
    response = api.post("/contacts/list", json={})
    assert (response.status_code, response.headers["Location"]) == (302, location)
