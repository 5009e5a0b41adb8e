"""The workflow language's runtime features, end to end: foreach, retry.on, timeout, goto, on_failure,
core.* and xref.*, concurrency lanes. Real Redis, real RQ workers, the BigChange sandbox over HTTP.

Each test writes its own workflow next to the shipped sources.yaml and posts a webform event.
"""

from __future__ import annotations

import itertools
import json
import shutil
import socket
import textwrap
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask import Flask
from flask.testing import FlaskClient
from rq import SimpleWorker

from engine.recovery import reconcile
from engine.services import Services
from tests.conftest import SECRETS, SHIPPED_WORKFLOWS, Drain, Sandbox, claim, post_hook

TOKEN = {"X-Hook-Token": SECRETS["WEBFORM_TOKEN"]}


@pytest.fixture
def workflows_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "workflows"
    directory.mkdir()
    shutil.copy(SHIPPED_WORKFLOWS / "sources.yaml", directory)
    return directory


@pytest.fixture
def use(workflows_dir: Path, services: Services):
    """Install one workflow (YAML text) as the only workflow."""

    def install(text: str) -> None:
        (workflows_dir / "w.yaml").write_text(textwrap.dedent(text))
        catalog = services.catalog.current()
        assert [str(i) for i in catalog.issues if i.severity == "error"] == []
        assert "w" in catalog.workflows

    return install


def send(client: FlaskClient, submission: str = "s-1", **data: Any) -> str:
    body = json.dumps({"submission_id": submission, "name": "Jane", **data}).encode()
    response = post_hook(client, "webform", body, **TOKEN)
    assert response.status_code == 202, response.get_json()
    (run_id,) = response.get_json()["runs"]
    return run_id


def get_run(client: FlaskClient, admin: dict[str, str], run_id: str) -> dict[str, Any]:
    return client.get(f"/api/runs/{run_id}", headers=admin).get_json()


def step(run: dict[str, Any], step_id: str) -> dict[str, Any]:
    return next(s for s in run["steps"] if s["id"] == step_id)


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# --- foreach ----------------------------------------------------------------------------------

PEOPLE = """\
name: w
on: {source: webform}
steps:
  - id: people
    uses: bigchange.contacts.create
    foreach: "{{ event.data.people }}"
    max_parallel: %(parallel)s
    on_error: %(on_error)s
    with: {name: "{{ item }}", reference: "P-{{ event.id }}-{{ index }}"}
  - id: note
    uses: core.log
    with: {message: "second person is contact {{ steps.people.output[1].id }}"}
"""


def test_foreach_runs_the_step_once_per_item_and_collects_outputs_in_order(
    use, client: FlaskClient, drain: Drain, sandbox: Sandbox, admin: dict[str, str]
) -> None:
    use(PEOPLE % {"parallel": 1, "on_error": "fail"})
    run_id = send(client, people=["Ann", "Ben", "Cat"])
    drain()
    run = get_run(client, admin, run_id)
    assert run["status"] == "succeeded"
    contacts = sandbox.state()["contacts"]
    assert [c["name"] for c in contacts] == ["Ann", "Ben", "Cat"]
    assert [out["id"] for out in step(run, "people")["output"]] == [c["id"] for c in contacts]
    assert [i["status"] for i in step(run, "people")["items"]] == ["succeeded"] * 3
    assert step(run, "note")["output"]["message"] == f"second person is contact {contacts[1]['id']}"


def test_a_failed_item_is_retried_without_repeating_the_items_before_it(
    use, client: FlaskClient, drain: Drain, sandbox: Sandbox, admin: dict[str, str]
) -> None:
    use(PEOPLE % {"parallel": 1, "on_error": "fail"})
    # Given the first create goes through (a no-op fault takes it) and the second fails with a 500
    # after BigChange made the contact
    sandbox.fault("/contacts/create", delay_ms=1, times=1)
    sandbox.fault("/contacts/create", status=500, times=1, when="after")
    run_id = send(client, people=["Ann", "Ben", "Cat"])
    drain()
    run = get_run(client, admin, run_id)
    assert run["status"] == "succeeded"
    # Then every person exists exactly once: Ann was not created again, Ben's lost response was reconciled
    assert sorted(c["name"] for c in sandbox.state()["contacts"]) == ["Ann", "Ben", "Cat"]
    first, _second = step(run, "people")["attempts"]
    assert first["status"] == "failed" and first["error"].startswith("item 1: HTTP 500")
    assert [c["json"]["name"] for c in sandbox.calls("/contacts/create")] == ["Ann", "Ben", "Cat"]
    assert [i["reconciled"] for i in step(run, "people")["items"]] == [False, True, False]


