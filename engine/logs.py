"""Structured logs: one JSON object per line in production, readable lines under `make run`.

Every line carries what it is about as fields (event_id, run_id, step,
attempt, connector, status, duration_ms, ...), passed with `extra=`. Before a
line is written, fields whose names say they hold a credential are masked
(engine.redact's rule) and every configured secret value is replaced wherever
it appears, message included: an API that echoes a key into an error message
must not put it in the logs.

"Every configured secret value" is `configured_secrets()`, the one list the
console's scrubber uses too: the settings' credentials, CORE_HTTP_SECRETS, and
each loaded source's verification secrets (sources.yaml `${VAR}`s, resolved).
The sources are only known once the app has loaded its catalog, and can change
when it reloads, so each line also masks the secrets of the app whose context
it is written in (every request, step job and CLI command runs in one).

`configure()` is idempotent (the app factory calls it; tests build many apps).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from flask import current_app, has_app_context
from markupsafe import escape
from pydantic import BaseModel, SecretStr

from engine.observe import Fact, RunFinished, RunStarted, StepFinished
from engine.redact import REDACTED, redact_secret_fields
from engine.services import EXTENSION
from schemas.settings import Settings

if TYPE_CHECKING:
    from engine.loader import Catalog, CatalogCache

log = logging.getLogger("hookflow")
# LogRecord's own attributes; anything else on a record came in through `extra=`.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}
_MIN_SECRET = 4  # shorter values would mask ordinary text
# One INFO line per HTTP request would double the step lines (which already carry every call's status).
QUIET = ("httpx", "httpcore")


def configured_secrets(settings: Settings, catalog: Catalog | None = None) -> list[str]:
    """Every secret value this server is configured with, for masking in logs and console pages.

    - the settings' credentials: ADMIN_TOKEN, API keys, passwords, METRICS_TOKEN, ...;
    - CORE_HTTP_SECRETS, the values core.http steps name;
    - with a catalog, each source's verification secrets (WEBFORM_TOKEN, ACCOUNTS_SECRET, ...,
      every one of a rotation list, a preset's `secret`, basic auth passwords).

    Values shorter than 4 characters are left out: masking them would mangle ordinary text.
    """
    found = _secret_strings(settings)
    if catalog is not None:
        for source in catalog.sources.values():
            found += _secret_strings(source)
    return sorted({value for value in found if len(value) >= _MIN_SECRET})


def _secret_strings(value: Any) -> list[str]:
    """The SecretStr values anywhere in a model, dict or list (CORE_HTTP_SECRETS is a dict of them)."""
    if isinstance(value, SecretStr):
        return [value.get_secret_value()]
    if isinstance(value, BaseModel):
        return [s for name in type(value).model_fields for s in _secret_strings(getattr(value, name))]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _secret_strings(item)]
    if isinstance(value, list | tuple):
        return [s for item in value for s in _secret_strings(item)]
    return []


def secret_values(settings: Settings) -> list[str]:
    """The settings' secrets alone (before any catalog is loaded); see `configured_secrets`."""
    return configured_secrets(settings)


def loaded_catalog(cache: CatalogCache) -> Catalog | None:
    """The catalog `cache` last loaded, without loading one.

    CatalogCache.current() may load, under a lock, and loading writes log lines:
    asking it for the catalog from inside a log line would deadlock that thread.
    The last loaded catalog is what a line needs (secrets only change with a load).
    CatalogCache has no public accessor for it, hence the attribute read.
    """
    return getattr(cache, "_catalog", None)


class AppSecrets:
    """The secrets of the app whose context a line is written in; () outside one.

    Recomputed only when that app's settings or loaded catalog is replaced (a reload,
    a settings change), so a line costs two identity checks.
    """

    def __init__(self) -> None:
        self._cached: tuple[object, object, tuple[str, ...]] = (None, None, ())

    def __call__(self) -> tuple[str, ...]:
        if not has_app_context():
            return ()
        services = current_app.extensions.get(EXTENSION)
        if services is None:
            return ()
        settings, catalog = services.settings, loaded_catalog(services.catalog)
        seen_settings, seen_catalog, secrets = self._cached
        if seen_settings is settings and seen_catalog is catalog:
            return secrets
        secrets = tuple(configured_secrets(settings, catalog))
        self._cached = (settings, catalog, secrets)  # one assignment: threads never see a mixed pair
        return secrets


