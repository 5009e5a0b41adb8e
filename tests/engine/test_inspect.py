"""What `workflows check` catches before deployment: one specification per kind of mistake.

Each test writes a small workflow with one mistake and asserts the finding:
its place (path, line), its words, and the hint an ops person can act on.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from engine.issues import Issue
from engine.loader import load_catalog
from engine.render import Renderer
from handlers import build_registry

SOURCES = 'sources:\n  webform:\n    verify: {type: token, secret: "${WEBFORM_TOKEN}"}\n'
HEAD = "name: w\non: {source: webform}\n"


def check(tmp_path: Path, body: str, sources: str = SOURCES) -> list[Issue]:
    (tmp_path / "sources.yaml").write_text(sources)
    (tmp_path / "w.yaml").write_text(HEAD + textwrap.dedent(body))
    catalog = load_catalog(tmp_path, {"WEBFORM_TOKEN": "t"}, build_registry(), Renderer())
    return list(catalog.issues)


def only(issues: list[Issue]) -> Issue:
    assert len(issues) == 1, [str(i) for i in issues]
    return issues[0]


# --- keys and types ----------------------------------------------------------------------------


def test_an_unknown_key_suggests_the_nearest(tmp_path: Path) -> None:
    issue = only(check(tmp_path, "steps:\n  - id: a\n    uses: core.log\n    with: {message: x}\n    retyr: {}\n"))
    assert (issue.path, issue.line, issue.hint) == ("steps[0].retyr", 7, "did you mean 'retry'?")


def test_an_unknown_key_in_a_nested_block_suggests_from_that_block(tmp_path: Path) -> None:
    issue = only(
        check(tmp_path, "steps:\n  - id: a\n    uses: core.log\n    with: {message: x}\n    retry: {max_attempt: 3}\n")
    )
    assert issue.path == "steps[0].retry.max_attempt" and issue.hint == "did you mean 'max_attempts'?"


@pytest.mark.parametrize(
    ("line", "path", "words"),
    [
        ("    max_parallel: many\n", "steps[0].max_parallel", "valid integer"),
        ("    retry: {max_attempts: 0}\n", "steps[0].retry.max_attempts", "greater than or equal to 1"),
        ("    retry: {initial: soon}\n", "steps[0].retry.initial", "is not a duration"),
        ("    retry: {on: [transient, 200]}\n", "steps[0].retry.on[1]", "'transient' or Input should be greater"),
        ("    timeout: 0s\n", "steps[0].timeout", "greater than 0"),
        ("    timeout: 2h\n", "steps[0].timeout", "at most 1h (3600 seconds); this is 7200 seconds"),
        ("    retry: {initial: 2d}\n", "steps[0].retry.initial", "at most 1d (86400 seconds)"),
        ("    retry: {max_delay: 25h}\n", "steps[0].retry.max_delay", "at most 1d (86400 seconds)"),
        ("    on_error: retry\n", "steps[0].on_error", "should match pattern"),
    ],
)
def test_wrong_types_and_out_of_range_settings(tmp_path: Path, line: str, path: str, words: str) -> None:
    issues = check(tmp_path, "steps:\n  - id: a\n    uses: core.log\n    with: {message: x}\n" + line)
    assert any(i.path.startswith(path) and words in i.message for i in issues), [str(i) for i in issues]


def test_a_retry_that_starts_above_its_ceiling_is_a_warning(tmp_path: Path) -> None:
    body = "steps:\n  - id: a\n    uses: core.log\n    with: {message: x}\n    retry: {initial: 10m, max_delay: 1m}\n"
    issue = only(check(tmp_path, body))
    assert (issue.severity, issue.path, issue.line, issue.col) == ("warning", "steps[0].retry.initial", 7, 22)
    assert issue.message == "initial (600s) is longer than max_delay (60s): every delay will be 60s"
    assert issue.hint == "lower initial or raise max_delay"


def test_a_secret_written_into_sources_yaml_is_refused(tmp_path: Path) -> None:
    sources = "sources:\n  webform:\n    verify: {type: token, secret: hunter2}\n"
    issues = check(tmp_path, "steps:\n  - id: a\n    uses: core.log\n    with: {message: x}\n", sources)
    issue = next(i for i in issues if "secret is written" in i.message)
    assert issue.path == "sources.webform.verify.secret" and "${NAME}" in issue.hint
    assert "hunter2" not in str(issue)


def test_a_workflow_of_a_source_refused_for_its_secret_says_the_source_is_broken_not_missing(tmp_path: Path) -> None:
    sources = "sources:\n  webform:\n    verify: {type: token, secret: hunter2}\n"
    refused, broken = check(tmp_path, "steps:\n  - id: a\n    uses: core.log\n    with: {message: x}\n", sources)
    assert refused.file.endswith("sources.yaml") and refused.severity == "error"
    assert (broken.file, broken.severity, broken.path, broken.line, broken.col) == (
        str(tmp_path / "w.yaml"),
        "warning",
        "on.source",
        2,
        14,
    )
    assert broken.message == "source 'webform' is defined in sources.yaml, but its entry has errors"
    assert broken.hint == "fix the errors reported for sources.webform; until then no event starts this workflow"


HTTP_HEADERS = """\
steps:
  - id: tell
    uses: core.http
    with:
      url: https://hooks.example.com/notify
      headers:
        Content-Type: application/json
        Authorization: "Bearer sk_live_51Hx"
        X-Api-Key: hunter2
        key: "{{ event.data.key }}"
