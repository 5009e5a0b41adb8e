"""The report's per-phase sections: ingest, end to end, memory, profiles."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench.markdown import fmt, get, table
from bench.verdict import cpu_budget


def _cpu_row(label: str, cpu: dict[str, Any] | None, roles: Sequence[str]) -> tuple[Any, ...]:
    if not cpu:
        return (label, None, *([None] * len(roles)), None)
    return (
        label,
        f"{cpu['machine_busy'] * 100:.0f}%",
        *(get(cpu, "roles", role, "cores") for role in roles),
        cpu.get("other_cores"),
    )


INGEST_ROLES = ("web (gunicorn)", "postgres backends", "redis-server", "load generator")


def _services(ingest: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The services ingest measured, by their label (results saved before the durable minimum lack it)."""
    named = [("Hookflow", ingest["ours"]), ("Bare Flask", ingest["bare"])]
    if "durable" in ingest:
        named.append(("Durable minimum", ingest["durable"]))
    return named


def ingest_section(results: dict[str, Any]) -> list[str]:
    ingest, c = results["ingest"], results["config"]
    services = _services(ingest)
    bare = ingest["bare"]
    rows = []
    for index, theirs in enumerate(bare["saturation"]):
        for label, measured in services:
            mine = measured["saturation"][index]
            ratio = mine["ok_per_s"] / theirs["ok_per_s"] if theirs["ok_per_s"] else None
            rows.append(
                (
                    mine["concurrency"],
                    label,
                    mine["ok_per_s"],
                    get(mine, "latency_ms", "p50"),
                    get(mine, "latency_ms", "p99"),
                    None if ratio is None else f"{ratio:.2f}",
                    _cpu_ms_per(mine["cpu"], "web (gunicorn)", mine["ok"]),
                    _cpu_ms_per_request(mine["cpu"], mine["ok"], results),
                    _errors(mine),
                )
            )
    cpu_rows = []
    for label, measured in services:
        cpu_rows += [
            _cpu_row(f"{label}, {s['concurrency']} clients", s["cpu"], INGEST_ROLES) for s in measured["saturation"]
        ]
        cpu_rows.append(_cpu_row(f"{label}, open loop", measured["open_loop"]["cpu"], INGEST_ROLES))
    return [
        "## 1. Ingest",
        "",
        "POST /hooks/webform with the example enquiry, a unique `submission_id` each; no workers, so the queue fills. "
        f"Closed loop for {fmt(c['saturation_seconds'])} s per concurrency "
        f"after {c['warmup_requests']} warm-up requests.",
        "",
        *_durable_note(ingest),
        "### Saturation (closed loop)",
        "",
        *table(
            [
                "Clients",
                "Service",
                "2xx/s",
                "p50 ms",
                "p99 ms",
                "÷ bare",
                "Web CPU ms/req",
                "All CPU ms/req",
                "Errors",
            ],
            rows,
        ),
        f"### Fixed rate (open loop, {fmt(c['rate'], 0)}/s for {fmt(c['duration'], 0)} s)",
        "",
        "Latency counts from each request's scheduled send time (no coordinated omission).",
        "",
        *table(
            [
                "Service",
                "Sent",
                "2xx/s",
                "p50 ms",
                "p95 ms",
                "p99 ms",
                "max ms",
                "Errors",
                "Connections opened",
                "Max send lag ms",
            ],
            [_open_row(label, measured["open_loop"]) for label, measured in services],
        ),
        "### CPU during ingest (cores busy, of the machine's 2)",
        "",
        *table(["Run", "Machine busy", *INGEST_ROLES, "other processes"], cpu_rows),
    ]


def _durable_note(ingest: dict[str, Any]) -> list[str]:
    """What the durable minimum is, when this run measured one (results saved before it did not)."""
    if "durable" not in ingest:
        return []
    return [
        "Besides Hookflow and the bare endpoint (answers 202, does nothing), the same load goes to the "
        "*durable minimum* (bench/naive.py with bench/minimal_ledger.py: checks the token, commits the body with "
        "one prepared INSERT straight through the database driver, queues an RQ job, answers 202). It is the "
        "floor for any implementation that stores an event before acknowledging it: its ratio to the bare "
        "endpoint is the most such an implementation can reach here.",
        "",
    ]


