# `make run` and `make test` bootstrap themselves: a fresh clone needs only python3 (>= 3.11).
# Each requirements set is installed into .venv once, and again only when its files change
# (a stamp file inside .venv, older than the requirements, triggers the reinstall).

PYTHON ?= python3
PYTEST_ARGS ?=
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --disable-pip-version-check --quiet

.PHONY: run test check lint

run: $(VENV)/.runtime-installed
	$(BIN)/python -m bootstrap.run

test: $(VENV)/.dev-installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

check: $(VENV)/.runtime-installed
	$(BIN)/flask --app app workflows check

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "Hookflow needs Python >= 3.11; run e.g. make $(MAKECMDGOALS) PYTHON=python3.11" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime-installed: requirements.txt | $(BIN)/python
	$(PIP) -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(PIP) -r requirements-dev.txt
	touch $@

# Benchmarks (issue #8): docs/benchmarks.md from a bounded, loopback-only run of about 6 minutes.
#   make bench [PROFILE=1] [DB=sqlite] [RATE=200] [DURATION=30] [WORKERS=8] [EVENTS=2000] [BENCH_ARGS="--preload ..."]
#   make bench-quick     the same in about two minutes; its report goes to bench-results/, not docs/
# Everything else: .venv/bin/python -m bench --help
BENCH_FLAGS = $(if $(PROFILE),--profile) $(if $(DB),--db $(DB)) $(if $(RATE),--rate $(RATE)) \
	$(if $(DURATION),--duration $(DURATION)) $(if $(WORKERS),--workers $(WORKERS)) $(if $(EVENTS),--events $(EVENTS))
.PHONY: bench bench-quick

bench: $(VENV)/.dev-installed
	$(BIN)/python -m bench $(BENCH_FLAGS) $(BENCH_ARGS)

bench-quick: $(VENV)/.dev-installed
	$(BIN)/python -m bench --quick $(BENCH_FLAGS) $(BENCH_ARGS)

# Headless Chromium for the console's browser tests (tests/ui/test_browser.py skips, saying so, without it).
# Debian's package: Playwright drives it at /usr/bin/chromium and never downloads a browser.
.PHONY: browser-deps
browser-deps:
	command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium; }
