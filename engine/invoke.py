"""One invocation of one operation: `if`, render, validate, reconcile, call.

Shared by plain steps (engine.runner) and each item of a foreach step
(engine.foreach), so both follow exactly the same rules.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from engine.conductor import AttemptStatus
from engine.errors import PermanentStepError, RenderError, SpecError, StepDeferred, StepError, StepValidationError
from engine.operations import ConnectorContext, Operation
from engine.redact import redact_secret_fields
from engine.services import Services
from schemas.workflow import StepSpec

log = logging.getLogger(__name__)


@dataclass
class AttemptResult:
    status: AttemptStatus
    input: Any = None
    output: Any = None
    error: StepError | None = None
    reconciled: bool = False
    deferred: StepDeferred | None = None


@dataclass(frozen=True)
class Invocation:
    """Everything one call of one operation needs, for a plain step or one foreach item."""

    services: Services
    step: StepSpec
    context: dict[str, Any]
    connector: ConnectorContext
    reconcile: bool  # an earlier try of this call may have been carried out


def perform(invocation: Invocation) -> AttemptResult:
    """Evaluate `if`, render `with`, validate, reconcile if needed, call. Never raises StepError."""
    renderer = invocation.services.renderer
    step = invocation.step
    try:
        if not renderer.is_true(step.if_, invocation.context):
            return AttemptResult(AttemptStatus.SKIPPED)
        rendered = renderer.render(step.with_, invocation.context)
    except RenderError as exc:
        return AttemptResult(AttemptStatus.FAILED, error=StepValidationError(str(exc)))
    try:
        operation = invocation.services.operations.get(step.uses)
    except SpecError as exc:  # the pinned definition names an operation this version no longer has
        return AttemptResult(AttemptStatus.FAILED, error=PermanentStepError(str(exc)))
    try:
        inp = operation.input.model_validate(rendered)
    except ValidationError as exc:
        return AttemptResult(
            AttemptStatus.FAILED, redact_secret_fields(jsonable(rendered)), error=_validation_error(exc)
        )
    # What the ledger keeps of the input: credential-like fields (e.g. a portal_password) never.
    recorded = redact_secret_fields(inp.model_dump(mode="json", exclude_none=True, by_alias=True))
    try:
        output, reconciled = _call(operation, inp, invocation)
    except StepError as exc:
        return AttemptResult(AttemptStatus.FAILED, recorded, error=exc)
    return AttemptResult(AttemptStatus.SUCCEEDED, recorded, output, reconciled=reconciled)


def _call(operation: Operation, inp: BaseModel, invocation: Invocation) -> tuple[Any, bool]:
    api = operation.connect(invocation.connector)
    if invocation.reconcile and operation.find_existing is not None:
        existing = operation.find_existing(api, inp)
        if existing is not None:
            log.info(
                "run %s step %s: reconciled with an existing record instead of creating one",
                invocation.connector.run_id,
                invocation.step.id,
            )
            return existing, True
    return operation.call(api, inp), False


def _validation_error(exc: ValidationError) -> StepValidationError:
    problems = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"])
        problems.append(f"with.{where}: {error['msg']}" if where else f"with: {error['msg']}")
    return StepValidationError("invalid input: " + "; ".join(problems))


def jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))