def _cpu_ms_per_request(cpu: dict[str, Any] | None, count: int | None, results: dict[str, Any]) -> float | None:
    """Every measured process but the load generator, per request (web, database backends, Redis)."""
    per, _ceiling = cpu_budget(cpu, count, get(results, "machine", "cores") or 1)
    return round(sum(per.values()), 2) if per else None


def _cpu_ms_per(cpu: dict[str, Any] | None, role: str, count: int | None) -> float | None:
    """CPU milliseconds a role spent per request (or step): the cost that caps throughput on 2 cores."""
    used = get(cpu, "roles", role, "cpu_s")
    return round(used * 1000 / count, 2) if used is not None and count else None


def _errors(load: dict[str, Any]) -> int:
    non_2xx = sum(n for status, n in load["statuses"].items() if not status.startswith("2"))
    return non_2xx + sum(load["errors"].values())


def _open_row(label: str, load: dict[str, Any]) -> tuple[Any, ...]:
    lat = load.get("latency_ms") or {}
    return (
        label,
        load["requests"],
        load["ok_per_s"],
        lat.get("p50"),
        lat.get("p95"),
        lat.get("p99"),
        lat.get("max"),
        _errors(load),
        load["connections"],
        load["max_send_lag_ms"],
    )


E2E_ROLES = ("web (gunicorn)", "workers (all)", "postgres backends", "redis-server", "stub", "load generator")


SIZED = (
    " (sized to the API's latency as docs/running.md advises: enough step workers to hide it, in threads beyond a "
    "few processes, since each process costs CPU per run)"
)


def e2e_section(results: dict[str, Any]) -> list[str]:
    e2e, c = results["e2e"], results["config"]
    cap = e2e["stub_capacity"]
    scenarios = e2e["scenarios"]
    lines = [
        "## 2. End to end",
        "",
        f"{fmt(c['events'])} web enquiries per API latency, 4 steps each (contacts/create → jobs/create → "
        f"jobs/constraints/create → jobs/scheduling), {workers_per_latency(scenarios, c['workers'], why=True)}. "
        "Workflows/s = runs succeeded ÷ "
        "(last run finished - first event received), from the ledger's timestamps; *drain* starts at the first "
        "step claimed instead.",
        "",
        f"API stub capacity at 0 ms: **{fmt(cap['ok_per_s'])} requests/s** "
        f"({cap['concurrency']} clients, p50 {fmt(get(cap, 'latency_ms', 'p50'), 2)} ms, "
        f"p99 {fmt(get(cap, 'latency_ms', 'p99'), 2)} ms; stub {fmt(get(cap, 'cpu', 'roles', 'stub', 'cores'), 2)} "
        f"cores, load generator {fmt(get(cap, 'cpu', 'roles', 'load generator', 'cores'), 2)} cores). "
        "A workflow needs 4 requests.",
        "",
        *table(
            ["API latency", "Workflows/s", "Window s", "Drain wf/s", "Events posted in s", "Finished", "Run statuses"],
            [
                (
                    f"{s['latency_ms']} ms",
                    s["workflows_per_s"],
                    s["window_s"],
                    s["drain_workflows_per_s"],
                    s["load"]["window_s"],
                    s["finished"],
                    ", ".join(f"{k} {v}" for k, v in sorted(s["run_statuses"].items())),
                )
                for s in scenarios
            ],
        ),
        *reference_table(e2e.get("reference"), scenarios, get(results, "machine", "cores") or 1),
        "### Engine overhead per step (ms)",
        "",
        "*In attempt* is the brief's measure: the attempt's `duration_ms` minus the API time in its `calls[*].ms`. "
        "*Claim to record* adds loading the run, event and history (`finished_at - started_at` minus API time). "
        "*Hop* is from one step's result being recorded to the next step being claimed (commit, enqueue, Redis, "
        "waiting for a free worker). *Worker ms/step* = workers x drain window ÷ attempts: everything a worker spends "
        "per step, API time included.",
        "",
        *table(
            [
                "API latency",
                "In attempt p50",
                "p99",
                "Claim→record p50",
                "p99",
                "Hop p50",
                "p99",
                "API p50",
                "p99",
                "Worker ms/step",
            ],
            [_overhead_row(s) for s in scenarios],
        ),
        *_per_step_table(scenarios),
        *serial_section(e2e.get("serial")),
        "### CPU per step (ms of CPU per step attempt, all processes of a role together)",
        "",
        *table(
            ["API latency", *E2E_ROLES[:-1]],
            [
                (
                    f"{s['latency_ms']} ms",
                    *(_cpu_ms_per(s["cpu"], role, get(s, "overhead_ms", "attempts")) for role in E2E_ROLES[:-1]),
                )
                for s in scenarios
            ],
        ),
        "### CPU during end to end (cores busy, of the machine's 2)",
        "",
        *table(
            ["API latency", "Machine busy", *E2E_ROLES, "other processes"],
            [_cpu_row(f"{s['latency_ms']} ms", s["cpu"], E2E_ROLES) for s in scenarios],
        ),
    ]
    return lines


