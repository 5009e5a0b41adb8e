"""A request budget shared by every worker: a token bucket in Redis.

Why: 500 events arriving at once must not become 500 simultaneous calls and a
storm of 429s. Each call reserves a token atomically (a Lua script, using
Redis's own clock so workers on different machines agree). A short wait is
slept in place; a long one defers the step (the queue runs it later, and the
deferral does not count as a failed attempt).

The bucket key is a hash of the credential, never the credential itself.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from redis import Redis

from engine.errors import StepDeferred

# Reserve one token: refill by elapsed time, take a token even if that leaves the
# bucket negative, and return how long the caller must wait for its turn. If
# that wait exceeds the caller's limit, nothing is taken (the caller defers).
_RESERVE = """
local rate, burst, max_wait = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
tokens = math.min(burst, tokens + (now - ts) * rate)
local wait = 0
if tokens < 1 then wait = (1 - tokens) / rate end
if wait > max_wait then
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
  return {'0', tostring(wait)}
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens - 1), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 60)
return {'1', tostring(wait)}
"""


@dataclass(frozen=True)
class RateLimit:
    """`rate` requests per second on average, bursts of up to `burst`; waits longer than `max_wait` defer."""

    rate: float
    burst: int
    max_wait: float = 2.0


class RequestBudget:
    """The shared budget for one credential of one API."""

    def __init__(self, redis: Redis, api: str, credential: str, limit: RateLimit) -> None:
        digest = hashlib.sha256(credential.encode()).hexdigest()[:16]
        self.key = f"hookflow:ratelimit:{api}:{digest}"
        self._redis = redis
        self._limit = limit
        self._script = redis.register_script(_RESERVE)

    def acquire(self) -> float:
        """Wait for a token; return the seconds waited.

        Raises:
            StepDeferred: the wait would exceed max_wait; the step should run again later.
        """
        limit = self._limit
        granted, wait = self._script(keys=[self.key], args=[limit.rate, limit.burst, limit.max_wait])
        wait = float(wait)
        if granted in (b"0", "0"):
            raise StepDeferred(f"request budget of {limit.rate:g}/s for this API key is used up", delay=wait)
        if wait > 0:
            time.sleep(wait)
        return wait
