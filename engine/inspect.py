"""Static checks of a parsed workflow: every mistake that can be known before a run, collected.

Each `detect_*` looks at one kind of mistake and returns Issues located by
path (`steps[2].with.jobId`); the loader turns the path into file:line:col.
Errors keep a workflow from loading; warnings are reported and it loads.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from jinja2 import TemplateSyntaxError, nodes
from pydantic import BaseModel, ValidationError

from engine.errors import RenderError
from engine.issues import Issue
from engine.operations import OperationRegistry
from engine.render import Renderer
from schemas.workflow import StepSpec, WorkflowSpec

Loc = tuple[str | int, ...]
Locate = Callable[..., Issue]  # (loc, message, hint="", at_key=False) -> Issue

EVENT_FIELDS = ("id", "key", "source", "type", "received_at", "data", "raw", "headers", "query")
RUN_FIELDS = ("id", "workflow", "error", "failed_step")
STEP_FIELDS = ("output", "status")


def inspect_workflow(
    spec: WorkflowSpec, locate: Locate, operations: OperationRegistry, renderer: Renderer, sources: Iterable[str]
) -> list[Issue]:
    issues = detect_unknown_source(spec, locate, sources)
    issues += detect_unknown_operations(spec, locate, operations)
    issues += detect_with_mismatches(spec, locate, operations)
    issues += detect_template_problems(spec, locate, operations, renderer)
    issues += detect_constant_conditions(spec, locate, renderer)
    issues += detect_foreach_only_settings(spec, locate)
    return issues


def detect_foreach_only_settings(spec: WorkflowSpec, locate: Locate) -> list[Issue]:
    """`max_parallel` on a step without `foreach` does nothing: probably a forgotten foreach."""
    return [
        locate(
            (*loc, "max_parallel"), "max_parallel only applies to a step with foreach", "add foreach or remove it"
        ).warning()
        for loc, _, step in _step_locs(spec)
        if step.foreach is None and "max_parallel" in step.model_fields_set
    ]


def detect_unknown_source(spec: WorkflowSpec, locate: Locate, sources: Iterable[str]) -> list[Issue]:
    sources = sorted(sources)
    if spec.on.source in sources:
        return []
    close = difflib.get_close_matches(spec.on.source, sources, n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"defined sources: {', '.join(sources) or 'none'}"
    return [locate(("on", "source"), f"source {spec.on.source!r} is not defined in sources.yaml", hint)]


def _step_locs(spec: WorkflowSpec) -> Iterator[tuple[Loc, int, StepSpec]]:
    """(path, index in all_steps, step) for every step, main ones then on_failure."""
    for index, step in enumerate(spec.steps):
        yield ("steps", index), index, step
    for index, step in enumerate(spec.on_failure):
        yield ("on_failure", index), len(spec.steps) + index, step


def detect_unknown_operations(spec: WorkflowSpec, locate: Locate, operations: OperationRegistry) -> list[Issue]:
    return [
        locate((*loc, "uses"), operations.unknown_message(step.uses))
        for loc, _, step in _step_locs(spec)
        if step.uses not in operations
    ]


def _has_template(value: Any) -> bool:
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    if isinstance(value, dict):
        return any(_has_template(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_template(v) for v in value)
    return False


def detect_with_mismatches(spec: WorkflowSpec, locate: Locate, operations: OperationRegistry) -> list[Issue]:
    """`with` against the operation's input model: unknown and missing fields, and literals of the wrong kind.

    A field given as a template can only be checked at run time, so it is
    taken as present and its value is not judged here.
    """
    issues = []
    for loc, _, step in _step_locs(spec):
        if step.uses not in operations:
            continue
        model = operations.get(step.uses).input
        issues += _check_with(model, step.with_, (*loc, "with"), locate, step.uses)
    return issues


def _open_patterns(model: type[BaseModel]) -> list[re.Pattern[str]]:
    """Key patterns a model accepts besides its fields (JSON Schema patternProperties, e.g. `^cust_`)."""
    extra = model.model_config.get("json_schema_extra")
    patterns = extra.get("patternProperties", {}) if isinstance(extra, dict) else {}
    return [re.compile(pattern) for pattern in patterns]


def _check_with(model: type[BaseModel], given: dict[str, Any], loc: Loc, locate: Locate, uses: str) -> list[Issue]:
    fields = {(info.alias or name): info for name, info in model.model_fields.items()}
    patterns = _open_patterns(model)
    issues = []
    for key in given:
        if key not in fields and not any(pattern.search(key) for pattern in patterns):
            close = difflib.get_close_matches(key, fields, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"{uses} takes: {', '.join(fields)}"
            issues.append(locate((*loc, key), f"{uses} has no field {key!r}", hint, at_key=True))
    templated = {key for key, value in given.items() if _has_template(value)}
    accepted = {key for key in given if key in fields or any(pattern.search(key) for pattern in patterns)}
    literal = {key: value for key, value in given.items() if key in accepted and key not in templated}
    try:
        model.model_validate(literal)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            where = error["loc"]
            if where and where[0] in templated:
                continue
            if not where and templated:
                continue  # a whole-model rule may hold once the templates have values
            if error["type"] == "missing" and where and where[0] in given:
                continue
            issues.append(locate((*loc, *where), error["msg"], _enum_hint(error)))
    return issues


def _enum_hint(error: dict[str, Any]) -> str:
    expected = (error.get("ctx") or {}).get("expected")
    return f"expected {expected}" if expected else ""


def _template_sites(spec: WorkflowSpec) -> Iterator[tuple[Loc, Any, set[str], int | None, StepSpec | None]]:
    """Every templated value: (path, value, names it may read, step index or None, step)."""
    trigger_names = {"event", "vars"}
    yield ("on", "if"), spec.on.if_, trigger_names, None, None
    yield ("concurrency",), spec.concurrency, trigger_names, None, None
    for loc, index, step in _step_locs(spec):
        names = {"event", "steps", "vars", "run"}
        yield (*loc, "foreach"), step.foreach, names, index, step
        yield (*loc, "if"), step.if_, names, index, step
        item_names = names | ({"item", "index"} if step.foreach is not None else set())
        yield (*loc, "with"), step.with_, item_names, index, step


def _strings(value: Any, loc: Loc) -> Iterator[tuple[Loc, str]]:
    if isinstance(value, str):
        yield loc, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, (*loc, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, (*loc, index))


def detect_template_problems(
    spec: WorkflowSpec, locate: Locate, operations: OperationRegistry, renderer: Renderer
) -> list[Issue]:
    """Syntax, unknown filters, and what each template reads: names, steps (and their order), vars, fields."""
    issues = []
    for loc, value, allowed, index, _step in _template_sites(spec):
        for at, text in _strings(value, loc):
            if "{" not in text:
                continue
            try:
                renderer.check_syntax(text)
            except RenderError as exc:
                issues.append(locate(at, str(exc)))
                continue
            for path in template_paths(renderer, text):
                problem = _path_problem(path, allowed, index, spec, operations)
                if problem:
                    issues.append(locate(at, *problem))
    return issues


def template_paths(renderer: Renderer, source: str) -> list[list[str]]:
    """Each dotted path a template reads, e.g. ["steps", "contact", "output", "id"] ("*" for a computed key)."""
    tree = renderer.env.parse(source)
    bound = {"loop"} | {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    return [path for path in _paths(tree) if path[0] not in bound]


def _chain(node: nodes.Node) -> list[str] | None:
    if isinstance(node, nodes.Name) and node.ctx == "load":
        return [node.name]
    if isinstance(node, nodes.Getattr):
        inner = _chain(node.node)
        return None if inner is None else [*inner, node.attr]
    if isinstance(node, nodes.Getitem):
        inner = _chain(node.node)
        key = node.arg.value if isinstance(node.arg, nodes.Const) else "*"
        return None if inner is None else [*inner, str(key)]
    return None


def _paths(node: nodes.Node) -> Iterator[list[str]]:
    chain = _chain(node)
    if chain is not None:
        yield chain
        for sub in node.find_all(nodes.Getitem):  # computed keys are expressions of their own
            if not isinstance(sub.arg, nodes.Const):
                yield from _paths(sub.arg)
        return
    for child in node.iter_child_nodes():
        yield from _paths(child)


def _path_problem(
    path: list[str], allowed: set[str], index: int | None, spec: WorkflowSpec, operations: OperationRegistry
) -> tuple[str, str] | None:
    root = path[0]
    if root not in allowed:
        where = "here" if index is not None else "in a trigger (the run has not started)"
        return f"{root!r} is not available {where}", f"available: {', '.join(sorted(allowed))}"
    field = path[1] if len(path) > 1 else None
    if field in (None, "*"):
        return None
    if root == "event" and field not in EVENT_FIELDS:
        return f"event has no field {field!r}", f"event fields: {', '.join(EVENT_FIELDS)}"
    if root == "run" and field not in RUN_FIELDS:
        return f"run has no field {field!r}", f"run fields: {', '.join(RUN_FIELDS)}"
    if root == "vars" and field not in spec.vars:
        return f"vars.{field} is not declared", f"declared vars: {', '.join(spec.vars) or 'none'}"
    if root == "steps":
        return _step_path_problem(path, index, spec, operations)
    return None


def _step_path_problem(
    path: list[str], index: int | None, spec: WorkflowSpec, operations: OperationRegistry
) -> tuple[str, str] | None:
    ids = [step.id for step in spec.all_steps]
    target = path[1]
    if target not in ids:
        close = difflib.get_close_matches(target, ids, n=1)
        return f"there is no step {target!r}", f"did you mean {close[0]!r}?" if close else f"steps: {', '.join(ids)}"
    position = ids.index(target)
    if index is not None and position >= index:
        return f"step {target!r} has not run yet here (it comes {'later' if position > index else 'now'})", (
            "a step can only read the output of steps before it"
        )
    if len(path) < 3 or path[2] == "*":
        return None
    if path[2] not in STEP_FIELDS:
        return f"steps.{target} has no {path[2]!r}", "use steps.<id>.output or steps.<id>.status"
    referenced = spec.all_steps[position]
    if path[2] != "output" or len(path) < 4 or referenced.foreach is not None or referenced.uses not in operations:
        return None
    outputs = operations.get(referenced.uses).outputs
    if outputs is not None and path[3] != "*" and path[3] not in outputs:
        listed = ", ".join(sorted(outputs)) or "nothing"
        return f"{referenced.uses} outputs no field {path[3]!r}", f"its output has: {listed}"
    return None


def detect_constant_conditions(spec: WorkflowSpec, locate: Locate, renderer: Renderer) -> list[Issue]:
    """An `if` whose value is fixed is either dead weight or a step that can never run."""
    sites = [(("on", "if"), spec.on.if_)] + [((*loc, "if"), step.if_) for loc, _, step in _step_locs(spec)]
    issues = []
    for loc, condition in sites:
        if condition is None:
            continue
        if isinstance(condition, str) and _has_template(condition) and not _constant(renderer, condition):
            continue
        try:
            always = renderer.is_true(condition, {})
        except RenderError:
            continue  # reported by detect_template_problems
        message = "this condition is always true" if always else "this condition is always false: it never runs"
        hint = "remove the if" if always else "remove the step, or make the if depend on the event"
        issues.append(locate(loc, message, hint).warning())
    return issues


def _constant(renderer: Renderer, source: str) -> bool:
    """A template that reads no name at all, e.g. `{{ true }}`."""
    try:
        tree = renderer.env.parse(source)
    except TemplateSyntaxError:
        return False  # reported by detect_template_problems
    return not any(True for _ in tree.find_all(nodes.Name))
