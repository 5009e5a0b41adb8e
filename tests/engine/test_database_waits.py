"""A step worker waits for a database that does not answer, for a bounded time, then gives the job to RQ."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlalchemy.exc import OperationalError

from engine import runner


class Clock:
    """time.monotonic and time.sleep that advance together, so waits take no real time."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(runner.time, "monotonic", clock.monotonic)
    monkeypatch.setattr(runner.time, "sleep", clock.sleep)
    return clock


SERVICES = SimpleNamespace(settings=SimpleNamespace(step_job_timeout_seconds=300))  # waits up to 100 s


def refusing(times: int):
    calls = {"n": 0}

    def action() -> str:
        calls["n"] += 1
        if calls["n"] <= times:
            raise OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"))
        return "claimed"

    return action


def test_the_action_is_tried_again_with_growing_pauses_until_the_database_answers(clock: Clock) -> None:
    assert runner.while_the_database_is_away(SERVICES, "claiming", refusing(6)) == "claimed"
    assert clock.slept == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0]


def test_past_a_third_of_the_job_timeout_the_error_goes_to_rq(clock: Clock) -> None:
    with pytest.raises(OperationalError):
        runner.while_the_database_is_away(SERVICES, "claiming", refusing(1000))
    assert sum(clock.slept) <= 100
    assert sum(clock.slept) > 85  # it did wait most of the allowance


def test_other_errors_are_not_waited_for(clock: Clock) -> None:
    def broken() -> None:
        raise ValueError("a bug, not an outage")

    with pytest.raises(ValueError):
        runner.while_the_database_is_away(SERVICES, "claiming", broken)
    assert clock.slept == []