def test_parallel_items_all_run_and_outputs_keep_item_order(
    use, client: FlaskClient, drain: Drain, sandbox: Sandbox, admin: dict[str, str]
) -> None:
    use(PEOPLE % {"parallel": 3, "on_error": "fail"})
    names = ["Ann", "Ben", "Cat", "Dan", "Eve"]
    run_id = send(client, people=names)
    drain()
    run = get_run(client, admin, run_id)
    assert run["status"] == "succeeded"
    by_name = {c["name"]: c["id"] for c in sandbox.state()["contacts"]}
    assert [out["id"] for out in step(run, "people")["output"]] == [by_name[n] for n in names]


def test_by_default_items_run_one_at_a_time(
    use, client: FlaskClient, drain: Drain, sandbox: Sandbox, admin: dict[str, str]
) -> None:
    # Given BigChange holds every create 300 ms after it arrives
    use(PEOPLE % {"parallel": 1, "on_error": "fail"})
    sandbox.fault("/contacts/create", delay_ms=300, times=3)
    run_id = send(client, people=["Ann", "Ben", "Cat"])
    drain()
    assert get_run(client, admin, run_id)["status"] == "succeeded"
    # Then each create arrived only after the one before had been held and answered: the calls' spans
    # [arrival, arrival + 300 ms] are disjoint, in item order
    creates = sandbox.calls("/contacts/create")
    assert [c["json"]["name"] for c in creates] == ["Ann", "Ben", "Cat"]
    for earlier, later in itertools.pairwise(creates):
        assert later["at"] >= earlier["at"] + 0.3


@pytest.mark.parametrize("settings_overrides", [{"http_timeout_seconds": 60.0}])
def test_with_max_parallel_items_run_at_the_same_time(
    use, client: FlaskClient, drain: Drain, sandbox: Sandbox, admin: dict[str, str]
) -> None:
    # Given BigChange holds every create until released (or 20 s), and a watcher that releases them only
    # once all three have arrived and none has been answered: proof that all three are in flight at once
    use(PEOPLE % {"parallel": 3, "on_error": "fail"})
    sandbox.fault("/contacts/create", delay_ms=20_000, times=3)
    watcher = _ConcurrencyWatcher(sandbox.url)
    watcher.start()
    try:
        run_id = send(client, people=["Ann", "Ben", "Cat"])
        drain(timeout=90)
    finally:
        watcher.stop()
    assert watcher.all_in_flight_at_once is True
    run = get_run(client, admin, run_id)
    assert run["status"] == "succeeded"
    assert sorted(c["name"] for c in sandbox.state()["contacts"]) == ["Ann", "Ben", "Cat"]


class _ConcurrencyWatcher(threading.Thread):
    """Watches the simulator from outside: is there a moment when every held create has arrived (its fault
    consumed) and none has been answered (no call logged)? Then it releases them."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self._control = httpx.Client(base_url=url, timeout=10)
        self._done = threading.Event()
        self.all_in_flight_at_once: bool | None = None

    def run(self) -> None:
        try:
            while not self._done.wait(0.01):
                if any(f["path"] == "/contacts/create" for f in self._control.get("/__sandbox__/faults").json()):
                    continue  # not every create has arrived yet
                answered = [
                    c for c in self._control.get("/__sandbox__/calls").json() if c["path"] == "/contacts/create"
                ]
                self.all_in_flight_at_once = not answered
                self._control.delete("/__sandbox__/faults").raise_for_status()
                return
        finally:
            self._control.close()

    def stop(self) -> None:
        self._done.set()
        self.join(timeout=10)


def test_with_on_error_continue_every_item_is_tried_and_the_run_goes_on(
    use, client: FlaskClient, drain: Drain, sandbox: Sandbox, admin: dict[str, str]
) -> None:
    use(PEOPLE.replace('name: "{{ item }}"', 'name: "{{ item }}"') % {"parallel": 1, "on_error": "continue"})
    run_id = send(client, people=["Ann", "", "Cat"])  # an empty name is refused by validation
    drain()
    run = get_run(client, admin, run_id)
    people = step(run, "people")
    assert people["status"] == "failed" and people["error"].startswith("item 1: invalid input: with.name")
    assert [i["status"] for i in people["items"]] == ["succeeded", "failed", "succeeded"]
    assert sorted(c["name"] for c in sandbox.state()["contacts"]) == ["Ann", "Cat"]
    assert step(run, "note")["status"] == "failed"  # output[1] is null: its template cannot read .id
    assert run["status"] == "failed"


def test_foreach_over_something_that_is_not_a_list_fails_clearly(
    use, client: FlaskClient, drain: Drain, admin: dict[str, str]
) -> None:
    use(PEOPLE % {"parallel": 1, "on_error": "fail"})
    run_id = send(client, people="Ann")
    drain()
    run = get_run(client, admin, run_id)
    assert run["error"] == "step people: foreach: expected a list of items, got str"


# --- retry.on, timeout ------------------------------------------------------------------------

ONE_STEP = """\
name: w
on: {source: webform}
steps:
  - id: contact
    uses: bigchange.contacts.create
    with: {name: "{{ event.data.name }}", reference: "R-{{ event.id }}"}
