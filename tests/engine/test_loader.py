"""Loading workflows and sources: YAML 1.2, every problem located, bad files skipped, hot reload."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from engine.loader import CatalogCache, load_catalog
from engine.render import Renderer
from handlers import build_registry

ENV = {"WEBFORM_TOKEN": "t0ken", "ACCOUNTS_SECRET": "s3cret"}
SOURCES = """\
sources:
  webform:
    verify: {type: token, header: X-Hook-Token, secret: "${WEBFORM_TOKEN}"}
    event_type: form.submitted
"""
GOOD = """\
name: good
on:
  source: webform
steps:
  - id: contact
    uses: bigchange.contacts.create
    with: {name: "{{ event.data.name }}"}
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def wfdir(tmp_path: Path) -> Path:
    write(tmp_path, "sources.yaml", SOURCES)
    return tmp_path


def load(directory: Path, env: dict[str, str] | None = None):
    return load_catalog(directory, ENV if env is None else env, build_registry(), Renderer())


def messages(catalog) -> list[str]:
    return [str(issue) for issue in catalog.issues]


def test_the_shipped_workflows_load_without_issues() -> None:
    shipped = Path(__file__).parents[2] / "workflows"
    catalog = load(shipped, env=dict.fromkeys(_referenced_env_vars(shipped / "sources.yaml"), "x"))
    assert messages(catalog) == []
    assert {wf.path.name for wf in catalog.workflows.values()} == {
        p.name for p in shipped.glob("*.yaml") if p.name != "sources.yaml"
    }
    assert {"web-enquiry", "credit-hold", "credit-release"} <= set(catalog.workflows)
    assert {"webform", "accounts"} <= set(catalog.sources)


def _referenced_env_vars(sources: Path) -> set[str]:
    import re

    return set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", sources.read_text()))


def test_yaml_1_2_rules_on_is_a_key_and_yes_is_a_string(wfdir: Path) -> None:
    write(wfdir, "w.yaml", GOOD.replace("steps:", "vars: {answer: yes, off: no}\nsteps:"))
    spec = load(wfdir).workflows["good"].spec
    assert spec.on.source == "webform"
    assert spec.vars == {"answer": "yes", "off": "no"}


def test_name_defaults_to_the_file_name(wfdir: Path) -> None:
    write(wfdir, "from-file.yaml", GOOD.replace("name: good\n", ""))
    assert "from-file" in load(wfdir).workflows


def test_secrets_are_expanded_from_the_environment(wfdir: Path) -> None:
    source = load(wfdir).sources["webform"]
    assert source.verify.secret[0].get_secret_value() == "t0ken"


def test_an_unset_secret_variable_leaves_the_source_unconfigured_with_a_warning(wfdir: Path) -> None:
    write(wfdir, "w.yaml", GOOD)
    catalog = load(wfdir, env={})
    assert "webform" not in catalog.sources
    assert catalog.unconfigured == {"webform": "environment variable WEBFORM_TOKEN is not set"}
    assert "good" in catalog.workflows  # its workflows still load
    (issue,) = catalog.issues
    assert (issue.severity, issue.line, issue.path) == ("warning", 3, "sources.webform.verify.secret")
    assert "answers 503" in issue.message and issue.hint == "export WEBFORM_TOKEN"


def test_a_source_must_say_how_it_is_verified(wfdir: Path) -> None:
    write(wfdir, "sources.yaml", "sources:\n  open: {event_type: x}\n  declared: {verify: none}\n")
    catalog = load(wfdir)
    assert list(catalog.sources) == ["declared"]
    assert any("sources.open.verify: Field required" in m for m in messages(catalog))


def test_an_empty_secret_is_refused(wfdir: Path) -> None:
    write(wfdir, "sources.yaml", SOURCES)
    catalog = load(wfdir, env={"WEBFORM_TOKEN": ""})
    assert "webform" not in catalog.sources
    assert any("empty secret" in m for m in messages(catalog))


def test_a_yaml_syntax_error_is_located_and_the_file_skipped(wfdir: Path) -> None:
    write(wfdir, "good.yaml", GOOD)
    bad = write(wfdir, "broken.yaml", "name: broken\nsteps: [\n  - id: x\n")
    catalog = load(wfdir)
    assert "good" in catalog.workflows and "broken" not in catalog.workflows
    (issue,) = catalog.issues
    assert issue.file == str(bad) and issue.line >= 2 and "YAML syntax error" in issue.message


