"""Structured logs: one JSON object per line with the fields ops search by; secrets never written."""

from __future__ import annotations

import json
import logging
import shlex
import threading
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from gunicorn.config import Config
from gunicorn.glogging import Logger
from pydantic import SecretStr

from engine import logs
from engine.observe import RunFinished, StepFinished
from engine.services import Services
from schemas.settings import PROJECT_ROOT, Settings
from tests.conftest import ADMIN_TOKEN, SANDBOX_KEY, SECRETS, Drain, Sandbox, post_hook

EXAMPLE = (PROJECT_ROOT / "examples" / "web-enquiry.json").read_bytes()
TOKEN = {"X-Hook-Token": SECRETS["WEBFORM_TOKEN"]}


CRM_KEY = "crm-key-98765"  # a CORE_HTTP_SECRETS value


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"core_http_secrets": {"CRM_KEY": SecretStr(CRM_KEY)}}


def lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.fixture
def restore_logging() -> Any:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_every_step_and_run_writes_one_line_with_its_fields(
    client: FlaskClient, drain: Drain, sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    formatter = logs.JsonFormatter(logs.Scrubber())
    with caplog.at_level(logging.INFO):
        accepted = post_hook(client, "webform", EXAMPLE, **TOKEN).get_json()
        drain()
    written = [json.loads(formatter.format(record)) for record in caplog.records]

    steps = [line for line in written if line["msg"].startswith("step ")]
    assert [line["step"] for line in steps] == ["contact", "job", "constraint", "schedule"]
    first = steps[0]
    assert first["event_id"] == accepted["event_id"] and first["run_id"] == accepted["runs"][0]
    assert (first["attempt"], first["connector"], first["operation"]) == (1, "bigchange", "bigchange.contacts.create")
    assert first["status"] == "succeeded" and first["duration_ms"] > 0 and first["http_statuses"]
    assert first["level"] == "info" and first["ts"].endswith("+00:00")

    (webhook,) = [line for line in written if line["logger"] == "hookflow.inbound"]
    assert (webhook["source"], webhook["http_status"], webhook["event_id"]) == ("webform", 202, accepted["event_id"])
    (finished,) = [line for line in written if line["msg"] == "run succeeded"]
    assert finished["run_id"] == accepted["runs"][0] and finished["duration_ms"] >= 0


def test_secrets_are_masked_by_value_and_by_field_name(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(bigchange_api_key=SecretStr("bc-key-12345"), admin_token=SecretStr("adm-67890"))
    logs.configure(settings)
    fact = StepFinished(
        "run_x",
        "evt_x",
        "w",
        "contact",
        "bigchange.contacts.create",
        2,
        "failed",
        12.5,
        "HTTP 401: key bc-key-12345 is not valid",
    )
    logs.log_fact(fact)
    logging.getLogger("engine.test").warning("admin token adm-67890 leaked", extra={"api_token": "tok-abc", "n": 1})

    text = capsys.readouterr().err
    assert "bc-key-12345" not in text and "adm-67890" not in text and "tok-abc" not in text
    step, other = lines(text)
    assert step["error"] == "HTTP 401: key [redacted] is not valid" and step["level"] == "warning"
    assert other["msg"] == "admin token [redacted] leaked" and other["api_token"] == "[redacted]" and other["n"] == 1


def test_nested_fields_are_masked_at_every_depth_by_name_and_by_value() -> None:
    scrubber = logs.Scrubber(["bc-key-12345"])
    value = {"outer": [{"token": "tok-abc", "inner": {"note": "key bc-key-12345", "n": 3}}], "tuple": ("bc-key-12345",)}
    assert scrubber.value(value) == {
        "outer": [{"token": "[redacted]", "inner": {"note": "key [redacted]", "n": 3}}],
        "tuple": ["[redacted]"],
    }


def test_text_format_is_for_people_and_masks_too(restore_logging: None, capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure(Settings(log_format="text", admin_token=SecretStr("adm-67890")))
    logs.log_fact(RunFinished("run_x", "evt_x", "w", "failed", "boom adm-67890", "contact", 5.0))
    (line,) = capsys.readouterr().err.splitlines()
    assert " WARNING hookflow: run failed " in line
    assert "run_id=run_x" in line and "step=contact" in line and "error=boom [redacted]" in line


def test_configuring_twice_keeps_one_handler(restore_logging: None) -> None:
    logs.configure(Settings())
    logs.configure(Settings(log_level="WARNING"))
    ours = [h for h in logging.getLogger().handlers if getattr(h, "hookflow", False)]
    assert len(ours) == 1 and logging.getLogger().level == logging.WARNING
    assert logging.getLogger("httpx").level == logging.WARNING


def test_an_exception_is_one_line_with_its_traceback(restore_logging: None, capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure(Settings())
    try:
        raise ValueError("bad")
    except ValueError:
        logging.getLogger("engine.test").exception("it broke")
    (line,) = lines(capsys.readouterr().err)
    assert line["msg"] == "it broke" and "ValueError: bad" in line["exc"]


# --- Every configured secret, one list for logs and console ------------------------------------


def test_configured_secrets_are_the_settings_core_http_and_every_source_secret(services: Services) -> None:
    known = logs.configured_secrets(services.settings, services.catalog.current())
    # sources.yaml ${VAR}s, resolved; CORE_HTTP_SECRETS (a dict of them); the settings' own
    assert {SECRETS["WEBFORM_TOKEN"], SECRETS["ACCOUNTS_SECRET"], CRM_KEY, ADMIN_TOKEN, SANDBOX_KEY} <= set(known)
    assert SECRETS["WEBFORM_TOKEN"] not in logs.configured_secrets(services.settings)  # no catalog, no sources


def test_lines_mask_source_and_core_http_secrets(
    app: Flask, services: Services, restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the app's logging, and its sources loaded
    logs.configure(services.settings)
    with app.app_context():
        services.catalog.current()
        # When a line quotes a sender's token, the accounts HMAC secret and a core.http secret
        message = "form sent %s, accounts signed with %s, crm answered %s"
        logging.getLogger("engine.test").warning(message, SECRETS["WEBFORM_TOKEN"], SECRETS["ACCOUNTS_SECRET"], CRM_KEY)
    # And outside any app context (startup, gunicorn's own lines), the settings' secrets still are
    logging.getLogger("engine.test").warning("crm answered %s", CRM_KEY)

    text = capsys.readouterr().err
    assert SECRETS["WEBFORM_TOKEN"] not in text and SECRETS["ACCOUNTS_SECRET"] not in text and CRM_KEY not in text
    inside, outside = lines(text)[-2:]
    assert inside["msg"] == "form sent [redacted], accounts signed with [redacted], crm answered [redacted]"
    assert outside["msg"] == "crm answered [redacted]"


def test_a_line_written_while_the_catalog_loads_does_not_wait_for_it(
    app: Flask, services: Services, restore_logging: None
) -> None:
    # Loading the catalog logs under the catalog's lock; a scrubber that asked for the catalog would deadlock
    logs.configure(services.settings)
    loaded = threading.Event()

    def load() -> None:
        with app.app_context():
            services.catalog.current()  # first load: writes "workflows loaded: ..." while holding the lock
            loaded.set()

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    thread.join(timeout=30)
    assert loaded.is_set(), "loading the catalog hung in its own log line"


# --- gunicorn's access log --------------------------------------------------------------------


def procfile_gunicorn_logger() -> Logger:
    """gunicorn's logger, configured by the flags of the Procfile's web process, as gunicorn parses them."""
    web = next(line for line in (PROJECT_ROOT / "Procfile").read_text().splitlines() if line.startswith("web:"))
    words = shlex.split(web.removeprefix("web:"))
    config = Config()
    for name, value in vars(config.parser().parse_args(words[words.index("gunicorn") + 1 :])).items():
        if value is not None and name != "args":
            config.set(name.lower(), value)
    return Logger(config)


def test_the_access_log_never_writes_a_query_string(capsys: pytest.CaptureFixture[str]) -> None:
    # Given a sender that can only put its token in the URL (verify type token: ?token=)
    secret = SECRETS["WEBFORM_TOKEN"]
    environ = {
        "REQUEST_METHOD": "POST",
        "RAW_URI": f"/hooks/webform?token={secret}",
        "PATH_INFO": "/hooks/webform",
        "QUERY_STRING": f"token={secret}",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "203.0.113.9",
        "HTTP_REFERER": f"https://forms.example/embed?token={secret}",
        "HTTP_USER_AGENT": "FormSender/1.0",
    }
    response = SimpleNamespace(status="202 ACCEPTED", headers=[], sent=61)

    # When gunicorn, as `make run` starts it, logs the request
    procfile_gunicorn_logger().access(response, SimpleNamespace(headers=[]), environ, timedelta(milliseconds=12))

    # Then the line has the path, not the query string (nor a referer that may carry one)
    (line,) = capsys.readouterr().out.splitlines()
    assert secret not in line and "token=" not in line
    assert '"POST /hooks/webform HTTP/1.1" 202 61 0.012000s "FormSender/1.0"' in line and "203.0.113.9" in line
