"""Results -> docs/benchmarks.md: targets first, then the baseline comparison, then every number.

Pure functions of the results dict (what results.json holds), so the report can
be re-rendered from any saved run and tested without running load. The
"before" column comes from bench/baseline.json, a committed results file that
only `--save-baseline` replaces, so later runs show what an optimisation changed.
"""

from __future__ import annotations

from typing import Any

from bench.markdown import fmt, get, table
from bench.report_phases import (
    e2e_section,
    ingest_section,
    memory_section,
    profile_section,
    reference_label,
    workers_per_latency,
)
from bench.verdict import cpu_budget, key_metrics, targets


def _met(value: bool | None) -> str:
    return "—" if value is None else ("**yes**" if value else "**NO**")


def _header(results: dict[str, Any]) -> list[str]:
    return [
        "# Benchmarks",
        "",
        f"Written by `{get(results, 'config', 'command')}` on {results['date']} "
        "(see `bench/`; rerun rather than edit).",
        "Everything ran over loopback on one machine; the load generator shares its CPU with what it measures.",
        "",
        "## Against issue #8's targets",
        "",
        *table(["Target", "Measured", "Met"], [(t, m, _met(ok)) for t, m, ok in targets(results)]),
    ]


def _checks_section(results: dict[str, Any]) -> list[str]:
    rows = []
    v = get(results, "ingest", "ours", "verify") or {}
    rows.append(
        (
            "Ingest: events stored = runs = queued jobs = 202 answers (all 2xx answers)",
            " / ".join(fmt(v.get(k)) for k in ("events_stored", "runs_stored", "jobs_queued", "answers_202"))
            + (f" ({fmt(v['answers_2xx'])})" if "answers_2xx" in v else "")
            + (f"; {fmt(v['unanswered'])} sent but never answered" if v.get("unanswered") else ""),
            _met(v.get("ok")),
        )
    )
    d = get(results, "ingest", "durable", "verify")
    if d is not None:
        rows.append(
            (
                "Ingest, the durable minimum: rows stored = queued jobs = 202 answers",
                " / ".join(fmt(d.get(k)) for k in ("events_stored", "jobs_queued", "answers_202")),
                _met(d.get("ok")),
            )
        )
    for s in get(results, "e2e", "scenarios") or []:
        c = s["verify"]
        rows.append(
            (
                f"End to end {s['latency_ms']} ms: runs succeeded; stub contacts, jobs, constraints, schedulings",
                f"{fmt(c['runs_succeeded'])}; {fmt(c['stub_contacts'])}, {fmt(c['stub_jobs'])}, "
                f"{fmt(c['stub_constraints'])}, {fmt(c['stub_scheduled'])} of {fmt(s['events'])}; "
                f"duplicate references {fmt(c['duplicate_references'])}, stub errors {fmt(len(c['stub_errors']))}",
                _met(c["ok"]),
            )
        )
    return ["## Nothing lost, nothing duplicated", "", *table(["Check", "Counted", "OK"], rows)]


def _cpu_sentence(cpu: dict[str, Any] | None) -> str:
    if not cpu:
        return "CPU not measured"
    roles = sorted(cpu["roles"].items(), key=lambda item: -item[1]["cores"])
    used = ", ".join(f"{role} {fmt(numbers['cores'], 2)}" for role, numbers in roles if numbers["cores"] >= 0.05)
    busy = f"{cpu['machine_busy'] * 100:.0f}%"
    return f"machine {busy} busy; cores used: {used}; other processes {fmt(cpu['other_cores'], 2)}"


def _budget_sentence(per: dict[str, float], ceiling: float | None, unit: str) -> str:
    parts = ", ".join(f"{role} {fmt(ms, 2)}" for role, ms in sorted(per.items(), key=lambda item: -item[1]))
    return f"CPU ms per {unit}: {parts} (total {fmt(sum(per.values()), 2)}): at most ~{fmt(ceiling, 0)} {unit}s/s"


