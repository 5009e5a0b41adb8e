"""`flask workflows test`: dry runs against the sandbox, plans, and ops' own test files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from flask import Flask

from tests.conftest import SHIPPED_WORKFLOWS

EXAMPLES = SHIPPED_WORKFLOWS.parent / "examples"


def invoke(app: Flask, *args: str):
    return app.test_cli_runner().invoke(args=["workflows", "test", *args], catch_exceptions=False)


def test_a_dry_run_shows_each_call_and_exits_0(app: Flask) -> None:
    result = invoke(app, "web-enquiry", "--event", str(EXAMPLES / "web-enquiry.json"))
    assert result.exit_code == 0, result.output
    assert "workflow web-enquiry: succeeded" in result.output
    assert "/bigchange/jobs/create -> 201" in result.output
    assert 'sent: {"description": "Kitchen tap' in result.output and '"contactId": 1001' in result.output


def test_it_explains_why_a_step_did_not_run(app: Flask, tmp_path: Path) -> None:
    event = json.loads((EXAMPLES / "web-enquiry.json").read_text())
    del event["preferred_date"]
    (tmp_path / "e.json").write_text(json.dumps(event))
    result = invoke(app, "web-enquiry", "--event", str(tmp_path / "e.json"))
    assert "  step schedule (bigchange.jobs.scheduling): skipped" in result.output
    assert "    if \"{{ event.data.preferred_date | default('') }}\" -> false" in result.output
    assert "      event.data.preferred_date = '<undefined>'" in result.output


def test_a_plan_calls_nothing_and_shows_what_only_the_run_will_know(app: Flask, sandbox) -> None:
    result = invoke(app, "web-enquiry", "--event", str(EXAMPLES / "web-enquiry.json"), "--plan")
    assert result.exit_code == 0 and "workflow web-enquiry: planned" in result.output
    assert '"contactId": "<steps.contact.output.id>"' in result.output
    assert " -> 201" not in result.output


def test_a_failing_step_exits_1_with_its_error(app: Flask) -> None:
    result = invoke(app, "credit-hold", "--event", str(EXAMPLES / "credit-limit-exceeded.json"))
    assert result.exit_code == 1
    assert "error: no BigChange contact for account ACME-01: sync the customer first" in result.output


def test_json_output_for_tools(app: Flask) -> None:
    result = invoke(app, "web-enquiry", "--event", str(EXAMPLES / "web-enquiry.json"), "--format", "json")
    report = json.loads(result.output)
    assert report["status"] == "succeeded" and report["steps"][0]["id"] == "contact"


def test_the_shipped_test_files_pass(app: Flask) -> None:
    result = invoke(app, "--all")
    assert result.exit_code == 0, result.output
    assert "0 failed" in result.output


def test_a_failing_test_file_is_named_with_what_differed(app: Flask, services, tmp_path: Path) -> None:
    workflows = tmp_path / "workflows"
    shutil.copytree(SHIPPED_WORKFLOWS, workflows)
    (workflows / "tests" / "wrong.yaml").write_text(
        "workflow: web-enquiry\nevent_file: ../../examples/web-enquiry.json\nexpect: {status: failed}\n"
    )
    shutil.copytree(EXAMPLES, tmp_path / "examples")
    services.settings = services.settings.model_copy(update={"workflows_dir": workflows})
    result = invoke(app, "--all")
    assert result.exit_code == 1
    assert "FAIL wrong.yaml\n    status: expected failed, got succeeded" in result.output


def test_bad_input_is_a_clear_cli_error(app: Flask, tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text('{"name": ')
    result = invoke(app, "web-enquiry", "--event", str(tmp_path / "bad.json"))
    assert result.exit_code == 1 and f"{tmp_path / 'bad.json'}:1:10: not valid JSON" in result.output
    result = invoke(app, "nosuch", "--event", str(EXAMPLES / "web-enquiry.json"))
    assert result.exit_code == 2 and "no workflow 'nosuch'" in result.output
    result = invoke(app, "credit-hold", "--event", str(EXAMPLES / "web-enquiry.json"))
    assert "is this a body that source 'accounts' sends?" in result.output


def test_a_dry_run_needs_no_source_secrets(app: Flask, services) -> None:
    services.catalog.environ = {}  # as on a laptop without WEBFORM_TOKEN
    result = invoke(app, "web-enquiry", "--event", str(EXAMPLES / "web-enquiry.json"))
    assert result.exit_code == 0 and "workflow web-enquiry: succeeded" in result.output


def test_a_plan_skips_a_step_whose_if_is_already_false(app: Flask, tmp_path: Path) -> None:
    event = json.loads((EXAMPLES / "web-enquiry.json").read_text())
    del event["preferred_date"]
    (tmp_path / "e.json").write_text(json.dumps(event))
    result = invoke(app, "web-enquiry", "--event", str(tmp_path / "e.json"), "--plan")
    assert "  step schedule (bigchange.jobs.scheduling): skipped" in result.output


def test_core_http_does_not_really_call_out_in_a_dry_run(app: Flask, services, tmp_path: Path) -> None:
    workflows = tmp_path / "workflows"
    workflows.mkdir()
    shutil.copy(SHIPPED_WORKFLOWS / "sources.yaml", workflows)
    (workflows / "notify.yaml").write_text(
        "name: notify\non: {source: webform}\nsteps:\n  - id: post\n    uses: core.http\n"
        "    with: {url: 'https://hooks.example.com/x', json: {text: hi}}\n"
    )
    services.settings = services.settings.model_copy(
        update={"workflows_dir": workflows, "core_http_allowed_hosts": "hooks.example.com"}
    )
    result = invoke(app, "notify", "--event", str(EXAMPLES / "web-enquiry.json"))
    assert result.exit_code == 1
    assert "core.http may not call hooks.example.com: not in CORE_HTTP_ALLOWED_HOSTS (none)" in result.output


def test_a_test_file_must_check_something(app: Flask, services, tmp_path: Path) -> None:
    workflows = tmp_path / "workflows"
    shutil.copytree(SHIPPED_WORKFLOWS, workflows)
    shutil.copytree(EXAMPLES, tmp_path / "examples")
    (workflows / "tests" / "empty.yaml").write_text("workflow: web-enquiry\nevent: {submission_id: x}\n")
    (workflows / "tests" / "lost.yaml").write_text(
        "workflow: web-enquiry\nevent_file: nowhere.json\nexpect: {status: succeeded}\n"
    )
    services.settings = services.settings.model_copy(update={"workflows_dir": workflows})
    result = invoke(app, "--all")
    assert (
        result.exit_code == 1 and "FAIL empty.yaml" in result.output and "a test that checks nothing" in result.output
    )
    assert "FAIL lost.yaml\n    cannot run: [Errno 2] No such file or directory" in result.output


# --- why a workflow did not trigger -------------------------------------------------------------


def _workflows_copy(tmp_path: Path, services) -> Path:
    """The shipped workflows and examples in tmp_path, served as WORKFLOWS_DIR."""
    workflows = tmp_path / "workflows"
    shutil.copytree(SHIPPED_WORKFLOWS, workflows)
    shutil.copytree(EXAMPLES, tmp_path / "examples")
    services.settings = services.settings.model_copy(update={"workflows_dir": workflows})
    return workflows


def test_a_trigger_if_that_is_false_is_explained_with_the_value_of_each_name(app: Flask, services, tmp_path) -> None:
    workflows = _workflows_copy(tmp_path, services)
    (workflows / "london.yaml").write_text(
        "name: london\non:\n  source: webform\n  if: \"{{ event.data.region | default('') in vars.regions }}\"\n"
        "vars: {regions: [London, Kent]}\nsteps:\n  - id: note\n    uses: core.log\n    with: {message: x}\n"
    )
    result = invoke(app, "london", "--event", str(EXAMPLES / "web-enquiry.json"))
    assert result.exit_code == 1
    assert result.output.splitlines()[:5] == [
        "workflow london: not triggered",
        "  trigger: on.if is false",
        "  if \"{{ event.data.region | default('') in vars.regions }}\" -> false",
        "    event.data.region = '<undefined>'",
        "    vars.regions = ['London', 'Kent']",
    ]
    assert "step note" not in result.output  # nothing was played


def test_an_event_of_another_type_is_explained(app: Flask) -> None:
    result = invoke(app, "credit-hold", "--event", str(EXAMPLES / "customer-created.json"))
    assert result.exit_code == 1
    assert result.output.splitlines()[:2] == [
        "workflow credit-hold: not triggered",
        "  trigger: event type 'customer.created' is not one of ['credit_limit.exceeded']",
    ]


# --- test files: expected calls ------------------------------------------------------------------

DOUBLE_CREATE = """\
name: double
on: {source: webform}
steps:
  - id: contact
    uses: bigchange.contacts.create
    with: {name: "{{ event.data.name }}"}
  - id: again
    uses: bigchange.contacts.create
    with: {name: "{{ event.data.name }}"}