def test_schema_errors_point_at_the_offending_key(wfdir: Path) -> None:
    path = write(
        wfdir,
        "w.yaml",
        """\
        name: w
        on: {source: webform}
        steps:
          - id: contact
            uses: bigchange.contacts.create
            retyr: {max_attempts: 3}
            with: {name: x}
        """,
    )
    (issue,) = load(wfdir).issues
    assert (issue.file, issue.line, issue.col, issue.path) == (str(path), 6, 5, "steps[0].retyr")
    assert "Extra inputs are not permitted" in issue.message and issue.hint


def test_a_missing_field_points_at_its_parent(wfdir: Path) -> None:
    write(wfdir, "w.yaml", "name: w\non: {source: webform}\nsteps:\n  - id: contact\n    with: {}\n")
    (issue,) = load(wfdir).issues
    assert (issue.line, issue.path) == (4, "steps[0].uses")
    assert "Field required" in issue.message


def test_duplicate_step_ids_are_refused_at_the_second_id(wfdir: Path) -> None:
    path = write(wfdir, "w.yaml", GOOD + "  - id: contact\n    uses: bigchange.contacts.create\n    with: {name: y}\n")
    (issue,) = load(wfdir).issues
    assert (issue.file, issue.line, issue.col, issue.path) == (str(path), 8, 9, "steps[1].id")
    assert issue.message == "step id 'contact' is used twice (first at steps[0])"
    assert issue.hint == "give each step its own id; steps and on_failure share one set of ids"


def test_an_unknown_operation_suggests_the_nearest(wfdir: Path) -> None:
    write(wfdir, "w.yaml", GOOD.replace("bigchange.contacts.create", "bigchange.contact.create"))
    (issue,) = load(wfdir).issues
    assert issue.path == "steps[0].uses" and issue.line == 6
    assert "did you mean 'bigchange.contacts.create'" in issue.message


def test_an_undefined_source_is_an_error_listing_the_defined_ones(wfdir: Path) -> None:
    write(wfdir, "w.yaml", GOOD.replace("source: webform", "source: webfrom"))
    (issue,) = load(wfdir).issues
    assert issue.path == "on.source" and "'webfrom' is not defined" in issue.message
    assert issue.hint == "did you mean 'webform'?"


def test_template_syntax_errors_are_found_at_load(wfdir: Path) -> None:
    write(wfdir, "w.yaml", GOOD.replace("{{ event.data.name }}", "{{ event.data.name | nosuch }}"))
    (issue,) = load(wfdir).issues
    assert issue.path == "steps[0].with.name" and "No filter named 'nosuch'" in issue.message


@pytest.mark.parametrize(
    ("target", "hint"),
    [
        ("contact", "contact comes before this step and a goto only jumps forward; later steps: notify"),
        ("notfy", "did you mean 'notify'?"),
        ("elsewhere", "later steps here: notify"),
    ],
)
def test_goto_must_name_a_later_step_and_is_reported_at_on_error(wfdir: Path, target: str, hint: str) -> None:
    text = GOOD + f"    on_error: goto {target}\n  - id: notify\n    uses: core.log\n    with: {{message: x}}\n"
    path = write(wfdir, "w.yaml", text)
    (issue,) = load(wfdir).issues
    assert (issue.file, issue.line, issue.col, issue.path) == (str(path), 8, 15, "steps[0].on_error")
    assert (issue.message, issue.hint) == (f"goto {target} must name a later step of the same list", hint)


def test_goto_from_the_last_step_says_there_is_nowhere_to_jump(wfdir: Path) -> None:
    write(wfdir, "w.yaml", GOOD + "    on_error: goto done\n")
    (issue,) = load(wfdir).issues
    assert (issue.line, issue.col, issue.hint) == (8, 15, "this is the last step: use continue or fail")


@pytest.mark.parametrize("value", ["retry", "goto", "goto 1abc", "Continue"])
def test_on_error_accepts_only_fail_continue_or_goto(wfdir: Path, value: str) -> None:
    write(wfdir, "w.yaml", GOOD + f"    on_error: {value}\n")
    (issue,) = load(wfdir).issues
    assert issue.path == "steps[0].on_error" and "should match pattern" in issue.message


