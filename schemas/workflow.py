"""The workflow language: what an ops person may write in workflows/*.yaml.

Models are frozen and forbid unknown keys, so a typo is an error with a path,
never a silently ignored setting. Templates stay strings here; rendering them
is the engine's job (engine/render.py), never the model's.
"""

from __future__ import annotations

import difflib
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: Any) -> float:
    """Seconds from `2s`, `500ms`, `10m`, `1h`, `2d` or a bare number of seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 2s, 500ms, 10m, 1h or 2d")
    if isinstance(value, (int, float)):
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"{value!r} is not a duration; write e.g. 2s, 500ms, 10m, 1h or 2d")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


Duration = Annotated[float, BeforeValidator(parse_duration), Field(ge=0)]


def at_most(limit: float, written: str) -> AfterValidator:
    """A ceiling on a duration, said the way it is written (`at most 1d`), not in seconds."""

    def check(seconds: float) -> float:
        if seconds > limit:
            raise ValueError(f"at most {written} ({limit:g} seconds); this is {seconds:g} seconds")
        return seconds

    return AfterValidator(check)


# Delays beyond a day are not a retry any more but a plan: use core.wait. An attempt cannot outlast the
# worker's own limit on a step job (STEP_JOB_TIMEOUT_SECONDS, 300 by default) anyway.
RetryDelay = Annotated[Duration, at_most(86400, "1d")]
AttemptTimeout = Annotated[Duration, at_most(3600, "1h")]
StepId = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=100)]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class RetrySpec(_Spec):
    """How a step retries: which failures, how many times, how far apart.

    A setting left out keeps the server's default (5 attempts, exponential,
    10s initial, 10m ceiling unless RETRY_* environment variables say otherwise;
    `on: [transient]`).
    """

    max_attempts: int | None = Field(None, ge=1, le=100, description="Total attempts including the first.")
    backoff: Literal["exponential", "constant"] | None = Field(None, description="Delay growth between attempts.")
    initial: RetryDelay | None = Field(None, description="Delay before the second attempt (at most 1d).")
    max_delay: RetryDelay | None = Field(None, description="Ceiling for any single delay (at most 1d).")
    on: list[Literal["transient"] | Annotated[int, Field(ge=400, le=599)]] | None = Field(
        None,
        min_length=1,
        description="What is retried: `transient` (timeouts, 408, 429, 5xx) and/or specific HTTP statuses.",
    )


class TriggerSpec(_Spec):
    """Which events start this workflow."""

    source: str = Field(description="A source defined in sources.yaml.")
    event: str | list[str] | None = Field(None, description="Event type or types; omitted matches any type.")
    if_: str | bool | None = Field(None, alias="if", description="Template; the run starts only when truthy.")

    def event_types(self) -> list[str] | None:
        if self.event is None:
            return None
        return [self.event] if isinstance(self.event, str) else list(self.event)


OnError = Annotated[
    str,
    Field(
        pattern=r"^(fail|continue|goto [A-Za-z_][A-Za-z0-9_]*)$",
        description="After a failure that is not retried: `fail` the run, `continue` with the next step, "
        "or `goto <step id>` (a later step).",
    ),
]


class StepSpec(_Spec):
    """One call to one operation (or one per item, with `foreach`)."""

    id: StepId = Field(description="Unique within the workflow; later steps read steps.<id>.output.")
    uses: str = Field(description="Operation name, e.g. bigchange.contacts.create.")
    with_: dict[str, Any] = Field(default_factory=dict, alias="with", description="The operation's input.")
    if_: str | bool | None = Field(None, alias="if", description="Template; the step is skipped when falsy.")
    foreach: str | list[Any] | None = Field(
        None, description="A list (or a template giving one): the step runs once per item, the item in `item`."
    )
    max_parallel: int = Field(1, ge=1, le=50, description="With foreach: how many items may run at once.")
    timeout: AttemptTimeout | None = Field(
        None, gt=0, description="How long one attempt may take (each API call within it); at most 1h."
    )
    retry: RetrySpec | None = Field(None, description="Overrides the default retry policy.")
    on_error: OnError = "fail"

    @property
    def goto(self) -> str | None:
        """The target of `on_error: goto <step>`, if that is what it says."""
        return self.on_error[5:] if self.on_error.startswith("goto ") else None


class WorkflowSpec(_Spec):
    """A whole workflow file."""

    name: str = Field(min_length=1, max_length=200, description="Unique; defaults to the file name.")
    description: str = ""
    on: TriggerSpec
    concurrency: str | None = Field(
        None, description="Template; runs with the same key run one at a time, in arrival order."
    )
    vars: dict[str, Any] = Field(default_factory=dict, description="Constants available as vars.<name>.")
    steps: list[StepSpec] = Field(min_length=1)
    on_failure: list[StepSpec] = Field(
        default_factory=list, description="Steps that run when the run fails (e.g. notify someone); run.error says why."
    )

    @model_validator(mode="after")
    def _ids_and_jumps(self) -> WorkflowSpec:
        """Step ids unique, `goto` forward within its list: the run's cursor depends on both.

        The error names the offending key (`at`) and a `hint`, so the loader can point at it.
        """
        seen: dict[str, str] = {}
        for phase, index, step in self._placed_steps():
            if step.id in seen:
                raise _placed_error(
                    f"step id {step.id!r} is used twice (first at {seen[step.id]})",
                    (phase, index, "id"),
                    "give each step its own id; steps and on_failure share one set of ids",
                )
            seen[step.id] = f"{phase}[{index}]"
        for phase, index, step in self._placed_steps():
            ids = [other.id for other in getattr(self, phase)]
            if step.goto is not None and step.goto not in ids[index + 1 :]:
                raise _placed_error(
                    f"goto {step.goto} must name a later step of the same list",
                    (phase, index, "on_error"),
                    _goto_hint(step.goto, ids, index),
                )
        return self

    def _placed_steps(self) -> list[tuple[str, int, StepSpec]]:
        """(list name, index, step) for every step: main steps, then on_failure."""
        placed = [("steps", index, step) for index, step in enumerate(self.steps)]
        return placed + [("on_failure", index, step) for index, step in enumerate(self.on_failure)]

    @property
    def all_steps(self) -> list[StepSpec]:
        """Main steps, then on_failure steps: the run's cursor indexes this list."""
        return [*self.steps, *self.on_failure]

    def index_of(self, step_id: str) -> int:
        return next(i for i, step in enumerate(self.all_steps) if step.id == step_id)


def _placed_error(message: str, at: tuple[str | int, ...], hint: str) -> PydanticCustomError:
    """A whole-workflow rule broken at one key: `ctx` carries where (`at`) and what to do (`hint`)."""
    return PydanticCustomError("workflow_rule", message, {"at": at, "hint": hint})


def _goto_hint(target: str, ids: list[str], index: int) -> str:
    later = ids[index + 1 :]
    listed = ", ".join(later) or "none"
    if target in ids:
        return f"{target} comes before this step and a goto only jumps forward; later steps: {listed}"
    close = difflib.get_close_matches(target, later, n=1)
    if close:
        return f"did you mean {close[0]!r}?"
    return f"later steps here: {listed}" if later else "this is the last step: use continue or fail"