%(extra)s
"""


def test_retry_on_listed_statuses_retries_a_status_that_is_otherwise_permanent(
    use, client: FlaskClient, drain: Drain, sandbox: Sandbox, admin: dict[str, str]
) -> None:
    use(ONE_STEP % {"extra": "    retry: {on: [transient, 409], max_attempts: 3, initial: 10ms}"})
    sandbox.fault("/contacts/create", status=409, times=1, body={"message": "Contact is locked"})
    run_id = send(client)
    drain()
    run = get_run(client, admin, run_id)
    assert run["status"] == "succeeded"
    assert [a["status"] for a in step(run, "contact")["attempts"]] == ["failed", "succeeded"]


def test_without_the_status_listed_a_409_fails_at_once(
    use, client: FlaskClient, drain: Drain, sandbox: Sandbox, admin: dict[str, str]
) -> None:
    use(ONE_STEP % {"extra": ""})
    sandbox.fault("/contacts/create", status=409, times=1, body={"message": "Contact is locked"})
    run_id = send(client)
    drain()
    assert get_run(client, admin, run_id)["error"] == "step contact: HTTP 409: Contact is locked"


def test_retry_on_only_statuses_does_not_retry_transient_failures(
    use, client: FlaskClient, drain: Drain, sandbox: Sandbox, admin: dict[str, str]
) -> None:
    use(ONE_STEP % {"extra": "    retry: {on: [409]}"})
    sandbox.fault("/contacts/create", status=503, times=1)
    run_id = send(client)
    drain()
    run = get_run(client, admin, run_id)
    assert run["status"] == "failed" and len(step(run, "contact")["attempts"]) == 1


def test_a_step_timeout_cuts_a_slow_call_and_the_retry_reconciles(
    use, client: FlaskClient, drain: Drain, sandbox: Sandbox, admin: dict[str, str]
) -> None:
    # Given BigChange takes 600 ms to create the contact; the step gives up after 300 ms and retries
    # 0.5-1 s later (by then the slow create has landed). max_delay is set too: the suite's default
    # retry caps delays at 50 ms, which would bring the retry back before the slow create lands.
    use(ONE_STEP % {"extra": "    timeout: 300ms\n    retry: {initial: 1s, max_delay: 1s}"})
    sandbox.fault("/contacts/create", delay_ms=600, times=1)
    run_id = send(client)
    drain()
    run = get_run(client, admin, run_id)
    assert run["status"] == "succeeded"
    first, second = step(run, "contact")["attempts"]
    assert first["error_class"] == "transient" and "Timeout" in first["error"] and first["outcome_unknown"]
    assert second["reconciled"] is True  # the slow create did happen: found by reference
    assert len(sandbox.state()["contacts"]) == 1


# --- goto, on_failure ---------------------------------------------------------------------------

FLOW = """\
name: w
on: {source: webform}
steps:
  - id: lookup
    uses: bigchange.contacts.contact
    with: {contactId: 999999}
    on_error: %(on_error)s
  - id: create
    uses: bigchange.contacts.create
    with: {name: "{{ event.data.name }}", reference: "F-{{ event.id }}"}
  - id: done
    uses: core.log
    with: {message: finished}
