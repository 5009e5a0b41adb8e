"""The editor's JSON Schema: drift-checked, valid draft-07, accepting every good file and flagging typos.

The behaviour tests run on a small registry of test models, so they say exactly
what is being checked and do not move when a connector's models change; the
shipped workflows and the committed file are checked against the real registry.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

import pytest
from jsonschema import Draft7Validator, ValidationError
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from engine.editor_schema import schema_text, workflow_json_schema
from engine.loader import SOURCES_FILE, load_workflow, read_yaml
from engine.operations import Operation, OperationRegistry
from engine.render import Renderer
from handlers import build_registry
from schemas.settings import PROJECT_ROOT
from schemas.workflow import StepSpec, WorkflowSpec

COMMITTED = PROJECT_ROOT / "docs" / "workflow.schema.json"
SHIPPED = sorted(p for p in (PROJECT_ROOT / "workflows").glob("*.yaml") if p.name != SOURCES_FILE)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Point(_In):
    lat: float = Field(ge=-90, le=90)


class Line(_In):
    sku: str
    qty: int = Field(ge=1)


class OrderIn(_In):
    """Place an order."""

    orderId: int = Field(ge=1, description="The order's id in the shop.")
    status: Literal["open", "held"] = "open"
    lines: list[Line] = Field(default_factory=list, max_length=50)
    where: Point | None = None
    tags: dict[str, int] = Field(default_factory=dict)


class NoteIn(_In):
    text: str | None = None


def _seconds(value: Any) -> Any:
    return float(value.removesuffix("s")) if isinstance(value, str) else value


class TimerIn(_In):
    after: Annotated[float, BeforeValidator(_seconds), Field(description="Seconds, or text such as 2s.")]
    every: Annotated[float, BeforeValidator(_seconds, json_schema_input_type=Annotated[str, Field(pattern=r"^\d+s$")])]


class TaggedIn(_In):
    """Takes `tag_<name>: value` keys besides `tags:`, and says so with patternProperties."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"patternProperties": {"^tag_": {"type": "string"}}})

    name: str
    tags: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _gather_tags(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        tags = {key.removeprefix("tag_"): value for key, value in data.items() if key.startswith("tag_")}
        rest = {key: value for key, value in data.items() if not key.startswith("tag_")}
        return {**rest, "tags": {**rest.get("tags", {}), **tags}}


def _nested_named_point(field: str) -> type[BaseModel]:
    """A model called Point, different from the one above: the names collide, the schemas must not."""
    inner = type("Point", (_In,), {"__annotations__": {field: str}, "__module__": "elsewhere"})
    return type("AddressIn", (_In,), {"__annotations__": {"point": inner}, "__module__": "elsewhere"})


def _op(name: str, model: type[BaseModel]) -> Operation:
    return Operation(
        name=name, input=model, call=lambda client, inp: {}, connect=lambda ctx: None, summary=f"do {name}"
    )


REGISTRY = OperationRegistry(
    [
        _op("shop.orders.create", OrderIn),
        _op("shop.notes.add", NoteIn),
        _op("shop.address", _nested_named_point("zip")),
        _op("shop.timer", TimerIn),
        _op("shop.tagged", TaggedIn),
    ]
)


@pytest.fixture(scope="module")
def validator() -> Draft7Validator:
    return Draft7Validator(workflow_json_schema(REGISTRY))


@pytest.fixture(scope="module")
def shipped_validator() -> Draft7Validator:
    return Draft7Validator(workflow_json_schema(build_registry()))


def workflow(*steps: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"name": "t", "on": {"source": "shop"}, "steps": list(steps), **top}


def order(**with_: Any) -> dict[str, Any]:
    return {"id": "order", "uses": "shop.orders.create", "with": {"orderId": 1, **with_}}


def problems(validator: Draft7Validator, document: Any) -> list[tuple[str, str]]:
    """(path, message) of each error where an editor shows it, e.g. ("steps/0/with/orderId", "... integer").

    A value that fits no branch of an anyOf (a field, or a template) is reported by
    jsonschema at the anyOf; editors underline the deepest failure in the closest
    branch, so take the deepest leaves of each error's tree.
    """
    found = []
    for error in validator.iter_errors(document):
        leaves = list(_leaves(error))
        depth = max(len(leaf.absolute_path) for leaf in leaves)
        found += [("/".join(map(str, e.absolute_path)), e.message) for e in leaves if len(e.absolute_path) == depth]
    return found


def _leaves(error: ValidationError) -> Iterator[ValidationError]:
    if not error.context:
        yield error
    for child in error.context:
        yield from _leaves(child)


def paths(validator: Draft7Validator, document: Any) -> set[str]:
    return {path for path, _ in problems(validator, document)}


# --- the committed file and the real registry ---------------------------------------------


def test_the_committed_schema_is_generated_from_the_current_models() -> None:
    expected = schema_text(build_registry())
    committed = COMMITTED.read_text(encoding="utf-8") if COMMITTED.exists() else ""
    assert committed == expected, (
        "docs/workflow.schema.json is out of date with schemas/ or handlers/; regenerate it with "
        "`flask --app app workflows schema > docs/workflow.schema.json` and commit the result"
    )


def test_the_schema_is_valid_draft_07_and_every_reference_resolves() -> None:
    schema = workflow_json_schema(build_registry())
    Draft7Validator.check_schema(schema)
    prefix = "#/definitions/"
    refs = set(_refs(schema))
    assert refs and all(ref.startswith(prefix) for ref in refs)
    assert {ref.removeprefix(prefix) for ref in refs} <= set(schema["definitions"])


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_workflow_is_valid(shipped_validator: Draft7Validator, path: Path) -> None:
    doc, issues = read_yaml(path)
    assert doc is not None, issues
    assert problems(shipped_validator, doc.data) == []


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda step: step.update(retries=3), "steps/0"),
        (lambda step: step.update(uses=step["uses"] + "s"), "steps/0/uses"),
        (lambda step: step.setdefault("with", {}).update(noSuchField=1), "steps/0/with"),
    ],
    ids=["unknown step key", "unknown uses", "unknown with field"],
)
@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_a_typo_in_a_shipped_workflow_is_flagged_where_it_is(
    shipped_validator: Draft7Validator, path: Path, mutate: Any, where: str
) -> None:
    # Given a shipped workflow with one typo in its first step
    doc, _ = read_yaml(path)
    assert doc is not None
    data = copy.deepcopy(doc.data)
    mutate(data["steps"][0])
    # Then the editor underlines that step, key or field
    assert where in paths(shipped_validator, data)