def _bottleneck_section(results: dict[str, Any]) -> list[str]:
    """Where the CPU went in each headline measurement, and a warning when something else was running."""
    ours = get(results, "ingest", "ours") or {}
    cores = get(results, "machine", "cores") or 1
    best = max(ours.get("saturation") or [{}], key=lambda s: s.get("ok_per_s", 0))
    bare = max(get(results, "ingest", "bare", "saturation") or [{}], key=lambda s: s.get("ok_per_s", 0))
    durable = max(get(results, "ingest", "durable", "saturation") or [{}], key=lambda s: s.get("ok_per_s", 0))
    floor = cpu_budget(durable.get("cpu"), durable.get("ok"), cores)
    lines = [
        "## Where the time goes",
        "",
        f"The ceilings below divide the machine's {cores} cores by the CPU each unit of work cost the measured "
        "processes (load generator excluded): what this code could do here if nothing else ran.",
        "",
        f"- Ingest at saturation ({best.get('concurrency')} clients): {_cpu_sentence(best.get('cpu'))}. "
        f"{_budget_sentence(*cpu_budget(best.get('cpu'), best.get('ok'), cores), 'request')}; "
        f"bare: {_budget_sentence(*cpu_budget(bare.get('cpu'), bare.get('ok'), cores), 'request')}"
        + (f"; the durable minimum: {_budget_sentence(*floor, 'request')}." if durable else "."),
        f"- Ingest at the fixed rate: {_cpu_sentence(get(ours, 'open_loop', 'cpu'))}.",
    ]
    others = [get(ours, "open_loop", "cpu", "other_cores") or 0.0, get(best, "cpu", "other_cores") or 0.0]
    for s in get(results, "e2e", "scenarios") or []:
        budget = cpu_budget(s["cpu"], get(s, "run_statuses", "succeeded"), cores)
        lines.append(
            f"- End to end at {s['latency_ms']} ms: {_cpu_sentence(s['cpu'])}. {_budget_sentence(*budget, 'workflow')}."
        )
        others.append(get(s, "cpu", "other_cores") or 0.0)
    for r in get(results, "e2e", "reference") or []:
        if "error" in r:
            continue
        others.append(get(r, "cpu", "other_cores") or 0.0)
        budget = cpu_budget(r["cpu"], r["succeeded"], cores)
        lines.append(
            f"- The {reference_label(r)} at {r['latency_ms']} ms: {_cpu_sentence(r['cpu'])}. "
            f"{_budget_sentence(*budget, 'workflow')}."
        )
    if max(others) >= 0.2:
        lines.append(
            f"- **Noise:** processes outside the bench used up to {fmt(max(others), 2)} of the 2 cores during these "
            "measurements (see *other processes*), so throughput here is lower than on a quiet machine."
        )
    return [*lines, ""]


def _baseline_section(results: dict[str, Any], baseline: dict[str, Any] | None) -> list[str]:
    lines = ["## Before and after", ""]
    if baseline is None:
        return [*lines, "No baseline yet: `python -m bench --save-baseline` stores one in bench/baseline.json.", ""]
    lines += [
        f"*Before* is the baseline in `bench/baseline.json`: {baseline.get('date')}, commit "
        f"{get(baseline, 'revision', 'commit')} (the engine before any optimisation from these numbers). "
        "*Now* is this run. Replace the baseline only with `--save-baseline`.",
        "",
    ]
    before = {name: value for name, value, _ in key_metrics(baseline)}
    rows = []
    for name, value, unit in key_metrics(results):
        old = before.get(name)
        change = f"{(value - old) / old * 100:+.0f}%" if isinstance(value, (int, float)) and old else "—"
        digits = 2 if unit == "x" else 1
        rows.append((name, unit, fmt(old, digits), fmt(value, digits), change))
    return [*lines, *table(["Metric", "Unit", "Before", "Now", "Change"], rows)]


def _machine_section(results: dict[str, Any]) -> list[str]:
    m, rev = results["machine"], results["revision"]
    versions = ", ".join(f"{name} {version}" for name, version in results["versions"].items())
    measured = rev.get("measured") or f"commit {rev['commit']}"
    return [
        "## Machine and software",
        "",
        f"- Date: {results['date']}; code measured: {measured}; the whole run took {fmt(results['elapsed_s'])} s.",
        f"- CPU: {m['cpu']}, {m['cores']} cores; RAM {fmt(m['ram_gib'])} GiB; Linux {m['kernel']}.",
        f"- Versions: {versions}.",
        *_speed_lines(results.get("machine_speed")),
        "",
    ]