on_failure:
  - id: tell
    uses: core.log
    with: {message: "run {{ run.id }} failed at {{ run.failed_step }}: {{ run.error }}", level: error}
"""


def test_on_error_goto_jumps_over_the_steps_between(
    use, client: FlaskClient, drain: Drain, sandbox: Sandbox, admin: dict[str, str]
) -> None:
    use(FLOW % {"on_error": "goto done"})
    run_id = send(client)
    drain()
    run = get_run(client, admin, run_id)
    assert run["status"] == "succeeded"
    assert [step(run, s)["status"] for s in ("lookup", "create", "done", "tell")] == [
        "failed",
        "pending",
        "succeeded",
        "pending",
    ]
    assert sandbox.state()["contacts"] == []


def test_on_failure_steps_run_then_the_run_fails_with_the_original_error(
    use, client: FlaskClient, drain: Drain, admin: dict[str, str]
) -> None:
    use(FLOW % {"on_error": "fail"})
    run_id = send(client)
    drain()
    run = get_run(client, admin, run_id)
    assert run["status"] == "failed"
    assert run["error"] == "step lookup: HTTP 404: Contact 999999 was not found"
    assert run["current_step"] == "lookup"
    assert step(run, "tell")["status"] == "succeeded"
    assert step(run, "tell")["output"]["message"] == (
        f"run {run_id} failed at lookup: step lookup: HTTP 404: Contact 999999 was not found"
    )


def test_a_run_failed_after_on_failure_can_still_be_retried_at_its_failed_step(
    use, client: FlaskClient, drain: Drain, sandbox: Sandbox, admin: dict[str, str]
) -> None:
    use(FLOW.replace("contactId: 999999", 'contactId: "{{ event.data.contact }}"') % {"on_error": "fail"})
    contact = sandbox.control.post(
        "/contacts/create", json={"name": "X"}, headers={"X-API-Key": "sandbox-test-key"}
    ).json()["id"]
    sandbox.fault("/contacts/contact", status=400, times=1, body={"message": "try later"})
    run_id = send(client, contact=contact)
    drain()
    assert get_run(client, admin, run_id)["status"] == "failed"
    assert client.post(f"/api/runs/{run_id}/retry", headers=admin).status_code == 202
    drain()
    run = get_run(client, admin, run_id)
    assert run["status"] == "succeeded" and run["error"] is None
    assert [a["status"] for a in step(run, "lookup")["attempts"]] == ["failed", "succeeded"]


# --- core.*, xref.* -------------------------------------------------------------------------------


def test_core_wait_is_a_durable_delay_that_survives_losing_redis(
    use, app: Flask, client: FlaskClient, services: Services, drain: Drain, admin: dict[str, str]
) -> None:
    use("""\
        name: w
        on: {source: webform}
        steps:
          - id: pause
            uses: core.wait
            with: {duration: 2s}
          - id: after
            uses: core.log
            with: {message: later}
        """)
    run_id = send(client)
    with app.app_context():  # one pass: the wait's first attempt defers itself 2 s out
        SimpleWorker([services.queue.queue], connection=services.redis).work(burst=True, logging_level="WARNING")
    services.redis.flushdb()  # and Redis forgets the scheduled job
    assert reconcile(services).requeued == 1
    drain()
    run = get_run(client, admin, run_id)
    assert run["status"] == "succeeded", json.dumps(run, indent=1)
    waited, waited_out = step(run, "pause")["attempts"]
    assert waited["status"] == "deferred" and waited["error"].startswith("deferred: waiting until")
    assert waited_out["status"] == "succeeded"
    assert (when(step(run, "after")["attempts"][0]["started_at"]) - when(waited["started_at"])).total_seconds() >= 2


def test_core_fail_and_core_log(use, client: FlaskClient, drain: Drain, admin: dict[str, str]) -> None:
    use("""\
        name: w
        on: {source: webform}
        steps:
          - id: note
            uses: core.log
            with: {message: "checking {{ event.data.name }}", level: warning}
          - id: stop
            uses: core.fail
            if: "{{ event.data.name == 'Jane' }}"
            with: {message: "Jane's enquiries go to the office, not BigChange"}
        """)
    run_id = send(client)
    drain()
    run = get_run(client, admin, run_id)
    assert step(run, "note")["output"] == {"message": "checking Jane", "level": "warning"}
    assert run["status"] == "failed"
    assert run["error"] == "step stop: Jane's enquiries go to the office, not BigChange"


HTTP_FLOW = """\
name: w
on: {source: webform}
steps:
  - id: call
    uses: core.http
    with: {method: GET, url: "%(url)s"}