class Scrubber:
    """Masks secret values in text and credential-named fields in structures.

    `also`, when given, is asked for more secrets each time (AppSecrets); it must
    return the same tuple object while nothing changed, so the merge is redone
    only when something did.
    """

    def __init__(self, secrets: Iterable[str] = (), also: Callable[[], Sequence[str]] | None = None) -> None:
        self._fixed = frozenset(secrets)
        self._also = also
        self._merged: tuple[object, list[str]] = ((), _longest_first(self._fixed))

    @property
    def secrets(self) -> list[str]:
        if self._also is None:
            return self._merged[1]
        more = self._also()
        seen, merged = self._merged
        if more is not seen:
            merged = _longest_first(self._fixed | set(more))
            self._merged = (more, merged)
        return merged

    def text(self, value: str) -> str:
        return _mask(value, self.secrets)

    def html(self, value: str) -> str:
        """`text`, also catching secrets as HTML escaping spells them (`&` as `&amp;`, ...)."""
        for secret in self.secrets:
            value = value.replace(secret, REDACTED).replace(str(escape(secret)), REDACTED)
        return value

    def value(self, value: Any) -> Any:
        return _masked(value, self.secrets)


def _mask(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return text


def _masked(value: Any, secrets: list[str]) -> Any:
    """Credential-named fields redacted (at every depth, once), then secret values masked in every string."""
    return _masked_strings(redact_secret_fields(value), secrets)


def _masked_strings(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        return _mask(value, secrets)
    if isinstance(value, dict):
        return {key: _masked_strings(item, secrets) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_masked_strings(item, secrets) for item in value]
    return value


def _longest_first(secrets: Iterable[str]) -> list[str]:
    return sorted(set(secrets), key=len, reverse=True)  # longest first: no half-masked overlaps


def fields_of(record: logging.LogRecord) -> dict[str, Any]:
    return {key: value for key, value in record.__dict__.items() if key not in _STANDARD and not key.startswith("_")}


class JsonFormatter(logging.Formatter):
    def __init__(self, scrubber: Scrubber) -> None:
        super().__init__()
        self.scrubber = scrubber

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        line.update(fields_of(record))
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(self.scrubber.value(line), default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`12:00:01 INFO engine.runner: step finished run_id=run_… step=contact status=succeeded`."""

    def __init__(self, scrubber: Scrubber) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
        self.scrubber = scrubber

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extra = self.scrubber.value(fields_of(record))
        pairs = " ".join(f"{key}={value}" for key, value in extra.items() if value is not None)
        return self.scrubber.text(f"{text} {pairs}" if pairs else text)


def configure(settings: Settings) -> logging.Handler:
    """Install Hookflow's handler on the root logger, replacing the one a previous call installed."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "hookflow", False)]:
        root.removeHandler(handler)
    handler = logging.StreamHandler()  # this process's stderr, as it is now (CLI output on stdout stays clean)
    handler.hookflow = True  # type: ignore[attr-defined]
    scrubber = Scrubber(configured_secrets(settings), also=AppSecrets())
    handler.setFormatter(JsonFormatter(scrubber) if settings.log_format == "json" else TextFormatter(scrubber))
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    for chatty in QUIET:
        logging.getLogger(chatty).setLevel(max(logging.WARNING, root.level))
    return handler


def log_fact(fact: Fact) -> None:
    """One line per finished step attempt (or foreach item), per run created and per run finished."""
    if isinstance(fact, StepFinished):
        level = logging.WARNING if fact.status == "failed" else logging.INFO
        log.log(
            level,
            "step %s",
            fact.status,
            extra={
                "event_id": fact.event_id,
                "run_id": fact.run_id,
                "workflow": fact.workflow,
                "step": fact.step,
                "item": fact.item,
                "attempt": fact.attempt,
                "operation": fact.operation,
                "connector": fact.connector,
                "status": fact.status,
                "duration_ms": fact.duration_ms,
                "http_statuses": fact.http_statuses or None,
                "retry_scheduled": fact.retry_scheduled or None,
                "error": fact.error,
            },
        )
    elif isinstance(fact, RunFinished):
        level = logging.WARNING if fact.status == "failed" else logging.INFO
        fields = {"event_id": fact.event_id, "run_id": fact.run_id, "workflow": fact.workflow, "status": fact.status}
        fields |= {"step": fact.step, "duration_ms": fact.duration_ms, "error": fact.error}
        log.log(level, "run %s", fact.status, extra=fields)
    elif isinstance(fact, RunStarted):
        log.info("run created", extra={"event_id": fact.event_id, "run_id": fact.run_id, "workflow": fact.workflow})
