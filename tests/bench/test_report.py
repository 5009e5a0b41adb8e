"""docs/benchmarks.md from a results dict: targets judged, checks shown, the baseline compared."""

from __future__ import annotations

import copy
from typing import Any

from bench import report, verdict


def load(ok_per_s: float, p99: float, concurrency: int | None = 16) -> dict[str, Any]:
    return {
        "mode": "closed" if concurrency else "open",
        "concurrency": concurrency,
        "requests": 100,
        "ok": 100,
        "ok_per_s": ok_per_s,
        "statuses": {"202": 100},
        "errors": {},
        "window_s": 1.0,
        "connections": 4,
        "max_send_lag_ms": 1.0,
        "latency_ms": {"count": 100, "mean": 2.0, "p50": 2.0, "p95": 5.0, "p99": p99, "max": p99},
        "cpu": {"machine_busy": 0.5, "roles": {"web (gunicorn)": {"cpu_s": 1.0, "cores": 1.0}}, "other_cores": 0.0},
    }


def web(ok_per_s: float, p99: float) -> dict[str, Any]:
    return {
        "argv": ["gunicorn", "app:app"],
        "saturation": [load(ok_per_s, p99)],
        "open_loop": load(200.0, p99, None),
        "best_ok_per_s": ok_per_s,
        "memory": {"master_mib": 24.0, "workers_mib": [100.0, 101.0], "total_mib": 225.0},
        "verify": {"answers_202": 300, "events_stored": 300, "runs_stored": 300, "jobs_queued": 300, "ok": True},
    }


def scenario(latency: int, workflows_per_s: float, overhead_p50: float) -> dict[str, Any]:
    summary = {"count": 8, "mean": 1.0, "p50": overhead_p50, "p95": 9.0, "p99": 10.0, "max": 11.0}
    return {
        "latency_ms": latency,
        "events": 2,
        "finished": True,
        "run_statuses": {"succeeded": 2},
        "load": load(100.0, 5.0),
        "workflows_per_s": workflows_per_s,
        "window_s": 1.0,
        "drain_workflows_per_s": workflows_per_s,
        "worker_ms_per_step": 12.0,
        "overhead_ms": {
            "in_attempt": summary,
            "claim_to_record": summary,
            "hop": summary,
            "api": summary,
            "by_step": {"contact": {"in_attempt": summary, "api": summary}},
        },
        "verify": {
            "runs_succeeded": 2,
            "stub_contacts": 2,
            "stub_jobs": 2,
            "stub_constraints": 2,
            "stub_scheduled": 2,
            "duplicate_references": 0,
            "stub_errors": {},
            "ok": True,
        },
        "cpu": {"machine_busy": 0.9, "roles": {"workers (all)": {"cpu_s": 2.0, "cores": 1.5}}, "other_cores": 0.1},
        "memory": {"web": {"master_mib": 24.0, "workers_mib": [100.0]}, "workers_mib": [90.0, 95.0]},
    }


def results(wf_per_s: float = 160.0) -> dict[str, Any]:
    return {
        "date": "2026-11-22 08:00 UTC",
        "machine": {"cpu": "Xeon", "cores": 2, "ram_gib": 23.5, "kernel": "6.1"},
        "versions": {"Python": "3.11.7"},
        "revision": {"commit": "abc1234", "uncommitted_files": 0, "measured": "commit abc1234 (HEAD)"},
        "config": {
            "command": "python -m bench",
            "rate": 200.0,
            "duration": 30.0,
            "saturation_seconds": 8.0,
            "warmup_requests": 200,
            "events": 2,
            "workers": 8,
            "db": "postgresql",
            "ingest_redis_url": "redis://127.0.0.1:6379/3",
            "e2e_redis_url": "redis://127.0.0.1:6379/2",
            "preload": False,
            "load_concurrency": 16,
        },
        "ingest": {"ours": web(300.0, 20.0), "bare": web(1000.0, 5.0), "ratio": 0.3},
        "e2e": {
            "stub_argv": ["python", "-m", "bench.stub"],
            "stub_capacity": load(9000.0, 3.0, 32),
            "scenarios": [scenario(0, wf_per_s, 4.0), scenario(50, 100.0, 6.0)],
        },
        "elapsed_s": 300.0,
    }


def test_targets_are_judged_against_the_issue() -> None:
    met = {target: ok for target, _measured, ok in verdict.targets(results())}
    assert met["Ingest ≥ 0.5x the bare endpoint"] is False
    assert met["Ingest p99 ≤ 25 ms at 200/s"] is True
    assert met["End to end ≥ 150 workflows/s at 0 ms API latency"] is True
    assert met["End to end ≥ 150 workflows/s at 50 ms API latency"] is False
    assert met["Engine overhead ≤ 5 ms median per step (0 ms API)"] is True
    assert met["Engine overhead ≤ 5 ms median per step (50 ms API)"] is False