"""


def test_a_credential_written_into_a_core_http_header_is_an_error_pointing_at_secret_headers(tmp_path: Path) -> None:
    bearer, api_key = check(tmp_path, HTTP_HEADERS)
    assert (bearer.severity, bearer.path, bearer.line, bearer.col) == (
        "error",
        "steps[0].with.headers.Authorization",
        10,
        24,
    )
    assert (api_key.path, api_key.line, api_key.col) == ("steps[0].with.headers.X-Api-Key", 11, 20)
    assert bearer.message == "a secret is written into the workflow"
    assert "CORE_HTTP_SECRETS" in bearer.hint and "secret_headers: {Authorization: TEAMS_TOKEN}" in bearer.hint
    assert "sk_live" not in str(bearer) and "hunter2" not in str(api_key)


@pytest.mark.parametrize(
    ("with_", "path"),
    [
        ("{url: 'https://api.example.com/v1/send?channel=ops&access_token=abc123'}", "steps[0].with.url"),
        ("{url: 'https://bot:s3cret@api.example.com/v1/send'}", "steps[0].with.url"),
        ("{url: 'https://hooks.slack.com/services/T000/B000/XXXXXXXX'}", "steps[0].with.url"),
        ("{url: 'https://api.example.com/v1/send', params: {api_key: abc123}}", "steps[0].with.params.api_key"),
        ("{url: 'https://api.example.com/v1/send', params: {key: abc123}}", "steps[0].with.params.key"),
    ],
)
def test_a_url_that_carries_a_credential_is_an_error_pointing_at_url_secret(
    tmp_path: Path, with_: str, path: str
) -> None:
    issue = only(check(tmp_path, f"steps:\n  - id: tell\n    uses: core.http\n    with: {with_}\n"))
    assert (issue.severity, issue.path, issue.message) == ("error", path, "a secret is written into the workflow")
    assert "url_secret" in issue.hint
    assert "abc123" not in str(issue) and "s3cret" not in str(issue) and "XXXXXXXX" not in str(issue)


def test_an_env_reference_in_a_workflow_is_not_filled_in_and_says_so(tmp_path: Path) -> None:
    body = "steps:\n  - id: tell\n    uses: core.http\n"
    body += "    with: {url: 'https://x.example.com/', headers: {Authorization: 'Bearer ${TEAMS_TOKEN}'}}\n"
    issue = only(check(tmp_path, body))
    assert issue.message == (
        "a secret is written into the workflow as ${…}, which a workflow does not fill in: it would be sent as written"
    )


def test_a_credential_in_a_core_http_body_is_an_error(tmp_path: Path) -> None:
    body = "steps:\n  - id: tell\n    uses: core.http\n"
    body += "    with: {url: 'https://x.example.com/', json: {text: hi, auth: {token: xoxb-1}}}\n"
    issue = only(check(tmp_path, body))
    assert issue.path == "steps[0].with.json.auth.token" and "secret_headers" in issue.hint


def test_a_credential_field_of_a_connector_written_literally_is_an_error(tmp_path: Path) -> None:
    literal = (
        "steps:\n  - id: c\n    uses: lightening.contacts.create\n    with: {name: Ann, portal_password: Passw0rd!}\n"
    )
    issue = only(check(tmp_path, literal))
    assert issue.path == "steps[0].with.portal_password" and "{{ event.data" in issue.hint
    templated = literal.replace("Passw0rd!", '"{{ event.data.password }}"')
    assert check(tmp_path, templated) == []


def test_secrets_named_by_reference_and_templated_values_are_fine(tmp_path: Path) -> None:
    body = """\
    steps:
      - id: tell
        uses: core.http
        with:
          url_secret: TEAMS_WEBHOOK
          secret_headers: {Authorization: TEAMS_TOKEN, X-Api-Key: PARTNER_KEY}
          headers: {X-Request-Id: "{{ event.id }}", Authorization: "{{ event.data.auth }}"}
          params: {page: 2, token: "{{ event.data.page_token }}"}
      - id: by_template
        uses: core.http
        with: {url: "https://api.example.com/send?token={{ event.data.t }}&page=2"}
    """
    assert check(tmp_path, textwrap.dedent(body)) == []


def test_a_var_that_looks_like_a_secret_is_a_warning(tmp_path: Path) -> None:
    body = (
        "vars: {api_token: sk_live_51Hx, region: GB}\nsteps:\n  - id: a\n    uses: core.log\n    with: {message: x}\n"
    )
    issue = only(check(tmp_path, body))
    assert (issue.severity, issue.path, issue.line) == ("warning", "vars.api_token", 3)
    assert "sk_live" not in str(issue)


# --- operations and their input ----------------------------------------------------------------


def test_with_missing_a_required_field(tmp_path: Path) -> None:
    issue = only(check(tmp_path, "steps:\n  - id: a\n    uses: bigchange.jobs.create\n    with: {typeId: 42}\n"))
    assert (issue.path, issue.message) == ("steps[0].with.contactId", "Field required")


def test_with_carrying_an_unknown_field_suggests_the_right_one(tmp_path: Path) -> None:
    typo, missing = check(tmp_path, "steps:\n  - id: a\n    uses: core.log\n    with: {mesage: x}\n")
    assert typo.path == "steps[0].with.mesage" and typo.hint == "did you mean 'message'?"
    assert (missing.path, missing.message) == ("steps[0].with.message", "Field required")


CUSTOM_FIELDS = """\
steps:
  - id: job
    uses: bigchange.jobs.create
    with:
      typeId: 1
      contactId: 2
      customFields:
        - {definitionId: 3, valu: "{{ event.data.x }}"}
        - {definitionId: 4, value: x, colour: red}
