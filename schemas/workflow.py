"""The workflow language: what an ops person may write in workflows/*.yaml.

Models are frozen and forbid unknown keys, so a typo is an error with a path,
never a silently ignored setting. Templates stay strings here; rendering them
is the engine's job (engine/render.py), never the model's.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(value: Any) -> float:
    """Seconds from `2s`, `500ms`, `10m`, `1h` or a bare number of seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 2s, 500ms, 10m or 1h")
    if isinstance(value, (int, float)):
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"{value!r} is not a duration; write e.g. 2s, 500ms, 10m or 1h")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


Duration = Annotated[float, BeforeValidator(parse_duration), Field(ge=0)]
StepId = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=100)]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class RetrySpec(_Spec):
    """How a step retries transient failures (timeouts, 408, 429, 5xx).

    A setting left out keeps the server's default (5 attempts, exponential,
    2s initial, 10m ceiling unless RETRY_* environment variables say otherwise).
    """

    max_attempts: int | None = Field(None, ge=1, le=100, description="Total attempts including the first.")
    backoff: Literal["exponential", "constant"] | None = Field(None, description="Delay growth between attempts.")
    initial: Duration | None = Field(None, description="Delay before the second attempt.")
    max_delay: Duration | None = Field(None, description="Ceiling for any single delay.")


class TriggerSpec(_Spec):
    """Which events start this workflow."""

    source: str = Field(description="A source defined in sources.yaml.")
    event: str | list[str] | None = Field(None, description="Event type or types; omitted matches any type.")
    if_: str | bool | None = Field(None, alias="if", description="Template; the run starts only when truthy.")

    def event_types(self) -> list[str] | None:
        if self.event is None:
            return None
        return [self.event] if isinstance(self.event, str) else list(self.event)


class StepSpec(_Spec):
    """One call to one operation."""

    id: StepId = Field(description="Unique within the workflow; later steps read steps.<id>.output.")
    uses: str = Field(description="Operation name, e.g. bigchange.contacts.create.")
    with_: dict[str, Any] = Field(default_factory=dict, alias="with", description="The operation's input.")
    if_: str | bool | None = Field(None, alias="if", description="Template; the step is skipped when falsy.")
    retry: RetrySpec | None = Field(None, description="Overrides the default retry policy.")
    on_error: Literal["fail", "continue"] = Field("fail", description="What a permanent failure does to the run.")


class WorkflowSpec(_Spec):
    """A whole workflow file."""

    name: str = Field(min_length=1, max_length=200, description="Unique; defaults to the file name.")
    description: str = ""
    on: TriggerSpec
    vars: dict[str, Any] = Field(default_factory=dict, description="Constants available as vars.<name>.")
    steps: list[StepSpec] = Field(min_length=1)

    @field_validator("steps")
    @classmethod
    def _unique_step_ids(cls, steps: list[StepSpec]) -> list[StepSpec]:
        seen: set[str] = set()
        for step in steps:
            if step.id in seen:
                raise ValueError(f"step id {step.id!r} is used twice; step ids must be unique")
            seen.add(step.id)
        return steps

    def step(self, step_id: str) -> StepSpec:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)

    def index_of(self, step_id: str) -> int:
        return next(i for i, step in enumerate(self.steps) if step.id == step_id)
