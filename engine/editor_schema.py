"""A JSON Schema of the workflow language, for editors (VS Code's YAML extension and friends).

`flask --app app workflows schema` prints it, and docs/workflow.schema.json is
the committed copy (a test fails when it drifts from the models). docs/editor.md
says how to point an editor at it.

Everything comes from the pydantic models the loader validates with, so the
schema cannot describe a language the engine does not speak:
- the file, step, trigger and retry keys from WorkflowSpec (aliases: `on`, `if`, `with`);
- each operation's `with` from its input model, chosen by `uses` with one
  `if: {uses: const NAME} then: {with: <input>}` per operation, and `uses`
  itself an enum of the operation names, for completion;
- any value inside `with` may also be a template (a string containing `{{` or
  `{%`), because it is only checked after rendering.

It is draft-07 (what redhat.vscode-yaml implements): definitions live under
`definitions`. Workflow models keep their own names; operation inputs and their
nested models are prefixed `with.`, so a connector's `Location` can never collide
with another definition. Pydantic itself merges models shared between operations
and renames same-named ones from different modules.

The editor is a convenience: `workflows check` remains the authority, and knows
what a schema cannot (step references, vars, sources, template syntax).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue, models_json_schema
from pydantic_core import core_schema

from engine.operations import OperationRegistry
from schemas.workflow import WorkflowSpec

DRAFT_07 = "http://json-schema.org/draft-07/schema#"
TEMPLATE = "template"
_REF = "#/definitions/{model}"
_INPUT_REF = "#/definitions/with.{model}"
_TEMPLATE_REF = {"$ref": f"#/definitions/{TEMPLATE}"}
_TEMPLATE_SCHEMA = {
    "title": "Template",
    "description": "A Jinja template such as {{ event.data.id }}, rendered when the step runs; "
    "the rendered value must fit the field.",
    "type": "string",
    "pattern": r"\{[{%]",
}
# Keywords that describe a value without constraining it: a schema made only of these accepts anything.
_ANNOTATIONS = frozenset({"title", "description", "default", "examples", "deprecated", "readOnly", "writeOnly"})
# Core schema types of a whole model: a before-validator around one is model-level.
_MODELS = frozenset({"model", "model-fields", "dataclass", "dataclass-args", "typed-dict"})
# Keys the loader fills in before validation (engine/loader.load_workflow: the name defaults to the
# file's stem), so a file may leave them out even though the model requires them.
_FILLED_BY_LOADER = ("name",)


class EditorJsonSchema(GenerateJsonSchema):
    """Pydantic's generator, except where a field's before-validator accepts more than its type says.

    `Duration` is a float that also takes "2s", a Lightening flag an int that also
    takes true, through BeforeValidators that pydantic cannot see into: it describes
    only the float or the int, so every `initial: 2s` would be flagged. A false error
    teaches people to ignore the editor, while a missed one is still caught by
    `workflows check`, so such a field accepts anything here (its type stays, for
    completion and hovers). To have it checked, declare what the validator takes:
    `BeforeValidator(parse, json_schema_input_type=...)` is used as written.

    A model-level `model_validator(mode="before")` keeps the model's schema: it
    usually refuses or reshapes known keys. A model that accepts extra keys by
    pattern says so with `json_schema_extra={"patternProperties": {...}}`.
    """

    def field_title_should_be_set(self, schema: core_schema.CoreSchemaOrField) -> bool:
        # Pydantic would title `contactId` "Contactid": noise in a hover that already shows the key.
        # Titles written in the models (Field(title=...)) and model names are kept.
        return False

    def function_before_schema(self, schema: core_schema.BeforeValidatorFunctionSchema) -> JsonSchemaValue:
        inner = schema["schema"]
        if self.mode != "validation" or schema.get("json_schema_input_schema") or inner["type"] in _MODELS:
            return super().function_before_schema(schema)
        return {"anyOf": [self.generate_inner(inner), {}]}


def workflow_json_schema(operations: OperationRegistry) -> dict[str, Any]:
    """The JSON Schema (draft-07) of a workflow file, with each operation's `with` under its `uses`.

    Args:
        operations: every name a step may use (handlers.build_registry()).

    Returns:
        A JSON-serialisable schema; `schema_text` gives the committed file's exact text.
    """
    workflow = WorkflowSpec.model_json_schema(by_alias=True, ref_template=_REF, schema_generator=EditorJsonSchema)
    definitions: dict[str, Any] = workflow.pop("$defs", {})
    input_refs, input_definitions = _input_schemas(operations)
    definitions |= input_definitions
    definitions[TEMPLATE] = _TEMPLATE_SCHEMA
    workflow["required"] = [key for key in workflow.get("required", []) if key not in _FILLED_BY_LOADER]
    for step in _step_schemas([workflow, *definitions.values()]):
        _discriminate_by_uses(step, operations, input_refs)
    return {
        "$schema": DRAFT_07,
        "$comment": "Generated by `flask --app app workflows schema` from schemas/ and handlers/. Do not edit.",
        **workflow,
        "definitions": definitions,
    }


def schema_text(operations: OperationRegistry) -> str:
    """`workflow_json_schema` as the text of docs/workflow.schema.json (stable, ends with a newline)."""
    return json.dumps(workflow_json_schema(operations), indent=2, ensure_ascii=False) + "\n"


def _input_schemas(operations: OperationRegistry) -> tuple[dict[str, dict[str, str]], dict[str, Any]]:
    """Each operation's `$ref` to its input model, and the input definitions with templates allowed.

    One `models_json_schema` call for all inputs lets pydantic share nested models
    between operations and tell apart same-named models of different connectors.
    """
    models: list[type[BaseModel]] = list(dict.fromkeys(op.input for op in operations))
    refs, combined = models_json_schema(
        [(model, "validation") for model in models], ref_template=_INPUT_REF, schema_generator=EditorJsonSchema
    )
    by_model = {model: refs[(model, "validation")] for model in models}
    input_refs = {op.name: by_model[op.input] for op in operations}
    definitions = {f"with.{name}": _within(body) for name, body in combined.get("$defs", {}).items()}
    return input_refs, definitions


def _step_schemas(schemas: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every object schema with both `uses` and `with`: StepSpec, and any step-like model added later."""
    return [s for s in schemas if {"uses", "with"} <= set(s.get("properties", {}))]