"""


def test_an_unknown_key_nested_in_with_suggests_from_its_own_object_even_beside_a_template(tmp_path: Path) -> None:
    typo, unrelated = check(tmp_path, CUSTOM_FIELDS)
    assert (typo.path, typo.line, typo.col) == ("steps[0].with.customFields[0].valu", 10, 29)
    assert (typo.message, typo.hint) == ("unknown field 'valu'", "did you mean 'value'?")
    assert (unrelated.path, unrelated.line, unrelated.col) == ("steps[0].with.customFields[1].colour", 11, 39)
    assert unrelated.hint == "allowed here: definitionId, value"


def test_a_required_field_missing_in_a_nested_object_is_reported_there(tmp_path: Path) -> None:
    body = "steps:\n  - id: job\n    uses: bigchange.jobs.create\n"
    body += "    with: {typeId: 1, contactId: 2, customFields: [{value: x}]}\n"
    issue = only(check(tmp_path, body))
    assert (issue.path, issue.message) == ("steps[0].with.customFields[0].definitionId", "Field required")


def test_with_a_literal_of_the_wrong_type(tmp_path: Path) -> None:
    issue = only(
        check(
            tmp_path, "steps:\n  - id: a\n    uses: bigchange.jobs.create\n    with: {typeId: plumbing, contactId: 1}\n"
        )
    )
    assert issue.path == "steps[0].with.typeId" and "valid integer" in issue.message


def test_with_a_literal_outside_its_enum(tmp_path: Path) -> None:
    body = "steps:\n  - id: a\n    uses: bigchange.contacts.on_stop\n    with: {contactId: 1, status: onStop}\n"
    issue = only(check(tmp_path, body))
    assert issue.path == "steps[0].with.status" and "'contactOnStop' or 'creditLimitOnStop'" in issue.message


def test_a_templated_field_is_taken_as_present_and_not_judged(tmp_path: Path) -> None:
    body = (
        "steps:\n  - id: a\n    uses: bigchange.jobs.create\n"
        '    with: {typeId: "{{ event.data.type }}", contactId: "{{ event.data.contact }}"}\n'
    )
    assert check(tmp_path, body) == []


def test_an_unknown_operation_suggests_the_nearest(tmp_path: Path) -> None:
    issue = only(check(tmp_path, "steps:\n  - id: a\n    uses: core.logg\n    with: {message: x}\n"))
    assert issue.path == "steps[0].uses" and "did you mean 'core.log'" in issue.message


# --- templates -----------------------------------------------------------------------------------

TWO_STEPS = """\
steps:
  - id: first
    uses: core.log
    with: {message: "%(first)s"}
  - id: second
    uses: core.log
    with: {message: "%(second)s"}
