"""Dry runs: a workflow played against the sandbox (or only planned), explaining every decision.

`workflows test NAME --event FILE` answers "what would happen to this event?"
and "why did this step not run?" without a ledger, a queue or a real API:
steps run in-process, one after another, with the production rules (the same
`perform()` and conductor), against the API simulators served in a thread,
with a throwaway SQLite database for xref mappings. There are no retries: the
first failure is what the rehearsal shows.

In plan mode nothing is called: outputs of earlier steps are placeholders
(`<steps.contact.output.id>`) so each step's request is shown as far as it
can be known.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

from engine import store
from engine.conductor import AttemptStatus, RunStatus, after_attempt
from engine.db import Database
from engine.errors import RenderError, StepDeferred, StepError, StepValidationError
from engine.foreach import not_a_list, step_error
from engine.http import CallLog
from engine.inspect import template_paths
from engine.intake import EventKeyError, identify
from engine.invoke import AttemptResult, Invocation, jsonable, perform
from engine.ledger import event_view
from engine.loader import Catalog
from engine.migrate import upgrade
from engine.models import Event
from engine.operations import ConnectorContext
from engine.retry import RetryPolicy
from engine.services import Services
from schemas.workflow import StepSpec, WorkflowSpec

NO_RETRIES = RetryPolicy(max_attempts=1)


@dataclass
class Explanation:
    """Why an `if` came out as it did: the expression, what each name in it held, the result."""

    expression: Any
    values: dict[str, Any]
    result: bool | None  # None: cannot be known before the run (plan mode)
    error: str | None = None


@dataclass
class StepReport:
    id: str
    uses: str
    status: str  # succeeded | failed | skipped | waited | planned | not reached
    condition: Explanation | None = None
    input: Any = None
    calls: list[dict[str, Any]] = field(default_factory=list)
    output: Any = None
    error: str | None = None


@dataclass
class Rehearsal:
    workflow: str
    event: dict[str, Any]
    triggered: bool
    trigger: str  # why it did or did not trigger
    condition: Explanation | None
    steps: list[StepReport] = field(default_factory=list)
    status: str = "not triggered"


class Placeholder(str):
    """Stands for a value only the run will know; it is its own path as text (`<steps.contact.output.id>`).

    Being a string, it passes through filters and string templates; reading a
    field of it gives the deeper placeholder.
    """

    def __new__(cls, path: str) -> Placeholder:
        placeholder = super().__new__(cls, f"<{path}>")
        placeholder.path = path
        return placeholder

    def __getattr__(self, name: str) -> Placeholder:
        if name.startswith("_"):
            raise AttributeError(name)
        return Placeholder(f"{self.path}.{name}")

    def __getitem__(self, key: Any) -> Placeholder:  # type: ignore[override]
        return Placeholder(f"{self.path}[{key!r}]")


def _lookup(context: dict[str, Any], path: list[str]) -> Any:
    value: Any = context
    for part in path:
        if isinstance(value, Placeholder):
            return Placeholder(".".join(path))
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return "<undefined>"
    return value


def explain(services: Services, condition: Any, context: dict[str, Any]) -> Explanation | None:
    """Evaluate an `if` and show the value of every name it reads."""
    if condition is None:
        return None
    values = {}
    if isinstance(condition, str) and "{" in condition:
        for path in template_paths(services.renderer, condition):
            known = path[: path.index("*")] if "*" in path else path  # a slice or computed key: show its base
            values[".".join(known)] = _lookup(context, known)
    try:
        rendered = services.renderer.render(condition, context)
    except RenderError as exc:
        return Explanation(condition, values, None, str(exc))
    if isinstance(rendered, Placeholder) or "<steps." in str(rendered) or "<item" in str(rendered):
        return Explanation(condition, values, None)
    return Explanation(condition, values, services.renderer.is_true(condition, context))


class Rehearser:
    """Plays workflows against one sandbox and one scratch database, so `given` events can set the scene."""

    def __init__(self, services: Services, catalog: Catalog, overrides: dict[str, Any]) -> None:
        """Args:
        overrides: Settings values for the rehearsal, e.g. connectors pointed at a sandbox.
        """
        self.services = services
        self.catalog = catalog
        self._scratch = tempfile.TemporaryDirectory(prefix="hookflow-rehearsal-")
        self._ledgers = 0
        self.db = self._new_ledger()
        settings = services.settings.model_dump()
        settings.update(overrides)
        # Budgets live in Redis; a rehearsal must not need (or spend) them.
        settings.update({key: 0 for key in settings if key.endswith("_requests_per_second")})
        self.settings = type(services.settings)(**settings)

    def _new_ledger(self) -> Database:
        """A scratch database (xref mappings live there) that no other rehearsal has touched."""
        self._ledgers += 1
        url = f"sqlite:///{self._scratch.name}/rehearsal-{self._ledgers}.db"
        upgrade(url)
        return Database(url)

    def start_over(self) -> None:
        """Forget what earlier rehearsals stored (the caller resets the simulators it serves)."""
        self.db.dispose()
        self.db = self._new_ledger()

    def close(self) -> None:
        self.db.dispose()
        self._scratch.cleanup()

    def rehearse(self, name: str, body: Any, *, plan: bool = False) -> Rehearsal:
        spec = self.catalog.workflows[name].spec
        event = self._event(spec, body)
        report = Rehearsal(name, event_view(event), False, "", None)
        context = {"event": event_view(event), "vars": spec.vars}
        types = spec.on.event_types()
        if types is not None and event.type not in types:
            report.trigger = f"event type {event.type!r} is not one of {types}"
            return report
        report.condition = explain(self.services, spec.on.if_, context)
        if report.condition is not None and report.condition.error:
            # As in a real run: a trigger that cannot be evaluated records a failed run, visibly.
            report.trigger, report.status = f"on.if: {report.condition.error}", "failed"
            return report
        if report.condition is not None and report.condition.result is not True:
            report.trigger = "on.if is false"
            return report
        report.triggered, report.trigger = True, "matched"
        self._play(spec, event, report, plan)
        return report

    def _event(self, spec: WorkflowSpec, body: Any) -> Event:
        source = self.catalog.sources.get(spec.on.source)
        event_type, key = (None, None)
        if source is not None:
            try:
                event_type, key = identify(self.services.renderer, source, body, {}, {})
            except EventKeyError as exc:
                raise ValueError(str(exc)) from exc
        return Event(
            id="evt_rehearsal",
            source=spec.on.source,
            type=event_type,
            dedupe_key=key or "rehearsal",
            status="accepted",
            received_at=store.utcnow(),
            raw_body=b"",
            data=body,
            headers={},
            query={},
        )

    def _play(self, spec: WorkflowSpec, event: Event, report: Rehearsal, plan: bool) -> None:
        reports = {step.id: StepReport(step.id, step.uses, "not reached") for step in spec.all_steps}
        report.steps = list(reports.values())
        context: dict[str, Any] = {
            "event": event_view(event),
            "steps": {},
            "vars": spec.vars,
            "run": {"id": "run_rehearsal", "workflow": spec.name, "error": None, "failed_step": None},
        }
        index, failure = 0, None
        while True:
            step = spec.all_steps[index]
            result = self._step(step, context, reports[step.id], plan)
            context["steps"][step.id] = {"output": result.output, "status": result.status.value}
            nxt = after_attempt(spec, index, 1, 1, result.error, NO_RETRIES, failure=failure)
            if nxt.failure is not None:
                context["run"].update(error=nxt.failure.message, failed_step=nxt.failure.step_id)
            failure = nxt.failure
            if nxt.status in (RunStatus.SUCCEEDED, RunStatus.FAILED):
                report.status = "planned" if plan and nxt.status == RunStatus.SUCCEEDED else nxt.status.value
                return
            index = nxt.step_index

    def _step(self, step: StepSpec, context: dict[str, Any], report: StepReport, plan: bool) -> AttemptResult:
        report.condition = explain(self.services, step.if_, context)
        if plan:
            return self._plan(step, context, report)
        calls = CallLog()
        connector = ConnectorContext(
            settings=self.settings,
            http=self.services.http,
            calls=calls,
            redis=self.services.redis,
            db=self.db,
            run_id="run_rehearsal",
            step_id=step.id,
            step_started_at=store.utcnow(),
            deadline=time.monotonic() + step.timeout if step.timeout else None,
        )
        result = self._invoke(step, context, connector)
        report.status = "waited" if result.deferred else result.status.value
        report.input, report.output, report.calls = result.input, jsonable(result.output), jsonable(calls.calls)
        report.error = result.error.message if result.error else (result.deferred.reason if result.deferred else None)
        return result

    def _invoke(self, step: StepSpec, context: dict[str, Any], connector: ConnectorContext) -> AttemptResult:
        try:
            if step.foreach is None:
                return perform(Invocation(self.services, step, context, connector, reconcile=False))
            return self._foreach(step, context, connector)
        except StepDeferred as deferred:  # a wait is not sat out in a rehearsal: note it and go on
            return AttemptResult(AttemptStatus.SUCCEEDED, deferred=deferred)

    def _foreach(self, step: StepSpec, context: dict[str, Any], connector: ConnectorContext) -> AttemptResult:
        """One item after another (max_parallel only changes speed); failures as in a real run."""
        renderer = self.services.renderer
        try:
            if not renderer.is_true(step.if_, context):
                return AttemptResult(AttemptStatus.SKIPPED)
            items = renderer.render(step.foreach, context)
        except RenderError as exc:
            return AttemptResult(AttemptStatus.FAILED, error=StepValidationError(str(exc)))
        problem = not_a_list(items, self.settings.foreach_max_items)
        if problem:
            return AttemptResult(AttemptStatus.FAILED, error=StepValidationError(f"foreach: {problem}"))
        one = step.model_copy(update={"if_": None})
        outputs: list[Any] = []
        failures: dict[int, StepError] = {}
        for index, item in enumerate(items):
            invocation = Invocation(
                self.services, one, {**context, "item": item, "index": index}, connector, reconcile=False
            )
            result = perform(invocation)
            outputs.append(result.output if result.status == AttemptStatus.SUCCEEDED else None)
            if result.status == AttemptStatus.FAILED:
                failures[index] = result.error  # type: ignore[assignment]
                if step.on_error != "continue":
                    break
        if failures:
            return AttemptResult(AttemptStatus.FAILED, {"items": len(items)}, outputs, error=step_error(failures))
        return AttemptResult(AttemptStatus.SUCCEEDED, {"items": len(items)}, outputs)

    def _plan(self, step: StepSpec, context: dict[str, Any], report: StepReport) -> AttemptResult:
        """Render what can be known now; earlier outputs are already Placeholders in the context."""
        if report.condition is not None and report.condition.result is False:
            report.status = "skipped"
            return AttemptResult(AttemptStatus.SKIPPED)
        planning = {**context, "item": Placeholder("item"), "index": Placeholder("index")}
        try:
            report.input = jsonable(self.services.renderer.render(step.with_, planning))
            report.status = "planned"
        except RenderError as exc:
            report.status, report.error = "failed", str(exc)
        return AttemptResult(AttemptStatus.SUCCEEDED, report.input, Placeholder(f"steps.{step.id}.output"))

    def __enter__(self) -> Rehearser:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
