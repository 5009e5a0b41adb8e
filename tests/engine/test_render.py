"""Template rendering: native values, strict undefined, sandbox, never recursive."""

from __future__ import annotations

import pytest

from engine.errors import RenderError
from engine.render import Renderer

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