vars: {region: GB}
"""


@pytest.mark.parametrize(
    ("first", "second", "path", "message", "hint"),
    [
        (
            "{{ steps.second.output.message }}",
            "x",
            "steps[0].with.message",
            "step 'second' has not run yet here (it comes later)",
            "a step can only read the output of steps before it",
        ),
        (
            "x",
            "{{ steps.frist.output.message }}",
            "steps[1].with.message",
            "there is no step 'frist'",
            "did you mean 'first'?",
        ),
        (
            "x",
            "{{ steps.first.output.messge }}",
            "steps[1].with.message",
            "core.log outputs no field 'messge'",
            "its output has: level, message",
        ),
        (
            "x",
            "{{ steps.first.result }}",
            "steps[1].with.message",
            "steps.first has no 'result'",
            "use steps.<id>.output or steps.<id>.status",
        ),
        ("{{ vars.regoin }}", "x", "steps[0].with.message", "vars.regoin is not declared", "declared vars: region"),
        (
            "{{ event.body.name }}",
            "x",
            "steps[0].with.message",
            "event has no field 'body'",
            "event fields: id, key, source, type, received_at, data, raw, headers, query",
        ),
        (
            "{{ evnt.data.name }}",
            "x",
            "steps[0].with.message",
            "'evnt' is not available here",
            "available: event, run, steps, vars",
        ),
        (
            "{{ item }}",
            "x",
            "steps[0].with.message",
            "'item' is not available here",
            "available: event, run, steps, vars",
        ),
    ],
)
def test_template_references_are_checked(
    tmp_path: Path, first: str, second: str, path: str, message: str, hint: str
) -> None:
    issue = only(check(tmp_path, TWO_STEPS % {"first": first, "second": second}))
    assert (issue.path, issue.message, issue.hint) == (path, message, hint)


@pytest.mark.parametrize(
    ("template", "words"),
    [("{{ event.data.name | shout }}", "No filter named 'shout'"), ("{{ event.data.name ", "syntax error")],
)
def test_template_syntax_and_unknown_filters(tmp_path: Path, template: str, words: str) -> None:
    issue = only(check(tmp_path, TWO_STEPS % {"first": template, "second": "x"}))
    assert issue.path == "steps[0].with.message" and words in issue.message


def test_names_bound_inside_a_template_and_computed_keys_are_fine(tmp_path: Path) -> None:
    first = "{% for n in event.data.names %}{{ n }} {{ loop.index }}{% endfor %}"
    second = "{{ steps.first.output[event.data.field] }}"
    assert check(tmp_path, TWO_STEPS % {"first": first, "second": second}) == []


def test_trigger_templates_cannot_read_steps(tmp_path: Path) -> None:
    body = 'concurrency: "{{ steps.first.output.message }}"\n' + TWO_STEPS % {"first": "x", "second": "x"}
    issue = only(check(tmp_path, body))
    assert issue.path == "concurrency" and "not available in a trigger" in issue.message


def test_foreach_steps_may_read_item_and_index(tmp_path: Path) -> None:
    body = 'steps:\n  - id: a\n    uses: core.log\n    foreach: "{{ event.data.lines }}"\n'
    body += '    with: {message: "{{ index }}: {{ item.sku }}"}\n'
    assert check(tmp_path, body) == []


# --- conditions -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "words"),
    [("true", "always true"), ('"{{ 1 > 0 }}"', "always true"), ("false", "never runs"), ('"no"', "never runs")],
)
def test_a_condition_that_cannot_change_is_a_warning(tmp_path: Path, condition: str, words: str) -> None:
    issue = only(
        check(tmp_path, f"steps:\n  - id: a\n    uses: core.log\n    if: {condition}\n    with: {{message: x}}\n")
    )
    assert issue.severity == "warning" and words in issue.message and issue.path == "steps[0].if"


def test_warnings_do_not_keep_a_workflow_from_loading(tmp_path: Path) -> None:
    (tmp_path / "sources.yaml").write_text(SOURCES)
    (tmp_path / "w.yaml").write_text(
        HEAD + "steps:\n  - id: a\n    uses: core.log\n    if: true\n    with: {message: x}\n"
    )
    catalog = load_catalog(tmp_path, {"WEBFORM_TOKEN": "t"}, build_registry(), Renderer())
    assert "w" in catalog.workflows


def test_keys_a_model_accepts_by_pattern_are_not_unknown(tmp_path: Path) -> None:
    body = (
        "steps:\n  - id: a\n    uses: bigchange_webservice.contact_save\n"
        "    with: {ContactName: Acme, ContactStreet: 1 High St, ContactGroup: Retail, cust_Region: North}\n"
    )
    assert check(tmp_path, body) == []


def test_a_list_output_field_that_does_not_exist(tmp_path: Path) -> None:
    body = (
        "steps:\n  - id: found\n    uses: bigchange.contacts.list\n    with: {pageSize: 1}\n"
        '  - id: use\n    uses: core.log\n    with: {message: "{{ steps.found.output.item[0].id }}"}\n'
    )
    issue = only(check(tmp_path, body))
    assert issue.message == "bigchange.contacts.list outputs no field 'item'"
    assert issue.hint == "its output has: items, pageItemCount, pages, truncated, windows"


READ_OUTPUT = """\
steps:
  - id: made
    uses: %(uses)s
    with: %(with)s
  - id: use
    uses: core.log
    with: {message: "{{ steps.made.output%(read)s }}"}
