"""The per-process set of long-lived collaborators, built once from Settings.

Requests and step jobs reach it through `current_services()` (the Flask app's
extensions), never through module globals. Nothing here opens a connection
at construction: SQLAlchemy, redis-py and the httpx client all connect lazily,
which keeps gunicorn's fork-after-import safe.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from flask import current_app
from redis import Redis

from engine.db import Database
from engine.errors import SpecError
from engine.http import SharedClient
from engine.ledger import EventViews
from engine.loader import CatalogCache
from engine.operations import OperationRegistry
from engine.queue import StepQueue
from engine.render import Renderer
from engine.retry import RetryPolicy
from schemas.settings import Settings
from schemas.workflow import WorkflowSpec

log = logging.getLogger(__name__)
EXTENSION = "hookflow"


class Services:
    def __init__(self, settings: Settings, environ: Mapping[str, str], operations: OperationRegistry) -> None:
        self.settings = settings
        self.operations = operations
        self.db = Database(settings.database_url, settings.sqlite_busy_timeout_ms)
        self.redis = Redis.from_url(settings.redis_url)
        self.queue = StepQueue(self.redis, settings.queue_name, settings.step_job_timeout_seconds)
        self.renderer = Renderer()
        self.catalog = CatalogCache(
            settings.workflows_dir, environ, operations, self.renderer, settings.workflow_reload_seconds
        )
        self.default_retry = RetryPolicy(
            max_attempts=settings.retry_max_attempts,
            initial=settings.retry_initial_seconds,
            max_delay=settings.retry_max_delay_seconds,
        )
        self._http: httpx.Client | None = None
        self._http_lock = threading.Lock()
        self._tls: ssl.SSLContext | None = None
        self._specs: dict[str, WorkflowSpec] = {}
        self.event_views = EventViews()

    @property
    def http(self) -> httpx.Client:
        """The process's pooled client for external APIs (created on first use, after any fork)."""
        if self._http is None:
            with self._http_lock:
                if self._http is None:
                    self._http = SharedClient(
                        verify=self._tls_context(),
                        timeout=self.settings.http_timeout_seconds,
                        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
                        follow_redirects=False,
                    )
        return self._http

    def spec_for(self, definition_hash: str, definition: dict[str, Any] | Callable[[], dict[str, Any]]) -> WorkflowSpec:
        """The pinned workflow a run started with, parsed once per process.

        `definition` may be a loader: the hot path reads the (large) definition only on a miss.
        """
        spec = self._specs.get(definition_hash)
        if spec is None:
            loaded = definition() if callable(definition) else definition
            spec = self._specs[definition_hash] = WorkflowSpec.model_validate(loaded)
        return spec

    def prepare_to_fork(self) -> None:
        """Do once, in a parent about to fork step workers, what each of them would repeat on its first job.

        Building the TLS context (the CA bundle, with httpcore imported alongside) cost ~50 ms of
        CPU per process here, and parsing the workflows and compiling their templates about as
        much; in a 300-run benchmark, py-spy put a third of sixteen fresh workers' samples there.
        None of this opens a socket: the TLS context is configuration, the catalog is files, so
        the children share it all copy-on-write.
        """
        import httpcore  # noqa: F401  (httpx imports it on the first client: do it once here)

        self._tls_context()
        try:
            catalog = self.catalog.current()
        except SpecError as exc:  # workers run pinned definitions; they do not need the directory to start
            log.warning("workflows not preloaded before forking (%s); each worker parses what it runs", exc)
            return
        for workflow in catalog.workflows.values():
            # Parsed from the pinned definition, as a worker would: the YAML's own parse can differ
            # in values typed Any (a YAML date stays a date there, the definition holds its string).
            self.spec_for(workflow.hash, workflow.definition)

    def _tls_context(self) -> ssl.SSLContext:
        """The CA bundle loaded once per process tree: it is configuration, so forked children share it."""
        if self._tls is None:
            self._tls = httpx.create_ssl_context()
        return self._tls

    def after_fork(self) -> None:
        """Drop connections inherited from a parent process; this process opens its own on first use.

        SQLAlchemy's documented recipe (dispose without closing: the parent still owns those
        sockets); redis-py and the lazily created HTTP client notice the new pid themselves.
        """
        self.db.engine.dispose(close=False)
        self._http = None

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
        self.db.dispose()
        self.redis.close()


def current_services() -> Services:
    return current_app.extensions[EXTENSION]
