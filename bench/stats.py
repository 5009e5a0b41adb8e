"""Latency statistics: nearest-rank percentiles and compact summaries.

Nearest-rank (the value below which p% of samples fall, taken from the
samples themselves) rather than interpolation, because a reported p99 should be
a latency some request actually saw, as HdrHistogram and wrk2 report it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """The nearest-rank p-th percentile of already sorted values.

    Raises:
        ValueError: no values, or p outside [0, 100].
    """
    if not sorted_values:
        raise ValueError("percentile of no values")
    if not 0 <= p <= 100:
        raise ValueError(f"percentile {p} is outside 0..100")
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass(frozen=True)
class Summary:
    """Count and distribution of a set of samples (milliseconds unless stated otherwise)."""

    count: int
    mean: float
    p50: float
    p95: float
    p99: float
    max: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(values: Iterable[float]) -> Summary | None:
    """A Summary of the values, or None when there are none (a phase that produced nothing)."""
    ordered = sorted(values)
    if not ordered:
        return None
    return Summary(
        count=len(ordered),
        mean=round(sum(ordered) / len(ordered), 3),
        p50=round(percentile(ordered, 50), 3),
        p95=round(percentile(ordered, 95), 3),
        p99=round(percentile(ordered, 99), 3),
        max=round(ordered[-1], 3),
    )