"""


@pytest.mark.parametrize(
    ("uses", "with_", "read", "message", "hint"),
    [
        (
            "lightening.contacts.create",
            "{name: Ann}",
            ".contactId",
            "lightening.contacts.create outputs no field 'contactId'",
            "its output has: id, msg",
        ),
        (
            "bigchange_webservice.contact_save",
            "{ContactName: Acme, ContactStreet: 1 High St}",
            ".ContactId",
            "bigchange_webservice.contact_save outputs no field 'ContactId'",
            "its output has: id",
        ),
        (
            "additiv.contacts.details.get",
            "{contactId: 1}",
            ".detail.name",
            "additiv.contacts.details.get outputs no field 'detail'",
            "its output has: details, hasPendingChangeRequest, hasPendingEmail, hasPendingMobile, id",
        ),
    ],
)
def test_a_connector_output_field_its_documented_answer_does_not_have_is_an_error(
    tmp_path: Path, uses: str, with_: str, read: str, message: str, hint: str
) -> None:
    issue = only(check(tmp_path, READ_OUTPUT % {"uses": uses, "with": with_, "read": read}))
    assert (issue.severity, issue.path, issue.line) == ("error", "steps[1].with.message", 9)
    assert (issue.message, issue.hint) == (message, hint)


def test_a_create_output_field_beyond_the_id_is_a_warning_with_the_nearest_documented_one(tmp_path: Path) -> None:
    # BigChange documents only the new id for a create; the rest of its answer passes through undocumented
    body = READ_OUTPUT % {"uses": "bigchange.contacts.create", "with": "{name: Acme}", "read": ".idd"}
    issue = only(check(tmp_path, body))
    assert (issue.severity, issue.path, issue.line, issue.col) == ("warning", "steps[1].with.message", 9, 21)
    assert issue.message == (
        "bigchange.contacts.create is not documented to output 'idd': the step may fail when it runs"
    )
    assert issue.hint == "did you mean 'id'? documented: created, id; the rest depends on what the API answers"


@pytest.mark.parametrize(
    ("uses", "with_", "read"),
    [
        ("bigchange.contacts.create", "{name: Acme}", ".id"),
        ("bigchange.contacts.create", "{name: Acme, reference: A-1, upsert: true}", ".created"),
        ("bigchange.jobs.create", "{typeId: 1, contactId: 2}", "['id']"),
        ("bigchange.contacts.contact", "{contactId: 1}", ".anything.at.all"),  # its answer is not documented
        ("lightening.contacts.get", "{id: 1}", ".customer_name"),
        ("additiv.contacts.create", "{contactTypeId: 1, details: {}}", ".uId"),
        (
            "bigchange.jobs.list",
            "{createdAtFrom: '2026-01-01T00:00:00Z', createdAtTo: '2026-02-01T00:00:00Z', split_windows: true}",
            ".windows",
        ),
    ],
)
def test_documented_output_fields_and_undocumented_answers_pass(
    tmp_path: Path, uses: str, with_: str, read: str
) -> None:
    assert check(tmp_path, READ_OUTPUT % {"uses": uses, "with": with_, "read": read}) == []


FOREACH_OUTPUT = """\
steps:
  - id: people
    uses: bigchange.contacts.create
    foreach: "{{ event.data.people }}"
    with: {name: "{{ item }}"}
  - id: use
    uses: core.log
    with: {message: "{{ steps.people.output%s }}"}