def test_step_ids_are_unique_across_steps_and_on_failure(wfdir: Path) -> None:
    write(wfdir, "w.yaml", GOOD + "on_failure:\n  - id: contact\n    uses: core.log\n    with: {message: x}\n")
    (issue,) = load(wfdir).issues
    assert (issue.line, issue.col, issue.path) == (9, 9, "on_failure[0].id")
    assert issue.message == "step id 'contact' is used twice (first at steps[0])"


def test_duplicate_workflow_names_keep_the_first_and_point_at_the_second_name(wfdir: Path) -> None:
    write(wfdir, "a.yaml", GOOD)
    second = write(wfdir, "b.yaml", GOOD)
    catalog = load(wfdir)
    assert catalog.workflows["good"].path.name == "a.yaml"
    (issue,) = catalog.issues
    assert (issue.file, issue.line, issue.col, issue.path) == (str(second), 1, 7, "name")
    assert issue.message == "workflow name 'good' is already used by a.yaml; this file is not loaded"
    assert issue.hint == "give one of the two workflows another name"


def test_a_duplicate_name_taken_from_the_file_name_says_so(wfdir: Path) -> None:
    write(wfdir, "a.yaml", GOOD)
    second = write(wfdir, "good.yaml", GOOD.replace("name: good\n", ""))
    (issue,) = load(wfdir).issues
    assert (issue.file, issue.line, issue.col, issue.path) == (str(second), 1, 1, "name")
    assert issue.hint == "the name comes from the file name: add a line `name: <another name>` (or rename good.yaml)"


def test_the_definition_hash_changes_with_the_content(wfdir: Path) -> None:
    write(wfdir, "w.yaml", GOOD)
    first = load(wfdir).workflows["good"].hash
    write(wfdir, "w.yaml", GOOD.replace("{{ event.data.name }}", "{{ event.data.name | upper }}"))
    assert load(wfdir).workflows["good"].hash != first


def _touch_later(path: Path) -> None:
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def test_reload_picks_up_edits_and_keeps_the_last_good_version_of_a_broken_file(wfdir: Path) -> None:
    path = write(wfdir, "w.yaml", GOOD)
    cache = CatalogCache(wfdir, ENV, build_registry(), Renderer(), check_every=0)
    first = cache.current().workflows["good"]

    # When the file is edited, the next lookup serves the new version
    write(wfdir, "w.yaml", GOOD.replace("{{ event.data.name }}", "{{ event.data.name | title }}"))
    _touch_later(path)
    edited = cache.current().workflows["good"]
    assert edited.hash != first.hash

    # When it is then broken, the edited version keeps serving and the error is reported
    write(wfdir, "w.yaml", "name: good\nsteps: [")
    _touch_later(path)
    catalog = cache.current()
    assert catalog.workflows["good"].hash == edited.hash
    assert any("YAML syntax error" in m for m in messages(catalog))


def test_a_source_broken_by_an_edit_keeps_its_last_good_version(wfdir: Path) -> None:
    cache = CatalogCache(wfdir, ENV, build_registry(), Renderer(), check_every=0)
    assert "webform" in cache.current().sources
    path = write(wfdir, "sources.yaml", SOURCES.replace("type: token", "type: tokn"))
    _touch_later(path)
    catalog = cache.current()
    assert catalog.sources["webform"].verify.type == "token"  # still verifying callers as before
    assert any("sources.webform.verify" in m for m in messages(catalog))


def test_reloads_report_their_problems_in_the_service_log(wfdir: Path, caplog: pytest.LogCaptureFixture) -> None:
    write(wfdir, "w.yaml", "name: w\nsteps: [")
    with caplog.at_level("WARNING", logger="engine.loader"):
        CatalogCache(wfdir, ENV, build_registry(), Renderer(), check_every=0).current()
    assert any("w.yaml" in r.message and "YAML syntax error" in r.message for r in caplog.records)


def test_a_control_character_is_a_located_problem_not_a_crash(wfdir: Path) -> None:
    (wfdir / "w.yaml").write_text("name: w\x07\non: {source: webform}\n")
    (issue,) = load(wfdir).issues
    assert "YAML cannot read this file" in issue.message and issue.file.endswith("w.yaml")