def test_every_operation_is_offered_for_uses_with_its_summary() -> None:
    registry = build_registry()
    uses = workflow_json_schema(registry)["definitions"]["StepSpec"]["properties"]["uses"]
    assert uses["enum"] == sorted(op.name for op in registry)
    assert len(uses["enumDescriptions"]) == len(registry)


def test_every_step_and_workflow_key_comes_from_the_models() -> None:
    # New StepSpec / WorkflowSpec fields appear without touching the generator
    schema = workflow_json_schema(build_registry())
    assert set(schema["properties"]) == {f.alias or name for name, f in WorkflowSpec.model_fields.items()}
    step = schema["definitions"]["StepSpec"]["properties"]
    assert set(step) == {f.alias or name for name, f in StepSpec.model_fields.items()}


# --- the step keys ------------------------------------------------------------------------


def test_a_minimal_workflow_is_valid(validator: Draft7Validator) -> None:
    assert problems(validator, workflow(order())) == []


def test_name_may_be_left_out_because_the_loader_uses_the_file_name(tmp_path: Path, validator: Draft7Validator) -> None:
    # Given a workflow file without `name:`
    path = tmp_path / "nameless.yaml"
    path.write_text("on: {source: webform}\nsteps:\n  - {id: log, uses: core.log, with: {message: hi}}\n")
    # Then the loader accepts it (named after the file), and so does the editor
    loaded, issues = load_workflow(path, build_registry(), Renderer(), {"webform"})
    assert issues == [] and loaded is not None and loaded.spec.name == "nameless"
    assert problems(validator, {"on": {"source": "shop"}, "steps": [order()]}) == []