"""


def test_core_http_calls_an_allow_listed_host(
    use, client: FlaskClient, services: Services, drain: Drain, sandbox: Sandbox, admin: dict[str, str]
) -> None:
    services.settings = services.settings.model_copy(update={"core_http_allowed_hosts": "127.0.0.1"})
    use(HTTP_FLOW % {"url": f"{sandbox.url}/__sandbox__/state"})
    run_id = send(client)
    drain()
    run = get_run(client, admin, run_id)
    assert run["status"] == "succeeded"
    assert set(step(run, "call")["output"]["body"]) >= {"contacts", "jobs"}


@pytest.mark.parametrize(
    ("allowed", "url", "error"),
    [
        ("", "http://127.0.0.1:9/x", "core.http may not call 127.0.0.1: not in CORE_HTTP_ALLOWED_HOSTS (none)"),
        ("api.example.com", "http://evil.example.com/x", "may not call evil.example.com"),
        ("localhost", "http://localhost:9/x", "core.http refuses localhost: it resolves to the internal address"),
        # Other spellings of a listed address are not on the list (getaddrinfo would read them as 127.0.0.1)
        ("127.0.0.1", "http://2130706433:9/x", "core.http may not call 2130706433: not in CORE_HTTP_ALLOWED_HOSTS"),
        ("127.0.0.1", "http://0x7f000001:9/x", "core.http may not call 0x7f000001: not in CORE_HTTP_ALLOWED_HOSTS"),
        ("127.0.0.1", "http://127.1:9/x", "core.http may not call 127.1: not in CORE_HTTP_ALLOWED_HOSTS"),
        ("127.0.0.1", "http://[::ffff:127.0.0.1]:9/x", "core.http may not call ::ffff:127.0.0.1: not in"),
    ],
)
def test_core_http_refuses_what_is_not_allowed(
    use,
    client: FlaskClient,
    services: Services,
    drain: Drain,
    admin: dict[str, str],
    allowed: str,
    url: str,
    error: str,
) -> None:
    services.settings = services.settings.model_copy(update={"core_http_allowed_hosts": allowed})
    use(HTTP_FLOW % {"url": url})
    run_id = send(client)
    drain()
    run = get_run(client, admin, run_id)
    assert run["status"] == "failed" and error in run["error"]


@pytest.mark.parametrize(
    "address",
    ["169.254.169.254", "100.100.100.200", "::ffff:169.254.169.254", "fd00:ec2::254", "10.0.0.7"],
)
def test_core_http_refuses_a_listed_name_that_resolves_to_an_internal_address(
    use,
    client: FlaskClient,
    services: Services,
    drain: Drain,
    admin: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    address: str,
) -> None:
    # Given a listed name whose DNS points at a cloud metadata service or the LAN (other names resolve as usual)
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        if host != "hooks.example.com":
            return real_getaddrinfo(host, port, *args, **kwargs)
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    services.settings = services.settings.model_copy(update={"core_http_allowed_hosts": "hooks.example.com"})
    use(HTTP_FLOW % {"url": "http://hooks.example.com/latest/meta-data/"})
    # When the workflow runs
    run_id = send(client)
    drain()
    # Then the step fails at once, saying why, having sent nothing
    run = get_run(client, admin, run_id)
    assert run["status"] == "failed"
    assert (
        run["error"] == f"step call: core.http refuses hooks.example.com: it resolves to the internal address {address}"
    )
    assert len(step(run, "call")["attempts"]) == 1


def test_core_http_does_not_follow_a_redirect_from_an_allowed_host_to_an_internal_one(
    use, client: FlaskClient, services: Services, drain: Drain, sandbox: Sandbox, admin: dict[str, str]
) -> None:
    # Given an allowed host that answers with a redirect to the metadata service
    metadata = "http://169.254.169.254/latest/meta-data/iam/security-credentials/"
    sandbox.fault("/contacts/list", status=302, headers={"Location": metadata}, body={})
    services.settings = services.settings.model_copy(update={"core_http_allowed_hosts": "127.0.0.1"})
    use(HTTP_FLOW % {"url": f"{sandbox.url}/contacts/list"})
    # When the workflow runs
    run_id = send(client)
    drain()
    # Then the redirect is a permanent failure, not followed (a follow would have been a connect error, retried)
    run = get_run(client, admin, run_id)
    assert run["status"] == "failed"
    assert f"unexpected redirect to {metadata}" in run["error"]
    assert [call["status"] for call in step(run, "call")["attempts"][0]["calls"]] == [302]
    assert len(step(run, "call")["attempts"]) == 1


def test_xref_save_then_lookup_and_a_missing_key(use, client: FlaskClient, drain: Drain, admin: dict[str, str]) -> None:
    use("""\
        name: w
        on: {source: webform}
        steps:
          - id: save
            uses: xref.save
            if: "{{ event.data.save is defined }}"
            with: {map: account_to_contact, key: "{{ event.data.account }}", value: 1001}
          - id: find
            uses: xref.lookup
            with: {map: account_to_contact, key: "{{ event.data.account }}"}
          - id: maybe
            uses: xref.lookup
            with: {map: account_to_contact, key: "nobody", default: null}
        """)
    saved = send(client, "s-1", account="ACME-01", save=True)
    drain()
    run = get_run(client, admin, saved)
    assert step(run, "find")["output"] == {"found": True, "value": 1001}
    assert step(run, "maybe")["output"] == {"found": False, "value": None}
    missing = send(client, "s-2", account="NOPE-9")
    drain()
    run = get_run(client, admin, missing)
    assert run["error"] == (
        "step find: no account_to_contact mapping for 'NOPE-9': save one first (xref.save), "
        "or give this lookup a default"
    )


# --- concurrency lanes -------------------------------------------------------------------------

LANE = """\
name: w
on: {source: webform}
concurrency: "{{ event.data.email | lower }}"
steps:
  - id: first
    uses: core.log
    with: {message: "a"}
  - id: second
    uses: core.log
    with: {message: "b"}
