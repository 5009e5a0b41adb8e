"""Retry policy and backoff, computed in one place.

Retries are scheduled by the queue and recorded in the ledger, never slept in
a worker. The delay is exponential with "equal jitter" (between half and all
of the nominal delay) so a burst of failures does not retry in lockstep, and a
server's Retry-After is honoured as a minimum.

The default keeps DESIGN.md's 5 attempts and sizes their spacing by the
outage it must ride out: from 10 s, the waits are 10+20+40+80 s nominal, so a
step gives up only after its API has failed for at least 75 s (jitter at its
lowest) and typically about two minutes. An API restart or a failover of a
minute therefore never fails a run; from 2 s the same 5 attempts covered only
15-30 s. Connect errors count like any other transient failure: a real outage
is as often a 502/503 from a load balancer as a refused connection, and one
budget covers both.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from schemas.workflow import RetrySpec

# A Retry-After longer than this is treated as this: a step should not sleep for days on one header.
MAX_RETRY_AFTER = 3600.0


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    backoff: str = "exponential"
    initial: float = 10.0
    max_delay: float = 600.0
    on: tuple[str | int, ...] = ("transient",)

    def merged_with(self, spec: RetrySpec | None) -> RetryPolicy:
        """This policy with whatever a step's `retry:` sets explicitly."""
        if spec is None:
            return self
        return RetryPolicy(
            max_attempts=spec.max_attempts if spec.max_attempts is not None else self.max_attempts,
            backoff=spec.backoff or self.backoff,
            initial=spec.initial if spec.initial is not None else self.initial,
            max_delay=spec.max_delay if spec.max_delay is not None else self.max_delay,
            on=tuple(spec.on) if spec.on is not None else self.on,
        )


def compute_backoff(
    policy: RetryPolicy,
    failures: int,
    retry_after: float | None = None,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before the next attempt after `failures` consecutive failures (>= 1)."""
    nominal = policy.initial if policy.backoff == "constant" else policy.initial * 2 ** (failures - 1)
    nominal = min(nominal, policy.max_delay)
    delay = nominal * (0.5 + rand() / 2)
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
    return delay


def retry_window(policy: RetryPolicy) -> tuple[float, float]:
    """Seconds from a step's first failure to its last attempt, at the lowest and highest jitter.

    An outage shorter than the first figure never exhausts the budget (without
    Retry-After, which only lengthens the waits).
    """
    failures = range(1, policy.max_attempts)
    shortest = sum(compute_backoff(policy, n, rand=lambda: 0.0) for n in failures)
    longest = sum(compute_backoff(policy, n, rand=lambda: 1.0) for n in failures)
    return shortest, longest
