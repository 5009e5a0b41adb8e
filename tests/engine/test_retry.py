"""Backoff: exponential with equal jitter, capped, Retry-After as a floor; a default sized by the outage it covers."""

from __future__ import annotations

import pytest

from engine.retry import MAX_RETRY_AFTER, RetryPolicy, compute_backoff, retry_window
from schemas.settings import Settings
from schemas.workflow import RetrySpec

POLICY = RetryPolicy(max_attempts=5, backoff="exponential", initial=2.0, max_delay=10.0)


@pytest.mark.parametrize(("failures", "nominal"), [(1, 2.0), (2, 4.0), (3, 8.0), (4, 10.0), (9, 10.0)])
def test_exponential_delays_double_up_to_the_ceiling(failures: int, nominal: float) -> None:
    assert compute_backoff(POLICY, failures, rand=lambda: 1.0) == nominal
    assert compute_backoff(POLICY, failures, rand=lambda: 0.0) == nominal / 2  # jitter never below half


def test_constant_backoff_does_not_grow() -> None:
    policy = RetryPolicy(backoff="constant", initial=3.0)
    assert {compute_backoff(policy, n, rand=lambda: 1.0) for n in (1, 2, 5)} == {3.0}


def test_retry_after_is_a_floor_not_a_ceiling() -> None:
    assert compute_backoff(POLICY, 1, retry_after=30.0, rand=lambda: 1.0) == 30.0
    assert compute_backoff(POLICY, 3, retry_after=1.0, rand=lambda: 1.0) == 8.0


def test_an_absurd_retry_after_is_bounded() -> None:
    assert compute_backoff(POLICY, 1, retry_after=10 * 86400.0) == MAX_RETRY_AFTER


def test_a_step_overrides_only_what_it_sets() -> None:
    merged = POLICY.merged_with(RetrySpec(max_attempts=2, initial="500ms"))
    assert merged == RetryPolicy(max_attempts=2, backoff="exponential", initial=0.5, max_delay=10.0)
    assert POLICY.merged_with(None) is POLICY


def test_the_retry_window_adds_up_the_delays_between_attempts() -> None:
    # POLICY waits 2, 4, 8 and (capped) 10 s nominal between its 5 attempts; jitter halves each at worst
    assert retry_window(POLICY) == (12.0, 24.0)
    assert retry_window(RetryPolicy(max_attempts=1)) == (0.0, 0.0)


def test_the_shipped_default_keeps_five_attempts_and_rides_out_an_api_down_for_a_minute() -> None:
    # Given the server's defaults, as a deployment without RETRY_* settings gets them
    default = {name: field.default for name, field in Settings.model_fields.items()}
    policy = RetryPolicy(
        max_attempts=default["retry_max_attempts"],
        initial=default["retry_initial_seconds"],
        max_delay=default["retry_max_delay_seconds"],
    )
    # Then it makes DESIGN.md's 5 attempts, and even with the shortest jitter the last one comes over a
    # minute after the first failure
    assert policy.max_attempts == 5
    shortest, longest = retry_window(policy)
    assert shortest > 60
    # And a step that cannot succeed still gives up within minutes, not hours
    assert longest < 300
    assert policy == RetryPolicy()  # the engine's own default says the same