"""
ONE_CREATE = """\
workflow: double
event_file: ../../examples/web-enquiry.json
expect:
  status: succeeded
  calls:
    - {step: contact, path: /contacts/create, body: {name: Mrs Jane Jones}}
"""


def test_an_extra_call_such_as_a_duplicate_create_fails_a_test_file(app: Flask, services, tmp_path: Path) -> None:
    # Given a workflow that creates the contact twice, and a test file that expects one create
    workflows = _workflows_copy(tmp_path, services)
    (workflows / "double.yaml").write_text(DOUBLE_CREATE)
    (workflows / "tests" / "one-create.yaml").write_text(ONE_CREATE)
    result = invoke(app, "--all")
    # Then the second create is named as the call nobody expected
    assert result.exit_code == 1
    assert "FAIL one-create.yaml\n    call 2: not expected: step again: POST http://" in result.output
    assert '/bigchange/contacts/create {"name": "Mrs Jane Jones"} (list it, or set calls_exact: false)' in result.output


def test_calls_exact_false_checks_only_the_listed_calls_in_order(app: Flask, services, tmp_path: Path) -> None:
    workflows = _workflows_copy(tmp_path, services)
    (workflows / "double.yaml").write_text(DOUBLE_CREATE)
    (workflows / "tests" / "one-create.yaml").write_text(ONE_CREATE + "  calls_exact: false\n")
    result = invoke(app, "--all")
    assert result.exit_code == 0 and "PASS one-create.yaml" in result.output


def test_an_expected_call_that_does_not_happen_fails_a_test_file(app: Flask, services, tmp_path: Path) -> None:
    workflows = _workflows_copy(tmp_path, services)
    (workflows / "tests" / "wrong-job.yaml").write_text(
        "workflow: web-enquiry\nevent_file: ../../examples/web-enquiry.json\nexpect:\n  calls:\n"
        "    - {step: contact, path: /contacts/create}\n    - {step: job, body: {typeId: 7}}\n"
    )
    (workflows / "tests" / "no-calls.yaml").write_text(
        "workflow: web-enquiry\nevent_file: ../../examples/web-enquiry.json\nexpect: {calls: []}\n"
    )
    result = invoke(app, "--all")
    assert result.exit_code == 1
    assert (
        "FAIL wrong-job.yaml\n    no call matching {'step': 'job', 'body': {'typeId': 7}} (in order)\n" in result.output
    )
    assert "FAIL no-calls.yaml\n    call 1: not expected: step contact: POST" in result.output
    assert "5 passed, 2 failed" in result.output
