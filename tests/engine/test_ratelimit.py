"""The shared request budget: a token bucket in Redis, paced across workers, deferring long waits."""

from __future__ import annotations

import threading
import time

import pytest
from redis import Redis

from engine.errors import StepDeferred
from engine.ratelimit import RateLimit, RequestBudget


@pytest.fixture
def redis(redis_url: str) -> Redis:
    client = Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.close()


def test_a_burst_is_granted_at_once(redis: Redis) -> None:
    budget = RequestBudget(redis, "api", "key", RateLimit(rate=1, burst=3, max_wait=10))
    assert [budget.acquire() for _ in range(3)] == [0.0, 0.0, 0.0]


def test_after_the_burst_callers_are_paced_at_the_rate(redis: Redis) -> None:
    budget = RequestBudget(redis, "api", "key", RateLimit(rate=20, burst=1, max_wait=10))
    budget.acquire()
    waited = budget.acquire()
    assert 0 < waited <= 1 / 20 + 0.01


def test_a_wait_longer_than_allowed_defers_without_taking_a_token(redis: Redis) -> None:
    budget = RequestBudget(redis, "api", "key", RateLimit(rate=0.1, burst=1, max_wait=0.5))
    budget.acquire()
    with pytest.raises(StepDeferred) as deferred:
        budget.acquire()
    assert 9 < deferred.value.delay <= 10
    assert "0.1/s" in deferred.value.reason
    # The deferral reserved nothing: the debt did not grow
    with pytest.raises(StepDeferred) as again:
        budget.acquire()
    assert again.value.delay <= deferred.value.delay


def test_concurrent_callers_share_one_budget(redis: Redis) -> None:
    # Given 6 workers with their own clients, a budget of 2 at once, then 20/s, and a full bucket
    limit = RateLimit(rate=20, burst=2, max_wait=5)
    turns: list[float] = []

    def worker() -> None:
        RequestBudget(Redis(connection_pool=redis.connection_pool), "api", "k", limit).acquire()
        turns.append(time.time())  # when this caller was let through

    started = time.time()
    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then the last caller was let through no sooner than the budget allows: 2 at once, then 4 more
    # at 20/s. Only a lower bound is asserted: a loaded machine can make callers later, never earlier.
    # (Redis's TIME and time.time() read the same clock here; 5 ms covers their rounding.)
    assert max(turns) - started >= 4 / 20 - 0.005, sorted(turn - started for turn in turns)


def test_each_credential_has_its_own_budget_and_the_key_never_names_it(redis: Redis) -> None:
    first = RequestBudget(redis, "api", "secret-one", RateLimit(rate=0.1, burst=1, max_wait=0))
    second = RequestBudget(redis, "api", "secret-two", RateLimit(rate=0.1, burst=1, max_wait=0))
    first.acquire()
    assert second.acquire() == 0.0
    assert all(b"secret" not in key for key in redis.keys("*"))
