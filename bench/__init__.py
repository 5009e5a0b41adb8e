"""`make bench`: Hookflow's load harness (issue #8, Benchmarks).

It answers three questions with numbers anyone can reproduce on the same
machine: how fast the ack path takes webhooks (and how that compares with a bare
Flask endpoint under the same gunicorn settings), how many web-enquiry workflows
the RQ workers complete per second against a fast API stub, and how much memory
the web and worker processes need meanwhile.

Everything runs over loopback and is bounded in count and time. Modules:

- `stats`: percentiles and latency summaries (pure).
- `loadgen`: an asyncio HTTP/1.1 load generator, closed-loop and open-loop.
- `stub`: a minimal, fast BigChange stub with the paths the web-enquiry workflow calls.
- `bare_app`: the bare Flask endpoint that only answers 202.
- `procs`: starting and always stopping child processes; CPU and peak RSS from /proc.
- `infra`: Procfile commands, the processes' environment, Redis, the private database.
- `stack`: starting the measured processes (web, workers, stub) and waiting until ready.
- `snapshot`: the frozen copy of the code a run measures.
- `ledger`: what the ledger says after a run (counts, windows, engine overhead).
- `ingest`, `e2e`, `profiling`: the phases, and py-spy.
- `machine`: the facts around the numbers (hardware, versions, revision, date).
- `verdict`, `markdown`, `report`, `report_phases`: targets and checks, then docs/benchmarks.md.
- `config`, `orchestrator`, `__main__`: parameters, the order of phases, the command line.
"""