def test_a_p99_at_another_rate_is_not_judged() -> None:
    other = results()
    other["config"]["rate"] = 100.0
    met = {target: ok for target, _measured, ok in verdict.targets(other)}
    assert met["Ingest p99 ≤ 25 ms at 200/s"] is None


def test_failed_correctness_checks_are_named() -> None:
    broken = results()
    broken["e2e"]["scenarios"][1]["verify"]["ok"] = False
    assert verdict.failed_checks(results()) == []
    assert [f.split(":")[0] for f in verdict.failed_checks(broken)] == ["end to end at 50 ms"]


def test_the_report_compares_with_the_baseline() -> None:
    before = results(wf_per_s=80.0)
    text = report.render(results(wf_per_s=160.0), before)
    assert "| Workflows/s, 0 ms API | wf/s | 80.0 | 160.0 | +100% |" in text
    assert "commit abc1234" in text and "## 3. Memory" in text


def test_without_a_baseline_or_a_profile_the_report_says_how_to_get_them() -> None:
    text = report.render(results(), None)
    assert "--save-baseline" in text
    assert "make bench PROFILE=1" in text


def test_rendering_does_not_change_the_results() -> None:
    data = results()
    frozen = copy.deepcopy(data)
    report.render(data, data)
    assert data == frozen


def test_the_report_says_whether_the_end_to_end_runs_were_measured_on_warmed_up_workers() -> None:
    warmed = results()
    warmed["config"]["e2e_warmup_events"] = 240
    assert "after 240 warm-up runs through the same processes" in report.render(warmed, None)

    for cold in ({"e2e_warmup_events": 0}, {"e2e_warmup_events": 240, "preload": True}, {}):
        data = results()
        data["config"].update(cold)
        assert "on freshly started workers" in report.render(data, None)


def test_the_memory_section_shows_what_the_whole_worker_pool_occupies_when_it_was_measured() -> None:
    data = results()
    data["e2e"]["scenarios"][0]["memory"]["workers_pss_mib"] = 310.5
    text = report.render(data, None)
    assert "| End to end, 0 ms | 24.0 | 100.0 | max 95.0, min 90.0 | 310.5 for 3 processes |" in text
    assert "| End to end, 50 ms | 24.0 | 100.0 | max 95.0, min 90.0 | — |" in text  # saved before it was measured


def reference(latency_ms: int, wf_per_s: float, ok: bool = True, variant: str | None = None) -> dict[str, Any]:
    measured = {
        "latency_ms": latency_ms,
        "workflows_per_s": wf_per_s,
        "succeeded": 2,
        "verify": {"ok": ok},
        "cpu": {"machine_busy": 0.9, "roles": {"workers (all)": {"cpu_s": 0.01, "cores": 1.0}}, "other_cores": 0.0},
    }
    return measured if variant is None else {"variant": variant, **measured}  # None: saved before variants


def test_hookflow_is_shown_against_the_naive_pipeline_latency_by_latency() -> None:
    data = results()
    data["e2e"]["reference"] = [reference(0, 320.0), reference(50, 100.0, ok=False)]
    text = report.render(data, None)
    # Hookflow's scenarios: 160 wf/s at 0 ms, 100 at 50 ms; 2.0 s of worker CPU for 2 runs (1,000 ms each)
    assert "| 0 ms | Hookflow | 160.0 | 1,000.0 | — | yes |" in text
    assert "| 0 ms | naive Flask + RQ pipeline | 320.0 | 5.0 | 0.50x | yes |" in text
    assert "| 50 ms | naive Flask + RQ pipeline | 100.0 | 5.0 | 1.00x | **NO** |" in text
    assert "- The naive Flask + RQ pipeline at 0 ms: machine 90% busy" in text


def test_the_durable_minimum_is_shown_beside_the_naive_pipeline_at_each_latency() -> None:
    data = results()
    naive, durable = reference(0, 320.0, variant="naive"), reference(0, 200.0, variant="durable")
    durable["memory"] = {"workers_mib": [45.0], "pool_processes": 2, "workers_pss_mib": 60.0}
    data["e2e"]["reference"] = [naive, durable]
    text = report.render(data, None)
    assert "| 0 ms | durable minimum (naive + minimal ledger) | 200.0 | 5.0 | 0.80x | yes |" in text
    assert "- The durable minimum (naive + minimal ledger) at 0 ms: machine 90% busy" in text
    assert (
        "| Durable minimum (naive + minimal ledger), 0 ms | — | — | max 45.0, min 45.0 | 60.0 for 2 processes |" in text
    )


