"""Static checks of a parsed workflow: every mistake that can be known before a run, collected.

Each `detect_*` looks at one kind of mistake and returns Issues located by
path (`steps[2].with.jobId`); the loader turns the path into file:line:col.
Errors keep a workflow from loading; warnings are reported and it loads.
"""

from __future__ import annotations

import difflib
import re
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import TemplateSyntaxError, nodes
from pydantic import BaseModel, ValidationError

from engine.errors import RenderError
from engine.issues import Issue
from engine.operations import OperationRegistry
from engine.render import Renderer
from engine.written_secrets import detect_written_secrets
from schemas.workflow import StepSpec, WorkflowSpec

Loc = tuple[str | int, ...]
Locate = Callable[..., Issue]  # (loc, message, hint="", at_key=False) -> Issue

EVENT_FIELDS = ("id", "key", "source", "type", "received_at", "data", "raw", "headers", "query")
RUN_FIELDS = ("id", "workflow", "error", "failed_step")
STEP_FIELDS = ("output", "status")
# In an operation's `outputs`: the listed fields are documented, and the API may answer others too.
OTHERS = "*"


def output_fields(*names: str, others: bool = False) -> frozenset[str]:
    """An operation's `outputs` declaration.

    Exactly `names` when the output is fully known (a template reading any other field is an
    error); with `others=True`, `names` are what is documented or guaranteed and the rest of
    the API's answer passes through undocumented (reading another field is a warning: it may
    be missing when the step runs). An operation whose answer is not documented at all
    declares no outputs (None), and nothing is checked.
    """
    return frozenset(names) | ({OTHERS} if others else set())


@dataclass(frozen=True)
class Problem:
    """What is wrong with one path a template reads."""

    message: str
    hint: str
    warning: bool = False


def inspect_workflow(
    spec: WorkflowSpec,
    locate: Locate,
    operations: OperationRegistry,
    renderer: Renderer,
    sources: Iterable[str],
    broken_sources: Iterable[str] = (),
) -> list[Issue]:
    """Every issue in one workflow. `broken_sources`: defined in sources.yaml, but their entry does not load."""
    issues = detect_unknown_source(spec, locate, sources, broken_sources)
    issues += detect_unknown_operations(spec, locate, operations)
    issues += detect_with_mismatches(spec, locate, operations)
    issues += detect_template_problems(spec, locate, operations, renderer)
    issues += detect_constant_conditions(spec, locate, renderer)
    issues += detect_foreach_only_settings(spec, locate)
    issues += detect_retry_ceiling_below_start(spec, locate)
    issues += detect_written_secrets(spec, locate)
    return issues


def detect_retry_ceiling_below_start(spec: WorkflowSpec, locate: Locate) -> list[Issue]:
    """`initial` above `max_delay` is allowed (the ceiling wins) but is not what anyone means."""
    issues = []
    for loc, _, step in _step_locs(spec):
        retry = step.retry
        if retry is None or retry.initial is None or retry.max_delay is None or retry.initial <= retry.max_delay:
            continue
        message = (
            f"initial ({retry.initial:g}s) is longer than max_delay ({retry.max_delay:g}s): "
            f"every delay will be {retry.max_delay:g}s"
        )
        issues.append(locate((*loc, "retry", "initial"), message, "lower initial or raise max_delay").warning())
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


def detect_unknown_source(
    spec: WorkflowSpec, locate: Locate, sources: Iterable[str], broken: Iterable[str] = ()
) -> list[Issue]:
    sources = sorted(sources)
    if spec.on.source in sources:
        return []
    if spec.on.source in set(broken):
        # The mistake is in sources.yaml and reported there; this file is fine, and loads.
        message = f"source {spec.on.source!r} is defined in sources.yaml, but its entry has errors"
        hint = f"fix the errors reported for sources.{spec.on.source}; until then no event starts this workflow"
        return [locate(("on", "source"), message, hint).warning()]
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
    accepted = {key for key in given if key in fields or any(pattern.search(key) for pattern in patterns)}
    for key in accepted:  # keys are literal even inside a value that holds templates
        for where, allowed in _unknown_keys(model, given[key], (key,)):
            hint = _nearest(str(where[-1]), allowed)
            issues.append(locate((*loc, *where), f"unknown field {where[-1]!r}", hint, at_key=True))
    templated = {key for key, value in given.items() if _has_template(value)}
    literal = {key: value for key, value in given.items() if key in accepted and key not in templated}
    try:
        model.model_validate(literal)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            where = error["loc"]
            if error["type"] == "extra_forbidden" or (where and where[0] in templated):
                continue  # unknown keys are reported above; a templated value is judged when it runs
            if not where and templated:
                continue  # a whole-model rule may hold once the templates have values
            issues.append(locate((*loc, *where), error["msg"], _enum_hint(error)))
    return issues


