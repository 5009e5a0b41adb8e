"""What the report says about the machine: its CPU, and how fast it ran through the run."""

from __future__ import annotations

from bench import machine, report
from tests.bench.test_report import results


def test_the_speed_probe_gives_a_best_and_a_median_of_its_rounds() -> None:
    probe = machine.speed_probe(rounds=3, loops=50, pause=0)
    assert 0 < probe["best_ms"] <= probe["median_ms"]


def test_the_probe_costs_more_cpu_for_more_work() -> None:
    # The best of a few rounds, so a slow spell of the machine does not decide it
    small = machine.speed_probe(rounds=5, loops=100, pause=0)["best_ms"]
    large = machine.speed_probe(rounds=5, loops=1000, pause=0)["best_ms"]
    assert large > small


def test_the_report_shows_the_speed_at_each_moment_probed() -> None:
    data = results()
    data["machine_speed"] = {
        "start": {"best_ms": 27.0, "median_ms": 28.0},
        "after ingest": {"best_ms": 27.5, "median_ms": 46.0},
        "end": {"best_ms": 28.0, "median_ms": 29.0},
    }
    text = report.render(data, None)
    assert "- Machine speed probe (ms of CPU for a fixed JSON workload" in text
    assert "start 27.0 / 28.0; after ingest 27.5 / 46.0; end 28.0 / 29.0" in text


def test_a_report_from_before_the_probe_renders_without_it() -> None:
    assert "Machine speed probe" not in report.render(results(), None)


def test_the_cpu_model_comes_from_proc_cpuinfo() -> None:
    cpuinfo = "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Processor\n"
    assert machine.cpu_model(cpuinfo) == "Intel(R) Xeon(R) Processor"
