"""Nearest-rank percentiles: every reported value is one some request actually saw."""

from __future__ import annotations

import pytest

from bench.stats import percentile, summarize


@pytest.mark.parametrize(("p", "expected"), [(0, 1), (10, 1), (50, 5), (90, 9), (95, 10), (99, 10), (100, 10)])
def test_nearest_rank_over_ten_values(p: float, expected: float) -> None:
    assert percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], p) == expected


def test_one_slow_request_in_a_hundred_is_the_p99_not_hidden_by_interpolation() -> None:
    # Given 99 fast requests and one slow one
    values = sorted([1.0] * 99 + [500.0])
    # Then p99 is still a fast one (99 of 100 are at or below it), and the slow one is the max
    assert percentile(values, 99) == 1.0
    assert percentile(values, 99.5) == 500.0


def test_no_values_or_a_bad_percentile_is_an_error() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_summary_sorts_and_rounds() -> None:
    summary = summarize([3.0, 1.0, 2.0, 4.0])
    assert summary is not None
    assert (summary.count, summary.mean, summary.p50, summary.p99, summary.max) == (4, 2.5, 2.0, 4.0, 4.0)
    assert summarize([]) is None