"""


def test_runs_with_the_same_key_run_one_at_a_time_in_arrival_order(
    use, client: FlaskClient, services: Services, drain: Drain, admin: dict[str, str]
) -> None:
    use(LANE)
    older = send(client, "s-1", email="Jane@Example.com")
    newer = send(client, "s-2", email="jane@example.com")
    other = send(client, "s-3", email="bob@example.com")
    # The newer run's job exists but cannot start while the older one has not finished
    assert claim(services, newer, "first") is None
    assert claim(services, other, "first") is not None  # another lane proceeds
    drain()
    runs = {r: get_run(client, admin, r) for r in (older, newer)}
    assert {run["status"] for run in runs.values()} == {"succeeded"}
    older_done = when(step(runs[older], "second")["attempts"][0]["finished_at"])
    newer_started = when(step(runs[newer], "first")["attempts"][0]["started_at"])
    assert newer_started >= older_done


# docs/workflows.md §5.10, as documented (only the name differs).
ENQUIRY_LANE = """\
name: w
on:
  source: webform
  event: form.submitted
concurrency: "{{ event.data.email | default('', true) | trim | lower }}"   # same email: one run at a time
steps:
  - id: no_email
    uses: core.fail
    if: "{{ not event.data.email | default('', true) | trim }}"
    with:
      message: "enquiry {{ event.key }} has no email address"
  - id: contact
    uses: bigchange.contacts.create
    with:
      name: "{{ event.data.name }}"
      reference: "WEB-{{ event.data.email | trim | lower | truncate(96, true, '', 0) }}"
      upsert: true                    # the second run finds the contact the first one made
  - id: job
    uses: bigchange.jobs.create
    with:
      typeId: 42
      contactId: "{{ steps.contact.output.id }}"
      description: "{{ event.data.message }}"
      reference: "WEB-{{ event.id }}"
