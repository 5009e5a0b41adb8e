"""The command line, the quick preset, and the frozen copy of the code a run measures."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bench import snapshot
from bench.__main__ import parse
from bench.config import BenchConfig, Pool


def test_make_bench_variables_become_the_config() -> None:
    argv = ["--rate", "300", "--duration", "20", "--workers", "12", "--latencies", "0,50,200", "--profile"]
    config, args = parse(argv)
    assert (config.rate, config.duration, config.workers, config.latencies_ms, config.profile) == (
        300.0,
        20.0,
        Pool(12),
        (0, 50, 200),
        True,
    )
    assert config.report.name == "benchmarks.md" and config.report.parent.name == "docs"
    assert config.command == "python -m bench --rate 300 --duration 20 --workers 12 --latencies 0,50,200 --profile"
    assert args.in_snapshot is None


def test_workers_are_sized_per_api_latency_unless_one_count_is_given() -> None:
    config, _ = parse([])
    assert (config.workers_at(0), config.workers_at(50), config.workers_at(200)) == (Pool(4), Pool(4, 12), Pool(4, 12))
    config, _ = parse(["--workers", "12"])
    assert (config.workers_at(0), config.workers_at(50)) == (Pool(12), Pool(12))
    config, _ = parse(["--workers", "0:2,50:16,8"])
    assert (config.workers_at(0), config.workers_at(50), config.workers_at(200)) == (Pool(2), Pool(16), Pool(8))


def test_a_pool_may_run_several_workers_per_process_in_threads() -> None:
    config, _ = parse(["--workers", "0:2,50:3x6,2x12"])
    assert (config.workers_at(0), config.workers_at(50), config.workers_at(200)) == (Pool(2), Pool(3, 6), Pool(2, 12))
    assert config.workers_at(50).workers == 18 and str(config.workers_at(50)) == "3x6"
    assert str(config.workers_at(0)) == "2"


@pytest.mark.parametrize("workers", ["0:4", "0:4,8,9", "0:0,24", "x", "4x0", "4x", "0x8", "4x8x2"])
def test_a_worker_count_that_cannot_be_meant_is_refused(workers: str) -> None:
    with pytest.raises(SystemExit):
        parse(["--workers", workers])


def test_quick_is_smaller_and_never_overwrites_the_docs() -> None:
    config, _ = parse(["--quick"])
    full = BenchConfig()
    assert config.events < full.events and config.duration < full.duration
    assert config.report.parent == config.results_dir


def test_an_explicit_report_path_wins_over_quick_s(tmp_path: Path) -> None:
    config, _ = parse(["--quick", "--report", str(tmp_path / "r.md")])
    assert config.report == tmp_path / "r.md"


def test_inside_the_snapshot_results_go_to_the_original_repository(tmp_path: Path) -> None:
    config, _ = parse(["--events", "10", "--in-snapshot", str(tmp_path), str(tmp_path / "run")])
    assert config.results_dir == tmp_path / "bench-results"
    assert config.baseline_path == tmp_path / "bench" / "baseline.json"
    assert config.command == "python -m bench --events 10"


def test_nonsense_is_refused() -> None:
    with pytest.raises(SystemExit):
        parse(["--workers", "0"])


def test_profiling_a_preloaded_run_is_refused_with_the_way_out(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse(["--profile", "--preload"])
    assert "drop --preload to profile" in capsys.readouterr().err


def _git(repo: Path, *args: str) -> None:
    identity = ["-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", *identity, *args], cwd=repo, check=True, capture_output=True)


def test_a_snapshot_is_the_commit_or_the_working_tree_plus_this_harness(tmp_path: Path) -> None:
    # Given a repository with a committed file that was then edited, and the harness beside it
    repo = tmp_path / "repo"
    (repo / "bench").mkdir(parents=True)
    (repo / "app.py").write_text("committed")
    _git(repo, "init", "-q")
    _git(repo, "add", "app.py")
    _git(repo, "commit", "-qm", "c")
    (repo / "app.py").write_text("edited")
    (repo / "bench" / "stub.py").write_text("harness")
    # When it is snapshotted at HEAD and as the working tree
    at_head = snapshot.make(repo, tmp_path / "head", "HEAD")
    snapshot.make(repo, tmp_path / "tree")
    # Then each has its own app.py and both have the harness
    assert at_head.startswith("commit ")
    assert (tmp_path / "head" / "app.py").read_text() == "committed"
    assert (tmp_path / "tree" / "app.py").read_text() == "edited"
    assert (tmp_path / "head" / "bench" / "stub.py").read_text() == "harness"
    assert (tmp_path / "tree" / "bench" / "stub.py").read_text() == "harness"


def test_the_naive_reference_is_measured_unless_asked_not_to() -> None:
    assert parse([])[0].reference is True
    assert parse(["--no-reference"])[0].reference is False