def _speed_lines(speed: dict[str, dict[str, float]] | None) -> list[str]:
    """The machine's speed through the run (bench.machine.speed_probe); reports from before it have none."""
    if not speed:
        return []
    probes = "; ".join(f"{moment} {fmt(p['best_ms'])} / {fmt(p['median_ms'])}" for moment, p in speed.items())
    return [
        f"- Machine speed probe (ms of CPU for a fixed JSON workload, best / median of 10 rounds over a second; "
        f"lower is faster): {probes}. The host is shared and its speed drifts: compare two reports only where "
        "their probes agree, and a median well above the best means the machine was often slower meanwhile."
    ]


def _commands_section(results: dict[str, Any]) -> list[str]:
    c = results["config"]
    web = " ".join(get(results, "ingest", "ours", "argv") or [])
    bare = " ".join(get(results, "ingest", "bare", "argv") or [])
    stub = " ".join(get(results, "e2e", "stub_argv") or [])
    pools = workers_per_latency(get(results, "e2e", "scenarios") or [], c["workers"])
    return [
        "## How it was run",
        "",
        f"- This report: `{c['command']}`. `make bench` runs `python -m bench` (variables PROFILE=1, DB=sqlite, "
        "RATE, DURATION, WORKERS, EVENTS, BENCH_ARGS); `make bench-quick` is a two-minute smoke run whose report "
        "goes to bench-results/; `python -m bench --help` lists the rest (`--source HEAD` measures the last commit "
        "instead of the working tree, `--preload` posts every event before the workers start, `--save-baseline`).",
        "- The code measured is copied first (bench/snapshot.py) and every process runs from the copy, so edits made "
        "while the bench runs change nothing; logs, results.json and profiles go to bench-results/<date-time>/.",
        f"- Web (from the Procfile, bound to loopback on a free port): `{web}`",
        f"- Bare endpoint, same settings: `{bare}`",
        "- The durable minimum and the naive pipeline: the same gunicorn settings with `bench.naive:app`; the "
        "durable minimum gets NAIVE_LEDGER_URL, the bench's database (bench/minimal_ledger.py).",
        f"- Workers: `flask --app app worker --processes N [--threads T]`: {pools} (the Procfile's worker line as "
        "one pool of step workers; RQ's WorkerPool forks the processes, each runs T workers in threads).",
        f"- API stub: `{stub}` (bench/stub.py: one asyncio process, same paths and response shapes as BigChange).",
        f"- Ledger: {c['db']} (a private database created and dropped by the bench); Redis "
        f"{c['ingest_redis_url']} (ingest) and {c['e2e_redis_url']} (end to end), flushed before and after.",
        "- Environment: WEBFORM_TOKEN, BIGCHANGE_API_KEY and BIGCHANGE_BASE_URL point at the stub; "
        "BIGCHANGE_REQUESTS_PER_SECOND and BIGCHANGE_BURST are 1,000,000 so the shared request budget "
        "(10/s by default, a politeness limit for the real API) does not cap the run, "
        "while its Redis call stays in the path.",
        "- CPU is read from /proc per process: *postgres backends* are the server processes serving the bench's "
        "database; *redis-server* is the whole server, so it includes any other client of it; *other processes* "
        "is the rest of the machine.",
        f"- End-to-end events were posted through the web endpoint "
        f"{'before the workers started (--preload)' if c['preload'] else 'while the workers ran'}, "
        f"{c['load_concurrency']} at a time{_warm_up_note(c)}.",
        "",
    ]


def _warm_up_note(c: dict[str, Any]) -> str:
    """How the end-to-end scenarios warmed up (results saved before the warm-up existed have none)."""
    warm = c.get("e2e_warmup_events", 0)
    if c["preload"] or not warm:
        return ", on freshly started workers (their first steps' one-off costs included)"
    return (
        f", after {warm:,} warm-up runs through the same processes, finished and then wiped from the ledger "
        "and the stub (each fresh worker's first steps pay one-off costs a long-running deployment pays once)"
    )


def render(results: dict[str, Any], baseline: dict[str, Any] | None) -> str:
    lines = [
        *_header(results),
        *_checks_section(results),
        *_bottleneck_section(results),
        *_baseline_section(results, baseline),
        *_machine_section(results),
        *_commands_section(results),
        *ingest_section(results),
        *e2e_section(results),
        *memory_section(results),
        *profile_section(results),
    ]
    return "\n".join(lines).rstrip() + "\n"


def summary(results: dict[str, Any]) -> str:
    """A few lines for the terminal."""
    lines = [f"{name}: {fmt(value, 2)} {unit}" for name, value, unit in key_metrics(results)]
    return "\n".join(lines)
