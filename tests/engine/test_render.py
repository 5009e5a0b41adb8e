"""Template rendering: native values, strict undefined, sandbox, never recursive."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine import render
from engine.errors import RenderError
from engine.loader import load_catalog
from engine.render import MAX_REPEAT, Renderer
from handlers import build_registry

CONTEXT = {
    "event": {
        "id": "evt_1",
        "data": {
            "name": "Jane",
            "count": "7",
            "items": [{"sku": "A1"}, {"sku": "B2"}],
            "values": "a field called values",
            "injection": "{{ 7*7 }}",
            "block": "{% for x in range(3) %}x{% endfor %}",
            "nested": {"deep": {"er": 3}},
        },
    },
    "steps": {"contact": {"output": {"id": 1001}, "status": "succeeded"}},
    "vars": {"job_type": 42, "flag": False},
}


@pytest.fixture
def renderer() -> Renderer:
    return Renderer()


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ vars.job_type }}", 42),
        ("{{ steps.contact.output.id }}", 1001),
        ("{{ event.data.items }}", [{"sku": "A1"}, {"sku": "B2"}]),
        ("{{ event.data.nested }}", {"deep": {"er": 3}}),
        ("{{ vars.flag }}", False),
        ("{{- vars.job_type -}}", 42),
        ("{{ event.data.count }}", "7"),  # a string from the sender stays a string
    ],
)
def test_a_single_expression_keeps_its_native_type(renderer: Renderer, template: str, expected: object) -> None:
    assert renderer.render_str(template, CONTEXT) == expected


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("WEB-{{ event.id }}", "WEB-evt_1"),
        ("{{ vars.job_type }}{{ vars.job_type }}", "4242"),
        (" {{ vars.job_type }}", " 42"),
        ("no template at all", "no template at all"),
    ],
)
def test_anything_else_interpolates_to_a_string(renderer: Renderer, template: str, expected: str) -> None:
    assert renderer.render_str(template, CONTEXT) == expected


def test_dot_access_on_a_mapping_reads_the_key_before_any_method(renderer: Renderer) -> None:
    # A form field named like a dict method must be the field, not dict.values.
    assert renderer.render_str("{{ event.data.values }}", CONTEXT) == "a field called values"


@pytest.mark.parametrize(
    "template",
    ["{{ event.data.missing }}", "prefix {{ event.data.missing }}", "{{ nope }}", "{{ steps.later.output.id }}"],
)
def test_undefined_names_are_errors_not_empty_strings(renderer: Renderer, template: str) -> None:
    with pytest.raises(RenderError, match=r"missing|nope|later|undefined"):
        renderer.render_str(template, CONTEXT)


@pytest.mark.parametrize("field", ["injection", "block"])
def test_event_data_is_never_rendered_as_a_template(renderer: Renderer, field: str) -> None:
    # Given a sender puts template syntax in a form field
    # When a definition template reads that field
    value = renderer.render_str(f"{{{{ event.data.{field} }}}}", CONTEXT)
    # Then the text arrives untouched, whether embedded in a string or not
    assert value == CONTEXT["event"]["data"][field]
    assert renderer.render_str(f"Note: {{{{ event.data.{field} }}}}", CONTEXT) == f"Note: {value}"


def test_rendering_walks_dicts_and_lists_of_the_definition(renderer: Renderer) -> None:
    definition = {"contactId": "{{ steps.contact.output.id }}", "tags": ["x-{{ event.id }}", 3], "n": None}
    assert renderer.render(definition, CONTEXT) == {"contactId": 1001, "tags": ["x-evt_1", 3], "n": None}


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("{{ ''.__class__ }}", "unsafe"),
        ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "unsafe"),
        ("{{ event.data.items.append(1) }}", "unsafe"),
        ("{{ event.data.nested.clear() }}", "unsafe"),
        ("{{ event.__init__ }}", "unsafe|undefined|attribute"),
    ],
)
def test_the_sandbox_refuses_python_internals_and_mutation(renderer: Renderer, template: str, reason: str) -> None:
    with pytest.raises(RenderError, match=reason):
        renderer.render_str(template, CONTEXT)


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        # Jinja's globals carry Python functions, and through them the module globals (os, sys, …)
        ("{{ lipsum.__globals__ }}", "undefined"),
        ("{{ lipsum.__globals__['os'].environ }}", "undefined"),
        ("{{ cycler.__init__.__globals__ }}", "unsafe|undefined"),
        ("{{ joiner.__init__.__globals__ }}", "unsafe|undefined"),
        ("{{ namespace.__init__.__globals__ }}", "unsafe|undefined"),
        ("{{ range.__globals__ }}", "unsafe"),
        # The template's own machinery: the context behind `self`, the runtime through `loop`
        ("{{ self._TemplateReference__context }}", "unsafe"),
        ("{{ self._TemplateReference__context.environment }}", "unsafe"),
        ("{% for x in [1] %}{{ loop._iterator }}{% endfor %}", "unsafe"),
        # Attribute access spelled other ways: str.format's field syntax, the attr filter, subscripts
        ("{{ '{0.__class__}'.format(event) }}", "unsafe"),
        ("{{ '{0.__class__.__base__}'.format(event.data.items) }}", "unsafe"),
        ("{{ '{0.__class__}'.format_map(event) }}", "unsafe|index"),
        ("{{ event | attr('__class__') }}", "unsafe"),
        ("{{ event.data['__class__'] }}", "undefined|unsafe"),
        ("{{ (event.data.nested | attr('clear'))() }}", "unsafe"),
        # Names a Flask template would have, or that reach the process: none exists here
        ("{{ config }}", "undefined"),
        ("{{ environ }}", "undefined"),
        ("{{ request }}", "undefined"),
        ("{{ os }}", "undefined"),
        ("{{ __builtins__ }}", "undefined"),
        ("{{ self.__init__.__globals__ }}", "unsafe"),
    ],
)
def test_the_sandbox_refuses_every_way_to_python_internals(renderer: Renderer, template: str, reason: str) -> None:
    with pytest.raises(RenderError, match=reason):
        renderer.render_str(template, CONTEXT)


@pytest.mark.parametrize(
    "template",
    [
        "{% include '/etc/passwd' %}",
        "{% import '/etc/passwd' as secrets %}",
        "{% from '/etc/passwd' import root %}",
        "{% extends '/etc/passwd' %}",
        "{% include event.data.name %}",
    ],
)
def test_a_template_cannot_read_files_and_says_so_when_it_is_checked(renderer: Renderer, template: str) -> None:
    # Refused when the workflow loads (workflows check reports it), before any run
    with pytest.raises(RenderError, match="cannot include, import or extend other templates"):
        renderer.check_syntax(template)


@pytest.mark.parametrize(
    "template",
    [
        "{{ 'a' * 10**9 }}",
        "{{ 10**9 * 'a' }}",
        "{{ 'abc' * 40000 }}",
        "{{ [0] * 10**9 }}",
        "{{ (1, 2) * 60000 }}",
        "x{{ '-' * event.data.width }}x",  # the count from the sender
    ],
)
def test_repetition_past_the_bound_is_refused_before_it_allocates(renderer: Renderer, template: str) -> None:
    context = {**CONTEXT, "event": {"data": {"width": 10**9}}}
    with pytest.raises(RenderError, match=f"the sandbox allows at most {MAX_REPEAT}"):
        renderer.render_str(template, context)


def test_repetition_within_the_bound_works_as_in_jinja(renderer: Renderer) -> None:
    assert renderer.render_str("{{ '-' * 3 }}", CONTEXT) == "---"
    assert renderer.render_str("{{ [0] * 2 }}", CONTEXT) == [0, 0]
    assert renderer.render_str("{{ 6 * 7 }}", CONTEXT) == 42
    assert len(renderer.render_str(f"{{{{ 'a' * {MAX_REPEAT} }}}}", CONTEXT)) == MAX_REPEAT


@pytest.mark.parametrize(
    "template",
    [
        "{{ '%999999999d' % 1 }}",
        "{{ '%.999999999f' % 1.5 }}",
        "{{ '%(n)0999999999d' % {'n': 1} }}",
        "{{ '{:>999999999}'.format('x') }}",
        "{{ '{0:.999999999}'.format(1.5) }}",
        "{{ '{n:0999999999}'.format_map({'n': 1}) }}",
        "{{ 'x'.center(999999999) }}",
        "{{ 'x'.ljust(event.data.width) }}",
        "{{ 'x'.zfill(999999999) }}",
        "{{ 'x' | center(999999999) }}",
        "{{ 'a\nb' | indent(width=999999999) }}",
    ],
)
def test_a_width_past_the_bound_is_refused_before_it_allocates(renderer: Renderer, template: str) -> None:
    context = {**CONTEXT, "event": {"data": {"width": 10**9}}}
    with pytest.raises(RenderError, match=f"the sandbox allows at most {MAX_REPEAT}"):
        renderer.render_str(template, context)


def test_ordinary_widths_format_as_in_python(renderer: Renderer) -> None:
    assert renderer.render_str("{{ '%05d|%.2f|%s%%' % (42, 3.14159, 'x') }}", CONTEXT) == "00042|3.14|x%"
    assert renderer.render_str("{{ '{:>4}|{:,}'.format('ab', 1234567) }}", CONTEXT) == "  ab|1,234,567"
    assert renderer.render_str("{{ 'ab'.center(6) }}|{{ 'ab' | center(4) }}", CONTEXT) == "  ab  | ab "


def test_a_huge_power_is_refused_and_an_ordinary_one_computed(renderer: Renderer) -> None:
    with pytest.raises(RenderError, match="too large a number"):
        renderer.render_str("{{ 7 ** 10000000 }}", CONTEXT)
    assert renderer.render_str("{{ 2 ** 10 }}", CONTEXT) == 1024
    assert renderer.render_str("{{ 2 ** 0.5 }}", CONTEXT) == pytest.approx(1.4142135)


def test_output_that_loops_multiply_past_the_bound_is_refused(
    renderer: Renderer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a small bound, so that the test need not build 16 MiB
    monkeypatch.setattr(render, "MAX_RENDERED_CHARS", 1000)
    # Then 30 x 30 x 'ab' (1,800 characters) is refused, and 20 x 20 x 'ab' (800) renders
    loops = "{%% for i in range(%d) %%}{%% for j in range(%d) %%}ab{%% endfor %%}{%% endfor %%}"
    with pytest.raises(RenderError, match="renders to more than 1000 characters"):
        renderer.render_str(loops % (30, 30), CONTEXT)
    assert len(renderer.render_str(loops % (20, 20), CONTEXT)) == 800


def test_an_environment_reference_in_a_workflow_stays_literal(tmp_path: Path) -> None:
    # Given the server's environment holds ADMIN_TOKEN, and a workflow mentions it
    (tmp_path / "sources.yaml").write_text('sources: {webform: {verify: {type: token, secret: "${WEBFORM_TOKEN}"}}}')
    (tmp_path / "leak.yaml").write_text(
        "on: {source: webform}\n"
        "steps: [{id: say, uses: core.log, with: {message: 'token ${ADMIN_TOKEN} {{ event.id }}'}}]\n"
    )
    environ = {"WEBFORM_TOKEN": "t", "ADMIN_TOKEN": "admin-s3cret"}
    catalog = load_catalog(tmp_path, environ, build_registry(), Renderer())
    # When its step's input is rendered
    step = catalog.workflows["leak"].spec.steps[0]
    rendered = Renderer().render(step.with_, CONTEXT)
    # Then ${ADMIN_TOKEN} is the text written, not the value: only sources.yaml expands ${VAR}
    assert rendered == {"message": "token ${ADMIN_TOKEN} evt_1"}
    assert "admin-s3cret" not in json.dumps(catalog.workflows["leak"].definition)


def test_a_function_is_not_a_value(renderer: Renderer) -> None:
    with pytest.raises(RenderError, match="function"):
        renderer.render_str("{{ event.data.get }}", CONTEXT)


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ 1 / 0 }}", "division by zero"),
        ("{{ event.data.items[5] }}", "no element 5"),
        ("{{ event.data.name | nosuchfilter }}", "No filter named 'nosuchfilter'"),
        ("{% for %}", "syntax error"),
        ("{{ unclosed", "syntax error"),
    ],
)
def test_errors_name_the_template_and_the_cause(renderer: Renderer, template: str, message: str) -> None:
    with pytest.raises(RenderError) as raised:
        renderer.render_str(template, CONTEXT)
    assert message in str(raised.value)
    assert repr(template) in str(raised.value)


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (None, True),
        (True, True),
        (False, False),
        ("{{ vars.flag }}", False),
        ("{{ event.data.name }}", True),
        ("{{ event.data.missing | default('') }}", False),
        ("{{ event.data.missing is defined }}", False),
        ("false", False),
        ("0", False),
        ("{{ 'no' }}", False),
        ("{{ vars.job_type > 40 }}", True),
    ],
)
def test_if_conditions(renderer: Renderer, condition: object, expected: bool) -> None:
    assert renderer.is_true(condition, CONTEXT) is expected  # type: ignore[arg-type]


def test_check_syntax_reports_without_rendering(renderer: Renderer) -> None:
    renderer.check_syntax("{{ event.data.anything_at_all }}")  # undefined is fine at load time
    with pytest.raises(RenderError, match="syntax error"):
        renderer.check_syntax("{{ a b }}")
