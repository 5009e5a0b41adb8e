"""Commands come from the Procfile, bound to loopback; bench processes never see the caller's settings."""

from __future__ import annotations

import pytest

from bench import infra
from schemas.settings import PROJECT_ROOT

PROCFILE = """# comment: web: not this one
web: exec gunicorn app:app --bind 0.0.0.0:${WEB_PORT:-8000} --workers 2 --threads 4
worker: exec flask --app app worker
"""


def test_the_web_line_gets_the_port_and_a_loopback_bind() -> None:
    argv = infra.procfile_command(PROCFILE, "web", 4321)
    assert argv[1:] == ["app:app", "--bind", "127.0.0.1:4321", "--workers", "2", "--threads", "4"]
    assert argv[0].endswith("gunicorn")


def test_without_a_port_the_default_is_used_and_exec_is_dropped() -> None:
    assert infra.procfile_command(PROCFILE, "web")[3] == "127.0.0.1:8000"
    assert infra.procfile_command(PROCFILE, "worker")[1:] == ["--app", "app", "worker"]


def test_env_assignments_before_the_program_are_kept_and_the_program_resolved() -> None:
    line = "web: exec env LOG_FORMAT=text gunicorn app:app --bind 0.0.0.0:${WEB_PORT:-8000}"
    argv = infra.procfile_command(line, "web", 9)
    assert argv[:2] == ["env", "LOG_FORMAT=text"]
    assert argv[2] == str(infra.VENV_BIN / "gunicorn")
    assert argv[3:] == ["app:app", "--bind", "127.0.0.1:9"]


def test_a_missing_process_is_a_setup_error() -> None:
    with pytest.raises(infra.BenchSetupError, match="no 'sandbox'"):
        infra.procfile_command(PROCFILE, "sandbox")


def test_the_shipped_procfile_has_what_the_bench_runs() -> None:
    procfile = (PROJECT_ROOT / "Procfile").read_text()
    assert "app:app" in infra.procfile_command(procfile, "web", 1)
    assert infra.procfile_command(procfile, "worker")[-1] == "worker"


def test_the_caller_s_hookflow_settings_do_not_leak_into_bench_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://someone-else/prod")
    monkeypatch.setenv("redis_url", "redis://elsewhere")
    env = infra.process_env({"REDIS_URL": "redis://127.0.0.1:6379/3"})
    assert "DATABASE_URL" not in env and "redis_url" not in env
    assert env["REDIS_URL"] == "redis://127.0.0.1:6379/3"
    assert env["PATH"].startswith(str(infra.VENV_BIN))
