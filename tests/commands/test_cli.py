"""The CLI as an operator uses it: `flask --app app workflows check | reconcile | db upgrade`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import sqlalchemy as sa
from flask import Flask

from engine.services import Services
from tests.conftest import SHIPPED_WORKFLOWS


def invoke(app: Flask, *args: str):
    return app.test_cli_runner().invoke(args=list(args), catch_exceptions=False)


def test_check_passes_on_the_shipped_workflows(app: Flask) -> None:
    result = invoke(app, "workflows", "check")
    assert result.exit_code == 0, result.output
    assert " 0 error(s), 0 warning(s)" in result.output


def test_check_reports_each_problem_located_and_exits_1(app: Flask, tmp_path: Path) -> None:
    shutil.copy(SHIPPED_WORKFLOWS / "sources.yaml", tmp_path)
    (tmp_path / "bad.yaml").write_text(
        "name: bad\non: {source: webform}\nsteps:\n  - id: x\n    uses: bigchange.jobs.creat\n"
    )
    result = invoke(app, "workflows", "check", str(tmp_path))
    assert result.exit_code == 1
    assert f"{tmp_path / 'bad.yaml'}:5:11: error: steps[0].uses: unknown operation 'bigchange.jobs.creat'" in (
        result.output
    )
    assert "did you mean 'bigchange.jobs.create'" in result.output


def test_warnings_fail_only_with_strict(app: Flask, services: Services) -> None:
    services.catalog.environ = {}  # no secrets in this environment: warnings only
    assert invoke(app, "workflows", "check").exit_code == 0
    strict = invoke(app, "workflows", "check", "--strict")
    assert strict.exit_code == 1 and "WEBFORM_TOKEN is not set" in strict.output


def test_check_speaks_json_for_ci_tools(app: Flask, services: Services) -> None:
    services.catalog.environ = {}
    result = invoke(app, "workflows", "check", "--format", "json")
    issues = json.loads(result.output)
    assert {issue["severity"] for issue in issues} == {"warning"}
    assert {"file", "line", "col", "path", "message", "hint"} <= set(issues[0])


def test_reconcile_reports_what_it_repaired(app: Flask, services: Services, client) -> None:
    from tests.test_pipeline import submit

    submit(client)
    services.redis.flushdb()
    result = invoke(app, "reconcile")
    assert result.exit_code == 0
    assert result.output.strip() == "re-enqueued 1 step job(s); recovered 0 lost attempt(s)"


def test_db_upgrade_creates_the_schema(app: Flask, services: Services, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new' / 'fresh.db'}"
    services.settings = services.settings.model_copy(update={"database_url": url})
    result = invoke(app, "db", "upgrade")
    assert result.exit_code == 0 and "database at head" in result.output
    assert {"events", "runs", "step_attempts"} <= set(sa.inspect(sa.create_engine(url)).get_table_names())


def test_connector_reference_pages_match_the_models(app: Flask) -> None:
    # The pages are generated; editing a model without regenerating them fails here.
    result = invoke(app, "connectors", "docs", "--check")
    assert result.exit_code == 0, result.output


def test_worker_refuses_more_threads_than_a_process_has_database_connections_for(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["worker", "--threads", "25"])
    assert result.exit_code == 2
    assert "--threads" in result.output and "1<=x<=24" in result.output