def workers_per_latency(scenarios: Sequence[dict[str, Any]], default: int, why: bool = False) -> str:
    """`24 workers`, or `4 workers at 0 ms and 32 (4 processes x 8 threads) at 50 ms` (with `why`, the reason).

    `default`: the count of results that predate each scenario's own.
    """
    pools = [(s["latency_ms"], s.get("workers", default), _threads_note(s)) for s in scenarios]
    if not pools:
        return "the configured workers"
    if len({(workers, note) for _, workers, note in pools}) == 1:
        _, workers, note = pools[0]
        return f"{workers} workers{note}"
    said = [
        f"{workers}{' workers' if n == 0 else ''}{note} at {latency} ms"
        for n, (latency, workers, note) in enumerate(pools)
    ]
    return f"{', '.join(said[:-1])} and {said[-1]}{SIZED if why else ''}"


def _threads_note(scenario: dict[str, Any]) -> str:
    """How a pool of threads was made up (results from before threads have none)."""
    threads = scenario.get("threads", 1)
    return "" if threads == 1 else f" ({scenario['processes']} processes x {threads} threads)"


def _cpu_ms_per_workflow(cpu: dict[str, Any] | None, workflows: int | None, cores: int) -> float | None:
    per, _ceiling = cpu_budget(cpu, workflows, cores)
    return round(sum(per.values()), 2) if per else None


REFERENCE_LABELS = {"naive": "naive Flask + RQ pipeline", "durable": "durable minimum (naive + minimal ledger)"}


def reference_label(reference: dict[str, Any]) -> str:
    """What a reference run measured (results saved before the durable minimum have no variant: naive)."""
    return REFERENCE_LABELS[reference.get("variant", "naive")]


