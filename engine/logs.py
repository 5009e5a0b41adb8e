"""Structured logs: one JSON object per line in production, readable lines under `make run`.

Every line carries what it is about as fields (event_id, run_id, step,
attempt, connector, status, duration_ms, ...), passed with `extra=`. Before a
line is written, fields whose names say they hold a credential are masked
(engine.redact's rule) and every configured secret value is replaced wherever
it appears, message included: an API that echoes a key into an error message
must not put it in the logs.

`configure()` is idempotent (the app factory calls it; tests build many apps).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from markupsafe import escape
from pydantic import SecretStr

from engine.observe import Fact, RunFinished, RunStarted, StepFinished
from engine.redact import REDACTED, redact_secret_fields
from schemas.settings import Settings

log = logging.getLogger("hookflow")
# LogRecord's own attributes; anything else on a record came in through `extra=`.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}
_MIN_SECRET = 4
# One INFO line per HTTP request would double the step lines (which already carry every call's status).
QUIET = ("httpx", "httpcore")  # shorter values would mask ordinary text


def secret_values(settings: Settings) -> list[str]:
    """Every credential in the settings (ADMIN_TOKEN, API keys, passwords, ...)."""
    values = [getattr(settings, name) for name in type(settings).model_fields]
    return [
        v.get_secret_value() for v in values if isinstance(v, SecretStr) and len(v.get_secret_value()) >= _MIN_SECRET
    ]


class Scrubber:
    """Masks secret values in text and credential-named fields in structures."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = sorted(set(secrets), key=len, reverse=True)  # longest first: no half-masked overlaps

    def text(self, value: str) -> str:
        for secret in self.secrets:
            value = value.replace(secret, REDACTED)
        return value

    def html(self, value: str) -> str:
        """`text`, also catching secrets as HTML escaping spells them (`&` as `&amp;`, ...)."""
        for secret in self.secrets:
            value = value.replace(secret, REDACTED).replace(str(escape(secret)), REDACTED)
        return value

    def value(self, value: Any) -> Any:
        value = redact_secret_fields(value)
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {key: self.value(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(item) for item in value]
        return value


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
    scrubber = Scrubber(secret_values(settings))
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
