"""What a parent does for the step workers it is about to fork (Services.prepare_to_fork)."""

from __future__ import annotations

import gc
import logging
import shutil
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine import worker
from engine.services import Services
from schemas.workflow import WorkflowSpec
from tests.conftest import SHIPPED_WORKFLOWS

DATED = """\
name: dated
on: {source: webform}
vars:
  go_live: 2025-01-06
steps:
  - id: note
    uses: core.log
    with: {message: "live from {{ vars.go_live }}"}
"""


def _no_database_read() -> dict[str, Any]:
    raise AssertionError("a preloaded workflow must not be read back from the ledger")


def test_the_workflows_are_parsed_once_before_forking_and_no_step_reads_them_back(services: Services) -> None:
    # Given a parent that prepared to fork
    services.prepare_to_fork()

    # Then every workflow of the catalog is known by the hash its runs pin, parsed as a worker would
    workflows = services.catalog.current().workflows.values()
    assert workflows
    for workflow in workflows:
        preloaded = services.spec_for(workflow.hash, _no_database_read)
        assert preloaded == WorkflowSpec.model_validate(workflow.definition)


class TestAValueTheYamlAndThePinnedDefinitionSpellDifferently:
    @pytest.fixture
    def workflows_dir(self, tmp_path: Path) -> Path:
        shutil.copy(SHIPPED_WORKFLOWS / "sources.yaml", tmp_path)
        (tmp_path / "dated.yaml").write_text(DATED)
        return tmp_path

    def test_is_preloaded_as_every_worker_reads_it_from_the_run(self, services: Services) -> None:
        # YAML reads an unquoted date as a date; the definition a run pins holds its ISO string
        services.prepare_to_fork()
        (workflow,) = services.catalog.current().workflows.values()
        assert workflow.spec.vars["go_live"] != "2025-01-06"

        assert services.spec_for(workflow.hash, _no_database_read).vars["go_live"] == "2025-01-06"


def test_the_tls_context_is_built_once_in_the_parent_and_shared_by_every_client_after_a_fork(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[ssl.SSLContext] = []

    def create_ssl_context(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        built.append(real(*args, **kwargs))
        return built[-1]

    real = httpx.create_ssl_context
    monkeypatch.setattr(httpx, "create_ssl_context", create_ssl_context)

    # Given a parent that prepared to fork: the CA bundle is loaded there, before any client exists
    services.prepare_to_fork()
    assert len(built) == 1

    # When a forked child drops what it inherited and builds its own client
    services.after_fork()
    services.http  # noqa: B018  (built on first use)

    # Then it reuses the parent's context
    assert len(built) == 1


class TestAnUnreadableWorkflowsDirectory:
    @pytest.fixture
    def workflows_dir(self, tmp_path: Path) -> Path:
        (tmp_path / "enquiry.yaml").symlink_to(tmp_path / "gone.yaml")  # listed, but stat() fails
        return tmp_path

    def test_does_not_stop_the_workers_from_starting(
        self, services: Services, caplog: pytest.LogCaptureFixture
    ) -> None:
        # Workers run the definitions pinned on their runs; the directory is only a head start
        with caplog.at_level(logging.WARNING, logger="engine.services"):
            services.prepare_to_fork()

        assert "workflows not preloaded before forking" in caplog.text
        assert "cannot read WORKFLOWS_DIR" in caplog.text


def test_the_pool_forks_only_once_the_parent_is_prepared_and_frozen_out_of_the_collector(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Frozen, the parent's objects are never written to by the children's collections, so their pages stay
    # shared: a 24-worker pool's total PSS was 1,436 MiB without it, 680 MiB with it (a quick bench run)
    seen: dict[str, Any] = {}

    class PoolStartRecorder:
        """Stands in for RQ's WorkerPool: records what the parent had done when it would have forked."""

        def __init__(self, queues: list[Any], **kwargs: Any) -> None:
            self.workers = kwargs["num_workers"]

        def start(self, burst: bool = False, logging_level: str = "INFO") -> None:
            workflow = next(iter(services.catalog.current().workflows.values()))
            seen["preloaded"] = services.spec_for(workflow.hash, _no_database_read) is not None
            seen["frozen"] = gc.get_freeze_count()
            seen["workers"] = self.workers

    monkeypatch.setattr(worker, "WorkerPool", PoolStartRecorder)
    monkeypatch.setattr(worker.PooledStepWorker, "with_reconciler", True)  # run_pool sets it for the class
    try:
        worker.run_pool(services, 3, reconciler=False)
    finally:
        gc.unfreeze()
    assert seen == {"preloaded": True, "frozen": seen["frozen"], "workers": 3}
    assert seen["frozen"] > 10_000


def test_a_cookie_one_api_answer_sets_is_not_sent_with_later_calls(services: Services) -> None:
    """The process's one client serves every run and credential: nothing may carry over between calls."""
    received: list[str | None] = []

    class SetsACookie(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            received.append(self.headers.get("Cookie"))
            self.send_response(200)
            self.send_header("Set-Cookie", "session=run-one-secret; Path=/")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), SetsACookie)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        first = services.http.get(url)
        services.http.get(url)
    finally:
        server.shutdown()
        server.server_close()
    assert first.headers["set-cookie"].startswith("session=")  # the API did set one
    assert received == [None, None]
    assert not services.http.cookies
    with pytest.raises(TypeError, match="keeps no cookies"):
        services.http.cookies = {"session": "set-by-hand"}  # type: ignore[assignment]
