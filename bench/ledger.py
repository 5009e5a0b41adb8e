"""What the ledger says after a scenario: counts, the time window, and the engine's overhead per step.

The overhead numbers come from rows the engine writes anyway, so they cost the
measured system nothing:

- `in_attempt`: an attempt's `duration_ms` (timed by the runner around the
  operation, up to recording its result) minus the API time its `calls[*].ms`
  recorded. Rendering, validation, budget checks, the connector's own work.
- `claim_to_record`: `finished_at - started_at` (from the row that claims the
  attempt to the moment its result is recorded) minus the API time: adds
  loading the run, event and history and parsing the pinned workflow.
- `hop`: the next attempt's `started_at` minus this one's `finished_at`: commit,
  enqueue, Redis, a free worker picking the job up, RQ's own bookkeeping.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from bench.stats import summarize
from engine.models import Event, Run, StepAttempt


@dataclass(frozen=True)
class AttemptRow:
    run_id: str
    step_id: str
    step_index: int
    status: str
    started_at: datetime
    finished_at: datetime | None
    duration_ms: float | None
    calls: list[dict[str, Any]]

    @property
    def api_ms(self) -> float:
        return sum(float(call.get("ms") or 0) for call in self.calls)


def _calls(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, str):  # JSON comes back as text from some drivers
        value = json.loads(value)
    return value if isinstance(value, list) else []


def in_attempt_overheads(attempts: Iterable[AttemptRow]) -> list[float]:
    """duration_ms minus API time, per succeeded attempt (ms)."""
    return [a.duration_ms - a.api_ms for a in attempts if a.status == "succeeded" and a.duration_ms is not None]


def claim_to_record_overheads(attempts: Iterable[AttemptRow]) -> list[float]:
    """(finished_at - started_at) minus API time, per succeeded attempt (ms)."""
    return [
        (a.finished_at - a.started_at).total_seconds() * 1000 - a.api_ms
        for a in attempts
        if a.status == "succeeded" and a.finished_at is not None
    ]


def hops(attempts: Sequence[AttemptRow]) -> list[float]:
    """Gaps between one step's recorded result and the next step's claim, within each run (ms)."""
    by_run: dict[str, list[AttemptRow]] = {}
    for attempt in attempts:
        by_run.setdefault(attempt.run_id, []).append(attempt)
    gaps = []
    for rows in by_run.values():
        rows.sort(key=lambda a: (a.step_index, a.started_at))
        for before, after in itertools.pairwise(rows):
            if before.finished_at is not None:
                gaps.append((after.started_at - before.finished_at).total_seconds() * 1000)
    return gaps


def load_attempts(engine: sa.Engine) -> list[AttemptRow]:
    query = sa.select(
        StepAttempt.run_id,
        StepAttempt.step_id,
        StepAttempt.step_index,
        StepAttempt.status,
        StepAttempt.started_at,
        StepAttempt.finished_at,
        StepAttempt.duration_ms,
        StepAttempt.calls,
    )
    with engine.connect() as conn:
        return [AttemptRow(*row[:-1], calls=_calls(row[-1])) for row in conn.execute(query)]


def event_count(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(sa.select(sa.func.count()).select_from(Event).where(Event.status == "accepted")).scalar()
        )


def run_statuses(engine: sa.Engine) -> Counter[str]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(Run.status, sa.func.count()).group_by(Run.status))
        return Counter({status: int(n) for status, n in rows})


def window(engine: sa.Engine) -> dict[str, datetime | None]:
    """First event received, first attempt claimed, last run finished."""
    with engine.connect() as conn:
        return {
            "first_event": conn.execute(sa.select(sa.func.min(Event.received_at))).scalar(),
            "last_event": conn.execute(sa.select(sa.func.max(Event.received_at))).scalar(),
            "first_attempt": conn.execute(sa.select(sa.func.min(StepAttempt.started_at))).scalar(),
            "last_finished": conn.execute(sa.select(sa.func.max(Run.finished_at))).scalar(),
        }


def overhead_report(attempts: Sequence[AttemptRow]) -> dict[str, Any]:
    """The three overhead distributions and the API time, per step (ms), as the report shows them."""

    def summary(values: list[float]) -> dict[str, Any] | None:
        result = summarize(values)
        return result.as_dict() if result else None

    succeeded = [a for a in attempts if a.status == "succeeded"]
    by_step: dict[str, Any] = {}
    for step in sorted(
        {a.step_id for a in succeeded}, key=lambda s: min(a.step_index for a in succeeded if a.step_id == s)
    ):
        mine = [a for a in succeeded if a.step_id == step]
        by_step[step] = {
            "in_attempt": summary(in_attempt_overheads(mine)),
            "api": summary([a.api_ms for a in mine]),
        }
    return {
        "attempts": len(attempts),
        "attempt_statuses": dict(Counter(a.status for a in attempts)),
        "in_attempt": summary(in_attempt_overheads(attempts)),
        "claim_to_record": summary(claim_to_record_overheads(attempts)),
        "hop": summary(hops(list(attempts))),
        "api": summary([a.api_ms for a in succeeded]),
        "by_step": by_step,
    }