@pytest.mark.parametrize(
    ("step", "where", "message"),
    [
        ({**order(), "retries": 3}, "steps/0", "'retries' was unexpected"),
        ({**order(), "uses": "shop.order.create"}, "steps/0/uses", "is not one of"),
        ({"id": "x", "uses": "shop.orders.create"}, "steps/0", "'with' is a required property"),
        ({**order(), "id": "has space"}, "steps/0/id", "does not match"),
        ({**order(), "on_error": "explode"}, "steps/0/on_error", "does not match"),
        ({**order(), "retry": {"max_attempts": 0}}, "steps/0/retry/max_attempts", "0 is less than the minimum of 1"),
        ({**order(), "retry": {"backoff": "linear"}}, "steps/0/retry/backoff", "'linear' is not one of"),
    ],
)
def test_a_wrong_step_key_is_flagged(
    validator: Draft7Validator, step: dict[str, Any], where: str, message: str
) -> None:
    found = problems(validator, workflow(step))
    assert any(path == where and message in text for path, text in found), found


def test_durations_are_written_as_text(validator: Draft7Validator) -> None:
    step = {**order(), "retry": {"initial": "2s", "max_delay": "10m"}}
    assert problems(validator, workflow(step)) == []


def test_an_unknown_top_level_key_is_flagged(validator: Draft7Validator) -> None:
    assert "" in paths(validator, workflow(order(), trigger={"source": "shop"}))


# --- `with`, checked against the operation named by `uses` -------------------------------


@pytest.mark.parametrize(
    ("with_", "where", "message"),
    [
        ({"orderID": 1}, "steps/0/with", "'orderID' was unexpected"),
        ({"orderId": "one"}, "steps/0/with/orderId", "'one' is not of type 'integer'"),
        ({"orderId": "one"}, "steps/0/with/orderId", "'one' does not match"),  # nor is it a template
        ({"orderId": True}, "steps/0/with/orderId", "True is not of type 'integer'"),
        ({"orderId": 0}, "steps/0/with/orderId", "0 is less than the minimum of 1"),
        ({"status": "closed"}, "steps/0/with/status", "'closed' is not one of ['open', 'held']"),
        ({"lines": [{"sku": "A", "qty": 0}]}, "steps/0/with/lines/0/qty", "0 is less than the minimum of 1"),
        ({"lines": [{"sku": "A", "qty": 1, "colour": "red"}]}, "steps/0/with/lines/0", "'colour' was unexpected"),
        ({"lines": [{"qty": 1}]}, "steps/0/with/lines/0", "'sku' is a required property"),
        ({"where": {"lat": "north"}}, "steps/0/with/where/lat", "'north' is not of type 'number'"),
        ({"tags": {"vip": "yes"}}, "steps/0/with/tags/vip", "'yes' is not of type 'integer'"),
    ],
)
def test_a_wrong_with_literal_is_flagged_at_the_field(
    validator: Draft7Validator, with_: dict[str, Any], where: str, message: str
) -> None:
    step = {"id": "order", "uses": "shop.orders.create", "with": {"orderId": 1, **with_}}
    found = problems(validator, workflow(step))
    assert any(path == where and message in text for path, text in found), found


def test_a_missing_required_with_field_is_flagged(validator: Draft7Validator) -> None:
    step = {"id": "order", "uses": "shop.orders.create", "with": {"status": "open"}}
    assert ("steps/0/with", "'orderId' is a required property") in problems(validator, workflow(step))


def test_with_may_be_left_out_when_the_operation_needs_nothing(validator: Draft7Validator) -> None:
    assert problems(validator, workflow({"id": "note", "uses": "shop.notes.add"})) == []


def test_each_step_is_checked_against_its_own_operation(validator: Draft7Validator) -> None:
    # orderId is right for orders and unknown to notes
    note = {"id": "note", "uses": "shop.notes.add", "with": {"orderId": 1}}
    assert paths(validator, workflow(order(), note)) == {"steps/1/with"}