"""


def test_a_form_sent_twice_makes_one_contact_with_the_documented_lane_and_upsert(
    use, client: FlaskClient, services: Services, drain: Drain, sandbox: Sandbox, admin: dict[str, str]
) -> None:
    use(ENQUIRY_LANE)
    # Given the same form arrives twice (a double click: two submissions, the email written differently)
    first = send(client, "s-1", email="Jane@Example.com ", message="Leaking tap")
    second = send(client, "s-2", email="jane@example.com", message="Leaking tap")
    # Then the second waits in its lane while the first has not finished
    assert claim(services, second, "no_email") is None
    drain()
    runs = {run_id: get_run(client, admin, run_id) for run_id in (first, second)}
    assert {run["status"] for run in runs.values()} == {"succeeded"}
    # And BigChange has one contact; the second run found it instead of making another
    (contact,) = sandbox.state()["contacts"]
    assert contact["reference"] == "WEB-jane@example.com"
    assert step(runs[first], "contact")["output"]["created"] is True
    found = step(runs[second], "contact")["output"]
    assert found["created"] is False and found["id"] == contact["id"]
    # Each submission still made its own job, both for that contact
    jobs = sandbox.state()["jobs"]
    assert len(jobs) == 2 and {job["contactId"] for job in jobs} == {contact["id"]}
    first_done = when(step(runs[first], "job")["attempts"][0]["finished_at"])
    assert when(step(runs[second], "no_email")["attempts"][0]["started_at"]) >= first_done


def test_the_reconciler_does_not_enqueue_a_run_waiting_in_its_lane(
    use, client: FlaskClient, services: Services
) -> None:
    use(LANE)
    older = send(client, "s-1", email="jane@example.com")
    send(client, "s-2", email="jane@example.com")
    services.redis.flushdb()
    # Only the lane's head is put back; the one behind it waits to be woken
    assert reconcile(services).requeued == 1
    assert services.queue.queue.job_ids == [f"{older}-first-1"]


def test_a_retried_run_waits_for_the_run_now_running_in_its_lane(use, client: FlaskClient, services: Services) -> None:
    use(LANE)
    older = send(client, "s-1", email="jane@example.com")
    newer = send(client, "s-2", email="jane@example.com")
    with services.db.session() as session:
        # Given the older run failed and the newer one is now running
        from engine.models import Run

        run = session.get(Run, older)
        run.status = "queued"  # as after POST /retry
        session.get(Run, newer).status = "running"
        session.commit()
    assert claim(services, older, "first") is None


def test_a_retried_run_that_fails_again_runs_on_failure_again_and_finishes(
    use, client: FlaskClient, drain: Drain, admin: dict[str, str]
) -> None:
    # Given a run that failed at lookup after its on_failure step ran
    use(FLOW % {"on_error": "fail"})
    run_id = send(client)
    drain()
    assert get_run(client, admin, run_id)["status"] == "failed"
    # When it is retried and fails the same way again
    assert client.post(f"/api/runs/{run_id}/retry", headers=admin).status_code == 202
    drain()
    run = get_run(client, admin, run_id)
    # Then on_failure ran a second time and the run finished failed, not stuck running
    assert run["status"] == "failed" and run["current_step"] == "lookup"
    assert [a["attempt"] for a in step(run, "tell")["attempts"]] == [1, 2]
    assert [a["status"] for a in step(run, "lookup")["attempts"]] == ["failed", "failed"]


def test_core_http_takes_its_url_and_credentials_from_the_environment_not_the_workflow(
    use, client: FlaskClient, services: Services, drain: Drain, sandbox: Sandbox, admin: dict[str, str]
) -> None:
    from pydantic import SecretStr

    secret_url = f"{sandbox.url}/__sandbox__/state"
    services.settings = services.settings.model_copy(
        update={
            "core_http_allowed_hosts": "127.0.0.1",
            "core_http_secrets": {"STATE_URL": SecretStr(secret_url), "TEAMS": SecretStr("Bearer teams-s3cret")},
        }
    )
    use("""\
        name: w
        on: {source: webform}
        steps:
          - id: call
            uses: core.http
            with: {method: GET, url_secret: STATE_URL, secret_headers: {Authorization: TEAMS}}
          - id: missing
            uses: core.http
            with: {method: GET, url_secret: NOPE}
        """)
    run_id = send(client)
    drain()
    run = get_run(client, admin, run_id)
    assert step(run, "call")["status"] == "succeeded" and "contacts" in step(run, "call")["output"]["body"]
    assert run["error"] == "step missing: CORE_HTTP_SECRETS has no entry 'NOPE' (entries: STATE_URL, TEAMS)"
    recorded = json.dumps(run)
    assert secret_url not in recorded and "teams-s3cret" not in recorded
