"""What a parent does for the step workers it is about to fork (Services.prepare_to_fork)."""

from __future__ import annotations

import gc
import logging
import ssl
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from engine import worker
from engine.services import Services
from schemas.workflow import WorkflowSpec


def _no_database_read() -> dict:
    raise AssertionError("a preloaded workflow must not be read back from the ledger")


def test_the_workflows_are_parsed_once_before_forking_and_no_step_reads_them_back(services: Services) -> None:
    # Given a parent that prepared to fork
    services.prepare_to_fork()

    # Then every workflow of the catalog is known by the hash its runs pin, without a database read
    workflows = services.catalog.current().workflows.values()
    assert workflows
    for workflow in workflows:
        assert services.spec_for(workflow.hash, _no_database_read) is workflow.spec


def test_a_preloaded_workflow_is_the_one_its_pinned_definition_describes(services: Services) -> None:
    # The shortcut is sound only if parsing the pinned definition again would give the same workflow
    for workflow in services.catalog.current().workflows.values():
        assert WorkflowSpec.model_validate(workflow.definition) == workflow.spec


def test_the_tls_context_is_built_once_and_shared_by_every_client_after_a_fork(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[ssl.SSLContext] = []

    def create_ssl_context(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        built.append(real(*args, **kwargs))
        return built[-1]

    real = httpx.create_ssl_context
    monkeypatch.setattr(httpx, "create_ssl_context", create_ssl_context)

    # Given a parent that prepared to fork, and used its own client
    services.prepare_to_fork()
    services.http.close()

    # When a forked child drops what it inherited and builds its own client
    services.after_fork()
    services.http  # noqa: B018  (built on first use)

    # Then the CA bundle was loaded once, in the parent
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


class PoolStartRecorder:
    """Stands in for RQ's WorkerPool: records what the parent had done when it would have forked."""

    seen: ClassVar[dict[str, Any]] = {}

    def __init__(self, queues: list[Any], **kwargs: Any) -> None:
        self.kwargs = kwargs

    def start(self, burst: bool = False, logging_level: str = "INFO") -> None:
        PoolStartRecorder.seen = {"frozen": gc.get_freeze_count(), "workers": self.kwargs["num_workers"]}


def test_the_pool_forks_only_once_the_parent_is_prepared_and_frozen_out_of_the_collector(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Frozen, the parent's objects are never written to by the children's collections, so their pages stay
    # shared: the bench measured a 24-worker pool's total PSS at 680 MiB with it, 1,436 MiB without
    monkeypatch.setattr(worker, "WorkerPool", PoolStartRecorder)
    try:
        worker.run_pool(services, 3, reconciler=False)
    finally:
        gc.unfreeze()
    assert PoolStartRecorder.seen["frozen"] > 10_000
    assert PoolStartRecorder.seen["workers"] == 3
    workflow = next(iter(services.catalog.current().workflows.values()))
    assert services.spec_for(workflow.hash, _no_database_read) is workflow.spec