def _discriminate_by_uses(
    step: dict[str, Any], operations: OperationRegistry, input_refs: dict[str, dict[str, str]]
) -> None:
    """Offer the operation names for `uses`, and check `with` against the input of the one named."""
    ordered = sorted(operations, key=lambda op: op.name)
    properties = step["properties"]
    properties["uses"] = {
        **properties["uses"],
        "enum": [op.name for op in ordered],
        # Non-standard, read by VS Code's JSON and YAML language servers to describe each completion.
        "enumDescriptions": [op.summary or op.name for op in ordered],
    }
    branches = []
    for op in ordered:
        then: dict[str, Any] = {"properties": {"with": input_refs[op.name]}}
        if any(field.is_required() for field in op.input.model_fields.values()):
            then["required"] = ["with"]  # `with` defaults to {}, which cannot satisfy the input
        branches.append({"if": {"properties": {"uses": {"const": op.name}}, "required": ["uses"]}, "then": then})
    step["allOf"] = [*step.get("allOf", []), *branches]


def _within(node: dict[str, Any]) -> dict[str, Any]:
    """`node` with every value position inside it (properties, items, map values) accepting templates."""
    node = dict(node)
    for key in ("properties", "patternProperties"):
        if key in node:
            node[key] = {name: _templated(value) for name, value in node[key].items()}
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            node[key] = _templated(node[key])
    for key in ("anyOf", "oneOf", "allOf"):
        if key in node:
            node[key] = [_within(branch) for branch in node[key]]
    return node


def _templated(node: dict[str, Any]) -> dict[str, Any]:
    """A value's schema that also accepts a template; annotations stay outside, for hovers."""
    node = _within(node)
    annotations = {key: value for key, value in node.items() if key in _ANNOTATIONS}
    constraints = {key: value for key, value in node.items() if key not in _ANNOTATIONS}
    if not constraints:
        return node  # accepts anything already
    options = constraints["anyOf"] if set(constraints) == {"anyOf"} else [constraints]
    return {**annotations, "anyOf": [*options, _TEMPLATE_REF]}