@pytest.mark.parametrize(
    "with_",
    [
        {"orderId": "{{ steps.lookup.output.id }}"},  # a template where an integer goes
        {"orderId": "{{vars.order}}"},
        {"orderId": "{% if vars.a %}1{% else %}2{% endif %}"},
        {"status": "{{ event.data.status }}"},  # ...where an enum goes
        {"lines": "{{ event.data.lines }}"},  # ...for a whole list
        {"lines": [{"sku": "{{ item.sku }}", "qty": "{{ item.qty }}"}]},  # ...inside list items
        {"lines": ["{{ event.data.first_line }}"]},
        {"where": "{{ event.data.where }}"},  # ...for a nested object
        {"where": {"lat": "{{ event.data.lat }}"}},  # ...inside it
        {"tags": {"vip": "{{ event.data.vip }}"}},  # ...for a map's values
        {"where": None, "status": "held", "lines": [], "tags": {"vip": 1}},
    ],
)
def test_a_template_is_accepted_for_any_with_value(validator: Draft7Validator, with_: dict[str, Any]) -> None:
    step = {"id": "order", "uses": "shop.orders.create", "with": {"orderId": 1, **with_}}
    assert problems(validator, workflow(step)) == []


def test_same_named_nested_models_of_different_operations_keep_their_own_fields(validator: Draft7Validator) -> None:
    # Given two operations whose inputs nest different models both called Point
    address = {"id": "address", "uses": "shop.address", "with": {"point": {"zip": "AB1"}}}
    # Then each is checked against its own Point
    assert problems(validator, workflow(order(where={"lat": 1.5}), address)) == []
    address_with_lat = {**address, "with": {"point": {"lat": 1.5}}}
    assert "steps/0/with/point" in paths(validator, workflow(address_with_lat))


# --- validators pydantic cannot describe --------------------------------------------------


def test_a_field_with_an_undeclared_before_validator_accepts_anything(validator: Draft7Validator) -> None:
    # Given a float that a BeforeValidator also accepts as "2s", which pydantic describes as a float only
    assert TimerIn.model_validate({"after": "2s", "every": "1s"}).after == 2
    # Then the editor flags none of these: workflows check decides
    for after in (2, 2.5, "2s", "{{ vars.delay }}", "soon"):
        step = {"id": "t", "uses": "shop.timer", "with": {"after": after, "every": "1s"}}
        assert problems(validator, workflow(step)) == [], after


def test_a_field_whose_validator_declares_its_input_is_checked_as_declared(validator: Draft7Validator) -> None:
    step = {"id": "t", "uses": "shop.timer", "with": {"after": 1, "every": "soon"}}
    found = problems(validator, workflow(step))
    assert any(path == "steps/0/with/every" and text.startswith("'soon' does not match '^") for path, text in found)


def test_a_model_level_before_validator_keeps_unknown_keys_flagged(validator: Draft7Validator) -> None:
    # Given a model that gathers tag_* keys, declared as patternProperties
    assert TaggedIn.model_validate({"name": "x", "tag_colour": "red"}).tags == {"colour": "red"}
    step = {"id": "t", "uses": "shop.tagged", "with": {"name": "x", "tag_colour": "red", "tag_size": "{{ s }}"}}
    assert problems(validator, workflow(step)) == []
    # Then other unknown keys are still typos, and pattern keys are still typed
    step["with"] = {"name": "x", "colour": "red", "tag_size": 3}
    assert paths(validator, workflow(step)) == {"steps/0/with", "steps/0/with/tag_size"}


def test_descriptions_come_from_the_models() -> None:
    schema = workflow_json_schema(REGISTRY)
    definitions = schema["definitions"]
    order_in = next(body for name, body in definitions.items() if body.get("title") == "OrderIn")
    assert order_in["description"] == "Place an order."
    assert order_in["properties"]["orderId"]["description"] == OrderIn.model_fields["orderId"].description
    uses = definitions["StepSpec"]["properties"]["uses"]
    assert uses["description"] == StepSpec.model_fields["uses"].description
    assert dict(zip(uses["enum"], uses["enumDescriptions"], strict=True))["shop.notes.add"] == "do shop.notes.add"


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)
