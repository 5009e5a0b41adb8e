"""py-spy's collapsed stacks summarised: where time is spent, by function and by package, and who called it."""

from __future__ import annotations

from pathlib import Path

from bench.profiling import merged_top, top_frames

RAW = "\n".join(
    [
        "main (flask/cli.py:10);run_step (engine/runner.py:50);claim_attempt (engine/store.py:70);"
        "wait (psycopg/connection.py:9) 6",
        "main (flask/cli.py:10);run_step (engine/runner.py:51);perform (engine/invoke.py:5);"
        "read (redis/connection.py:3) 3",
        "main (flask/cli.py:11);select (selectors.py:1) 1",
        "not a stack line",
    ]
)


def test_self_time_packages_and_our_callers() -> None:
    top = top_frames(RAW)
    assert top["samples"] == 10
    assert top["self"][0] == {"frame": "wait (psycopg/connection.py)", "samples": 6, "pct": 60.0}
    packages = [(p["frame"], p["pct"]) for p in top["packages"]]
    assert packages == [("psycopg", 60.0), ("redis", 30.0), ("selectors", 10.0)]
    ours = {r["frame"]: r["pct"] for r in top["ours"]}
    # line numbers are dropped, so run_step counts once for both of its lines
    assert ours == {
        "run_step (engine/runner.py)": 90.0,
        "claim_attempt (engine/store.py)": 60.0,
        "perform (engine/invoke.py)": 30.0,
    }


def test_an_empty_recording() -> None:
    assert top_frames("") == {"samples": 0, "self": [], "packages": [], "ours": []}


def test_the_gil_recordings_of_several_processes_are_summarised_together(tmp_path: Path) -> None:
    """One process may get no load (gunicorn's workers race to accept): its empty file must not hide the other's."""
    busy, idle, svg = tmp_path / "web-profile-gil-1.txt", tmp_path / "web-profile-gil-2.txt", tmp_path / "web.svg"
    busy.write_text(RAW)
    idle.write_text("")
    svg.write_text("<svg/>")
    top = merged_top([svg, idle, busy])
    assert top is not None and top["samples"] == 10
    busy.write_text(RAW)
    idle.write_text(RAW)
    assert merged_top([busy, idle])["samples"] == 20  # type: ignore[index]
    assert merged_top([svg]) is None
