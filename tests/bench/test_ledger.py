"""Engine overhead from the ledger's own rows: attempt time minus the API time its calls recorded."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from bench.ledger import AttemptRow, claim_to_record_overheads, hops, in_attempt_overheads, overhead_report

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def attempt(run: str, index: int, start_ms: float, end_ms: float, duration: float, api: list[float]) -> AttemptRow:
    return AttemptRow(
        run_id=run,
        step_id=f"s{index}",
        step_index=index,
        status="succeeded",
        started_at=T0 + timedelta(milliseconds=start_ms),
        finished_at=T0 + timedelta(milliseconds=end_ms),
        duration_ms=duration,
        calls=[{"ms": ms} for ms in api],
    )


def test_overhead_is_attempt_time_minus_every_call() -> None:
    # Given an attempt of 12 ms in which two calls took 5 and 3 ms, claimed 20 ms before it was recorded
    row = attempt("r", 0, 0, 20, 12.0, [5.0, 3.0])
    # Then the engine's share is 4 ms inside the attempt and 12 ms from claim to record
    assert in_attempt_overheads([row]) == [4.0]
    assert claim_to_record_overheads([row]) == pytest.approx([12.0])


def test_failed_attempts_do_not_count_as_overhead() -> None:
    row = attempt("r", 0, 0, 20, 12.0, [5.0])
    failed = AttemptRow(**{**row.__dict__, "status": "failed"})
    assert in_attempt_overheads([failed]) == []


def test_hops_are_measured_within_each_run_in_step_order() -> None:
    rows = [
        attempt("a", 1, 30, 40, 5, []),
        attempt("a", 0, 0, 10, 5, []),
        attempt("b", 0, 100, 110, 5, []),
        attempt("b", 1, 150, 160, 5, []),
    ]
    assert sorted(hops(rows)) == pytest.approx([20.0, 40.0])


def test_the_report_has_totals_and_per_step_numbers() -> None:
    rows = [attempt("a", 0, 0, 10, 8, [6]), attempt("a", 1, 12, 20, 7, [6])]
    report = overhead_report(rows)
    assert report["attempts"] == 2
    assert report["in_attempt"]["p50"] == 1.0 and report["api"]["max"] == 6.0
    assert list(report["by_step"]) == ["s0", "s1"]