"""


def test_reading_a_field_of_a_foreach_step_without_picking_an_item_is_an_error(tmp_path: Path) -> None:
    issue = only(check(tmp_path, FOREACH_OUTPUT % ".id"))
    assert (issue.severity, issue.path, issue.line) == ("error", "steps[1].with.message", 10)
    assert issue.message == "steps.people runs once per item (foreach), so its output is a list, not one output"
    assert issue.hint == "read one item's output, e.g. steps.people.output[0].id, or loop over steps.people.output"


def test_one_item_of_a_foreach_output_is_checked_like_the_operation_output(tmp_path: Path) -> None:
    assert check(tmp_path, FOREACH_OUTPUT % "[0].id") == []
    assert check(tmp_path, FOREACH_OUTPUT % " | map(attribute='id') | join(',')") == []
    issue = only(check(tmp_path, FOREACH_OUTPUT % "[1].idd"))
    assert issue.severity == "warning" and "'idd'" in issue.message and issue.hint.startswith("did you mean 'id'?")


def test_max_parallel_without_foreach_is_a_warning(tmp_path: Path) -> None:
    issue = only(
        check(tmp_path, "steps:\n  - id: a\n    uses: core.log\n    max_parallel: 4\n    with: {message: x}\n")
    )
    assert issue.severity == "warning" and issue.path == "steps[0].max_parallel"


def test_a_verify_setting_error_is_reported_at_the_key_path_written(tmp_path: Path) -> None:
    sources = 'sources:\n  webform:\n    verify: {type: hmac, algorithm: md5, secret: "${WEBFORM_TOKEN}"}\n'
    issues = check(tmp_path, "steps:\n  - id: a\n    uses: core.log\n    with: {message: x}\n", sources)
    issue = next(i for i in issues if "algorithm" in i.path)
    assert issue.path == "sources.webform.verify.algorithm"
