"""Ops-written rehearsals: `workflows/tests/*.yaml`, each an event and what must happen to it.

    workflow: web-enquiry
    event_file: ../../examples/web-enquiry.json      # or event: {...}
    given:                                           # optional: events played first, same sandbox
      - {workflow: customer-sync, event: {...}}
    expect:
      status: succeeded                              # succeeded | failed | not triggered
      steps: {schedule: skipped}                     # step id -> status
      calls:                                         # every call, in order; each field given must match
        - {step: contact, method: POST, path: /contacts/create, body: {name: Mrs Jane Jones}}
      calls_exact: true                              # default; false: these calls in order, others between

`calls` lists every API call the run makes by default, so an unexpected extra call (a
duplicate create, say) fails the test; `calls_exact: false` checks only that the listed
calls happen in that order. `flask --app app workflows test --all` runs them; the suite
runs the shipped ones.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from engine.rehearsal import Rehearsal, Rehearser


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Played(_Spec):
    workflow: str
    event: Any = None
    event_file: str | None = None

    @model_validator(mode="after")
    def _one_event(self) -> Played:
        if (self.event is None) == (self.event_file is None):
            raise ValueError("give either event or event_file")
        return self


class ExpectedCall(_Spec):
    step: str | None = None
    method: str | None = None
    path: str | None = None
    body: Any = None


class Expectation(_Spec):
    status: str | None = None
    steps: dict[str, str] = Field(default_factory=dict)
    calls: list[ExpectedCall] | None = None  # [] means: no API call at all
    calls_exact: bool = True

    @model_validator(mode="after")
    def _checks_something(self) -> Expectation:
        if self.status is None and not self.steps and self.calls is None:
            raise ValueError(NOTHING_CHECKED)
        return self


NOTHING_CHECKED = "give expect: with a status, steps or calls to check; a test that checks nothing always passes"


class TestCase(Played):
    given: list[Played] = Field(default_factory=list)
    expect: Expectation | None = None

    @model_validator(mode="after")
    def _expects(self) -> TestCase:
        if self.expect is None:
            raise ValueError(NOTHING_CHECKED)
        return self


@dataclass
class Outcome:
    path: Path
    failures: list[str] = field(default_factory=list)
    rehearsal: Rehearsal | None = None

    @property
    def passed(self) -> bool:
        return not self.failures


def load_case(path: Path) -> TestCase:
    try:
        data = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
        return TestCase.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'file'}: {error['msg'].removeprefix('Value error, ')}"
            for error in exc.errors(include_url=False)
        )
        raise ValueError(f"{path.name}: {problems}") from exc
    except (YAMLError, OSError) as exc:
        raise ValueError(f"{path.name}: {exc}") from exc


def event_of(played: Played, base: Path) -> Any:
    if played.event_file is None:
        return played.event
    return json.loads((base / played.event_file).read_text(encoding="utf-8"))


def run_case(path: Path, rehearser: Rehearser) -> Outcome:
    outcome = Outcome(path)
    try:
        case = load_case(path)
        for given in case.given:
            rehearser.rehearse(given.workflow, event_of(given, path.parent))
        outcome.rehearsal = rehearser.rehearse(case.workflow, event_of(case, path.parent))
    except (ValueError, KeyError, OSError) as exc:  # a bad file, an unknown workflow, a missing event file
        outcome.failures.append(f"cannot run: {exc}")
        return outcome
    outcome.failures = compare(outcome.rehearsal, case.expect)
    return outcome


def compare(rehearsal: Rehearsal, expect: Expectation) -> list[str]:
    failures = []
    if expect.status is not None and rehearsal.status != expect.status:
        failures.append(f"status: expected {expect.status}, got {rehearsal.status}")
    by_id = {step.id: step for step in rehearsal.steps}
    for step_id, status in expect.steps.items():
        actual = by_id[step_id].status if step_id in by_id else "no such step"
        if actual != status:
            failures.append(f"step {step_id}: expected {status}, got {actual}")
    if expect.calls is not None:
        calls = [(step.id, call) for step in rehearsal.steps for call in step.calls]
        failures += _compare_calls(expect.calls, calls, exact=expect.calls_exact)
    return failures


def _compare_calls(expected: list[ExpectedCall], calls: list[tuple[str, dict[str, Any]]], *, exact: bool) -> list[str]:
    """Each expected call happens, in this order; with `exact`, no other call happens at all."""
    used: set[int] = set()
    position = 0
    for wanted in expected:
        while position < len(calls) and not _matches(wanted, *calls[position]):
            position += 1
        if position == len(calls):
            return [f"no call matching {wanted.model_dump(exclude_none=True)} (in order)"]
        used.add(position)
        position += 1
    if not exact:
        return []
    return [
        f"call {number}: not expected: {_said(*made)} (list it, or set calls_exact: false)"
        for number, made in enumerate(calls, start=1)
        if number - 1 not in used
    ]


def _said(step_id: str, call: dict[str, Any]) -> str:
    body = f" {json.dumps(call['body'], default=str)}" if call.get("body") is not None else ""
    return f"step {step_id}: {call['method']} {call['url']}{body}"


def _matches(wanted: ExpectedCall, step_id: str, call: dict[str, Any]) -> bool:
    return (
        (wanted.step is None or wanted.step == step_id)
        and (wanted.method is None or wanted.method.upper() == call["method"])
        and (wanted.path is None or call["url"].endswith(wanted.path))
        and (wanted.body is None or _subset(wanted.body, call.get("body")))
    )


def _subset(wanted: Any, actual: Any) -> bool:
    if isinstance(wanted, dict):
        return isinstance(actual, dict) and all(k in actual and _subset(v, actual[k]) for k, v in wanted.items())
    if isinstance(wanted, list):
        return isinstance(actual, list) and len(wanted) == len(actual) and all(map(_subset, wanted, actual))
    return wanted == actual