def reference_table(reference: list[dict[str, Any]] | None, scenarios: list[dict[str, Any]], cores: int) -> list[str]:
    """Hookflow next to the naive Flask + RQ pipeline and its durable minimum, latency by latency."""
    if not reference:
        return ["The naive Flask + RQ pipeline was not measured in this run (`--no-reference`, or `--preload`).", ""]
    ours = {s["latency_ms"]: s for s in scenarios}
    rows: list[tuple[Any, ...]] = []
    for latency in sorted({r["latency_ms"] for r in reference}):
        s = ours.get(latency) or {}
        mine = s.get("workflows_per_s")
        rows.append(
            (
                f"{latency} ms",
                "Hookflow",
                mine,
                _cpu_ms_per_workflow(s.get("cpu"), get(s, "run_statuses", "succeeded"), cores),
                None,
                _met_mark(get(s, "verify", "ok")),
            )
        )
        for r in (r for r in reference if r["latency_ms"] == latency):
            name = reference_label(r)
            if "error" in r:
                rows.append((f"{latency} ms", name, None, None, None, f"did not run: {r['error']}"))
                continue
            theirs = r["workflows_per_s"]
            rows.append(
                (
                    f"{latency} ms",
                    name,
                    theirs,
                    _cpu_ms_per_workflow(r["cpu"], r["succeeded"], cores),
                    f"{mine / theirs:.2f}x" if mine and theirs else None,
                    _met_mark(r["verify"]["ok"]),
                )
            )
    return [
        "### Against a naive Flask + RQ pipeline, and its durable minimum",
        "",
        "The issue's reference, run here under the same load: bench/naive.py enqueues each webhook as an RQ job "
        "and the job makes the four calls; no stored event, no ledger, no reconciling, retries, budget, logs or "
        "metrics. Same gunicorn settings, as many workers (RQ's SimpleWorker in a WorkerPool), same warm-up. "
        "Its *durable minimum* is the same pipeline writing the least a pipeline that keeps what it "
        "acknowledged must write (bench/minimal_ledger.py): the body committed before the 202 and each step's "
        "result committed after its call, one prepared statement each straight through the database driver; "
        "still no claim before a call, so a killed worker would repeat a step, and no retries. "
        "*CPU ms/wf* is every measured process but the load generator, per workflow. *All done* checks the "
        "stub's counts (one contact, job, constraint and scheduling per event) and, for the durable minimum, "
        "one row per event with its four steps recorded.",
        "",
        *table(["API latency", "Pipeline", "wf/s", "CPU ms/wf", "Hookflow ÷ this", "All done"], rows),
    ]


def _met_mark(ok: bool | None) -> str | None:
    return None if ok is None else ("yes" if ok else "**NO**")


def _overhead_row(s: dict[str, Any]) -> tuple[Any, ...]:
    o = s["overhead_ms"]
    return (
        f"{s['latency_ms']} ms",
        get(o, "in_attempt", "p50"),
        get(o, "in_attempt", "p99"),
        get(o, "claim_to_record", "p50"),
        get(o, "claim_to_record", "p99"),
        get(o, "hop", "p50"),
        get(o, "hop", "p99"),
        get(o, "api", "p50"),
        get(o, "api", "p99"),
        s["worker_ms_per_step"],
    )


def serial_section(serial: dict[str, Any] | None) -> list[str]:
    """One worker with the machine to itself: what a run costs when no step waits for a CPU."""
    if not serial:
        return ["One worker alone was not measured in this run (`--serial-events 0`).", ""]
    runs = get(serial, "run_statuses", "succeeded")
    o, cpu = serial["overhead_ms"], serial["cpu"]
    return [
        "### One worker with the machine to itself",
        "",
        f"{fmt(serial['events'])} web enquiries run by a single worker at 0 ms API latency, after the same "
        "warm-up. They are posted several times faster than one worker runs them, so most runs have the CPU to "
        "themselves: the overhead here is the engine's own work, while in the scenarios above, where several "
        "workers share the 2 cores, part of it is waiting for a CPU. CPU is per run, its webhook's insert included.",
        "",
        *table(
            [
                "Runs succeeded",
                "Drain wf/s",
                "Worker CPU ms",
                "PostgreSQL CPU ms",
                "Redis CPU ms",
                "In attempt p50",
                "p99",
                "Claim→record p50",
                "p99",
                "Worker ms/step",
                "All done",
            ],
            [
                (
                    runs,
                    serial["drain_workflows_per_s"],
                    _cpu_ms_per(cpu, "workers (all)", runs),
                    _cpu_ms_per(cpu, "postgres backends", runs),
                    _cpu_ms_per(cpu, "redis-server", runs),
                    get(o, "in_attempt", "p50"),
                    get(o, "in_attempt", "p99"),
                    get(o, "claim_to_record", "p50"),
                    get(o, "claim_to_record", "p99"),
                    serial["worker_ms_per_step"],
                    "yes" if serial["verify"]["ok"] else "**NO**",
                )
            ],
        ),
    ]


