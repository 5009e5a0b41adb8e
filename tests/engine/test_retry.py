"""Backoff: exponential with equal jitter, capped, Retry-After as a floor."""

from __future__ import annotations

import pytest

from engine.retry import MAX_RETRY_AFTER, RetryPolicy, compute_backoff
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