def test_a_naive_pipeline_that_did_not_run_is_reported_beside_the_ones_that_did() -> None:
    data = results()
    naive = reference(0, 320.0)
    naive["memory"] = {"workers_mib": [40.0, 41.0], "pool_processes": 3, "workers_pss_mib": 90.0}
    data["e2e"]["reference"] = [
        naive,
        {"latency_ms": 50, "variant": "durable", "error": "the warm-up did not complete"},
    ]
    text = report.render(data, None)
    assert (
        "| 50 ms | durable minimum (naive + minimal ledger) | — | — | — | did not run: the warm-up did not complete |"
        in text
    )
    assert "| Naive Flask + RQ pipeline, 0 ms | — | — | max 41.0, min 40.0 | 90.0 for 3 processes |" in text
    assert "The durable minimum (naive + minimal ledger) at 50 ms" not in text


def test_ingest_shows_the_durable_minimum_as_the_floor_of_any_durable_ack() -> None:
    data = results()
    data["ingest"]["durable"] = {
        **web(600.0, 9.0),
        "verify": {"answers_202": 300, "events_stored": 300, "jobs_queued": 300, "ok": True},
    }
    data["ingest"]["durable_ratio"] = 0.3
    text = report.render(data, None)
    assert "| Ingest ≥ 0.5x the bare endpoint | 0.30x (300.0 vs 1,000.0 req/s; the durable minimum: 0.30x) |" in text
    assert "| 16 | Durable minimum | 600.0 | 2.0 | 9.0 | 0.60 |" in text
    assert (
        "| Ingest, the durable minimum: rows stored = queued jobs = 202 answers | 300 / 300 / 300 | **yes** |" in text
    )
    assert "| Durable minimum | 100 | 200.0 |" in text  # the fixed rate
    assert "the durable minimum: CPU ms per request" in text
    assert "the same load goes to the *durable minimum*" in text


def test_results_saved_before_the_durable_minimum_still_render() -> None:
    text = report.render(results(), None)
    assert "durable minimum" not in text.split("## 1. Ingest")[1].split("## 2.")[0].lower()
    assert "| 0.30x (300.0 vs 1,000.0 req/s) |" in text


def test_a_run_without_the_naive_pipeline_says_so() -> None:
    assert "The naive Flask + RQ pipeline was not measured in this run" in report.render(results(), None)


def test_one_worker_alone_is_shown_with_its_cpu_per_run() -> None:
    data = results()
    alone = scenario(0, 60.0, 0.5)
    alone["events"], alone["run_statuses"] = 500, {"succeeded": 500}
    alone["cpu"] = {"machine_busy": 0.5, "roles": {"workers (all)": {"cpu_s": 8.0, "cores": 0.5}}, "other_cores": 0}
    data["e2e"]["serial"] = alone
    text = report.render(data, None)
    assert "### One worker with the machine to itself" in text
    # 8 s of worker CPU for 500 runs: 16 ms each; no PostgreSQL or Redis reading, so no figure for them
    assert "| 500 | 60.0 | 16.0 | — | — | 0.5 | 10.0 | 0.5 | 10.0 | 12.0 | yes |" in text


def test_a_run_without_the_lone_worker_says_how_it_was_skipped() -> None:
    assert "One worker alone was not measured in this run (`--serial-events 0`)." in report.render(results(), None)


def test_workers_sized_per_latency_are_said_with_the_reason() -> None:
    data = results()
    data["e2e"]["scenarios"][0]["workers"], data["e2e"]["scenarios"][1]["workers"] = 4, 24
    text = report.render(data, None)
    assert "4 workers at 0 ms and 24 at 50 ms (sized to the API's latency" in text
    assert "`flask --app app worker --processes N [--threads T]`: 4 workers at 0 ms and 24 at 50 ms" in text


def test_a_pool_of_threads_is_said_with_its_make_up() -> None:
    data = results()
    data["e2e"]["scenarios"][0]["workers"] = 4
    data["e2e"]["scenarios"][1].update(workers=32, processes=4, threads=8)
    text = report.render(data, None)
    assert "4 workers at 0 ms and 32 (4 processes x 8 threads) at 50 ms (sized to the API's latency" in text


def test_one_pool_for_every_latency_is_said_once() -> None:
    data = results()
    for scenario in data["e2e"]["scenarios"]:
        scenario.update(workers=16, processes=2, threads=8)
    assert "16 workers (2 processes x 8 threads). Workflows/s" in report.render(data, None)