def _unknown_keys(model: type[BaseModel], value: Any, rel: Loc) -> Iterator[tuple[Loc, list[str]]]:
    """(path, allowed keys) of every key inside `value` that the nested model at `rel` does not take."""
    if isinstance(value, list):
        for index, item in enumerate(value):
            yield from _unknown_keys(model, item, (*rel, index))
        return
    models = models_at(model, rel)
    if not isinstance(value, dict) or not models or any(m.model_config.get("extra") != "forbid" for m in models):
        return  # not an object, or one whose keys are free
    allowed = key_names_at(model, rel)
    patterns = [pattern for m in models for pattern in _open_patterns(m)]
    for key, item in value.items():
        if key in allowed or any(pattern.search(key) for pattern in patterns):
            yield from _unknown_keys(model, item, (*rel, key))
        else:
            yield (*rel, key), allowed


def _nearest(key: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(key, allowed, n=1)
    return f"did you mean {close[0]!r}?" if close else f"allowed here: {', '.join(allowed)}"


def models_at(model: type[BaseModel], loc: Loc) -> list[type[BaseModel]]:
    """The models that sit at `loc` inside `model`, following nested models through lists and unions."""
    models = [model]
    for part in loc:
        if isinstance(part, int):
            continue
        models = [
            inner
            for current in models
            for name, info in current.model_fields.items()
            if part in (name, info.alias)
            for inner in _models_in(info.annotation)
        ]
    return models


def key_names_at(model: type[BaseModel], loc: Loc) -> list[str]:
    """The keys allowed at `loc` inside `model`."""
    models = models_at(model, loc)
    return sorted({info.alias or name for current in models for name, info in current.model_fields.items()})


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if typing.get_origin(annotation) in (dict, Mapping):
        return []  # a mapping's keys are data, not fields
    return [model for arg in typing.get_args(annotation) for model in _models_in(arg)]


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
                    issue = locate(at, problem.message, problem.hint)
                    issues.append(issue.warning() if problem.warning else issue)
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
) -> Problem | None:
    root = path[0]
    if root not in allowed:
        where = "here" if index is not None else "in a trigger (the run has not started)"
        return Problem(f"{root!r} is not available {where}", f"available: {', '.join(sorted(allowed))}")
    field = path[1] if len(path) > 1 else None
    if field in (None, "*"):
        return None
    if root == "event" and field not in EVENT_FIELDS:
        return Problem(f"event has no field {field!r}", f"event fields: {', '.join(EVENT_FIELDS)}")
    if root == "run" and field not in RUN_FIELDS:
        return Problem(f"run has no field {field!r}", f"run fields: {', '.join(RUN_FIELDS)}")
    if root == "vars" and field not in spec.vars:
        return Problem(f"vars.{field} is not declared", f"declared vars: {', '.join(spec.vars) or 'none'}")
    if root == "steps":
        return _step_path_problem(path, index, spec, operations)
    return None


def _step_path_problem(
    path: list[str], index: int | None, spec: WorkflowSpec, operations: OperationRegistry
) -> Problem | None:
    ids = [step.id for step in spec.all_steps]
    target = path[1]
    if target not in ids:
        close = difflib.get_close_matches(target, ids, n=1)
        return Problem(
            f"there is no step {target!r}", f"did you mean {close[0]!r}?" if close else f"steps: {', '.join(ids)}"
        )
    position = ids.index(target)
    if index is not None and position >= index:
        return Problem(
            f"step {target!r} has not run yet here (it comes {'later' if position > index else 'now'})",
            "a step can only read the output of steps before it",
        )
    if len(path) < 3 or path[2] == "*":
        return None
    if path[2] not in STEP_FIELDS:
        return Problem(f"steps.{target} has no {path[2]!r}", "use steps.<id>.output or steps.<id>.status")
    referenced = spec.all_steps[position]
    fields = path[3:]
    if path[2] != "output" or not fields:
        return None
    if referenced.foreach is not None:  # the output is a list: one operation output per item
        if fields[0] != "*" and not fields[0].isdigit():
            return Problem(
                f"steps.{target} runs once per item (foreach), so its output is a list, not one output",
                f"read one item's output, e.g. steps.{target}.output[0].{fields[0]}, "
                f"or loop over steps.{target}.output",
            )
        fields = fields[1:]
    if not fields or fields[0] == "*" or referenced.uses not in operations:
        return None
    return _output_field_problem(referenced.uses, operations.get(referenced.uses).outputs, fields[0])


def _output_field_problem(uses: str, outputs: frozenset[str] | None, field: str) -> Problem | None:
    """A field the operation cannot produce (an error), or may not produce (a warning)."""
    if outputs is None or field in outputs:
        return None
    known = sorted(outputs - {OTHERS})
    listed = ", ".join(known) or "nothing"
    if OTHERS not in outputs:
        return Problem(f"{uses} outputs no field {field!r}", f"its output has: {listed}")
    close = difflib.get_close_matches(field, known, n=1)
    guess = f"did you mean {close[0]!r}? " if close else ""
    return Problem(
        f"{uses} is not documented to output {field!r}: the step may fail when it runs",
        f"{guess}documented: {listed}; the rest depends on what the API answers",
        warning=True,
    )


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