def _per_step_table(scenarios: Sequence[dict[str, Any]]) -> list[str]:
    rows = []
    for s in scenarios:
        for step, numbers in (get(s, "overhead_ms", "by_step") or {}).items():
            rows.append(
                (
                    f"{s['latency_ms']} ms",
                    step,
                    get(numbers, "in_attempt", "p50"),
                    get(numbers, "in_attempt", "p99"),
                    get(numbers, "api", "p50"),
                )
            )
    return ["Per step:", "", *table(["API latency", "Step", "In attempt p50", "p99", "API p50"], rows)]


def memory_section(results: dict[str, Any]) -> list[str]:
    rows = []
    for label, memory in (
        ("Ingest, Hookflow", get(results, "ingest", "ours", "memory")),
        ("Ingest, bare Flask", get(results, "ingest", "bare", "memory")),
        ("Ingest, durable minimum", get(results, "ingest", "durable", "memory")),
    ):
        if memory is None:  # results saved before the durable minimum
            continue
        rows.append((label, memory["master_mib"], ", ".join(fmt(w) for w in memory["workers_mib"]), None, None))
    for s in get(results, "e2e", "scenarios") or []:
        web, workers = s["memory"]["web"], s["memory"]["workers_mib"]
        pss = s["memory"].get("workers_pss_mib")  # absent from results saved before it was measured
        processes = s["memory"].get("pool_processes", len(workers) + 1)
        rows.append(
            (
                f"End to end, {s['latency_ms']} ms",
                web["master_mib"],
                ", ".join(fmt(w) for w in web["workers_mib"]),
                f"max {fmt(max(workers))}, min {fmt(min(workers))}" if workers else None,
                f"{fmt(pss)} for {processes} processes" if pss else None,
            )
        )
    for r in get(results, "e2e", "reference") or []:
        if "memory" in r:
            workers, pss = r["memory"]["workers_mib"], r["memory"]["workers_pss_mib"]
            rows.append(
                (
                    f"{reference_label(r)[0].upper()}{reference_label(r)[1:]}, {r['latency_ms']} ms",
                    None,
                    None,
                    f"max {fmt(max(workers))}, min {fmt(min(workers))}" if workers else None,
                    f"{fmt(pss)} for {r['memory']['pool_processes']} processes",
                )
            )
    return [
        "## 3. Memory (peak RSS, VmHWM from /proc, MiB)",
        "",
        "The flask workers are forked from one parent and share most pages with it, so their RSS "
        "values overlap; the last column is what the whole pool occupies (the sum of PSS, which splits each "
        "shared page among its sharers, read from /proc/<pid>/smaps_rollup once the runs were done).",
        "",
        *table(["Phase", "gunicorn master", "gunicorn workers", "flask workers (each)", "flask pool, PSS"], rows),
    ]


def profile_section(results: dict[str, Any]) -> list[str]:
    profiles = [
        ("Web (gunicorn workers, saturation)", get(results, "ingest", "ours", "profile")),
        ("Workers (two flask workers, end to end at 0 ms)", get(results, "e2e", "profiled", "profile")),
    ]
    lines = [
        "## Profiles (py-spy, extra unmeasured runs)",
        "",
        "Sampled at 100 Hz from outside the process. The tables summarise only samples holding the GIL, i.e. "
        "Python's own CPU time, which is what caps throughput on a saturated 2-core machine; the flamegraph "
        "(`*-flamegraph.svg`, one of those processes) shows every non-idle sample, waits on "
        "PostgreSQL and Redis included.",
        "",
    ]
    found = False
    for label, profile in profiles:
        top = get(profile, "top")
        if not top:
            continue
        found = True
        files = profile.get("files", [])
        lines += [
            f"### {label}",
            "",
            f"{fmt(top['samples'])} samples; files: {', '.join(f'`{f}`' for f in files)}.",
            "",
        ]
        for title, key in (
            ("Self time by package (innermost frame)", "packages"),
            ("Self time by function", "self"),
            ("Hookflow functions, time anywhere on the stack", "ours"),
        ):
            lines += table([title, "%"], [(f"`{r['frame']}`", r["pct"]) for r in top.get(key, [])])
    if not found:
        lines.append("Not profiled in this run: `make bench PROFILE=1` adds py-spy runs (files in bench-results/).")
        lines.append("")
    return lines
